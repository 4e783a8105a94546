//! One accepted connection: HTTP/1.1 with keep-alive, under the configured timeouts, until the client leaves,
//! a timeout closes it, or the server shuts down.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service as _, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::activity::{Activity, Tracked};
use crate::config::ConnectionLimits;

/// Serves `stream` until it closes. `stop` turning `true` starts a graceful shutdown: the request in progress
/// is answered, then the connection closes.
pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Activity::new();
    let io = TokioIo::new(Tracked::new(stream, Arc::clone(&activity)));
    let router = TowerToHyperService::new(app);
    let requests = Arc::clone(&activity);
    let service = service_fn(move |mut request: Request<Incoming>| {
        // Handlers that need the client's address (per-client limits) read it as axum's `ConnectInfo`.
        request.extensions_mut().insert(ConnectInfo(peer));
        let in_progress = requests.begin_request();
        let answer = router.call(request);
        async move {
            let answered = answer.await;
            drop(in_progress);
            answered
        }
    });
    let mut http = http1::Builder::new();
    // hyper starts the header-read clock when it starts waiting for a head, so it also bounds how long a
    // kept-alive connection may wait for its next request.
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout()).keep_alive(true);
    let connection = http.serve_connection(io, service);
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        if !stopping && *stop.borrow_and_update() {
            stopping = true;
            connection.as_mut().graceful_shutdown();
        }
        let idle_at = activity.idle_deadline(limits.idle_timeout());
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(error) = served {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            changed = stop.changed(), if !stopping => {
                if changed.is_err() {
                    // The server is gone without saying so: stop as if it had.
                    stopping = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
            () = tokio::time::sleep_until(idle_at) => {
                if activity.idle_deadline(limits.idle_timeout()) <= Instant::now() {
                    tracing::debug!(%peer, "closing an idle connection");
                    return;
                }
            }
        }
    }
}
