//! The flow machine: a blocking `statig` state machine, pure and cheap to clone.
//!
//! States and their local storage (see `docs/state-machine.md` for the diagram and the full table):
//!
//! - `idle` — no flow and no elevated token in play.
//! - `required {scopes, options, last_error}` — a check or a challenge said step-up is needed.
//! - `prompting {scopes, route, progress}` — waiting for the user.
//! - `verifying {scopes, route, method, attempt, progress}` — a verifier works on verification `attempt`.
//! - `elevated {scopes, token_id, expires_at}` — a valid token for `scopes` is in the token cell.
//! - `expired {scopes}` — that token ran out; the next check goes to `required`, never back to `elevated`.
//!
//! `required`, `prompting` and `verifying` share the superstate `in_flow`, which takes `Cancel` and
//! `FlowRequested`. Every state takes `Reset` and `OtpSent`. Every other event a state does not take is listed in
//! its handler and answered `Handled` without touching anything.
//!
//! Each handler also decides what must happen next, as an [`Effect`] written into the context (statig's
//! per-event argument): the coordinator carries it out (docs/design.md §5). The shared storage holds what outlives
//! states: the token cell's write side (its clock is the machine's `now()`), the verification numbers, and the
//! one-time code the server holds for the user. The machine never sleeps and never does I/O.

// statig generates `FlowState` and `FlowSuperstate` (and their fields) without doc comments; they are documented
// where `flow/mod.rs` re-exports them and in the table above.
#![allow(missing_docs)]

use statig::prelude::*;

use super::effect::Effect;
use super::event::{AttemptId, FlowEvent};
use super::progress::PromptProgress;
use crate::credential::MethodOptions;
use crate::error::StepUpError;
use crate::method::{Method, Route};
use crate::otp::{OtpVerification, VerificationId};
use crate::scope::ScopeSet;
use crate::time::UnixTime;
use crate::token::{TokenError, TokenId};
use crate::token_cell::TokenCell;

/// The machine's shared storage: the token cell it writes (and, through it, the clock), the last verification
/// number it handed out, and the sent one-time code.
#[derive(Debug, Clone)]
pub struct FlowMachine {
    tokens: TokenCell,
    /// Verification numbers only grow, so a late result of an old verification never matches a new one.
    last_attempt: AttemptId,
    /// The one-time code sent last and still alive on the server, whatever state the flow is in: a code sent
    /// before any flow (an app calls `send_otp`, then `verify_otp` with the scopes) or kept across `Cancel`.
    /// Gone when it is used, when the server kills it, and on `Reset`. Its one home in the engine.
    pending_otp: Option<OtpVerification>,
    /// The code the running verification answers, if it answers one: its result concerns that code only (a
    /// code sent while it ran is newer, and stays).
    code_in_use: Option<VerificationId>,
}

#[state_machine(
    initial = "FlowState::idle()",
    state(name = "FlowState", derive(Debug, Clone, PartialEq, Eq)),
    superstate(name = "FlowSuperstate", derive(Debug)),
    after_transition = "Self::after_transition"
)]
impl FlowMachine {
    #[state]
    fn idle(&mut self, event: &FlowEvent, context: &mut Effect) -> Outcome<FlowState> {
        match event {
            FlowEvent::RequirementChecked { scope, required: true, options } => {
                Transition(FlowState::required(ScopeSet::one(scope.clone()), options.clone(), None))
            }
            FlowEvent::Challenged { scopes } if !scopes.is_empty() => {
                Transition(FlowState::required(scopes.clone(), MethodOptions::unknown(), None))
            }
            FlowEvent::FlowRequested { scopes } => self.request_flow(scopes, context),
            FlowEvent::OtpSent { verification } => self.keep_otp(verification),
            FlowEvent::PromptOpened { route, .. } => refuse(context, no_methods(*route)),
            FlowEvent::VerificationStarted { method } => refuse(context, not_available(*method)),
            FlowEvent::Reset => self.reset(),
            FlowEvent::RequirementChecked { required: false, .. }
            | FlowEvent::Challenged { .. }
            | FlowEvent::Verified { .. }
            | FlowEvent::VerificationFailed { .. }
            | FlowEvent::Cancel
            | FlowEvent::TokenExpired { .. }
            | FlowEvent::TokenConsumed { .. } => Handled,
        }
    }

