//! Sessions (so a revoked session JWT is refused) and spent single-use tokens.

use sqlx::Row as _;

use super::{Store, StoreError};

/// A session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Id (the session JWT's `jti`).
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// Whether `/revoke` ended it.
    pub revoked: bool,
}

impl Store {
    /// Records a new session.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn insert_session(
        &self,
        id: &str,
        user_id: &str,
        environment_id: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO sessions (id, user_id, environment_id, expires_at, revoked) VALUES ($1, $2, $3, $4, 0)")
            .bind(id)
            .bind(user_id)
            .bind(environment_id)
            .bind(expires_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A session by id.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query("SELECT id, user_id, expires_at, revoked FROM sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(row) => Some(SessionRow {
                id: row.try_get("id")?,
                user_id: row.try_get("user_id")?,
                expires_at: row.try_get("expires_at")?,
                revoked: row.try_get::<i64, _>("revoked")? != 0,
            }),
            None => None,
        })
    }

    /// Ends a session.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn revoke_session(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET revoked = 1 WHERE id = $1").bind(id).execute(self.pool()).await?;
        Ok(())
    }
}
