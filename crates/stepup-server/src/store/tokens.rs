//! Spent single-use elevated tokens and wallet nonces: each can be used once, by any replica.

use super::{Store, StoreError, with_pool};

impl Store {
    /// Marks a single-use token as spent, remembered until `expires_at` (the token's expiry plus the clock skew
    /// replicas may have: the caller's to add). Returns `false` if it was spent before (by this or another
    /// replica).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn consume_token(&self, jti: &str, expires_at: i64) -> Result<bool, StoreError> {
        let result = with_pool!(self, |pool| sqlx::query(
            "INSERT INTO consumed_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(result == 1)
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
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO nonces (nonce, environment_id, expires_at, used) VALUES ($1, $2, $3, 0)",
            )
            .bind(nonce)
            .bind(environment_id)
            .bind(expires_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Spends a nonce this server issued for this environment and that has not expired. Returns `false` for a
    /// nonce that is unknown, expired or already used.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn use_nonce(&self, nonce: &str, environment_id: &str, now: i64) -> Result<bool, StoreError> {
        let result = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE nonces SET used = 1 WHERE nonce = $1 AND environment_id = $2 AND used = 0 AND expires_at > $3",
            )
            .bind(nonce)
            .bind(environment_id)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(result == 1)
    }
}

impl Store {
    /// Whether a nonce exists for this environment, and whether it was used.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn nonce_used(&self, nonce: &str, environment_id: &str) -> Result<Option<bool>, StoreError> {
        Ok(with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT used <> 0 AS used FROM nonces WHERE nonce = $1 AND environment_id = $2",
        )
        .bind(nonce)
        .bind(environment_id)
        .fetch_optional(pool)
        .await?))
    }
}