    #[state(superstate = "in_flow")]
    fn required(
        &mut self,
        scopes: &mut ScopeSet,
        options: &mut MethodOptions,
        last_error: &mut Option<StepUpError>,
        event: &FlowEvent,
        context: &mut Effect,
    ) -> Outcome<FlowState> {
        match event {
            FlowEvent::RequirementChecked { scope, required: true, options: fresh } => {
                // A fresh check: its options are newer than ours, and its scope joins the flow.
                *scopes = scopes.union(&ScopeSet::one(scope.clone()));
                *options = fresh.clone();
                *last_error = None;
                Handled
            }
            FlowEvent::Challenged { scopes: more } => {
                *scopes = scopes.union(more);
                Handled
            }
            FlowEvent::PromptOpened { route, options: offered } => {
                let chosen = if offered.is_known() { offered } else { &*options };
                if let Err(refused) = chosen.check_route(*route) {
                    // No prompt the user could finish: stay, and say why.
                    *last_error = Some(refused.clone());
                    *context = Effect::Refused(refused);
                    return Handled;
                }
                let options = if offered.is_known() { offered.clone() } else { take(options) };
                Transition(FlowState::prompting(take(scopes), *route, PromptProgress::new(options)))
            }
            FlowEvent::VerificationStarted { method } => refuse(context, not_available(*method)),
            FlowEvent::Cancel
            | FlowEvent::Reset
            | FlowEvent::FlowRequested { .. }
            | FlowEvent::OtpSent { .. } => Super,
            FlowEvent::RequirementChecked { required: false, .. }
            | FlowEvent::Verified { .. }
            | FlowEvent::VerificationFailed { .. }
            | FlowEvent::TokenExpired { .. }
            | FlowEvent::TokenConsumed { .. } => Handled,
        }
    }

    #[state(superstate = "in_flow")]
    fn prompting(
        &mut self,
        scopes: &mut ScopeSet,
        route: &mut Route,
        progress: &mut PromptProgress,
        event: &FlowEvent,
        context: &mut Effect,
    ) -> Outcome<FlowState> {
        match event {
            FlowEvent::PromptOpened { route: new_route, options: offered } => {
                // Re-opened (e.g. the user switched route): a fresh prompt, known options kept if none given. A
                // route the options rule out leaves the current prompt as it is.
                let options = if offered.is_known() { offered.clone() } else { progress.options.clone() };
                match options.check_route(*new_route) {
                    Ok(()) => {
                        *route = *new_route;
                        *progress = PromptProgress::new(options);
                    }
                    Err(refused) => *context = Effect::Refused(refused),
                }
                Handled
            }
            FlowEvent::VerificationStarted { method } => {
                if let Some(refused) = progress.refusal(*route, *method, self.pending_otp.as_ref()) {
                    return refuse(context, refused);
                }
                let attempt = self.last_attempt.next();
                self.last_attempt = attempt;
                let otp = if method.is_otp() { self.pending_otp.clone() } else { None };
                self.code_in_use = otp.as_ref().map(|otp| otp.id.clone());
                *context = Effect::Verify { attempt, method: *method, scopes: scopes.clone(), otp };
                Transition(FlowState::verifying(
                    take(scopes),
                    *route,
                    *method,
                    attempt,
                    take_progress(progress),
                ))
            }
            FlowEvent::Cancel
            | FlowEvent::Reset
            | FlowEvent::FlowRequested { .. }
            | FlowEvent::OtpSent { .. } => Super,
            FlowEvent::RequirementChecked { .. }
            | FlowEvent::Challenged { .. }
            | FlowEvent::Verified { .. }
            | FlowEvent::VerificationFailed { .. }
            | FlowEvent::TokenExpired { .. }
            | FlowEvent::TokenConsumed { .. } => Handled,
        }
    }

