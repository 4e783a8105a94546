//! The hottest SQLite statements run on the calling thread (`store/calling_thread_sqlite.rs`, issue 18): when
//! another connection holds the write lock they wait for it the async way, on sqlx, never by blocking the thread
//! that called them, and a write that met the lock is made once; reads never wait; the write-ahead log stays bounded.

use std::time::Duration;

use stepup_server::store::{CallingThreadSqlite, MfaReservation, Store, TotpAttempt, TotpAttemptRequest};

/// A store on a fresh SQLite file (the calling-thread path serves files only).
async fn file_store(tag: &str) -> (Store, std::path::PathBuf) {
    let random = stepup_server::random::hex(&stepup_server::random::bytes::<8>().unwrap());
    let dir = std::env::temp_dir().join(format!("stepup-calling-thread-{tag}-{random}"));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.join("stepup.db").display())).await.unwrap();
    assert!(
        store.calling_thread_sqlite().is_some(),
        "a SQLite file runs the hottest statements on the caller"
    );
    (store, dir)
}

/// On a runtime of one thread: if the reservation waited for the lock by blocking that thread, the transaction
/// holding the lock could never commit (its future needs the same thread), and the reservation would fail with
/// "database is locked" after SQLite's busy timeout. It waits on sqlx instead, and counts once.
#[tokio::test(flavor = "current_thread")]
async fn a_write_that_meets_another_connections_lock_waits_for_it_without_blocking_the_thread() {
    let (store, dir) = file_store("lock").await;
    let holder = hold_the_write_lock(&store).await;

    let reserving = tokio::spawn({
        let store = store.clone();
        async move { store.mfa_reserve("user-1", 100).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!reserving.is_finished(), "the reservation waits while the lock is held");
    holder.commit().await.unwrap();

    let reservation =
        tokio::time::timeout(Duration::from_secs(10), reserving).await.unwrap().unwrap().unwrap();
    assert_eq!(reservation, MfaReservation::Counted(1), "counted once, though it met the lock first");
    assert_eq!(calling_thread(&store).busy_calls(), 1, "it met the lock and went the async way");
    // And the next one, on the calling thread again, counts on from there.
    assert_eq!(store.mfa_reserve("user-1", 100).await.unwrap(), MfaReservation::Counted(2));
    assert_eq!(calling_thread(&store).busy_calls(), 1);
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A TOTP attempt settled while another connection holds the write lock: the async way, once — counted, the
/// step spent, the run ended.
#[tokio::test(flavor = "current_thread")]
async fn a_totp_attempt_that_meets_another_connections_lock_is_settled_once() {
    let (store, dir) = file_store("settle").await;
    store.insert_totp_device("device-1", "user-1", "sealed", "", 100).await.unwrap();
    let holder = hold_the_write_lock(&store).await;

    let settling = tokio::spawn({
        let store = store.clone();
        async move {
            let attempt = TotpAttemptRequest {
                user_id: "user-1",
                device_id: "device-1",
                step: Some(7),
                now: 100,
                max_failures: 5,
            };
            store.settle_totp_attempt(&attempt).await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!settling.is_finished(), "the attempt waits while the lock is held");
    holder.commit().await.unwrap();

    let settled = tokio::time::timeout(Duration::from_secs(10), settling).await.unwrap().unwrap().unwrap();
    assert_eq!(settled, TotpAttempt::Accepted);
    // The attempt met the lock, then its reservation on the way: the async way, both.
    assert_eq!(calling_thread(&store).busy_calls(), 2, "it met the lock and went the async way");
    let device = store.totp_devices("user-1").await.unwrap().remove(0);
    assert_eq!(
        (device.last_step, device.verified),
        (Some(7), true),
        "the step spent, the enrolment complete"
    );
    assert_eq!(store.mfa_reserve("user-1", 100).await.unwrap(), MfaReservation::Counted(1), "the run ended");
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The write-ahead log stays bounded under writes on the calling thread (SQLite's own checkpoints, on the
/// connection that writes; checkpoints started elsewhere, racing those writes, let it grow without end). 8,192
/// writes without a checkpoint would leave about 34 MB of log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_ahead_log_stays_bounded() {
    let (store, dir) = file_store("checkpoint").await;
    for call in 0..8 * 1024 {
        store.mfa_reserve(&format!("user-{}", call % 64), 100).await.unwrap();
    }
    let log = std::fs::metadata(dir.join("stepup.db-wal")).unwrap().len();
    assert!(log < 12_000_000, "the write-ahead log stayed bounded: {log} bytes");
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A transaction on sqlx's pool that has written, so it holds the file's write lock until it commits.
async fn hold_the_write_lock(store: &Store) -> sqlx::Transaction<'static, sqlx::Sqlite> {
    let mut holder = store.sqlite_pool().unwrap().begin().await.unwrap();
    sqlx::query("INSERT INTO health_checks (id, checked_at) VALUES ('lock-holder', 0)")
        .execute(&mut *holder)
        .await
        .unwrap();
    holder
}

fn calling_thread(store: &Store) -> &CallingThreadSqlite {
    store.calling_thread_sqlite().unwrap()
}

/// A read does not wait for a writer at all (WAL): the session row is read on the calling thread while another
/// connection holds the write lock.
#[tokio::test(flavor = "current_thread")]
async fn a_read_does_not_wait_for_another_connections_write() {
    let (store, dir) = file_store("read").await;
    store.insert_session("session-1", "user-1", "environment-1", 1_000).await.unwrap();
    let pool = store.sqlite_pool().unwrap().clone();
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("UPDATE sessions SET revoked = 1 WHERE id = 'session-1'")
        .execute(&mut *holder)
        .await
        .unwrap();

    let session = store.session("session-1").await.unwrap().unwrap();
    assert!(!session.revoked, "the uncommitted revocation is not seen");
    assert_eq!(calling_thread(&store).busy_calls(), 0, "read on the calling thread, not sent the async way");
    holder.commit().await.unwrap();
    assert!(store.session("session-1").await.unwrap().unwrap().revoked, "the committed one is");
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}
