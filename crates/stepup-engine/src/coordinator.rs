//! The coordinator actor: owns the flow machine, the token cell's write side, the expiry timers, the flow
//! numbers, the verifiers and the callers waiting on the current flow (docs/design.md §5).
//!
//! The coordinator never waits on the network: verifiers and the prompt driver do the slow work and report back
//! with casts, so a message is handled in microseconds and the published state is always current. Every
//! message ends with `CoordinatorState::publish`, which sends the machine's state on the `watch` channel.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use stepup_core::{
    CredentialId, ElevatedToken, Flow, FlowEvent, FlowId, FlowState, MethodOptions, OtpVerification, Route,
    Scope, ScopeSet, StepUpError, TokenCell, TokenId, TokenInfo,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::frontend::SharedFrontend;
use crate::prompt::{self, PromptId};
use crate::verifiers::{self, VerifierConfig, VerifierKind, VerifierMsg, VerifyJob, VerifyRequest};

/// The state the engine publishes: the flow machine's state (see `docs/state-machine.md`).
pub type StepUpState = FlowState;

/// A reply port for calls that end with a token.
pub type TokenReply = RpcReplyPort<Result<TokenInfo, StepUpError>>;

/// The coordinator's messages: the requests apps send (as [`crate::EngineRequest`], through an
/// [`crate::EngineHandle`]) and the engine's own, and the reports of verifiers, timers and the prompt driver.
/// Crate-private: no app can send a report.
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
    /// A step-up check answered (the facade's `is_step_up_required` reports it).
    RequirementChecked {
        /// The scope checked.
        scope: Scope,
        /// Whether step-up is needed.
        required: bool,
        /// The user's usable credentials.
        options: MethodOptions,
        /// Answered once the machine has taken the answer in (so the caller sees the new state).
        reply: Option<RpcReplyPort<()>>,
    },
    /// Send a one-time code to the user's email or phone.
    SendOtp {
        /// Which credential; `None` picks the email, else the phone.
        credential: Option<CredentialId>,
        /// The prompt asking, if a prompt driver asks: refused with `Cancelled` once that prompt has ended.
        /// `None` from apps and custom UIs.
        prompt: Option<PromptId>,
        /// The answer.
        reply: RpcReplyPort<Result<OtpVerification, StepUpError>>,
    },
    /// Verify a proof for `scopes` and store the token.
    Verify {
        /// The scopes to elevate.
        scopes: ScopeSet,
        /// The proof.
        request: VerifyRequest,
        /// The prompt asking, if a prompt driver asks: refused with `Cancelled` once that prompt has ended (a
        /// driver aborted mid-step must not start a flow of its own). `None` from apps and custom UIs.
        prompt: Option<PromptId>,
        /// The answer.
        reply: TokenReply,
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
    /// A verifier finished verification `flow`.
    VerifierDone {
        /// The verification's number.
        flow: FlowId,
        /// The token, or why not.
        result: Result<std::sync::Arc<ElevatedToken>, StepUpError>,
    },
    /// Verification `flow` ran past the verify timeout.
    VerificationTimedOut {
        /// The verification's number.
        flow: FlowId,
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

/// The coordinator's state and tokens at one moment (see [`CoordinatorMsg::Inspect`]).
#[derive(Debug, Clone)]
pub struct EngineSnapshot {
    /// The flow's state.
    pub state: StepUpState,
    /// The stored tokens.
    pub tokens: std::sync::Arc<stepup_core::TokenSet>,
}

/// How the coordinator is set up.
#[derive(Clone)]
pub(crate) struct CoordinatorArgs {
    /// The token cell (the coordinator is its only writer, besides `take` of single-use tokens).
    pub tokens: TokenCell,
    /// What the verifiers need.
    pub verifiers: VerifierConfig,
    /// The front end for prompt flows, if any.
    pub frontend: Option<SharedFrontend>,
    /// How long one verification may take before it fails with `Timeout` (signers included).
    pub verify_timeout: Duration,
    /// How long a prompt flow may wait on the person before it ends with `Timeout` for every waiting caller.
    pub prompt_timeout: Duration,
    /// Where the state is published.
    pub state: watch::Sender<StepUpState>,
}

impl std::fmt::Debug for CoordinatorArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoordinatorArgs")
            .field("verifiers", &self.verifiers)
            .field("has_frontend", &self.frontend.is_some())
            .field("verify_timeout", &self.verify_timeout)
            .field("prompt_timeout", &self.prompt_timeout)
            .finish_non_exhaustive()
    }
}