    // statig passes each field of the state's storage as its own argument.
    #[allow(clippy::too_many_arguments)]
    #[state(superstate = "in_flow")]
    fn verifying(
        &mut self,
        scopes: &mut ScopeSet,
        route: &mut Route,
        method: &mut Method,
        attempt: &mut AttemptId,
        progress: &mut PromptProgress,
        event: &FlowEvent,
        context: &mut Effect,
    ) -> Outcome<FlowState> {
        // Which method ran is the state's to show; the code it used is in `code_in_use`.
        let _ = method;
        match event {
            FlowEvent::Verified { attempt: finished, token } if finished == attempt => {
                // The server spent the code, whatever we make of its answer.
                self.forget_code_in_use();
                let now = self.now();
                let refused = if token.is_expired_at(now) {
                    Some(TokenError::Expired { expires_at: token.expires_at(), now }.into())
                } else if !token.covers_all(scopes) {
                    Some(StepUpError::ScopesNotGranted {
                        requested: scopes.clone(),
                        granted: token.scopes().clone(),
                    })
                } else {
                    None
                };
                if let Some(error) = refused {
                    *context = Effect::Failed(error.clone());
                    return Transition(FlowState::required(
                        take(scopes),
                        take(&mut progress.options),
                        Some(error),
                    ));
                }
                let stored = self.tokens.insert_at(token.clone(), now);
                *context = Effect::Elevated(stored.info().clone());
                Transition(FlowState::elevated(
                    stored.scopes().clone(),
                    stored.id().clone(),
                    stored.expires_at(),
                ))
            }
            FlowEvent::VerificationFailed { attempt: finished, error } if finished == attempt => {
                if matches!(error, StepUpError::InvalidVerification { .. }) {
                    // The server killed this code (expired, used up): a retry needs a new one.
                    self.forget_code_in_use();
                }
                self.code_in_use = None;
                if error.is_retryable() && progress.attempts_left > 1 {
                    let mut retry = take_progress(progress);
                    retry.attempts_left -= 1;
                    retry.last_error = Some(error.clone());
                    *context = Effect::Retry { error: error.clone(), attempts_left: retry.attempts_left };
                    Transition(FlowState::prompting(take(scopes), *route, retry))
                } else {
                    *context = Effect::Failed(error.clone());
                    Transition(FlowState::required(
                        take(scopes),
                        take(&mut progress.options),
                        Some(error.clone()),
                    ))
                }
            }
            FlowEvent::PromptOpened { .. } => refuse(context, StepUpError::Busy),
            FlowEvent::VerificationStarted { .. } => refuse(context, StepUpError::Busy),
            // A verification for these scopes runs: a flow for others must wait for it, not drop it.
            FlowEvent::FlowRequested { scopes: asked } if !asked.is_empty() && asked != scopes => {
                refuse(context, StepUpError::Busy)
            }
            FlowEvent::Cancel
            | FlowEvent::Reset
            | FlowEvent::FlowRequested { .. }
            | FlowEvent::OtpSent { .. } => Super,
            FlowEvent::RequirementChecked { .. }
            | FlowEvent::Challenged { .. }
            | FlowEvent::Verified { .. }
            | FlowEvent::VerificationFailed { .. }
            | FlowEvent::TokenExpired { .. }
            | FlowEvent::TokenConsumed { .. } => Handled,
        }
    }

    /// `required`, `prompting` and `verifying`: a flow is running. `Cancel` ends it; `FlowRequested` keeps it
    /// when it is for the same scopes and starts over otherwise.
    #[superstate]
    fn in_flow(
        &mut self,
        scopes: &mut ScopeSet,
        event: &FlowEvent,
        context: &mut Effect,
    ) -> Outcome<FlowState> {
        match event {
            FlowEvent::Cancel => Transition(FlowState::idle()),
            FlowEvent::Reset => self.reset(),
            FlowEvent::OtpSent { verification } => self.keep_otp(verification),
            FlowEvent::FlowRequested { scopes: asked } if asked == scopes => Handled,
            FlowEvent::FlowRequested { scopes: asked } => self.request_flow(asked, context),
            // The states below decide everything else and never defer it here.
            _ => Handled,
        }
    }

