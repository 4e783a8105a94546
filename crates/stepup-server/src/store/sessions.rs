//! Sessions (so a revoked session JWT is refused) and spent single-use tokens.

use rusqlite::{OptionalExtension as _, named_params};

use super::{Store, StoreError, with_pool};

/// A session.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
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

impl SessionRow {
    /// The row as rusqlite reads it (the columns `FromRow` reads).
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get("id")?,
            user_id: row.get("user_id")?,
            expires_at: row.get("expires_at")?,
            revoked: row.get("revoked")?,
        })
    }
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
        with_pool!(self, |pool| {
            sqlx::query("INSERT INTO sessions (id, user_id, environment_id, expires_at, revoked) VALUES ($1, $2, $3, $4, 0)")
                .bind(id)
                .bind(user_id)
                .bind(environment_id)
                .bind(expires_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// A session by id.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        const SESSION: &str =
            "SELECT id, user_id, expires_at, revoked <> 0 AS revoked FROM sessions WHERE id = $1";
        // Read on every authenticated request: on the calling thread where it can be (CallingThreadSqlite).
        if let Some(answer) = self.on_calling_thread(|connection| {
            connection
                .prepare_cached(SESSION)?
                .query_row(named_params! {"$1": id}, SessionRow::read)
                .optional()
        }) {
            return answer;
        }
        Ok(with_pool!(self, |pool| sqlx::query_as(SESSION).bind(id).fetch_optional(pool).await?))
    }

    /// Ends a session.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn revoke_session(&self, id: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE sessions SET revoked = 1 WHERE id = $1").bind(id).execute(pool).await?;
        });
        Ok(())
    }
}
