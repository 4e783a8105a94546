//! One-time codes (stored as keyed hashes) and the dev outbox that delivers them.

use sqlx::Row as _;
use stepup_core::OtpChannel;

use super::{Store, StoreError};

/// A sent one-time code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpRow {
    /// Id (`verificationUUID`).
    pub id: String,
    /// Environment.
    pub environment_id: String,
    /// The user it was sent for (verify calls), or none (sign-in).
    pub user_id: Option<String>,
    /// Where it was sent (stored by its name).
    pub channel: OtpChannel,
    /// Where it went.
    pub destination: String,
    /// HMAC of the code under the server's OTP key, hex.
    pub code_hash: String,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// Wrong codes tried so far.
    pub failed_attempts: i64,
    /// Whether it was used.
    pub used: bool,
}

/// A message in the outbox. `Debug` leaves the code out.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Recipient (email or phone).
    pub recipient: String,
    /// `email` or `sms`.
    pub channel: String,
    /// The code.
    pub code: String,
    /// The verification it belongs to.
    pub verification_id: String,
    /// When it was sent, Unix seconds.
    pub created_at: i64,
}

impl std::fmt::Debug for OutboxRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRow")
            .field("recipient", &self.recipient)
            .field("channel", &self.channel)
            .field("code", &stepup_core::secret::REDACTED)
            .field("verification_id", &self.verification_id)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Stores a sent code, and its outbox message when the outbox is on, in one transaction.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn insert_otp(
        &self,
        otp: &OtpRow,
        message: Option<&OutboxRow>,
        outbox_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO otp_verifications (id, environment_id, user_id, channel, destination, code_hash, created_at, \
             expires_at, failed_attempts, used) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0)",
        )
        .bind(&otp.id)
        .bind(&otp.environment_id)
        .bind(&otp.user_id)
        .bind(otp.channel.as_str())
        .bind(&otp.destination)
        .bind(&otp.code_hash)
        .bind(now)
        .bind(otp.expires_at)
        .execute(&mut *tx)
        .await?;
        let Some(message) = message else { return Ok(tx.commit().await?) };
        sqlx::query(
            "INSERT INTO outbox (id, environment_id, recipient, channel, code, verification_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(outbox_id)
        .bind(&otp.environment_id)
        .bind(&message.recipient)
        .bind(&message.channel)
        .bind(&message.code)
        .bind(&message.verification_id)
        .bind(message.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A sent code by id.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn otp(&self, environment_id: &str, id: &str) -> Result<Option<OtpRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM otp_verifications WHERE id = $1 AND environment_id = $2")
            .bind(id)
            .bind(environment_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(row) => Some(OtpRow {
                id: row.try_get("id")?,
                environment_id: row.try_get("environment_id")?,
                user_id: row.try_get("user_id")?,
                channel: stored_channel(&row.try_get::<String, _>("channel")?)?,
                destination: row.try_get("destination")?,
                code_hash: row.try_get("code_hash")?,
                expires_at: row.try_get("expires_at")?,
                failed_attempts: row.try_get("failed_attempts")?,
                used: row.try_get::<i64, _>("used")? != 0,
            }),
            None => None,
        })
    }

    /// Counts one wrong code, if the verification still has tries left (`< max`). Returns whether it counted
    /// (false: the verification was already used up, possibly by a concurrent request on another replica).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn otp_failed(&self, id: &str, max: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE otp_verifications SET failed_attempts = failed_attempts + 1 \
             WHERE id = $1 AND used = 0 AND failed_attempts < $2",
        )
        .bind(id)
        .bind(max)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Uses the code: succeeds for exactly one caller while it is unused, unexpired and has tries left.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn otp_use(&self, id: &str, max: i64, now: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE otp_verifications SET used = 1 WHERE id = $1 AND used = 0 AND failed_attempts < $2 AND expires_at > $3",
        )
        .bind(id)
        .bind(max)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// The outbox, newest first, optionally for one recipient.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn outbox(
        &self,
        environment_id: &str,
        recipient: Option<&str>,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT recipient, channel, code, verification_id, created_at FROM outbox \
             WHERE environment_id = $1 AND ($2 = '' OR recipient = $2) ORDER BY created_at DESC, id",
        )
        .bind(environment_id)
        .bind(recipient.unwrap_or(""))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(OutboxRow {
                    recipient: row.try_get("recipient")?,
                    channel: row.try_get("channel")?,
                    code: row.try_get("code")?,
                    verification_id: row.try_get("verification_id")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

/// A channel as stored; another name is a corrupt row, not a channel to guess.
fn stored_channel(name: &str) -> Result<OtpChannel, sqlx::Error> {
    OtpChannel::from_name(name).ok_or_else(|| sqlx::Error::Decode(format!("unknown channel `{name}`").into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_channel_reads_back_and_an_unknown_one_is_a_decode_error() {
        assert!(matches!(stored_channel("sms"), Ok(OtpChannel::Sms)));
        assert!(matches!(stored_channel("email"), Ok(OtpChannel::Email)));
        assert!(
            matches!(stored_channel("fax"), Err(sqlx::Error::Decode(why)) if why.to_string().contains("`fax`"))
        );
    }
}
