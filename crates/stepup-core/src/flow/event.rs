//! The events the flow machine takes.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::credential::MethodOptions;
use crate::error::StepUpError;
use crate::method::{Method, Route};
use crate::otp::OtpVerification;
use crate::scope::{Scope, ScopeSet};
use crate::token::{ElevatedToken, TokenId};

/// The number of one verification attempt, handed out by the flow machine when it accepts a
/// `VerificationStarted` (numbers only grow). A result carries the number of the verification it answers, so a
/// result that arrives after `Cancel` or `Reset` (or after a newer attempt started) is recognised as stale and
/// dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct AttemptId(pub u64);

impl AttemptId {
    /// The next number.
    #[must_use]
    pub fn next(self) -> AttemptId {
        AttemptId(self.0.wrapping_add(1))
    }
}

impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Something that happened, fed into the flow machine. All I/O happens elsewhere (the engine's actors); they
/// report what they saw as events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowEvent {
    /// `POST /stepUp/check` answered for `scope`.
    RequirementChecked {
        /// The scope checked.
        scope: Scope,
        /// Whether step-up is needed.
        required: bool,
        /// The user's usable credentials.
        options: MethodOptions,
    },
    /// A protected call was refused with a step-up challenge for these scopes.
    Challenged {
        /// The scopes the challenge named (or the request was tagged with).
        scopes: ScopeSet,
    },
    /// A caller asks for a flow for exactly `scopes` (a prompt, or a verification without one): a flow for other
    /// scopes starts over for these, so the token grants what was asked and no more (a flow may have gathered
    /// more scopes from earlier checks; one single-use scope among them would also make the whole token
    /// single-use). A flow for these scopes already running is kept. No scopes is refused.
    FlowRequested {
        /// The scopes asked for.
        scopes: ScopeSet,
    },
    /// A prompt opened for `route` (MFA or re-authentication).
    PromptOpened {
        /// The route chosen.
        route: Route,
        /// The options to offer; unknown keeps the options already known.
        options: MethodOptions,
    },
    /// A verification with `method` is about to start; if the prompt allows it, the machine numbers it and
    /// answers [`crate::flow::Effect::Verify`].
    VerificationStarted {
        /// The method.
        method: Method,
    },
    /// A one-time code was sent (in any state: the server holds it whatever the flow does, until it is used,
    /// killed or the engine resets).
    OtpSent {
        /// The sent code's verification.
        verification: OtpVerification,
    },
    /// Verification `attempt` succeeded with `token`.
    Verified {
        /// The verification's number.
        attempt: AttemptId,
        /// The elevated token the server issued.
        token: Arc<ElevatedToken>,
    },
    /// Verification `attempt` failed.
    VerificationFailed {
        /// The verification's number.
        attempt: AttemptId,
        /// Why.
        error: StepUpError,
    },
    /// The user or the app cancelled the flow.
    Cancel,
    /// The token `token_id` ran out of time.
    TokenExpired {
        /// The expired token.
        token_id: TokenId,
    },
    /// The single-use token `token_id` was spent.
    TokenConsumed {
        /// The spent token.
        token_id: TokenId,
    },
    /// Forget everything: back to idle with no tokens.
    Reset,
}

impl FlowEvent {
    /// The event's name, for logs.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            FlowEvent::RequirementChecked { .. } => "RequirementChecked",
            FlowEvent::Challenged { .. } => "Challenged",
            FlowEvent::FlowRequested { .. } => "FlowRequested",
            FlowEvent::PromptOpened { .. } => "PromptOpened",
            FlowEvent::VerificationStarted { .. } => "VerificationStarted",
            FlowEvent::OtpSent { .. } => "OtpSent",
            FlowEvent::Verified { .. } => "Verified",
            FlowEvent::VerificationFailed { .. } => "VerificationFailed",
            FlowEvent::Cancel => "Cancel",
            FlowEvent::TokenExpired { .. } => "TokenExpired",
            FlowEvent::TokenConsumed { .. } => "TokenConsumed",
            FlowEvent::Reset => "Reset",
        }
    }
}
