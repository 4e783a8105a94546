//! The reference server of the step-up API: the same wire protocol as Dynamic's SDK API, implemented for real
//! (TOTP, recovery codes, one-time codes with limits, signed JWTs, a resource guard), on SQLite by default and
//! PostgreSQL for many replicas.
//!
//! Embed it (tests, demos) with [`Server::start`]; run it with the `stepup-server` binary.

pub mod auth;
pub mod client_address;
pub mod config;
pub mod error;
pub mod guard;
pub mod random;
pub mod routes;
pub mod state;
pub mod store;
pub mod tokens;
mod transport;
pub mod verify;

use std::net::SocketAddr;
use std::sync::Arc;

use stepup_core::{SharedClock, SystemClock};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{EnvironmentConfig, Policy, ServerConfig};
pub use state::{AppState, StartError};
pub use store::Store;

/// A running server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    state: AppState,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Connects the database, loads the keys, binds `config.listen` (port 0 picks one) and serves in the
    /// background on the current tokio runtime, with the system clock.
    ///
    /// # Errors
    /// [`StartError`] if the configuration, the database or the listener fails.
    pub async fn start(config: ServerConfig) -> Result<Self, StartError> {
        Self::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Server::start`] with a chosen clock (tests move time by hand).
    ///
    /// # Errors
    /// As [`Server::start`].
    pub async fn start_with_clock(config: ServerConfig, clock: SharedClock) -> Result<Self, StartError> {
        let store = Store::connect(&config.database_url).await?;
        let state = AppState::new(&config, store, clock).await?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind { addr: config.listen.to_string(), source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr: config.listen.to_string(), source })?;
        let (stop_sender, stop) = watch::channel(false);
        let app = routes::router(state.clone());
        // Expired rows (nonces, spent tokens, codes, ceremony states) are deleted once a minute. Any replica may do
        // it; the deletes are idempotent.
        let janitor = state.clone();
        let purge = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                if let Err(error) = janitor.store().purge_expired(store::secs(janitor.now())).await {
                    tracing::warn!(%error, "purging expired rows failed");
                }
            }
        });
        let limits = config.connections;
        let task = tokio::spawn(async move {
            transport::serve(listener, app, limits, stop).await;
            purge.abort();
        });
        tracing::info!(%addr, "stepup reference server listening");
        Ok(Self { addr, state, stop: stop_sender, task: Some(task) })
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://<addr>/sdk/<environment_id>`.
    #[must_use]
    pub fn sdk_url(&self, environment_id: &str) -> String {
        format!("http://{}/sdk/{environment_id}", self.addr)
    }

    /// The shared state (storage, environments).
    #[must_use]
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops accepting connections, lets requests in flight finish, and waits for the server task.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}
