//! The coordinator's messages: the requests apps send (as [`crate::EngineRequest`], through an
//! [`crate::EngineHandle`]) and the engine's own, and the reports of verifiers, timers and the prompt driver.
//! Crate-private: no app can send a report.

use std::sync::Arc;

use ractor::RpcReplyPort;
use stepup_core::{
    AttemptId, CredentialId, Effect, ElevatedToken, Method, MethodOptions, OtpVerification, Route, Scope,
    ScopeSet, StepUpError, TokenId, TokenInfo,
};

use crate::prompt::PromptId;
use crate::verifiers::VerifyRequest;

/// The state the engine publishes: the flow machine's state (see `docs/state-machine.md`).
pub type StepUpState = stepup_core::FlowState;

/// A reply port for calls that end with a token.
pub type TokenReply = RpcReplyPort<Result<TokenInfo, StepUpError>>;

/// The coordinator's state and tokens at one moment (see [`crate::StepUpAuth::snapshot`]).
#[derive(Debug, Clone)]
pub struct EngineSnapshot {
    /// The flow's state.
    pub state: StepUpState,
    /// The stored tokens.
    pub tokens: Arc<stepup_core::TokenSet>,
    /// The one-time code sent last and still alive (the flow machine keeps it across states).
    pub pending_otp: Option<OtpVerification>,
}

/// How one try of a prompt's verification ended, as the flow machine decided it: the prompt driver learns from
/// this whether to ask again, so it counts nothing itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// A token for the prompt's scopes was stored.
    Elevated(TokenInfo),
    /// The try failed; the person may try again `attempts_left` more times.
    Retry {
        /// Why, to show.
        error: StepUpError,
        /// Tries left.
        attempts_left: u8,
    },
    /// The try failed and the prompt is over.
    Failed(StepUpError),
}

impl Attempt {
    /// The machine's effect as the answer to a try; `None` (a result the machine dropped as stale) means the flow
    /// the try belonged to is gone.
    pub(crate) fn from_effect(effect: Effect) -> Attempt {
        match effect {
            Effect::Elevated(info) => Attempt::Elevated(info),
            Effect::Retry { error, attempts_left } => Attempt::Retry { error, attempts_left },
            Effect::Failed(error) | Effect::Refused(error) => Attempt::Failed(error),
            Effect::None | Effect::Verify { .. } => Attempt::Failed(StepUpError::Cancelled),
        }
    }
}

/// Who asked for a verification, and how they want the answer.
#[derive(Debug)]
pub(crate) enum VerifyCaller {
    /// An app or a custom UI (`verify_*`, `EngineRequest::Verify`): the token's description or the error.
    App(TokenReply),
    /// The prompt driver of prompt `id`: refused with `Cancelled` once that prompt has ended (a driver aborted
    /// mid-step must not start a flow of its own); answered with the machine's decision.
    Prompt {
        /// The prompt.
        id: PromptId,
        /// The answer.
        reply: RpcReplyPort<Attempt>,
    },
}

impl VerifyCaller {
    /// The prompt asking, if a prompt driver asks.
    pub(crate) fn prompt(&self) -> Option<PromptId> {
        match self {
            VerifyCaller::App(_) => None,
            VerifyCaller::Prompt { id, .. } => Some(*id),
        }
    }

    /// Answers with the machine's effect for this verification.
    pub(crate) fn answer(self, effect: Effect) {
        match self {
            VerifyCaller::App(reply) => {
                let answer = effect.token_answer().unwrap_or(Err(StepUpError::Cancelled));
                let _ = reply.send(answer);
            }
            VerifyCaller::Prompt { reply, .. } => {
                let _ = reply.send(Attempt::from_effect(effect));
            }
        }
    }

    /// Answers with a refusal: nothing was started.
    pub(crate) fn refuse(self, error: StepUpError) {
        self.answer(Effect::Refused(error));
    }
}

