//! `ReferenceFlow`: the flow rules restated as one plain `match`, without statig, beside a plain token list.
//!
//! It is deliberately written differently from the machine (one match over `(state, event)` instead of one
//! handler per state and a superstate), so the two agreeing on random runs means something.

use std::sync::Arc;

use crate::credential::MethodOptions;
use crate::error::StepUpError;
use crate::flow::{AttemptId, Effect, FlowEvent, FlowState, PromptProgress};
use crate::method::{Method, Route};
use crate::otp::OtpVerification;
use crate::scope::{Scope, ScopeSet};
use crate::time::UnixTime;
use crate::token::{ElevatedToken, TokenError, TokenId};

/// One thing a test does to a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowAction {
    /// Feed an event.
    Event(FlowEvent),
    /// Let `secs` seconds pass; every token that expires is reported with `TokenExpired` (as the coordinator's
    /// expiry timer does) and pruned.
    Tick {
        /// Seconds to pass.
        secs: u64,
    },
    /// Spend a token for `scope` as a request would (`TokenCell::claim`); a single-use token that is taken is
    /// reported with `TokenConsumed`.
    Take {
        /// The scope of the request.
        scope: Scope,
    },
}

/// Whether the state took an event or ignored it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The state has a rule for this event (it may still leave everything as it was).
    Taken,
    /// The state does not take this event; nothing may change.
    Ignored,
}

/// The reference model: a state, a token list (newest first), a clock, and counters for fresh ids.
#[derive(Debug, Clone)]
pub struct ReferenceFlow {
    /// The state the rules say the flow is in.
    pub state: FlowState,
    /// The tokens the cell should hold, newest first (expired ones may linger until pruned).
    pub tokens: Vec<Arc<ElevatedToken>>,
    /// The current time.
    pub now: UnixTime,
    /// The number of the last verification started; the next gets the one after it.
    pub last_attempt: AttemptId,
    /// The one-time code sent last and still alive, in any state.
    pub pending_otp: Option<OtpVerification>,
    /// The code the running verification answers (its result forgets that code, not a newer one).
    pub code_in_use: Option<OtpVerification>,
    /// The next fresh token id number.
    pub next_token: u64,
    /// The events the last action delivered, what the state did with each, and the effect it must answer.
    pub last_events: Vec<(FlowEvent, Outcome, Effect)>,
}

impl ReferenceFlow {
    /// A model in `idle` with no tokens at `now`.
    #[must_use]
    pub fn new(now: UnixTime) -> Self {
        Self {
            state: FlowState::Idle {},
            tokens: Vec::new(),
            now,
            last_attempt: AttemptId(0),
            pending_otp: None,
            code_in_use: None,
            next_token: 1,
            last_events: Vec::new(),
        }
    }

    /// The ids of the unexpired tokens, newest first.
    #[must_use]
    pub fn live_token_ids(&self) -> Vec<TokenId> {
        self.tokens.iter().filter(|t| !t.is_expired_at(self.now)).map(|t| t.id().clone()).collect()
    }

    /// Applies an action; the events it delivered are in `last_events`.
    pub fn apply_action(&mut self, action: &FlowAction) {
        self.last_events.clear();
        match action {
            FlowAction::Event(event) => self.deliver(event.clone()),
            FlowAction::Tick { secs } => {
                self.now = self.now.plus_secs(*secs);
                let now = self.now;
                let expired: Vec<TokenId> =
                    self.tokens.iter().filter(|t| t.is_expired_at(now)).map(|t| t.id().clone()).collect();
                for token_id in expired {
                    self.deliver(FlowEvent::TokenExpired { token_id });
                }
                self.tokens.retain(|t| !t.is_expired_at(now));
            }
            FlowAction::Take { scope } => {
                let now = self.now;
                let found = self.tokens.iter().find(|t| !t.is_expired_at(now) && t.covers(scope)).cloned();
                if let Some(token) = found.filter(|t| t.is_single_use()) {
                    self.tokens.retain(|t| t.id() != token.id() && !t.is_expired_at(now));
                    self.deliver(FlowEvent::TokenConsumed { token_id: token.id().clone() });
                }
            }
        }
    }

    fn deliver(&mut self, event: FlowEvent) {
        let (outcome, effect) = self.handle(&event);
        self.last_events.push((event, outcome, effect));
    }