/// The coordinator actor.
#[derive(Debug, Default)]
pub(crate) struct Coordinator;

/// A verification in progress.
#[derive(Debug)]
struct ActiveVerification {
    flow: FlowId,
    kind: VerifierKind,
    method: stepup_core::Method,
    reply: TokenReply,
}

/// A prompt flow in progress: the driver task and the callers waiting on it.
#[derive(Debug)]
struct RunningPrompt {
    id: PromptId,
    scopes: ScopeSet,
    task: JoinHandle<()>,
    waiters: Vec<TokenReply>,
}

/// The coordinator's state.
pub(crate) struct CoordinatorState {
    myself: ActorRef<CoordinatorMsg>,
    flow: Flow,
    args: CoordinatorArgs,
    verifiers: HashMap<VerifierKind, ActorRef<VerifierMsg>>,
    last_flow: FlowId,
    last_prompt: PromptId,
    pending_otp: Option<OtpVerification>,
    active: Option<ActiveVerification>,
    prompt: Option<RunningPrompt>,
    /// How many resets so far: replies to requests made before the latest reset are stale.
    epoch: u64,
}

impl std::fmt::Debug for CoordinatorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoordinatorState")
            .field("state", self.flow.state())
            .field("active", &self.active)
            .field("prompt", &self.prompt.as_ref().map(|p| (&p.id, &p.scopes)))
            .finish_non_exhaustive()
    }
}

impl Actor for Coordinator {
    type Msg = CoordinatorMsg;
    type State = CoordinatorState;
    type Arguments = CoordinatorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: CoordinatorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut verifiers = HashMap::new();
        for kind in VerifierKind::ALL {
            let verifier = verifiers::spawn(kind, args.verifiers.clone(), myself.get_cell()).await?;
            verifiers.insert(kind, verifier);
        }
        let flow = Flow::new(args.tokens.clone());
        let state = CoordinatorState {
            myself: myself.clone(),
            flow,
            args,
            verifiers,
            last_flow: FlowId(0),
            last_prompt: PromptId(0),
            pending_otp: None,
            active: None,
            prompt: None,
            epoch: 0,
        };
        state.publish();
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.handle(&myself, message);
        state.publish();
        Ok(())
    }

    /// A verifier died: restart it, fail only the flow it was serving, keep running (the default would stop
    /// the coordinator, docs/design.md §12).
    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let dead = match &event {
            SupervisionEvent::ActorFailed(cell, _) | SupervisionEvent::ActorTerminated(cell, _, _) => cell,
            _ => return Ok(()),
        };
        let Some(kind) = state.kind_of(dead) else { return Ok(()) };
        tracing::warn!(verifier = kind.name(), "verifier stopped; restarting it");
        let verifier = verifiers::spawn(kind, state.args.verifiers.clone(), myself.get_cell()).await?;
        state.verifiers.insert(kind, verifier);
        if let Some(active) = state.active.as_ref().filter(|a| a.kind == kind) {
            let (flow, method) = (active.flow, active.method);
            state.finish_verification(flow, Err(StepUpError::VerifierFailed { method }));
        }
        state.publish();
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.end_prompt(&Err(StepUpError::EngineStopped));
        Ok(())
    }
}

