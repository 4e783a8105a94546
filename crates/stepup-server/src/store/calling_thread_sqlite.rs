//! `CallingThreadSqlite`: SQLite connections whose statements run on the thread that asks, with no hand-off.
//!
//! Why: sqlx-sqlite runs every connection on a worker thread of its own, so each statement is a hand-off to that
//! thread and back — two thread wake-ups. A TOTP step-up makes five round trips to the database, and on two cores
//! those wake-ups, not SQL, were most of the server's CPU (docs/benchmarks.md, TOTP step-ups under load). The
//! statements of the hottest path (the session row, the lockout reservation, the devices, the accepted step, the
//! user with credentials) therefore run here, on the tokio worker that serves the request, through rusqlite (the
//! same `libsqlite3-sys` sqlx links: one SQLite in the binary). Everything else stays on sqlx.
//!
//! Blocking a tokio worker is safe here because nothing here waits for anything that needs a tokio worker:
//! each call is a few statements on an indexed row or two (microseconds), a transaction begins and ends inside
//! one call (never held across an `.await`, so never left open by a dropped future), and SQLite's busy handler is
//! off. One connection serves every caller, behind a mutex: calls never contend with each other inside SQLite,
//! and its page cache is never emptied by a write of another connection of ours. When another connection (sqlx's,
//! for a transaction or a statement off this path) holds the write lock, SQLite answers "busy" at once and the
//! call says so; the store then runs the same statements the async way, on sqlx, whose busy wait happens on
//! sqlx's thread. A busy call changed nothing: a statement refused for a lock had no effect, and a transaction
//! that did not commit is rolled back when it drops.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::StoreError;

/// A connection to a SQLite file whose statements run on the calling thread. See the module docs.
#[derive(Debug)]
pub struct CallingThreadSqlite {
    connection: Mutex<Connection>,
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
        Ok(Self { connection: Mutex::new(connection) })
    }

    /// Runs `work` on this thread. `None` when another connection held a lock `work` needed: nothing was changed,
    /// and the caller runs the same statements the async way.
    pub fn try_run<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error>,
    ) -> Option<Result<T, StoreError>> {
        // A panic while the connection was held (none is expected: rusqlite answers errors) leaves it usable: an
        // open transaction was rolled back when its guard dropped during the unwind.
        let mut connection = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
        match work(&mut connection) {
            Err(rusqlite::Error::SqliteFailure(failure, _))
                if matches!(failure.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
            {
                None
            }
            answer => Some(answer.map_err(StoreError::from)),
        }
    }
}
