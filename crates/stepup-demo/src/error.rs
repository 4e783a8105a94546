//! `DemoError`: why the demo world could not be set up.

use stepup_core::StepUpError;

/// Why setting up or using the demo world failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The embedded reference server did not start.
    #[error("the reference server did not start: {0}")]
    Start(#[from] stepup_server::state::StartError),
    /// The server refused a seeding operation.
    #[error("the server refused to {action}: HTTP {status} {code}")]
    Server {
        /// What was being done.
        action: &'static str,
        /// The HTTP status.
        status: u16,
        /// The error code.
        code: String,
    },
    /// A step of the engine failed while registering a credential.
    #[error("{action}: {source}")]
    Engine {
        /// What was being done.
        action: &'static str,
        /// Why it failed.
        source: StepUpError,
    },
    /// The engine could not be built.
    #[error(transparent)]
    Build(#[from] stepup_engine::BuildError),
    /// The wallet key could not be made.
    #[error(transparent)]
    Signer(#[from] stepup_engine::SignerError),
    /// The software passkey failed.
    #[error(transparent)]
    Passkey(#[from] stepup_engine::PasskeyError),
    /// The protected call did not reach the server, or its step-up did not succeed.
    #[error("the protected call failed: {0}")]
    Http(#[from] reqwest_middleware::Error),
    /// A TOTP secret that is not base32, or a clock before 1970.
    #[error("cannot compute a TOTP code: {0}")]
    Totp(String),
    /// The engine holds no token for a scope it was just elevated for.
    #[error("no elevated token for {scope}")]
    NoToken {
        /// The scope.
        scope: stepup_core::Scope,
    },
    /// No code has been sent to this destination.
    #[error("no code in the outbox for {to}")]
    NoCode {
        /// The destination.
        to: String,
    },
}

impl DemoError {
    /// A refusal of the server's services, as the HTTP answer would give it (status and code).
    pub(crate) fn server(action: &'static str, error: stepup_server::services::ServiceError) -> Self {
        let error = stepup_server::error::ApiError::from(error);
        DemoError::Server { action, status: error.status().as_u16(), code: error.code().to_string() }
    }

    pub(crate) fn engine(action: &'static str) -> impl FnOnce(StepUpError) -> Self {
        move |source| DemoError::Engine { action, source }
    }
}