impl CoordinatorState {
    fn handle(&mut self, myself: &ActorRef<CoordinatorMsg>, message: CoordinatorMsg) {
        match message {
            CoordinatorMsg::RequirementChecked { scope, required, options, reply } => {
                self.flow.handle(&FlowEvent::RequirementChecked { scope, required, options });
                self.publish();
                if let Some(reply) = reply {
                    let _ = reply.send(());
                }
            }
            CoordinatorMsg::Check { scope, reply } => {
                // The network call runs beside the actor; its answer comes back as `RequirementChecked`, and
                // the caller is answered once the machine has taken it in.
                let (api, tokens, myself) =
                    (self.args.verifiers.api.clone(), self.args.tokens.clone(), myself.clone());
                tokio::spawn(async move {
                    let answer = match crate::facade::fetch_requirement(&api, &tokens, &scope).await {
                        Ok((requirement, true)) => {
                            let report = |taken| CoordinatorMsg::RequirementChecked {
                                scope,
                                required: requirement.required,
                                options: requirement.options.clone(),
                                reply: Some(taken),
                            };
                            match myself.call(report, None).await {
                                Ok(ractor::rpc::CallResult::Success(())) => Ok(requirement),
                                _ => Err(StepUpError::EngineStopped),
                            }
                        }
                        Ok((requirement, false)) => Ok(requirement),
                        Err(error) => Err(error),
                    };
                    let _ = reply.send(answer);
                });
            }
            CoordinatorMsg::SendOtp { credential, prompt, reply } => {
                if let Err(refused) = self.admit_prompt_request(prompt) {
                    let _ = reply.send(Err(refused));
                    return;
                }
                // A user with MFA cannot re-authenticate by a code: when the flow knows it (a check told it),
                // say so now rather than send a code the server will refuse to elevate by.
                if self.flow.state().options().and_then(MethodOptions::route) == Some(Route::Mfa) {
                    let _ = reply.send(Err(StepUpError::ReauthenticationNotAllowed));
                    return;
                }
                let verifier = &self.verifiers[&VerifierKind::Otp];
                let epoch = self.epoch;
                let message = VerifierMsg::SendOtp { credential, epoch, reply_to: myself.clone(), reply };
                if let Err(ractor::MessagingErr::SendErr(VerifierMsg::SendOtp { reply, .. })) =
                    verifier.send_message(message)
                {
                    let _ = reply
                        .send(Err(StepUpError::VerifierFailed { method: stepup_core::Method::EmailOtp }));
                }
            }
            CoordinatorMsg::OtpSent { result, epoch, reply } => {
                if epoch != self.epoch {
                    // Asked for before a reset: the code went out, but the state it belonged to is gone.
                    let _ = reply.send(Err(StepUpError::Cancelled));
                    return;
                }
                if let Ok(sent) = &result {
                    self.pending_otp = Some(sent.clone());
                    self.flow.handle(&FlowEvent::OtpSent { verification: sent.clone() });
                }
                self.publish();
                let _ = reply.send(result);
            }
            CoordinatorMsg::Verify { scopes, request, prompt, reply } => {
                match self.admit_prompt_request(prompt) {
                    Ok(()) => self.start_verification(myself, scopes, request, reply),
                    Err(refused) => {
                        let _ = reply.send(Err(refused));
                    }
                }
            }
            CoordinatorMsg::VerifierDone { flow, result } => self.finish_verification(flow, result),
            CoordinatorMsg::VerificationTimedOut { flow } => {
                self.finish_verification(flow, Err(StepUpError::Timeout))
            }
            CoordinatorMsg::Prompt { scopes, route, fresh, reply } => {
                self.start_prompt(myself, scopes, route, fresh, reply)
            }
            CoordinatorMsg::PromptOpened { prompt, route, options, reply } => {
                let answer = self.open_prompt(prompt, route, options);
                self.publish();
                let _ = reply.send(answer);
            }
            CoordinatorMsg::PromptFinished { prompt, result } => {
                if self.prompt.as_ref().is_some_and(|p| p.id == prompt) {
                    if result.is_err() && self.flow.state().is_in_flow() {
                        self.flow.handle(&FlowEvent::Cancel);
                    }
                    self.end_prompt(&result);
                }
            }
            CoordinatorMsg::Cancel => {
                self.flow.handle(&FlowEvent::Cancel);
                self.fail_active(StepUpError::Cancelled);
                self.end_prompt(&Err(StepUpError::Cancelled));
            }
            CoordinatorMsg::Reset { reply } => {
                self.epoch = self.epoch.wrapping_add(1);
                self.flow.handle(&FlowEvent::Reset);
                self.pending_otp = None;
                self.fail_active(StepUpError::Cancelled);
                self.end_prompt(&Err(StepUpError::Cancelled));
                self.publish();
                if let Some(reply) = reply {
                    let _ = reply.send(());
                }
            }
            CoordinatorMsg::Inspect { reply } => {
                let snapshot =
                    EngineSnapshot { state: self.flow.state().clone(), tokens: self.args.tokens.snapshot() };
                let _ = reply.send(snapshot);
            }
            CoordinatorMsg::TokenConsumed { token_id } => {
                self.flow.handle(&FlowEvent::TokenConsumed { token_id: token_id.clone() });
                self.args.tokens.remove(&token_id);
            }
            CoordinatorMsg::PromptTimedOut { prompt } => {
                if self.prompt.as_ref().is_some_and(|p| p.id == prompt) {
                    // The person walked away: the flow ends for everyone waiting on it, and a verification
                    // still running for it is dropped when it reports.
                    self.flow.handle(&FlowEvent::Cancel);
                    self.fail_active(StepUpError::Timeout);
                    self.end_prompt(&Err(StepUpError::Timeout));
                }
            }
            CoordinatorMsg::TokenExpired { token_id } => self.token_timer_fired(myself, token_id),
        }
    }

