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
pub mod coordinator;
mod facade;
pub mod frontend;
pub mod middleware;
mod prompt;
pub mod signers;
pub mod verifiers;

pub use api::{ApiClient, ApiClientError, ApiConfig, install_default_crypto_provider};
pub use builder::{BuildError, DEFAULT_PROMPT_TIMEOUT, DEFAULT_VERIFY_TIMEOUT, StepUpAuthBuilder};
pub use coordinator::{CoordinatorMsg, EngineSnapshot, StepUpState};
pub use facade::{StepUpAuth, StepUpRequirement};
#[cfg(feature = "terminal")]
pub use frontend::TerminalFrontend;
pub use frontend::{
    ChannelFrontend, Frontend, FrontendEvent, FrontendInbox, PendingPrompt, PromptReply, PromptRequest,
};
pub use middleware::{ElevatedRequestExt, ElevatedScope, MiddlewareError, StepUpMiddleware};
pub use prompt::PromptId;
#[cfg(feature = "local-wallet")]
pub use signers::LocalWalletSigner;
#[cfg(feature = "software-passkey")]
pub use signers::SoftwarePasskey;
pub use signers::{PasskeyAuthenticator, PasskeyError, SignerError, WalletSigner};
pub use verifiers::{VerifyRequest, WalletMessageSettings};

pub use stepup_core::SessionInfo;

pub use stepup_core as core;
pub use stepup_proto as proto;