/// The coordinator's messages.
#[derive(Debug)]
pub(crate) enum CoordinatorMsg {
    // --- Requests ---
    /// Ask the server whether `scope` needs step-up, and take the answer in.
    Check {
        /// The scope.
        scope: Scope,
        /// The answer.
        reply: RpcReplyPort<Result<crate::StepUpRequirement, StepUpError>>,
    },
    /// Send a one-time code to the user's email or phone.
    SendOtp {
        /// Which credential; `None` picks the email, else the phone.
        credential: Option<CredentialId>,
        /// The prompt asking, if a prompt driver asks: refused with `Cancelled` once that prompt has ended.
        /// `None` from apps and custom UIs.
        prompt: Option<PromptId>,
        /// Answer with the code the flow already holds for this method instead of sending another, if it
        /// holds one (the prompt driver's next try). `None` always sends.
        reuse_code_for: Option<Method>,
        /// The answer.
        reply: RpcReplyPort<Result<OtpVerification, StepUpError>>,
    },
    /// Verify a proof for `scopes` and store the token.
    Verify {
        /// The scopes to elevate.
        scopes: ScopeSet,
        /// The proof.
        request: VerifyRequest,
        /// Who asks.
        caller: VerifyCaller,
    },
    /// Run a prompt flow through the front end (or join the one running for these scopes).
    Prompt {
        /// The scopes to elevate.
        scopes: ScopeSet,
        /// `None` routes automatically: MFA if the user has MFA methods, else re-authentication.
        route: Option<Route>,
        /// Verify afresh even when a stored token covers the scopes (an RFC 9470 challenge with `max_age`
        /// asks for a recent verification, which a held token is not).
        fresh: bool,
        /// The answer, when the flow ends.
        reply: TokenReply,
    },
    /// Cancel the running flow: every waiting caller gets `Cancelled`.
    Cancel,
    /// Forget everything: tokens, flow, pending code. Waiting callers get `Cancelled`.
    Reset {
        /// Answered once the reset is done.
        reply: Option<RpcReplyPort<()>>,
    },
    /// The state and the tokens as the coordinator sees them between two messages: a consistent pair, for
    /// tests and debugging (the published state and the token cell are read separately otherwise).
    Inspect {
        /// The answer.
        reply: RpcReplyPort<EngineSnapshot>,
    },
    /// A single-use token was spent by a request.
    TokenConsumed {
        /// The token.
        token_id: TokenId,
    },

    // --- Reports ---
    /// A step-up check answered (the check task reports it).
    RequirementChecked {
        /// The scope checked.
        scope: Scope,
        /// Whether step-up is needed.
        required: bool,
        /// The user's usable credentials.
        options: MethodOptions,
        /// Answered once the machine has taken the answer in (so the caller sees the new state).
        reply: RpcReplyPort<()>,
    },
    /// The prompt driver opened a prompt on `route` with `options`.
    PromptOpened {
        /// The prompt.
        prompt: PromptId,
        /// The route.
        route: Route,
        /// The options offered.
        options: MethodOptions,
        /// Whether the machine took it.
        reply: RpcReplyPort<Result<(), StepUpError>>,
    },
    /// The prompt driver finished.
    PromptFinished {
        /// The prompt.
        prompt: PromptId,
        /// How it ended.
        result: Result<TokenInfo, StepUpError>,
    },
    /// A verifier sent a one-time code (or failed to).
    OtpSent {
        /// The sent code, or why not.
        result: Result<OtpVerification, StepUpError>,
        /// The reset count when the code was asked for: a code asked for before a reset is not kept.
        epoch: u64,
        /// The caller.
        reply: RpcReplyPort<Result<OtpVerification, StepUpError>>,
    },
    /// A verifier finished verification `attempt`.
    VerifierDone {
        /// The verification's number.
        attempt: AttemptId,
        /// The token, or why not.
        result: Result<Arc<ElevatedToken>, StepUpError>,
    },
    /// Verification `attempt` ran past the verify timeout.
    VerificationTimedOut {
        /// The verification's number.
        attempt: AttemptId,
    },
    /// Prompt `prompt` ran past the prompt timeout.
    PromptTimedOut {
        /// The prompt.
        prompt: PromptId,
    },
    /// A token's expiry timer fired.
    TokenExpired {
        /// The token.
        token_id: TokenId,
    },
}
