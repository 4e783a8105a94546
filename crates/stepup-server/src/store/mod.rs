//! Storage: SQL only, one code base for SQLite and PostgreSQL on sqlx's native pools.
//!
//! Every counter, nonce, challenge, code, last-used TOTP step, lockout and spent token lives here, so replicas
//! sharing one PostgreSQL agree on all of them. Single-use and counting rules are enforced by conditional
//! `UPDATE`/`INSERT ... ON CONFLICT DO NOTHING` statements whose affected-row count says who won, which is atomic
//! on both databases without explicit locks.
//!
//! Rows come back typed (`sqlx::FromRow`): enums for the code channel, the credential format and the ceremony
//! kind, `bool` for flags. Answers that are more than yes or no are enums of their own ([`MfaReservation`],
//! [`SlotClaim`], [`CountClaim`]), never a `Result` inside the storage `Result`.
//!
//! Why native pools: sqlx's `Any` driver dispatches every call dynamically and converts every argument and
//! value on its way through; a statement here runs on [`SqlitePool`] or [`PgPool`] directly ([`with_pool!`]
//! writes it once, and the compiler makes one copy per database). On a SQLite file it runs on the store's own
//! connections instead ([`SqliteConnections`]: sqlx's pool pings each connection it takes back, a thread
//! hand-off per statement). And the statements of the hottest path (a TOTP step-up's session row, lockout
//! reservation, devices, accepted step, user with credentials) run on the calling thread on a SQLite file,
//! through rusqlite ([`CallingThreadSqlite`]: no hand-off at all), falling back to sqlx when another connection
//! holds the lock they need.
//!
//! Portability rules: `$1`-style placeholders (SQLite binds them by number too), columns of TEXT and BIGINT only
//! (flags stored as 0/1 and read back with `<> 0`, which both databases answer with a boolean; times in Unix
//! seconds), `ON CONFLICT ... DO NOTHING/UPDATE` and `RETURNING`, which both databases speak. One migration
//! directory serves both.

mod calling_thread_sqlite;
mod housekeeping;
mod keys;
mod mfa;
mod operator;
mod otp;
mod passkeys;
mod rate;
mod sessions;
mod single_use;
mod sqlite_connections;
mod tokens;
mod users;

pub use calling_thread_sqlite::CallingThreadSqlite;
pub use housekeeping::{COUNTED_TABLES, PENDING_ENROLMENT_TTL_SECS};
pub use keys::SigningKeyRow;
pub use mfa::{
    ABANDONED_FIRST_READ_SECS, MfaDeviceRow, MfaReservation, RecoveryCodeRow, TotpAttempt,
    TotpAttemptRequest, TotpStep,
};
pub use operator::MfaReset;
pub use otp::{OtpRow, OutboxRow};
pub use passkeys::{CeremonyKind, MAX_OPEN_CEREMONIES, PasskeyRow};
pub use rate::{CountClaim, SlotClaim};
pub use sessions::SessionRow;
pub use single_use::DatabaseSingleUse;
pub use sqlite_connections::SqliteConnections;
pub use users::{CredentialRow, NewCredential, UserRow};

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

/// A storage failure (the database is down, a query failed). Never caused by client input.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// What sqlx answered (PostgreSQL, and SQLite outside the hottest path).
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// What SQLite answered on the calling thread ([`CallingThreadSqlite`]).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl StoreError {
    /// Whether the database refused a write for a unique index (or primary key).
    #[must_use]
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Sqlx(sqlx::Error::Database(error)) => error.is_unique_violation(),
            StoreError::Sqlite(error) => is_sqlite_unique_violation(error),
            StoreError::Sqlx(_) => false,
        }
    }
}

/// [`StoreError::is_unique_violation`] for what SQLite answered on the calling thread.
fn is_sqlite_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(
                failure.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            )
    )
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Sqlx(sqlx::Error::Migrate(Box::new(error)))
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

/// The connection pool, native to its database.
#[derive(Debug, Clone)]
pub enum Pool {
    /// SQLite (file or memory).
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the store's native pool: the statement is written once and compiled once
/// per database (the SQL both speak: see the module docs). `$body` may use `?` and `.await`.
///
/// On a SQLite file, `$pool` is the store's own connections ([`SqliteConnections`]: one thread hand-off per
/// statement, not sqlx's pool with its pings); on SQLite in memory, the pool (its one connection is the database).
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match ($store.pool(), $store.sqlite_connections()) {
            (_, Some($pool)) => $body,
            ($crate::store::Pool::Sqlite($pool), None) => $body,
            ($crate::store::Pool::Postgres($pool), None) => $body,
        }
    };
}
pub(crate) use with_pool;

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    /// On a SQLite file: the connections statements run on (the pool keeps migrations and transactions).
    sqlite: Option<std::sync::Arc<SqliteConnections>>,
    /// On a SQLite file: the connection the hottest statements run on, on the calling thread.
    calling_thread: Option<std::sync::Arc<CallingThreadSqlite>>,
}