    #[state]
    fn elevated(
        &mut self,
        scopes: &mut ScopeSet,
        token_id: &mut TokenId,
        expires_at: &mut UnixTime,
        event: &FlowEvent,
        context: &mut Effect,
    ) -> Outcome<FlowState> {
        let _ = expires_at;
        match event {
            FlowEvent::TokenExpired { token_id: expired } if expired == token_id => {
                self.tokens.remove(token_id);
                Transition(FlowState::expired(take(scopes)))
            }
            FlowEvent::TokenConsumed { token_id: spent } if spent == token_id => {
                self.tokens.remove(token_id);
                Transition(FlowState::idle())
            }
            FlowEvent::RequirementChecked { scope, required: true, options } => {
                Transition(FlowState::required(ScopeSet::one(scope.clone()), options.clone(), None))
            }
            FlowEvent::Challenged { scopes: challenged } if !challenged.is_empty() => {
                Transition(FlowState::required(challenged.clone(), MethodOptions::unknown(), None))
            }
            FlowEvent::FlowRequested { scopes } => self.request_flow(scopes, context),
            FlowEvent::OtpSent { verification } => self.keep_otp(verification),
            FlowEvent::PromptOpened { route, .. } => refuse(context, no_methods(*route)),
            FlowEvent::VerificationStarted { method } => refuse(context, not_available(*method)),
            FlowEvent::Reset => self.reset(),
            FlowEvent::RequirementChecked { required: false, .. }
            | FlowEvent::Challenged { .. }
            | FlowEvent::Verified { .. }
            | FlowEvent::VerificationFailed { .. }
            | FlowEvent::Cancel
            | FlowEvent::TokenExpired { .. }
            | FlowEvent::TokenConsumed { .. } => Handled,
        }
    }

    #[state]
    fn expired(
        &mut self,
        scopes: &mut ScopeSet,
        event: &FlowEvent,
        context: &mut Effect,
    ) -> Outcome<FlowState> {
        let _ = scopes;
        match event {
            FlowEvent::RequirementChecked { scope, required: true, options } => {
                Transition(FlowState::required(ScopeSet::one(scope.clone()), options.clone(), None))
            }
            FlowEvent::RequirementChecked { required: false, .. } => Transition(FlowState::idle()),
            FlowEvent::Challenged { scopes: challenged } if !challenged.is_empty() => {
                Transition(FlowState::required(challenged.clone(), MethodOptions::unknown(), None))
            }
            FlowEvent::FlowRequested { scopes } => self.request_flow(scopes, context),
            FlowEvent::OtpSent { verification } => self.keep_otp(verification),
            FlowEvent::PromptOpened { route, .. } => refuse(context, no_methods(*route)),
            FlowEvent::VerificationStarted { method } => refuse(context, not_available(*method)),
            FlowEvent::Reset => self.reset(),
            FlowEvent::Challenged { .. }
            | FlowEvent::Verified { .. }
            | FlowEvent::VerificationFailed { .. }
            | FlowEvent::Cancel
            | FlowEvent::TokenExpired { .. }
            | FlowEvent::TokenConsumed { .. } => Handled,
        }
    }
}

/// Leaves the state as it is and tells the caller why.
fn refuse(context: &mut Effect, error: StepUpError) -> Outcome<FlowState> {
    *context = Effect::Refused(error);
    Handled
}

fn no_methods(route: Route) -> StepUpError {
    StepUpError::NoMethodsAvailable { route: Some(route) }
}

fn not_available(method: Method) -> StepUpError {
    StepUpError::MethodNotAvailable { method }
}

// A state's local storage is dropped when the state is left, so a transition moves it into the next state instead
// of cloning it (this keeps an event near 100 ns on a slow VM; see docs/benchmarks.md).
fn take<T: Default>(value: &mut T) -> T {
    std::mem::take(value)
}

fn take_progress(progress: &mut PromptProgress) -> PromptProgress {
    std::mem::replace(progress, PromptProgress::new(MethodOptions::unknown()))
}

