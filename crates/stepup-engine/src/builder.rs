//! `StepUpAuthBuilder`: everything the engine needs, with defaults that work against the reference server.

use std::sync::Arc;
use std::time::Duration;

use ractor::Actor;
use stepup_core::{FlowState, Jwt, SharedClock, TokenCell};
use tokio::sync::watch;

use crate::api::{ApiClient, ApiClientError, ApiConfig};
use crate::coordinator::{Coordinator, CoordinatorArgs};
use crate::facade::{Inner, StepUpAuth};
use crate::frontend::Frontend;
use crate::middleware::StepUpFlights;
use crate::signers::{PasskeyAuthenticator, WalletSigner};
use crate::verifiers::{VerifierConfig, WalletMessageSettings};

/// Why the engine could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// `base_url` was not set.
    #[error("the server's base URL is not set")]
    MissingBaseUrl,
    /// `environment_id` was not set.
    #[error("the environment id is not set")]
    MissingEnvironmentId,
    /// The API client could not be built.
    #[error(transparent)]
    Api(#[from] ApiClientError),
    /// The actors could not be started (no tokio runtime, or a spawn failure).
    #[error("the engine's actors could not start: {message}")]
    Spawn {
        /// What failed.
        message: String,
    },
}

/// Builds a [`StepUpAuth`].
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use stepup_engine::StepUpAuth;
/// let engine = StepUpAuth::builder()
///     .base_url("http://127.0.0.1:8080")
///     .environment_id("dev")
///     .session("eyJ...session JWT")
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Default)]
#[must_use]
pub struct StepUpAuthBuilder {
    base_url: Option<String>,
    environment_id: Option<String>,
    session: Option<Jwt>,
    api: ApiConfig,
    wallet: Option<Arc<dyn WalletSigner>>,
    passkey: Option<Arc<dyn PasskeyAuthenticator>>,
    frontend: Option<Arc<dyn Frontend>>,
    wallet_message: WalletMessageSettings,
    clock: Option<SharedClock>,
    verify_timeout: Option<Duration>,
    prompt_timeout: Option<Duration>,
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

/// Default time one verification may take, signers included (a person approving in a wallet).
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time a prompt flow may take (a person reading an email).
pub const DEFAULT_PROMPT_TIMEOUT: Duration = Duration::from_secs(600);

impl StepUpAuthBuilder {
    /// The server, e.g. `https://api.example.com` (calls go to `{base_url}/sdk/{environment_id}/...`).
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// The environment id.
    pub fn environment_id(mut self, environment_id: impl Into<String>) -> Self {
        self.environment_id = Some(environment_id.into());
        self
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
        self.verify_timeout = Some(timeout);
        self
    }

    /// How long a prompt flow may wait on the person (default 10 min); then every caller waiting on it gets
    /// `Timeout` and the flow ends.
    pub fn prompt_timeout(mut self, timeout: Duration) -> Self {
        self.prompt_timeout = Some(timeout);
        self
    }

    /// Starts the engine: the API client, the coordinator and its five verifiers. Must run inside a tokio
    /// runtime.
    ///
    /// # Errors
    /// [`BuildError`] for a missing base URL or environment id, a bad URL, or actors that could not start.
    pub async fn build(self) -> Result<StepUpAuth, BuildError> {
        let base_url = self.base_url.ok_or(BuildError::MissingBaseUrl)?;
        let environment_id = self.environment_id.ok_or(BuildError::MissingEnvironmentId)?;
        let api = ApiClient::new(&base_url, &environment_id, self.session, self.api)?;
        let clock = self.clock.unwrap_or_else(crate::clock::default_clock);
        let tokens = TokenCell::with_clock(clock.clone());
        let (state_tx, state_rx) = watch::channel(FlowState::Idle {});
        let verify_timeout = self.verify_timeout.unwrap_or(DEFAULT_VERIFY_TIMEOUT);
        let prompt_timeout = self.prompt_timeout.unwrap_or(DEFAULT_PROMPT_TIMEOUT);
        let args = CoordinatorArgs {
            tokens: tokens.clone(),
            verifiers: VerifierConfig {
                api: api.clone(),
                clock,
                wallet: self.wallet,
                passkey: self.passkey,
                wallet_message: self.wallet_message,
                verify_timeout,
                state: state_rx.clone(),
            },
            frontend: self.frontend,
            prompt_timeout,
            state: state_tx,
        };
        let (coordinator, _join) = Actor::spawn(None, Coordinator, args)
            .await
            .map_err(|e| BuildError::Spawn { message: e.to_string() })?;
        Ok(StepUpAuth::from_inner(Inner {
            coordinator,
            api,
            tokens,
            state: state_rx,
            verify_timeout,
            prompt_timeout,
            flights: StepUpFlights::default(),
        }))
    }
}
