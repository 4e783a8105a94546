//! The step-up domain, without I/O and without async: scopes, methods, credentials, elevated tokens, the
//! lock-free [`TokenCell`], the [`Flow`] machine, and [`StepUpError`].
//!
//! The engine (`stepup-engine`) owns a [`Flow`] inside its coordinator actor and feeds it what its verifiers
//! see; the HTTP layer reads the [`TokenCell`]. Everything here is synchronous and deterministic given a clock,
//! which is what makes it property-testable (see the `testkit` feature).

pub mod cause;
pub mod credential;
pub mod error;
pub mod flow;
mod id;
pub mod method;
pub mod otp;
pub mod scope;
pub mod session;
pub mod time;
pub mod token;
pub mod token_cell;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use cause::Cause;
pub use credential::{Credential, CredentialError, CredentialId, MethodOptions};
pub use error::{Result, StepUpError};
pub use flow::{AttemptId, Effect, Flow, FlowEvent, FlowState, MAX_ATTEMPTS, PromptProgress};
pub use method::{Method, Route};
pub use otp::{OtpChannel, OtpVerification, UnknownChannel, VerificationId};
pub use scope::{Scope, ScopeSet};
pub use session::SessionInfo;
pub use stepup_proto::secret;
pub use stepup_proto::secret::{Jwt, OtpCode, RecoveryCode, SecretString, TotpCode};
pub use time::{Clock, CoarseClock, ManualClock, Rfc3339Error, SharedClock, SystemClock, UnixTime};
pub use token::{ElevatedToken, TokenError, TokenId, TokenInfo};
pub use token_cell::{TokenCell, TokenRef, TokenSet};