impl FlowMachine {
    /// A machine that stores tokens in `tokens`.
    #[must_use]
    pub fn new(tokens: TokenCell) -> Self {
        Self { tokens, last_attempt: AttemptId(0), pending_otp: None, code_in_use: None }
    }

    /// The number of the last verification the machine started (the next one gets the number after it).
    #[must_use]
    pub fn last_attempt(&self) -> AttemptId {
        self.last_attempt
    }

    /// The token cell.
    #[must_use]
    pub fn tokens(&self) -> &TokenCell {
        &self.tokens
    }

    fn now(&self) -> UnixTime {
        self.tokens.now()
    }

    /// The sent one-time code, if one is alive (see the field).
    #[must_use]
    pub fn pending_otp(&self) -> Option<&OtpVerification> {
        self.pending_otp.as_ref()
    }

    fn reset(&mut self) -> Outcome<FlowState> {
        self.tokens.clear();
        self.pending_otp = None;
        self.code_in_use = None;
        Transition(FlowState::idle())
    }

    /// The running verification's code is spent or dead: forget it, unless a newer code replaced it meanwhile.
    fn forget_code_in_use(&mut self) {
        if let Some(used) = self.code_in_use.take()
            && self.pending_otp.as_ref().is_some_and(|pending| pending.id == used)
        {
            self.pending_otp = None;
        }
    }

    /// A newer code replaces the one before: the server answers for the code sent last.
    fn keep_otp(&mut self, verification: &OtpVerification) -> Outcome<FlowState> {
        self.pending_otp = Some(verification.clone());
        Handled
    }

    /// A flow for exactly `scopes`, from outside a flow or from a flow for other scopes.
    fn request_flow(&mut self, scopes: &ScopeSet, context: &mut Effect) -> Outcome<FlowState> {
        if scopes.is_empty() {
            return refuse(context, StepUpError::NoScopes);
        }
        Transition(FlowState::required(scopes.clone(), MethodOptions::unknown(), None))
    }

    // statig 0.4.1 swaps source and target in `before_transition` (docs/design.md §12); `after_transition` is right.
    fn after_transition(&mut self, source: &FlowState, target: &FlowState) {
        tracing::debug!(from = source.name(), to = target.name(), "step-up flow transition");
    }
}

impl FlowState {
    /// The state's name: `idle`, `required`, `prompting`, `verifying`, `elevated` or `expired`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            FlowState::Idle {} => "idle",
            FlowState::Required { .. } => "required",
            FlowState::Prompting { .. } => "prompting",
            FlowState::Verifying { .. } => "verifying",
            FlowState::Elevated { .. } => "elevated",
            FlowState::Expired { .. } => "expired",
        }
    }

    /// The scopes the state is about (empty in `idle`).
    #[must_use]
    pub fn scopes(&self) -> ScopeSet {
        match self {
            FlowState::Idle {} => ScopeSet::empty(),
            FlowState::Required { scopes, .. }
            | FlowState::Prompting { scopes, .. }
            | FlowState::Verifying { scopes, .. }
            | FlowState::Elevated { scopes, .. }
            | FlowState::Expired { scopes } => scopes.clone(),
        }
    }

    /// The user's options as the flow knows them (`required`, `prompting`, `verifying`); `None` elsewhere.
    #[must_use]
    pub fn options(&self) -> Option<&MethodOptions> {
        match self {
            FlowState::Required { options, .. } => Some(options),
            FlowState::Prompting { progress, .. } | FlowState::Verifying { progress, .. } => {
                Some(&progress.options)
            }
            FlowState::Idle {} | FlowState::Elevated { .. } | FlowState::Expired { .. } => None,
        }
    }

    /// Whether a prompt or a verification is under way (`prompting`, `verifying`): another one must wait.
    #[must_use]
    pub fn is_running(&self) -> bool {
        matches!(self, FlowState::Prompting { .. } | FlowState::Verifying { .. })
    }

    /// Whether the state is inside the `in_flow` superstate (`required`, `prompting`, `verifying`).
    #[must_use]
    pub fn is_in_flow(&self) -> bool {
        matches!(self, FlowState::Required { .. } | FlowState::Prompting { .. } | FlowState::Verifying { .. })
    }
}
