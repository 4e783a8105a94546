//! PostgreSQL: `INSERT ... ON CONFLICT DO NOTHING` on the token's key. The primary key makes exactly one of any
//! number of racing inserts, on any number of replicas, take the row; expired rows are purged now and then.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use sqlx::PgPool;

use super::{SingleUseStore, SpentToken};
use crate::error::StoreError;

/// The table the records live in.
const TABLE: &str = "stepup_guard_spent_tokens";
/// The least time between two purges of expired rows, seconds.
const PURGE_EVERY_SECS: u64 = 60;

/// Spent tokens in a PostgreSQL table (`stepup_guard_spent_tokens`), shared by every replica on the database.
#[derive(Debug)]
pub struct PostgresStore {
    pool: PgPool,
    /// When expired rows were last purged (Unix seconds; 0: never).
    purged_at: AtomicU64,
}

impl PostgresStore {
    /// A store on `pool`; creates its table if it is not there yet.
    ///
    /// # Errors
    /// [`StoreError`] if the table cannot be created.
    pub async fn new(pool: PgPool) -> Result<Self, StoreError> {
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (issuer TEXT NOT NULL, token_id TEXT NOT NULL, \
             keep_until BIGINT NOT NULL, PRIMARY KEY (issuer, token_id))"
        );
        // The purge finds expired rows by an index, not a scan.
        let index = format!("CREATE INDEX IF NOT EXISTS {TABLE}_keep_until ON {TABLE} (keep_until)");
        for statement in [create, index] {
            match sqlx::query(&statement).execute(&pool).await {
                Ok(_) => {}
                // Two replicas creating it at once: the loser's unique violation on the catalogue (or "already
                // exists") means it is there.
                Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("23505" | "42P07")) => {}
                Err(e) => return Err(StoreError::new("postgres", e)),
            }
        }
        Ok(Self { pool, purged_at: AtomicU64::new(0) })
    }

    /// Deletes the records of tokens that can no longer pass; returns how many went.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn purge(&self, now: u64) -> Result<u64, StoreError> {
        let delete = format!("DELETE FROM {TABLE} WHERE keep_until <= $1");
        let done = sqlx::query(&delete)
            .bind(i64::try_from(now).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::new("postgres", e))?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl SingleUseStore for PostgresStore {
    async fn spend(&self, token: SpentToken<'_>) -> Result<bool, StoreError> {
        let last = self.purged_at.load(Ordering::Relaxed);
        if token.now >= last.saturating_add(PURGE_EVERY_SECS)
            && self.purged_at.compare_exchange(last, token.now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
            && let Err(error) = self.purge(token.now).await
        {
            // A failed purge leaves rows for the next one; the spend below decides the request.
            tracing::warn!(%error, "purging spent tokens failed");
        }
        // A record outlives its token (`keep_until` is the expiry plus the leeway), so a row that is there means
        // spent, even when the purge has not come round to it.
        let insert = format!(
            "INSERT INTO {TABLE} (issuer, token_id, keep_until) VALUES ($1, $2, $3) \
             ON CONFLICT (issuer, token_id) DO NOTHING"
        );
        let done = sqlx::query(&insert)
            .bind(token.issuer)
            .bind(token.token_id)
            .bind(i64::try_from(token.keep_until).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::new("postgres", e))?;
        Ok(done.rows_affected() == 1)
    }
}