    /// The rules, as one match. Returns whether the state took the event, and the effect the machine must
    /// answer with.
    pub fn handle(&mut self, event: &FlowEvent) -> (Outcome, Effect) {
        use FlowEvent as E;
        use FlowState as S;

        let now = self.now;
        let in_flow = matches!(self.state, S::Required { .. } | S::Prompting { .. } | S::Verifying { .. });
        let mut effect = Effect::None;
        let next = match (&self.state, event) {
            (_, E::Reset) => {
                self.tokens.clear();
                self.pending_otp = None;
                self.code_in_use = None;
                S::Idle {}
            }
            (state, E::OtpSent { verification }) => {
                self.pending_otp = Some(verification.clone());
                state.clone()
            }
            (_, E::FlowRequested { scopes }) if scopes.is_empty() => {
                return (Outcome::Ignored, Effect::Refused(StepUpError::NoScopes));
            }
            (state, E::FlowRequested { scopes }) if in_flow && state.scopes() == *scopes => state.clone(),
            (S::Verifying { .. }, E::FlowRequested { .. }) => {
                return (Outcome::Ignored, Effect::Refused(StepUpError::Busy));
            }
            (_, E::FlowRequested { scopes }) => {
                S::Required { scopes: scopes.clone(), options: MethodOptions::unknown(), last_error: None }
            }
            (S::Required { .. } | S::Prompting { .. } | S::Verifying { .. }, E::Cancel) => S::Idle {},
            (S::Verifying { .. }, E::PromptOpened { .. } | E::VerificationStarted { .. }) => {
                return (Outcome::Ignored, Effect::Refused(StepUpError::Busy));
            }
            (S::Idle {} | S::Elevated { .. } | S::Expired { .. }, E::PromptOpened { route, .. }) => {
                let refused = StepUpError::NoMethodsAvailable { route: Some(*route) };
                return (Outcome::Ignored, Effect::Refused(refused));
            }
            (
                S::Idle {} | S::Elevated { .. } | S::Expired { .. } | S::Required { .. },
                E::VerificationStarted { method },
            ) => {
                return (
                    Outcome::Ignored,
                    Effect::Refused(StepUpError::MethodNotAvailable { method: *method }),
                );
            }

            (
                S::Idle {} | S::Elevated { .. } | S::Expired { .. },
                E::RequirementChecked { scope, required: true, options },
            ) => S::Required {
                scopes: ScopeSet::one(scope.clone()),
                options: options.clone(),
                last_error: None,
            },
            (S::Idle {} | S::Elevated { .. } | S::Expired { .. }, E::Challenged { scopes })
                if !scopes.is_empty() =>
            {
                S::Required { scopes: scopes.clone(), options: MethodOptions::unknown(), last_error: None }
            }
            (S::Expired { .. }, E::RequirementChecked { required: false, .. }) => S::Idle {},

            (S::Required { scopes, .. }, E::RequirementChecked { scope, required: true, options }) => {
                S::Required {
                    scopes: scopes.union(&ScopeSet::one(scope.clone())),
                    options: options.clone(),
                    last_error: None,
                }
            }
            (S::Required { scopes, options, last_error }, E::Challenged { scopes: more }) => S::Required {
                scopes: scopes.union(more),
                options: options.clone(),
                last_error: last_error.clone(),
            },
            (S::Required { scopes, options, .. }, E::PromptOpened { route, options: offered }) => {
                let chosen = if offered.is_known() { offered.clone() } else { options.clone() };
                match route_refusal(&chosen, *route) {
                    Some(refused) => {
                        effect = Effect::Refused(refused.clone());
                        S::Required {
                            scopes: scopes.clone(),
                            options: options.clone(),
                            last_error: Some(refused),
                        }
                    }
                    None => S::Prompting {
                        scopes: scopes.clone(),
                        route: *route,
                        progress: PromptProgress::new(chosen),
                    },
                }
            }

            (
                S::Prompting { scopes, route: current, progress },
                E::PromptOpened { route, options: offered },
            ) => {
                let chosen = if offered.is_known() { offered.clone() } else { progress.options.clone() };
                match route_refusal(&chosen, *route) {
                    Some(refused) => {
                        effect = Effect::Refused(refused);
                        S::Prompting { scopes: scopes.clone(), route: *current, progress: progress.clone() }
                    }
                    None => S::Prompting {
                        scopes: scopes.clone(),
                        route: *route,
                        progress: PromptProgress::new(chosen),
                    },
                }
            }
            (S::Prompting { scopes, route, progress }, E::VerificationStarted { method }) => {
                let offered = route_of(*method) == *route && progress.options.allows(*method);
                let otp = self.pending_otp.clone().filter(|otp| otp.channel.method() == *method);
                if !offered {
                    let refused = StepUpError::MethodNotAvailable { method: *method };
                    return (Outcome::Ignored, Effect::Refused(refused));
                }
                if matches!(method, Method::EmailOtp | Method::SmsOtp) && otp.is_none() {
                    return (Outcome::Ignored, Effect::Refused(StepUpError::OtpNotSent));
                }
                let attempt = AttemptId(self.last_attempt.0 + 1);
                self.last_attempt = attempt;
                self.code_in_use.clone_from(&otp);
                effect = Effect::Verify { attempt, method: *method, scopes: scopes.clone(), otp };
                S::Verifying {
                    scopes: scopes.clone(),
                    route: *route,
                    method: *method,
                    attempt,
                    progress: progress.clone(),
                }
            }

            (
                S::Verifying { scopes, method, attempt, progress, .. },
                E::Verified { attempt: finished, token },
            ) if finished == attempt => {
                let _ = method;
                forget_code_in_use(&mut self.pending_otp, &mut self.code_in_use);
                let refused: Option<StepUpError> = if token.expires_at() <= now {
                    Some(TokenError::Expired { expires_at: token.expires_at(), now }.into())
                } else if !token.scopes().covers(scopes) {
                    Some(StepUpError::ScopesNotGranted {
                        requested: scopes.clone(),
                        granted: token.scopes().clone(),
                    })
                } else {
                    None
                };
                if let Some(error) = refused {
                    effect = Effect::Failed(error.clone());
                    S::Required {
                        scopes: scopes.clone(),
                        options: progress.options.clone(),
                        last_error: Some(error),
                    }
                } else {
                    self.tokens.retain(|t| {
                        t.scopes() != token.scopes() && t.id() != token.id() && !t.is_expired_at(now)
                    });
                    self.tokens.insert(0, Arc::clone(token));
                    effect = Effect::Elevated(token.info().clone());
                    S::Elevated {
                        scopes: token.scopes().clone(),
                        token_id: token.id().clone(),
                        expires_at: token.expires_at(),
                    }
                }
            }
            (
                S::Verifying { scopes, route, method, attempt, progress },
                E::VerificationFailed { attempt: finished, error },
            ) if finished == attempt => {
                let _ = method;
                if matches!(error, StepUpError::InvalidVerification { .. }) {
                    forget_code_in_use(&mut self.pending_otp, &mut self.code_in_use);
                }
                self.code_in_use = None;
                if error.is_retryable() && progress.attempts_left > 1 {
                    let mut progress = progress.clone();
                    progress.attempts_left -= 1;
                    progress.last_error = Some(error.clone());
                    effect = Effect::Retry { error: error.clone(), attempts_left: progress.attempts_left };
                    S::Prompting { scopes: scopes.clone(), route: *route, progress }
                } else {
                    effect = Effect::Failed(error.clone());
                    S::Required {
                        scopes: scopes.clone(),
                        options: progress.options.clone(),
                        last_error: Some(error.clone()),
                    }
                }
            }

            (S::Elevated { scopes, token_id, .. }, E::TokenExpired { token_id: expired })
                if expired == token_id =>
            {
                self.tokens.retain(|t| t.id() != token_id && !t.is_expired_at(now));
                S::Expired { scopes: scopes.clone() }
            }
            (S::Elevated { token_id, .. }, E::TokenConsumed { token_id: spent }) if spent == token_id => {
                self.tokens.retain(|t| t.id() != token_id && !t.is_expired_at(now));
                S::Idle {}
            }

            _ => return (Outcome::Ignored, effect),
        };
        self.state = next;
        (Outcome::Taken, effect)
    }
}

