//! Storage: one SQL code base for SQLite and PostgreSQL through sqlx's `Any` driver.
//!
//! Every counter, nonce, challenge, code, last-used TOTP step, lockout and spent token lives here, so replicas
//! sharing one PostgreSQL agree on all of them. Single-use and counting rules are enforced by conditional
//! `UPDATE`/`INSERT ... ON CONFLICT DO NOTHING` statements whose affected-row count says who won, which is atomic
//! on both databases without explicit locks.
//!
//! Portability rules (sqlx `Any`): `$1`-style placeholders (SQLite binds them by number too), columns of TEXT
//! and BIGINT only (flags 0/1, times in Unix seconds), `ON CONFLICT ... DO NOTHING/UPDATE` and `RETURNING`, which
//! both databases speak. One migration directory serves both.

mod housekeeping;
mod keys;
mod mfa;
mod operator;
mod otp;
mod passkeys;
mod rate;
mod sessions;
mod tokens;
mod users;

pub use housekeeping::{COUNTED_TABLES, PENDING_ENROLMENT_TTL_SECS};
pub use keys::SigningKeyRow;
pub use mfa::{ABANDONED_FIRST_READ_SECS, MfaDeviceRow, RecoveryCodeRow, TotpStep};
pub use operator::MfaReset;
pub use otp::{OtpRow, OutboxRow};
pub use passkeys::{MAX_OPEN_CEREMONIES, PasskeyRow};
pub use sessions::SessionRow;
pub use users::{CredentialRow, NewCredential, UserRow};

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor as _};

/// A storage failure (the database is down, a query failed). Never caused by client input.
#[derive(Debug, thiserror::Error)]
#[error("database error: {0}")]
pub struct StoreError(#[from] sqlx::Error);

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError(sqlx::Error::Migrate(Box::new(error)))
    }
}

/// Which SQL dialect the pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (file or memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
}

impl Store {
    /// Connects and runs the migrations of the URL's dialect. `sqlite::memory:` (or `memory`) is a private
    /// in-memory database; `sqlite://path` a file (created if missing, in WAL mode); `postgres://...` PostgreSQL.
    ///
    /// # Errors
    /// [`StoreError`] if the database cannot be reached or migrated.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let (pool, dialect) = if url == "memory" || url == "sqlite::memory:" || url == "sqlite://:memory:" {
            // Any opens each pooled connection from the URL again, and an anonymous in-memory database is private
            // to its connection: use one named database on one connection that is never closed.
            let name = format!(
                "sqlite://stepup-{}?mode=memory&cache=shared",
                crate::random::uuid().map_err(|e| { StoreError(sqlx::Error::Configuration(e.into())) })?
            );
            let pool = AnyPoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect(&name)
                .await?;
            (pool, Dialect::Sqlite)
        } else if url.starts_with("sqlite:") {
            let url = if url.contains('?') { url.to_owned() } else { format!("{url}?mode=rwc") };
            let pool = AnyPoolOptions::new()
                .max_connections(8)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // In WAL mode NORMAL is corruption-safe; a power cut may lose the last commits, not the file.
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        Ok(())
                    })
                })
                .connect(&url)
                .await?;
            pool.execute("PRAGMA journal_mode = WAL").await?;
            (pool, Dialect::Sqlite)
        } else {
            let pool = AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            (pool, Dialect::Postgres)
        };
        // One set of migrations serves both databases: they use only the types and statements the two share
        // (see the module docs), which is also what the `Any` driver needs.
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool, dialect })
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The dialect.
    #[must_use]
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Whether the database answers.
    ///
    /// # Errors
    /// [`StoreError`] if it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Whether the database takes a write: one upsert of the health row (every replica writes the same one).
    ///
    /// # Errors
    /// [`StoreError`] when the write fails (a read-only or full database, a lost connection).
    pub async fn check_writable(&self, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO health_checks (id, checked_at) VALUES ('health', $1) \
             ON CONFLICT (id) DO UPDATE SET checked_at = $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Unix seconds as the database stores them.
pub fn secs(time: stepup_core::UnixTime) -> i64 {
    i64::try_from(time.as_secs()).unwrap_or(i64::MAX)
}

/// A stored time back to `UnixTime` (negative values, which the server never writes, read as the epoch).
pub fn time(secs: i64) -> stepup_core::UnixTime {
    stepup_core::UnixTime(u64::try_from(secs).unwrap_or(0))
}
