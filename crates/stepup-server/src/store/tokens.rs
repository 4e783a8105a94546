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
