//! Spent single-use elevated tokens and wallet nonces: each can be used once, by any replica.

use super::{Store, StoreError};

impl Store {
    /// Marks a single-use token as spent. Returns `false` if it was spent before (by this or another replica).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn consume_token(&self, jti: &str, expires_at: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO consumed_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Stores fresh nonces.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn insert_nonce(
        &self,
        nonce: &str,
        environment_id: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO nonces (nonce, environment_id, expires_at, used) VALUES ($1, $2, $3, 0)")
            .bind(nonce)
            .bind(environment_id)
            .bind(expires_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Spends a nonce this server issued for this environment and that has not expired. Returns `false` for a
    /// nonce that is unknown, expired or already used.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn use_nonce(&self, nonce: &str, environment_id: &str, now: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE nonces SET used = 1 WHERE nonce = $1 AND environment_id = $2 AND used = 0 AND expires_at > $3",
        )
        .bind(nonce)
        .bind(environment_id)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Deletes what can no longer be used: spent tokens, nonces, one-time codes and ceremony states past their
    /// expiry (a spent token past its `exp` is refused for expiry anyway), and outbox messages a day old.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn purge_expired(&self, now: i64) -> Result<(), StoreError> {
        for table in [
            "consumed_tokens",
            "nonces",
            "otp_verifications",
            "webauthn_challenges",
            "rate_slots",
            "rate_counters",
            "sessions",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE expires_at <= $1"))
                .bind(now)
                .execute(self.pool())
                .await?;
        }
        sqlx::query("DELETE FROM outbox WHERE created_at <= $1")
            .bind(now - 24 * 3600)
            .execute(self.pool())
            .await?;
        // A lockout row with no failures and no lock in force says nothing.
        sqlx::query("DELETE FROM mfa_lockouts WHERE failures = 0 AND locked_until <= $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

impl Store {
    /// Whether a nonce exists for this environment, and whether it was used.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn nonce_used(&self, nonce: &str, environment_id: &str) -> Result<Option<bool>, StoreError> {
        use sqlx::Row as _;
        let row = sqlx::query("SELECT used FROM nonces WHERE nonce = $1 AND environment_id = $2")
            .bind(nonce)
            .bind(environment_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get::<i64, _>("used")? != 0),
            None => None,
        })
    }
}
