//! Signing keys and server secrets: created once, shared by every replica.

use sqlx::Row as _;

use super::{Store, StoreError};

impl Store {
    /// The secret stored under `(environment, slot)`, inserting `candidate` if there is none yet. Replicas that
    /// race on first start all end up with the same secret (the first insert wins).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn signing_key(
        &self,
        environment_id: &str,
        slot: &str,
        candidate_kid: &str,
        candidate_secret: &str,
        now: i64,
    ) -> Result<(String, String), StoreError> {
        sqlx::query(
            "INSERT INTO signing_keys (environment_id, slot, kid, secret_key, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (environment_id, slot) DO NOTHING",
        )
        .bind(environment_id)
        .bind(slot)
        .bind(candidate_kid)
        .bind(candidate_secret)
        .bind(now)
        .execute(self.pool())
        .await?;
        let row =
            sqlx::query("SELECT kid, secret_key FROM signing_keys WHERE environment_id = $1 AND slot = $2")
                .bind(environment_id)
                .bind(slot)
                .fetch_one(self.pool())
                .await?;
        Ok((row.try_get("kid")?, row.try_get("secret_key")?))
    }

    /// The server secret `name`, inserting `candidate` if there is none yet.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn server_secret(&self, name: &str, candidate: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(candidate)
            .execute(self.pool())
            .await?;
        let row = sqlx::query("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("value")?)
    }
}
