//! `SqliteConnections`: SQLite connections of the store's own, used outside sqlx's pool.
//!
//! Why: sqlx-sqlite runs each connection on a worker thread of its own, so a statement is a hand-off to that
//! thread and back; and sqlx's pool pings every connection it takes back (hard-coded in `return_to_pool`), one
//! more hand-off per statement, plus a task spawned to return it. Under load that was half the commands the
//! worker threads ran, and the worker threads most of the server's CPU (docs/benchmarks.md, TOTP step-ups under
//! load). Here a statement takes a free connection (a `tokio` mutex each), runs, and lets it go: one hand-off.
//!
//! Cancellation: a statement whose future is dropped (a client that hung up) leaves its command queued on the
//! connection's worker, which runs it and discards the answer; the next statement on that connection is queued
//! after it, so it never sees a half-read answer. Nothing here opens a transaction: [`SqliteConnections::begin`]
//! takes one from the pool, whose release ping then rolls back what a dropped transaction left open.

use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, StreamExt as _};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteQueryResult, SqliteRow};
use sqlx::{ConnectOptions as _, Either, Execute, Executor, Sqlite, SqlitePool, Transaction};
use tokio::sync::{Mutex, MutexGuard};

/// The store's own SQLite connections, and the pool for transactions. See the module docs.
#[derive(Debug)]
pub struct SqliteConnections {
    connections: Vec<Mutex<SqliteConnection>>,
    next: AtomicUsize,
    pool: SqlitePool,
}

impl SqliteConnections {
    /// Opens `count` connections with `options` (the pool's), beside `pool`.
    ///
    /// # Errors
    /// [`sqlx::Error`] when a connection cannot be opened.
    pub async fn open(
        options: &SqliteConnectOptions,
        count: usize,
        pool: SqlitePool,
    ) -> Result<Self, sqlx::Error> {
        let mut connections = Vec::with_capacity(count);
        for _ in 0..count.max(1) {
            connections.push(Mutex::new(options.connect().await?));
        }
        Ok(Self { connections, next: AtomicUsize::new(0), pool })
    }

    /// A free connection, or the next one's turn when all are busy (round robin, so waiters spread out).
    async fn acquire(&self) -> MutexGuard<'_, SqliteConnection> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.connections.len();
        for offset in 0..count {
            if let Ok(connection) = self.connections[(start + offset) % count].try_lock() {
                return connection;
            }
        }
        self.connections[start % count].lock().await
    }

    /// A transaction, on a connection of the pool (as `SqlitePool::begin`).
    ///
    /// # Errors
    /// [`sqlx::Error`].
    pub async fn begin(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.pool.begin().await
    }
}

impl<'c> Executor<'c> for &'c SqliteConnections {
    type Database = Sqlite;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<SqliteQueryResult, SqliteRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        // Read whole while the connection is held (the answers here are a few rows), then handed out.
        let answers = async move {
            let mut connection = self.acquire().await;
            connection.fetch_many(query).collect::<Vec<_>>().await
        };
        futures_util::stream::once(answers).flat_map(futures_util::stream::iter).boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<SqliteRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        Box::pin(async move { self.acquire().await.fetch_optional(query).await })
    }

    fn execute<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<SqliteQueryResult, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        Box::pin(async move { self.acquire().await.execute(query).await })
    }

    fn fetch_all<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Vec<SqliteRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        Box::pin(async move { self.acquire().await.fetch_all(query).await })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [sqlx::sqlite::SqliteTypeInfo],
    ) -> BoxFuture<'e, Result<sqlx::sqlite::SqliteStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        Box::pin(async move { self.acquire().await.prepare_with(sql, parameters).await })
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<sqlx::Describe<Sqlite>, sqlx::Error>>
    where
        'c: 'e,
    {
        Box::pin(async move { self.acquire().await.describe(sql).await })
    }
}
