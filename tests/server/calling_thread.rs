//! The hottest SQLite statements run on the calling thread (`store/calling_thread_sqlite.rs`, issue 18): when
//! another connection holds the write lock they wait for it the async way, on sqlx, never by blocking the thread
//! that called them, and a write that met the lock is made once.

use std::time::Duration;

use stepup_server::store::{MfaReservation, Store};

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
    let pool = store.sqlite_pool().unwrap().clone();
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO health_checks (id, checked_at) VALUES ('lock-holder', 0)")
        .execute(&mut *holder)
        .await
        .unwrap();

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
    // And the next one, on the calling thread again, counts on from there.
    assert_eq!(store.mfa_reserve("user-1", 100).await.unwrap(), MfaReservation::Counted(2));
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
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
    holder.commit().await.unwrap();
    assert!(store.session("session-1").await.unwrap().unwrap().revoked, "the committed one is");
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}