    /// Publishes the machine's state on the watch channel if it changed. Called after every message, and also
    /// before every reply that follows a state change: a caller who hears back must see the state its call
    /// produced (`verify_otp` returns, `state()` says `elevated`).
    fn publish(&self) {
        let state = self.flow.state();
        self.args.state.send_if_modified(|published| {
            if published == state {
                false
            } else {
                *published = state.clone();
                true
            }
        });
    }

    fn kind_of(&self, cell: &ActorCell) -> Option<VerifierKind> {
        let id = cell.get_id();
        self.verifiers.iter().find(|(_, actor)| actor.get_id() == id).map(|(kind, _)| *kind)
    }

    /// Brings the machine to `prompting` on `route` for `scopes` (a custom UI calls verify methods without a
    /// prompt), then starts verification number `flow` with the request's method.
    fn start_verification(
        &mut self,
        myself: &ActorRef<CoordinatorMsg>,
        scopes: ScopeSet,
        request: VerifyRequest,
        reply: TokenReply,
    ) {
        if self.active.is_some() {
            let _ = reply.send(Err(StepUpError::Busy));
            return;
        }
        let method = request.method(self.pending_otp.as_ref());
        // Refusals that need no state come first, so a refused call leaves the flow as it was.
        if method.is_otp() && self.pending_otp.is_none() {
            let _ = reply.send(Err(StepUpError::OtpNotSent));
            return;
        }
        if let Err(error) = self.enter_prompt(&scopes, method.route()) {
            let _ = reply.send(Err(error));
            return;
        }
        if let Some(otp) = self.pending_otp.clone().filter(|_| method.is_otp()) {
            self.flow.handle(&FlowEvent::OtpSent { verification: otp });
        }
        let flow = self.last_flow.next();
        self.flow.handle(&FlowEvent::VerificationStarted { method, flow });
        if !matches!(self.flow.state(), FlowState::Verifying { flow: started, .. } if *started == flow) {
            let _ = reply.send(Err(StepUpError::MethodNotAvailable { method }));
            return;
        }
        self.last_flow = flow;
        let kind = request.kind();
        let job = VerifyJob {
            flow,
            scopes: self.flow.state().scopes(),
            otp: if method.is_otp() { self.pending_otp.clone() } else { None },
            request,
            reply_to: myself.clone(),
        };
        self.args.verifiers.current_flow.store(flow.0, Ordering::Release);
        if self.verifiers[&kind].send_message(VerifierMsg::Verify(job)).is_err() {
            // The verifier is being restarted; the supervision event will not see this flow, so fail it here.
            self.active = Some(ActiveVerification { flow, kind, method, reply });
            self.finish_verification(flow, Err(StepUpError::VerifierFailed { method }));
            return;
        }
        self.active = Some(ActiveVerification { flow, kind, method, reply });
        myself.send_after(self.args.verify_timeout, move || CoordinatorMsg::VerificationTimedOut { flow });
    }

