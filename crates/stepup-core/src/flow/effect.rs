//! `Effect`: what the machine decided about one event, for the engine's coordinator to carry out.
//!
//! The machine decides and the coordinator acts (docs/design.md §3, §5): after every event the coordinator
//! publishes the new state and then does what the effect says — start the verifier, arm a token's expiry timer,
//! answer the callers. It never reads the state back to guess what the event did.

use crate::error::StepUpError;
use crate::method::Method;
use crate::otp::OtpVerification;
use crate::scope::ScopeSet;
use crate::token::TokenInfo;

use super::event::AttemptId;

/// What must happen after one event. Most events need nothing beyond the new state ([`Effect::None`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Nothing to do beyond publishing the state.
    None,
    /// The event was refused and the state is as it was; the caller hears why.
    Refused(StepUpError),
    /// Verification `attempt` starts: hand the verifier a job for `scopes` with `method`.
    Verify {
        /// The verification's number, handed out by the machine.
        attempt: AttemptId,
        /// The method.
        method: Method,
        /// The scopes to ask the server for.
        scopes: ScopeSet,
        /// For a one-time code: the sent code the proof answers.
        otp: Option<OtpVerification>,
    },
    /// A token was stored: arm its expiry timer and answer the callers it covers.
    Elevated(TokenInfo),
    /// The verification failed and the prompt may try again, `attempts_left` more times.
    Retry {
        /// Why the try failed (to show the person).
        error: StepUpError,
        /// Tries left, at least 1.
        attempts_left: u8,
    },
    /// The verification failed for good: the flow is back in `required` with this error.
    Failed(StepUpError),
}

impl Effect {
    /// The answer for a caller who asked for a token: the token's description, or why not. `None` when the
    /// event answered no such question (or the result was stale).
    #[must_use]
    pub fn token_answer(&self) -> Option<Result<TokenInfo, StepUpError>> {
        match self {
            Effect::Elevated(info) => Some(Ok(info.clone())),
            Effect::Refused(error) | Effect::Failed(error) | Effect::Retry { error, .. } => {
                Some(Err(error.clone()))
            }
            Effect::None | Effect::Verify { .. } => None,
        }
    }
}