/// The running verification's code is spent or dead: it goes, a newer one stays.
fn forget_code_in_use(pending: &mut Option<OtpVerification>, in_use: &mut Option<OtpVerification>) {
    let used = in_use.take();
    if used.is_some() && pending.as_ref().map(|p| &p.id) == used.as_ref().map(|u| &u.id) {
        *pending = None;
    }
}

/// The route table, restated as its own exhaustive match (not `Method::route`): a new method does not compile
/// until the model says where it belongs.
fn route_of(method: Method) -> Route {
    match method {
        Method::Passkey | Method::Totp | Method::RecoveryCode => Route::Mfa,
        Method::EmailOtp | Method::SmsOtp | Method::ExternalWallet => Route::Reauthenticate,
        Method::ExternalAuth => Route::External,
    }
}

/// Why a prompt on `route` cannot be opened with `options`, restated from docs/design.md §1: a user with MFA credentials
/// must use MFA (re-authentication is refused), and known options must offer some method of the route (recovery
/// codes ride along with MFA; external auth only when the server offers it).
fn route_refusal(options: &MethodOptions, route: Route) -> Option<StepUpError> {
    let credentials = options.credentials();
    let has_mfa = credentials.iter().any(|c| route_of(c.method) == Route::Mfa);
    if route == Route::Reauthenticate && has_mfa {
        return Some(StepUpError::ReauthenticationNotAllowed);
    }
    // The server offers external auth as a credential of its own, to users with MFA too if it allows.
    let offers_route = credentials.iter().any(|c| route_of(c.method) == route);
    if options.is_known() && !offers_route {
        return Some(StepUpError::NoMethodsAvailable { route: Some(route) });
    }
    None
}
