//! One-time codes (stored as keyed hashes) and the dev outbox that delivers them.

use stepup_core::OtpChannel;

use super::{Store, StoreError, with_pool};

/// A sent one-time code.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OtpRow {
    /// Id (`verificationUUID`).
    pub id: String,
    /// Environment.
    pub environment_id: String,
    /// The user it was sent for (verify calls), or none (sign-in).
    pub user_id: Option<String>,
    /// Where it was sent (stored by its name; another name is a corrupt row, a decode error).
    #[sqlx(try_from = "String")]
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
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRow {
    /// Recipient (email or phone).
    pub recipient: String,
    /// The channel it went by.
    #[sqlx(try_from = "String")]
    pub channel: OtpChannel,
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
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO otp_verifications (id, environment_id, user_id, channel, destination, code_hash, \
                 created_at, expires_at, failed_attempts, used) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0)",
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
            if let Some(message) = message {
                sqlx::query(
                    "INSERT INTO outbox (id, environment_id, recipient, channel, code, verification_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(outbox_id)
                .bind(&otp.environment_id)
                .bind(&message.recipient)
                .bind(message.channel.as_str())
                .bind(&message.code)
                .bind(&message.verification_id)
                .bind(message.created_at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// A sent code by id.
    ///
    /// # Errors
    /// [`StoreError`] (a stored channel this version does not know is a decode error).
    pub async fn otp(&self, environment_id: &str, id: &str) -> Result<Option<OtpRow>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, environment_id, user_id, channel, destination, code_hash, expires_at, failed_attempts, \
                 used <> 0 AS used FROM otp_verifications WHERE id = $1 AND environment_id = $2",
            )
            .bind(id)
            .bind(environment_id)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Counts one wrong code, if the verification still has tries left (`< max`). Returns whether it counted
    /// (false: the verification was already used up, possibly by a concurrent request on another replica).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn otp_failed(&self, id: &str, max: i64) -> Result<bool, StoreError> {
        let result = with_pool!(self, |pool| sqlx::query(
            "UPDATE otp_verifications SET failed_attempts = failed_attempts + 1 \
             WHERE id = $1 AND used = 0 AND failed_attempts < $2",
        )
        .bind(id)
        .bind(max)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(result == 1)
    }

    /// Uses the code: succeeds for exactly one caller while it is unused, unexpired and has tries left.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn otp_use(&self, id: &str, max: i64, now: i64) -> Result<bool, StoreError> {
        let result = with_pool!(self, |pool| sqlx::query(
            "UPDATE otp_verifications SET used = 1 \
             WHERE id = $1 AND used = 0 AND failed_attempts < $2 AND expires_at > $3",
        )
        .bind(id)
        .bind(max)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(result == 1)
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
        Ok(with_pool!(self, |pool| sqlx::query_as(
            "SELECT recipient, channel, code, verification_id, created_at FROM outbox \
             WHERE environment_id = $1 AND ($2 = '' OR recipient = $2) ORDER BY created_at DESC, id",
        )
        .bind(environment_id)
        .bind(recipient.unwrap_or(""))
        .fetch_all(pool)
        .await?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A channel name this version does not write is a corrupt row: reading it is a decode error of the
    /// `channel` column, not a guess at a channel. (sqlx 0.8.6's derive loses the conversion's message: its
    /// `__spec_error!` calls the catch-all impl; core's `UnknownChannel` has its own test.)
    #[tokio::test]
    async fn a_stored_channel_reads_back_and_an_unknown_one_is_a_decode_error() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let row = OtpRow {
            id: "v1".into(),
            environment_id: "dev".into(),
            user_id: None,
            channel: OtpChannel::Sms,
            destination: "+15551234567".into(),
            code_hash: "hash".into(),
            expires_at: 100,
            failed_attempts: 0,
            used: false,
        };
        store.insert_otp(&row, None, "o1", 1).await.unwrap();
        assert_eq!(store.otp("dev", "v1").await.unwrap(), Some(row));
        let pool = store.sqlite_pool().unwrap();
        sqlx::query("UPDATE otp_verifications SET channel = 'fax' WHERE id = 'v1'")
            .execute(pool)
            .await
            .unwrap();
        let error = store.otp("dev", "v1").await.unwrap_err();
        assert!(
            matches!(&error, StoreError::Sqlx(sqlx::Error::ColumnDecode { index, .. }) if index == "channel"),
            "{error:?}"
        );
    }
}
