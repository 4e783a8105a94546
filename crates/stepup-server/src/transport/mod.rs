//! The listener: accepts connections up to the configured cap and serves each on its own task, under the
//! configured timeouts (docs/design.md §11). `axum::serve` has neither a cap nor timeouts, so a few hundred slow or idle
//! clients could hold the server's connections forever.

mod activity;
mod connection;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::config::ConnectionLimits;

/// Accepts connections on `listener` until `stop` turns `true`, then waits for the open ones to finish (each
/// closes after answering the request in progress).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    // One permit per open connection. Waiting for a permit before accepting leaves extra clients in the kernel's
    // listen backlog, where they cost the server nothing, until a connection closes (mini-redis does the same).
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Answers are small and written whole; Nagle's algorithm would only delay them.
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
                }
                let (app, stop) = (app.clone(), stop.clone());
                tokio::spawn(async move {
                    connection::serve(stream, peer, app, limits, stop).await;
                    drop(permit);
                });
            }
            Err(error) if is_connection_error(&error) => {}
            Err(error) => {
                // Out of file descriptors and the like: accepting again at once would spin.
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    drop(listener);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
}

/// Errors of one incoming connection (it was reset before it was accepted), not of the listener.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
