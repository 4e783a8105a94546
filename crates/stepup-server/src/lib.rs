//! The reference server of the step-up API: the same wire protocol as Dynamic's SDK API, implemented for real
//! (TOTP, recovery codes, one-time codes with limits, signed JWTs, a resource guard), on SQLite by default and
//! PostgreSQL for many replicas.
//!
//! Embed it (tests, demos) with [`Server::start`]; run it with the `stepup-server` binary.

pub mod auth;
pub mod client_address;
pub mod config;
pub mod delivery;
pub mod environment;
pub mod error;
pub mod guard;
pub mod http_client;
pub mod key_encryption;
pub mod methods;
pub mod metrics;
pub mod random;
pub mod routes;
pub mod services;
pub mod signing_keys;
pub mod state;
pub mod store;
pub mod tokens;
mod transport;
pub mod verified_signatures;

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
    metrics_addr: Option<SocketAddr>,
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
        // The same minute reloads the signing keys, so a key rotated on another replica is served in the JWKS here
        // too (tokens naming a new key reload at once anyway: `services::issuance::verify_jwt`).
        let janitor = state.clone();
        let purge = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(error) = janitor.store().purge_expired(store::secs(janitor.now())).await {
                    tracing::warn!(%error, "purging expired rows failed");
                }
                for id in janitor.environment_ids().map(str::to_owned).collect::<Vec<_>>() {
                    if let Some(env) = janitor.environment(&id).cloned()
                        && let Err(error) = services::issuance::reload_signing_keys(&janitor, &env).await
                    {
                        tracing::warn!(%error, environment = %id, "reloading signing keys failed");
                    }
                }
            }
        });
        let metrics = match config.metrics.listen {
            Some(metrics_addr) => {
                let metrics_listener = tokio::net::TcpListener::bind(metrics_addr)
                    .await
                    .map_err(|source| StartError::Bind { addr: metrics_addr.to_string(), source })?;
                let bound = metrics_listener
                    .local_addr()
                    .map_err(|source| StartError::Bind { addr: metrics_addr.to_string(), source })?;
                tracing::info!(addr = %bound, "metrics listening");
                let app = routes::metrics_router(state.clone());
                let stop = stop.clone();
                Some((bound, tokio::spawn(transport::serve(metrics_listener, app, config.connections, stop))))
            }
            None => None,
        };
        let metrics_addr = metrics.as_ref().map(|(addr, _)| *addr);
        let limits = config.connections;
        let task = tokio::spawn(async move {
            transport::serve(listener, app, limits, stop).await;
            purge.abort();
            if let Some((_, metrics)) = metrics {
                let _ = metrics.await;
            }
        });
        tracing::info!(%addr, "stepup reference server listening");
        Ok(Self { addr, metrics_addr, state, stop: stop_sender, task: Some(task) })
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics listener's address, when `[metrics] listen` is set.
    #[must_use]
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
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
