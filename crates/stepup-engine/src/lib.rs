//! The step-up engine: the coordinator and verifier actors, the API client, the front-end trait, the signers
//! and the [`StepUpAuth`] facade.
//!
//! ```text
//! StepUpAuth (facade) ──call/cast──▶ Coordinator (ractor; owns the statig Flow, the token cell's writes,
//!        │                              expiry timers, flow numbers, waiting callers; publishes StepUpState)
//!        │ lock-free reads                 │ linked, restarted on panic
//!        ▼                                 ▼
//!    TokenCell (arc-swap)       OtpVerifier · WalletVerifier · PasskeyVerifier · TotpVerifier · RecoveryVerifier
//!                                          · ExternalAuthVerifier
//!                                          │ ApiClient (reqwest + rustls; the session, adopted from answers)
//!                                          ▼
//!                                   the SDK API (reference server or Dynamic)
//! ```
//!
//! See `docs/architecture.md` for who owns what and how a flow moves.

pub mod api;
mod builder;
mod clock;
mod coordinator;
mod facade;
pub mod frontend;
pub mod mfa;
pub mod middleware;
mod prompt;
mod requests;
pub mod signers;
mod timeouts;
mod verifiers;

pub use api::{ApiClient, ApiClientError, ApiConfig, ConnectionPool, install_default_crypto_provider};
pub use builder::{BuildError, StepUpAuthBuilder};
pub use coordinator::{EngineSnapshot, StepUpState, TokenReply};
pub use facade::{StepUpAuth, StepUpRequirement};
#[cfg(feature = "terminal")]
pub use frontend::TerminalFrontend;
pub use frontend::{
    ChannelFrontend, Frontend, FrontendEvent, FrontendInbox, PendingPrompt, PromptReply, PromptRequest,
};
pub use mfa::{
    MfaDeviceInfo, MfaManager, MfaMethods, PasskeyInfo, RecoveryCodes, ShownRecoveryCodes, TotpEnrolment,
};
pub use middleware::{
    ElevatedRequestExt, ElevatedScope, MiddlewareError, StepUpMiddleware, StepUpOnChallenge,
};
pub use requests::{EngineHandle, EngineRequest};
#[cfg(feature = "local-wallet")]
pub use signers::LocalWalletSigner;
#[cfg(feature = "software-passkey")]
pub use signers::SoftwarePasskey;
pub use signers::{PasskeyAuthenticator, PasskeyError, SignerError, WalletSigner};
pub use timeouts::{DEFAULT_PROMPT_TIMEOUT, DEFAULT_VERIFY_TIMEOUT};
pub use verifiers::requests::*;
pub use verifiers::{VerifyRequest, WalletMessageSettings};

pub use stepup_core::SessionInfo;

/// The actor runtime the engine runs on: [`EngineHandle`] works with its `call!` and `cast!` macros.
pub use ractor;
pub use stepup_core as core;
pub use stepup_proto as proto;