    /// Makes sure the machine is prompting on `route` for (at least) `scopes`.
    fn enter_prompt(&mut self, scopes: &ScopeSet, route: Route) -> Result<(), StepUpError> {
        if scopes.is_empty() {
            return Err(StepUpError::NoScopes);
        }
        if !route.prompts_a_person() && self.prompt.is_some() {
            // The app's backend vouching mid-prompt would switch the person's prompt to another route under them.
            return Err(StepUpError::Busy);
        }
        let state = self.flow.state();
        if let Some(prompt) = &self.prompt {
            // A prompt owns the flow: a verification for scopes it covers is part of it; others must wait.
            if !prompt.scopes.covers(scopes) {
                return Err(StepUpError::Busy);
            }
        } else if state.is_in_flow() && state.scopes() != *scopes {
            // Without a prompt the caller's scopes are the request, exactly: the flow may have gathered more
            // scopes from earlier checks, and a token for those would grant more than was asked (least
            // privilege; one single-use scope would also make the whole token single-use). Start over.
            self.flow.handle(&FlowEvent::Cancel);
        }
        if !self.flow.state().is_in_flow() {
            self.flow.handle(&FlowEvent::Challenged { scopes: scopes.clone() });
        }
        match self.flow.state() {
            FlowState::Prompting { route: current, .. } if *current == route => return Ok(()),
            _ => self.flow.handle(&FlowEvent::PromptOpened { route, options: MethodOptions::unknown() }),
        }
        match self.flow.state() {
            FlowState::Prompting { route: current, .. } if *current == route => Ok(()),
            FlowState::Required { last_error: Some(error), .. } => Err(error.clone()),
            FlowState::Prompting { progress, .. } => {
                Err(progress.options.check_route(route).err().unwrap_or(StepUpError::Busy))
            }
            _ => Err(StepUpError::NoMethodsAvailable { route: Some(route) }),
        }
    }

    /// Feeds a verifier's result (or a timeout, or a crash) for `flow`. A result for any other number is stale
    /// (the flow was cancelled, reset or timed out) and dropped.
    fn finish_verification(
        &mut self,
        flow: FlowId,
        result: Result<std::sync::Arc<ElevatedToken>, StepUpError>,
    ) {
        let Some(active) = self.active.take_if(|a| a.flow == flow) else {
            tracing::debug!(%flow, "dropping a stale verification result");
            return;
        };
        self.args.verifiers.current_flow.store(0, Ordering::Release);
        let outcome = match result {
            Ok(token) => {
                self.flow.handle(&FlowEvent::Verified { flow, token: token.clone() });
                match self.flow.state() {
                    FlowState::Elevated { .. } => Ok(token.info().clone()),
                    FlowState::Required { last_error: Some(error), .. } => Err(error.clone()),
                    _ => Err(StepUpError::Cancelled),
                }
            }
            Err(error) => {
                self.flow.handle(&FlowEvent::VerificationFailed { flow, error: error.clone() });
                Err(error)
            }
        };
        if active.method.is_otp() && matches!(outcome, Ok(_) | Err(StepUpError::InvalidVerification { .. })) {
            self.pending_otp = None;
        }
        if let Ok(info) = &outcome {
            self.schedule_expiry(info);
            self.settle_waiters(info);
        }
        self.publish();
        let _ = active.reply.send(outcome);
    }

    fn fail_active(&mut self, error: StepUpError) {
        if let Some(active) = self.active.take() {
            self.args.verifiers.current_flow.store(0, Ordering::Release);
            self.publish();
            let _ = active.reply.send(Err(error));
        }
    }

    fn schedule_expiry(&self, info: &TokenInfo) {
        let wait = self.args.tokens.now().until(info.expires_at);
        let token_id = info.id.clone();
        self.myself.send_after(wait, move || CoordinatorMsg::TokenExpired { token_id });
    }

    fn token_timer_fired(&mut self, myself: &ActorRef<CoordinatorMsg>, token_id: TokenId) {
        let now = self.args.tokens.now();
        let snapshot = self.args.tokens.snapshot();
        if let Some(token) = snapshot.by_id(&token_id)
            && !token.is_expired_at(now)
        {
            // The engine's clock is behind the timer (seconds are whole): look again when it catches up.
            let wait = now.until(token.expires_at()).max(Duration::from_millis(100));
            myself.send_after(wait, move || CoordinatorMsg::TokenExpired { token_id });
            return;
        }
        self.flow.handle(&FlowEvent::TokenExpired { token_id });
        self.args.tokens.prune_at(now);
    }

    /// Answers the prompt's waiters whose scopes the new token covers.
    fn settle_waiters(&mut self, info: &TokenInfo) {
        self.publish();
        // The token covers what the prompt asked for: the prompt is done. Ended here, not when its driver task
        // reports back, so a prompt for other scopes that arrives in between starts instead of meeting `Busy`.
        if self.prompt.as_ref().is_some_and(|prompt| info.scopes.covers(&prompt.scopes)) {
            self.end_prompt(&Ok(info.clone()));
        }
    }

