//! Signing keys and server secrets: created once, shared by every replica, stored sealed (`key_encryption`).

use super::{Store, StoreError, with_pool};

/// A stored signing key.
#[derive(Clone, sqlx::FromRow)]
pub struct SigningKeyRow {
    /// Its slot (`primary` for the first, the key id for rotated ones).
    pub slot: String,
    /// The key id (`kid`).
    pub kid: String,
    /// The sealed secret (clear hex from versions before encryption at rest).
    pub secret_key: String,
    /// When it was made, Unix seconds: the newest signs.
    pub created_at: i64,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// An environment's signing keys, newest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn signing_keys(&self, environment_id: &str) -> Result<Vec<SigningKeyRow>, StoreError> {
        Ok(with_pool!(self, |pool| sqlx::query_as(
            "SELECT slot, kid, secret_key, created_at FROM signing_keys WHERE environment_id = $1 \
             ORDER BY created_at DESC, kid DESC",
        )
        .bind(environment_id)
        .fetch_all(pool)
        .await?))
    }

    /// Stores a key in `slot` unless the slot holds one (replicas racing on first start keep the first).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn insert_signing_key_if_none(
        &self,
        environment_id: &str,
        slot: &str,
        kid: &str,
        sealed_secret: &str,
        created_at: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO signing_keys (environment_id, slot, kid, secret_key, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (environment_id, slot) DO NOTHING",
            )
            .bind(environment_id)
            .bind(slot)
            .bind(kid)
            .bind(sealed_secret)
            .bind(created_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Replaces a key stored in clear with its sealed form (only if it is still the clear value).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn reseal_signing_key(
        &self,
        environment_id: &str,
        slot: &str,
        clear: &str,
        sealed: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE signing_keys SET secret_key = $4 WHERE environment_id = $1 AND slot = $2 AND secret_key = $3",
            )
            .bind(environment_id)
            .bind(slot)
            .bind(clear)
            .bind(sealed)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Deletes a retired key.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn delete_signing_key(&self, environment_id: &str, slot: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM signing_keys WHERE environment_id = $1 AND slot = $2")
                .bind(environment_id)
                .bind(slot)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The server secret `name`, inserting `candidate` if there is none yet.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn server_secret(&self, name: &str, candidate: &str) -> Result<String, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(candidate)
            .execute(pool)
            .await?;
        });
        Ok(with_pool!(self, |pool| sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(pool)
            .await?))
    }

    /// Replaces a server secret stored in clear with its sealed form (only if it is still the clear value).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn reseal_server_secret(
        &self,
        name: &str,
        clear: &str,
        sealed: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE server_secrets SET value = $3 WHERE name = $1 AND value = $2")
                .bind(name)
                .bind(clear)
                .bind(sealed)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// TOTP devices whose secret is stored in clear (written before encryption at rest): `(id, secret)`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn clear_totp_secrets(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(with_pool!(self, |pool| sqlx::query_as(
            "SELECT id, secret FROM mfa_devices WHERE kind = 'totp' AND secret NOT LIKE 'kek1:%'",
        )
        .fetch_all(pool)
        .await?))
    }

    /// Replaces a TOTP secret stored in clear with its sealed form (only if it is still the clear value).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn reseal_totp_secret(&self, id: &str, clear: &str, sealed: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE mfa_devices SET secret = $3 WHERE id = $1 AND secret = $2")
                .bind(id)
                .bind(clear)
                .bind(sealed)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
