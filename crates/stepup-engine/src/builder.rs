//! `StepUpAuthBuilder`: everything the engine needs, with defaults that work against the reference server.

use std::sync::Arc;
use std::time::Duration;
use stepup_core::Cause;

use stepup_core::{FlowState, Jwt, SharedClock, TokenCell};
use tokio::sync::watch;

use crate::api::{ApiClient, ApiClientError, ApiConfig, ConnectionPool};
use crate::coordinator::{CoordinatorArgs, OnDemand};
use crate::facade::{Inner, StepUpAuth};
use crate::frontend::Frontend;
use crate::middleware::StepUpFlights;
use crate::signers::{PasskeyAuthenticator, WalletSigner};
use crate::timeouts::Timeouts;
use crate::verifiers::{VerifierConfig, WalletMessageSettings};

/// Why the engine could not be built. (The server and the environment are the builder's arguments, so an
/// engine without them cannot be asked for.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The API client could not be built.
    #[error(transparent)]
    Api(#[from] ApiClientError),
    /// The actors could not be started: no tokio runtime.
    #[error("the engine's actors could not start")]
    Spawn(#[source] Cause),
}

/// Builds a [`StepUpAuth`]: the server and the environment are required (the arguments of
/// [`StepUpAuth::builder`]), everything else has a default.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use stepup_engine::StepUpAuth;
/// let engine = StepUpAuth::builder("http://127.0.0.1:8080", "dev")
///     .session("eyJ...session JWT")
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
///
/// A half-built engine is a compile error, not a runtime one:
///
/// ```compile_fail
/// # async fn run() {
/// let engine = stepup_engine::StepUpAuth::builder().build().await;
/// # }
/// ```
#[must_use]
pub struct StepUpAuthBuilder {
    base_url: String,
    environment_id: String,
    session: Option<Jwt>,
    api: ApiConfig,
    pool: ConnectionPool,
    wallet: Option<Arc<dyn WalletSigner>>,
    passkey: Option<Arc<dyn PasskeyAuthenticator>>,
    frontend: Option<Arc<dyn Frontend>>,
    wallet_message: WalletMessageSettings,
    clock: Option<SharedClock>,
    timeouts: Timeouts,
}

impl std::fmt::Debug for StepUpAuthBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepUpAuthBuilder")
            .field("base_url", &self.base_url)
            .field("environment_id", &self.environment_id)
            .field("session", &self.session)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl StepUpAuthBuilder {
    /// A builder for the engine of environment `environment_id` on the server at `base_url`, e.g.
    /// `https://api.example.com` (calls go to `{base_url}/sdk/{environment_id}/...`). Both are checked by
    /// [`build`](Self::build).
    pub fn new(base_url: impl Into<String>, environment_id: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            environment_id: environment_id.into(),
            session: None,
            api: ApiConfig::default(),
            pool: ConnectionPool::Shared,
            wallet: None,
            passkey: None,
            frontend: None,
            wallet_message: WalletMessageSettings::default(),
            clock: None,
            timeouts: Timeouts::default(),
        }
    }

    /// The signed-in user's session JWT.
    pub fn session(mut self, session: impl Into<Jwt>) -> Self {
        self.session = Some(session.into());
        self
    }

    /// HTTP timeouts and retries.
    pub fn api_config(mut self, config: ApiConfig) -> Self {
        self.api = config;
        self
    }

    /// Whose connections the engine uses: by default the shared pool of the tokio runtime it is built in (engines
    /// with the same timeouts share one reqwest client: many engines cost one client, not one each); `Own` gives
    /// the engine a client of its own.
    pub fn connection_pool(mut self, pool: ConnectionPool) -> Self {
        self.pool = pool;
        self
    }

    /// The longest one HTTP request may take (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.api.request_timeout = timeout;
        self
    }

    /// The external wallet for `verify_wallet`.
    pub fn wallet_signer(mut self, signer: Arc<dyn WalletSigner>) -> Self {
        self.wallet = Some(signer);
        self
    }

    /// The passkey authenticator for `verify_passkey_mfa`.
    pub fn passkey_authenticator(mut self, authenticator: Arc<dyn PasskeyAuthenticator>) -> Self {
        self.passkey = Some(authenticator);
        self
    }

    /// The front end for the prompt methods.
    pub fn frontend(mut self, frontend: Arc<dyn Frontend>) -> Self {
        self.frontend = Some(frontend);
        self
    }

    /// The app's name and origin as the wallet message states them (default: `this app`, `http://localhost`).
    pub fn wallet_message(mut self, settings: WalletMessageSettings) -> Self {
        self.wallet_message = settings;
        self
    }

    /// The clock for token expiry (default: a process-wide `CoarseClock` that one thread keeps within 200 ms of
    /// the system clock). Tests pass a `ManualClock`.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How long one verification may take before it fails with `Timeout` (default 60 s).
    pub fn verify_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.verify = timeout;
        self
    }

    /// How long a prompt flow may wait on the person (default 10 min); then every caller waiting on it gets
    /// `Timeout` and the flow ends.
    pub fn prompt_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.prompt = timeout;
        self
    }

    /// Builds the engine: the API client, the token cell and the state channel. Its actors start when it is
    /// first asked something (the coordinator) or a flow first needs one (each verifier), in the tokio runtime
    /// this runs in. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// [`BuildError`] for a bad base URL or environment id, or no tokio runtime ([`BuildError::Spawn`]).
    pub async fn build(self) -> Result<StepUpAuth, BuildError> {
        let api =
            ApiClient::with_pool(&self.base_url, &self.environment_id, self.session, self.api, self.pool)?;
        let clock = self.clock.unwrap_or_else(crate::clock::default_clock);
        let tokens = TokenCell::with_clock(clock.clone());
        let (state_tx, state_rx) = watch::channel(FlowState::Idle {});
        // One request out at a time, whoever asks (flows, MFA management's guided calls).
        let shared_frontend = self.frontend.map(crate::frontend::SerialFrontend::wrap);
        let (frontend, passkey) = (shared_frontend.clone(), self.passkey.clone());
        let args = CoordinatorArgs {
            tokens: tokens.clone(),
            verifiers: VerifierConfig {
                api: api.clone(),
                clock,
                wallet: self.wallet,
                passkey: self.passkey,
                wallet_message: self.wallet_message,
                timeouts: self.timeouts,
                state: state_rx.clone(),
            },
            frontend: shared_frontend,
            state: state_tx,
        };
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| BuildError::Spawn(Cause::new(e)))?;
        Ok(StepUpAuth::from_inner(Inner {
            coordinator: OnDemand::new(args, runtime),
            api,
            tokens,
            state: state_rx,
            timeouts: self.timeouts,
            flights: StepUpFlights::default(),
            frontend,
            passkey,
        }))
    }
}