    /// Admits a request from prompt `prompt` (if any), or refuses it: the prompt must still be the running one,
    /// and someone must still be waiting for it. Not a pure check: a prompt every caller gave up on is ended
    /// here, at its next step (hence the name).
    fn admit_prompt_request(&mut self, prompt: Option<PromptId>) -> Result<(), StepUpError> {
        let Some(id) = prompt else { return Ok(()) };
        let Some(running) = self.prompt.as_mut().filter(|p| p.id == id) else {
            return Err(StepUpError::Cancelled);
        };
        running.waiters.retain(|waiter| !waiter.is_closed());
        if running.waiters.is_empty() {
            tracing::debug!(prompt = id.0, "every caller left the prompt; ending it");
            self.flow.handle(&FlowEvent::Cancel);
            self.end_prompt(&Err(StepUpError::Cancelled));
            return Err(StepUpError::Cancelled);
        }
        Ok(())
    }

    fn start_prompt(
        &mut self,
        myself: &ActorRef<CoordinatorMsg>,
        scopes: ScopeSet,
        route: Option<Route>,
        fresh: bool,
        reply: TokenReply,
    ) {
        if scopes.is_empty() {
            let _ = reply.send(Err(StepUpError::NoScopes));
            return;
        }
        if let Some(token) = self.args.tokens.get_covering(&scopes).filter(|_| !fresh) {
            let _ = reply.send(Ok(token.info().clone()));
            return;
        }
        if let Some(prompt) = self.prompt.as_mut() {
            // Single flight: a prompt for these scopes is running; wait for it instead of opening another.
            if prompt.scopes.covers(&scopes) {
                prompt.waiters.push(reply);
            } else {
                let _ = reply.send(Err(StepUpError::Busy));
            }
            return;
        }
        let Some(frontend) = self.args.frontend.clone() else {
            let _ = reply.send(Err(StepUpError::NotConfigured { what: "front end" }));
            return;
        };
        if self.active.is_some() {
            let _ = reply.send(Err(StepUpError::Busy));
            return;
        }
        let state = self.flow.state();
        if state.is_in_flow() && state.scopes() != scopes {
            // The prompt asks for exactly its scopes, not those the flow gathered from earlier checks.
            self.flow.handle(&FlowEvent::Cancel);
        }
        self.flow.handle(&FlowEvent::Challenged { scopes: scopes.clone() });
        self.last_prompt = PromptId(self.last_prompt.0.wrapping_add(1));
        let id = self.last_prompt;
        let task = prompt::spawn(prompt::PromptTask {
            id,
            coordinator: myself.clone(),
            config: self.args.verifiers.clone(),
            frontend,
            scopes: scopes.clone(),
            route,
        });
        self.prompt = Some(RunningPrompt { id, scopes, task, waiters: vec![reply] });
        myself.send_after(self.args.prompt_timeout, move || CoordinatorMsg::PromptTimedOut { prompt: id });
    }

    fn open_prompt(
        &mut self,
        prompt: PromptId,
        route: Route,
        options: MethodOptions,
    ) -> Result<(), StepUpError> {
        self.admit_prompt_request(Some(prompt))?;
        options.check_route(route)?;
        let scopes = self.prompt.as_ref().map(|p| p.scopes.clone()).unwrap_or_default();
        if self.flow.state().scopes() != scopes {
            // A check while the driver asked the server for options widened the flow: start it over for exactly
            // the prompt's scopes, so the token grants what was asked and no more.
            self.flow.handle(&FlowEvent::Cancel);
            self.flow.handle(&FlowEvent::Challenged { scopes });
        }
        self.flow.handle(&FlowEvent::PromptOpened { route, options });
        match self.flow.state() {
            FlowState::Prompting { route: current, .. } if *current == route => Ok(()),
            FlowState::Required { last_error: Some(error), .. } => Err(error.clone()),
            _ => Err(StepUpError::NoMethodsAvailable { route: Some(route) }),
        }
    }

    /// Ends the running prompt: stops its driver and answers every waiter with `result`.
    fn end_prompt(&mut self, result: &Result<TokenInfo, StepUpError>) {
        if let Some(prompt) = self.prompt.take() {
            prompt.task.abort();
            self.publish();
            for waiter in prompt.waiters {
                let _ = waiter.send(result.clone());
            }
            // The front end hears how the flow ended however it ended (elevated, failed, cancelled, reset, timed
            // out), after the callers, and without holding up the coordinator.
            if let Some(frontend) = self.args.frontend.clone() {
                let outcome = result.clone();
                tokio::spawn(async move { frontend.finished(&outcome).await });
            }
        }
    }
}