impl Store {
    /// Connects and runs the migrations. `sqlite::memory:` (or `memory`) is a private in-memory database;
    /// `sqlite://path` a file (created if missing, in WAL mode); `postgres://...` PostgreSQL.
    ///
    /// # Errors
    /// [`StoreError`] if the database cannot be reached or migrated.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut sqlite = None;
        let mut sqlite_file = None;
        let pool = if url == "memory" || url == "sqlite::memory:" || url == "sqlite://:memory:" {
            // An in-memory database lives as long as its one connection: the pool keeps exactly one, forever.
            let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .test_before_acquire(false)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await?;
            Pool::Sqlite(pool)
        } else if url.starts_with("sqlite:") {
            let mut options = SqliteConnectOptions::from_str(url)?
                .journal_mode(SqliteJournalMode::Wal)
                // In WAL mode NORMAL is corruption-safe; a power cut may lose the last commits, not the file.
                .synchronous(SqliteSynchronous::Normal);
            // A URL with options of its own (`?mode=ro`) says how to open; a bare path is created if missing.
            if !url.contains('?') {
                options = options.create_if_missing(true);
            }
            // No ping before each acquire (sqlx's default): a SQLite connection is a file handle, it cannot go stale
            // like a socket, and with sqlx-sqlite the ping is a round trip to the connection's worker thread —
            // one more thread hand-off for every statement (docs/benchmarks.md, TOTP step-ups under load).
            let pool = SqlitePoolOptions::new().max_connections(2).test_before_acquire(false);
            let pool = pool.connect_with(options.clone()).await?;
            sqlite = Some(std::sync::Arc::new(SqliteConnections::open(&options, 8, pool.clone()).await?));
            // The calling-thread connection opens the file read-write, as a bare path asks; a URL with options of
            // its own keeps every statement on sqlx, which reads them.
            if !url.contains('?') {
                sqlite_file = Some(options.get_filename().to_path_buf());
            }
            Pool::Sqlite(pool)
        } else {
            // No ping before each acquire either: it is a network round trip per statement. A connection that
            // died (a restart, a failover) fails the one statement that meets it, and the pool drops it.
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Pool::Postgres(pool)
        };
        // One set of migrations serves both databases: they use only the types and statements the two share.
        let migrator = sqlx::migrate!("./migrations");
        match &pool {
            Pool::Sqlite(pool) => migrator.run(pool).await?,
            Pool::Postgres(pool) => migrator.run(pool).await?,
        }
        // Opened after the migrations: sqlx created the file and its tables.
        let calling_thread = match sqlite_file {
            Some(path) => Some(std::sync::Arc::new(CallingThreadSqlite::open(&path)?)),
            None => None,
        };
        Ok(Self { pool, sqlite, calling_thread })
    }

    /// Runs `work` on the calling thread ([`CallingThreadSqlite::try_run`]): `None` when the store has no such
    /// connection or another connection held a lock, and the caller goes the async way.
    fn on_calling_thread<T>(
        &self,
        work: impl FnOnce(&mut rusqlite::Connection) -> Result<T, rusqlite::Error>,
    ) -> Option<Result<T, StoreError>> {
        self.calling_thread_sqlite()?.try_run(work)
    }

    /// The connection the hottest statements run on, on a SQLite file opened by a bare path
    /// ([`CallingThreadSqlite`]).
    #[must_use]
    pub fn calling_thread_sqlite(&self) -> Option<&CallingThreadSqlite> {
        self.calling_thread.as_deref()
    }

    /// The store's own SQLite connections, on a SQLite file (see [`with_pool!`]).
    #[must_use]
    pub fn sqlite_connections(&self) -> Option<&SqliteConnections> {
        self.sqlite.as_deref()
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The SQLite pool, when the database is SQLite (tests read the file directly).
    #[must_use]
    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match &self.pool {
            Pool::Sqlite(pool) => Some(pool),
            Pool::Postgres(_) => None,
        }
    }

    /// The dialect.
    #[must_use]
    pub fn dialect(&self) -> Dialect {
        match self.pool {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Whether the database answers.
    ///
    /// # Errors
    /// [`StoreError`] if it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Whether the database takes a write: one upsert of the health row (every replica writes the same one).
    ///
    /// # Errors
    /// [`StoreError`] when the write fails (a read-only or full database, a lost connection).
    pub async fn check_writable(&self, now: i64) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO health_checks (id, checked_at) VALUES ('health', $1) \
             ON CONFLICT (id) DO UPDATE SET checked_at = $1",
            )
            .bind(now)
            .execute(pool)
            .await?;
        });
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
