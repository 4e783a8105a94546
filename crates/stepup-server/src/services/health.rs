//! Readiness: whether this replica's database takes writes.

use crate::state::AppState;

/// How long `/health` waits for its write: a database that hangs is as unhealthy as one that refuses.
const HEALTH_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether the database takes a write within [`HEALTH_WRITE_TIMEOUT`] (readiness: a server that can read but not
/// write would answer every check and fail every verification, so reading is not enough). The outcome is kept
/// for a second: however many probes (or anonymous callers) ask, the database sees one write a second from each
/// replica.
pub async fn ready(state: &AppState) -> bool {
    const FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(1);
    let mut last = state.health_cache().lock().await;
    match *last {
        Some((at, healthy)) if at.elapsed() < FRESH_FOR => healthy,
        _ => {
            let healthy = database_writable(state).await;
            *last = Some((tokio::time::Instant::now(), healthy));
            healthy
        }
    }
}

async fn database_writable(state: &AppState) -> bool {
    let write = state.store().check_writable(crate::store::secs(state.now()));
    match tokio::time::timeout(HEALTH_WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::warn!(%error, "health check: the database refused a write");
            false
        }
        Err(_elapsed) => {
            tracing::warn!("health check: the database did not take a write in time");
            false
        }
    }
}
