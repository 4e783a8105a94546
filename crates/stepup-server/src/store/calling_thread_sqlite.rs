//! `CallingThreadSqlite`: a SQLite connection whose statements run on the thread that asks, with no hand-off.
//!
//! Why: sqlx-sqlite runs every connection on a worker thread of its own, so each statement is a hand-off to that
//! thread and back — two thread wake-ups. A TOTP step-up made five round trips to the database, and on two cores
//! those wake-ups, not SQL, were most of the server's CPU (docs/benchmarks.md, TOTP step-ups under load). The
//! statements of the hottest path (the session row, the lockout reservation, the devices, the accepted step, the
//! user with credentials) therefore run here, on the tokio worker that serves the request, through rusqlite (the
//! same `libsqlite3-sys` sqlx links: one SQLite in the binary). Everything else stays on sqlx.
//!
//! Blocking a tokio worker is safe here because nothing here waits for anything that needs a tokio worker:
//! each call is a few statements on an indexed row or two (microseconds), a transaction begins and ends inside
//! one call (never held across an `.await`, so never left open by a dropped future), and SQLite's busy handler is
//! off. One connection serves every caller, behind a mutex: calls never contend with each other inside SQLite,
//! and its page cache is emptied only by the rare writes of sqlx's connections. When another connection (sqlx's,
//! for a transaction or a statement off this path) holds the write lock, SQLite answers "busy" at once and the
//! call says so; the store then runs the same statements the async way, on sqlx, whose busy wait happens on
//! sqlx's thread. A busy call changed nothing: a statement refused for a lock had no effect, and a transaction
//! that did not commit is rolled back when it drops (and a connection ever left inside one is rolled back
//! before the mutex lets it go).
//!
//! Checkpoints stay SQLite's own: the connection whose commit takes the write-ahead log past 1,000 pages copies
//! it into the database, fsyncs included, inside that call — here while holding the mutex, so every few hundred
//! step-ups one call takes milliseconds and a worker that wants the connection meanwhile waits. Checkpoints
//! started elsewhere were tried and dropped (docs/benchmarks.md): racing the writes here, they never find the
//! log wholly copied at the start of a write, which is when SQLite starts the log over, and the log grows
//! without end.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

use super::StoreError;

/// A connection to a SQLite file whose statements run on the calling thread. See the module docs.
#[derive(Debug)]
pub struct CallingThreadSqlite {
    connection: Mutex<Connection>,
    busy: AtomicU64,
}

impl CallingThreadSqlite {
    /// Opens a connection to the SQLite file at `path`, which sqlx has created and migrated. It runs as sqlx's
    /// connections do (WAL, the file's mode; `synchronous = NORMAL`; foreign keys on), except that a lock held by
    /// another connection is answered at once (no busy wait).
    ///
    /// # Errors
    /// [`StoreError`] when the connection cannot be opened or set up.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // No SQLite-level mutex: the connection is used by one thread at a time, behind ours.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags)?;
        connection.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
        connection.busy_timeout(Duration::ZERO)?;
        Ok(Self { connection: Mutex::new(connection), busy: AtomicU64::new(0) })
    }

    /// Runs `work` on this thread. `None` when another connection held a lock `work` needed: nothing was changed,
    /// and the caller runs the same statements the async way.
    pub fn try_run<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error>,
    ) -> Option<Result<T, StoreError>> {
        // A panic while the connection was held (none is expected: rusqlite answers errors) leaves it usable: an
        // open transaction was rolled back when its guard dropped during the unwind.
        let answer = {
            let mut connection = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
            let answer = work(&mut connection);
            // A transaction whose rollback failed as it dropped (rusqlite drops that error) would hold the write
            // lock for good: end it here, whatever `work` did.
            if !connection.is_autocommit() {
                tracing::warn!("a calling-thread SQLite call left a transaction open; rolling it back");
                if let Err(error) = connection.execute_batch("ROLLBACK") {
                    tracing::error!(%error, "rolling back a transaction left open failed");
                }
            }
            answer
        };
        match answer {
            Err(rusqlite::Error::SqliteFailure(failure, _))
                if matches!(failure.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
            {
                self.busy.fetch_add(1, Ordering::Relaxed);
                None
            }
            answer => Some(answer.map_err(StoreError::from)),
        }
    }

    /// How many calls met a lock of another connection and were sent the async way, since the store opened.
    #[must_use]
    pub fn busy_calls(&self) -> u64 {
        self.busy.load(Ordering::Relaxed)
    }
}

/// Runs `work` in a write transaction (taking the write lock at `BEGIN`, so it never has to upgrade a read lock,
/// which SQLite refuses at once when another connection wrote meanwhile) and commits it, checking the commit.
///
/// # Errors
/// What SQLite answered; the transaction is then rolled back.
pub(super) fn in_write_transaction<T>(
    connection: &mut Connection,
    work: impl FnOnce(&Transaction<'_>) -> Result<T, rusqlite::Error>,
) -> Result<T, rusqlite::Error> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let done = work(&transaction)?;
    transaction.commit()?;
    Ok(done)
}
