//! The coordinator actor: owns the flow machine, the token cell's write side, the expiry timers, the verifiers,
//! the running prompt and the callers waiting on the current flow (docs/design.md §5).
//!
//! The flow machine decides and the coordinator carries out: every event goes through [`CoordinatorState::apply`],
//! which feeds the machine, publishes the new state, and hands back the machine's [`Effect`] — start the
//! verifier, arm a timer, answer the callers. The coordinator keeps no flow facts of its own (the sent code, the
//! verification numbers and the tries left are the machine's); it keeps what the machine cannot: reply ports,
//! the prompt driver's task, the verifier actors.
//!
//! It never waits on the network: verifiers, the check task and the prompt driver do the slow work and report
//! back with casts, so a message is handled in microseconds and the published state is always current.
//!
//! One file per concern: [`messages`] (what it takes), `verification` (codes and proofs), `prompts` (the prompt
//! driver's flows), `timers` (token expiry, time limits), `check` (step-up checks).

mod check;
mod messages;
mod on_demand;
mod prompts;
mod timers;
mod verification;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use stepup_core::{Effect, Flow, FlowEvent, StepUpError, TokenCell};
use tokio::sync::watch;

pub(crate) use messages::{Attempt, CoordinatorMsg, VerifyCaller};
pub use messages::{EngineSnapshot, StepUpState, TokenReply};
pub(crate) use on_demand::OnDemand;

use crate::frontend::SharedFrontend;
use crate::prompt::PromptId;
use crate::verifiers::VerifierConfig;
use crate::verifiers::registry::VerifierRegistry;
use prompts::RunningPrompt;
use verification::ActiveVerification;

/// How the coordinator is set up.
#[derive(Clone)]
pub(crate) struct CoordinatorArgs {
    /// The token cell (the coordinator is its only writer, besides `claim` of single-use tokens).
    pub tokens: TokenCell,
    /// What the verifiers need.
    pub verifiers: VerifierConfig,
    /// The front end for prompt flows, if any.
    pub frontend: Option<SharedFrontend>,
    /// Where the state is published.
    pub state: watch::Sender<StepUpState>,
}

impl std::fmt::Debug for CoordinatorArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoordinatorArgs")
            .field("verifiers", &self.verifiers)
            .field("has_frontend", &self.frontend.is_some())
            .finish_non_exhaustive()
    }
}

/// The coordinator actor.
#[derive(Debug, Default)]
pub(crate) struct Coordinator;

/// The coordinator's state.
pub(crate) struct CoordinatorState {
    myself: ActorRef<CoordinatorMsg>,
    flow: Flow,
    args: CoordinatorArgs,
    verifiers: VerifierRegistry,
    last_prompt: PromptId,
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
            .field("prompt", &self.prompt)
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
        // Verifiers start when a flow first needs one (the registry), linked to this actor.
        let verifiers = VerifierRegistry::new(args.verifiers.clone(), myself.get_cell());
        let state = CoordinatorState {
            myself,
            flow: Flow::new(args.tokens.clone()),
            args,
            verifiers,
            last_prompt: PromptId(0),
            active: None,
            prompt: None,
            epoch: 0,
        };
        state.publish();
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.handle(message).await;
        state.publish();
        Ok(())
    }

    /// A verifier died: forget it (the next flow that needs one starts a fresh one), fail only the flow it was
    /// serving, keep running (the default would stop the coordinator, docs/design.md §12).
    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let dead = match &event {
            SupervisionEvent::ActorFailed(cell, _) | SupervisionEvent::ActorTerminated(cell, _, _) => cell,
            _ => return Ok(()),
        };
        let Some(kind) = state.verifiers.forget(dead) else { return Ok(()) };
        tracing::warn!(verifier = kind.name(), "verifier stopped; the next flow starts a fresh one");
        state.verifier_died(kind);
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
    async fn handle(&mut self, message: CoordinatorMsg) {
        match message {
            CoordinatorMsg::Check { scope, reply } => self.check(scope, reply),
            CoordinatorMsg::RequirementChecked { scope, required, options, reply } => {
                self.apply(&FlowEvent::RequirementChecked { scope, required, options });
                let _ = reply.send(());
            }
            CoordinatorMsg::SendOtp { credential, prompt, reuse_code_for, reply } => {
                self.send_otp(credential, prompt, reuse_code_for, reply).await;
            }
            CoordinatorMsg::OtpSent { result, epoch, reply } => self.otp_sent(result, epoch, reply),
            CoordinatorMsg::Verify { scopes, request, caller } => self.verify(scopes, request, caller).await,
            CoordinatorMsg::VerifierDone { attempt, result } => self.finish_verification(attempt, result),
            CoordinatorMsg::VerificationTimedOut { attempt } => {
                self.finish_verification(attempt, Err(StepUpError::Timeout));
            }
            CoordinatorMsg::Prompt { scopes, route, fresh, reply } => {
                self.start_prompt(scopes, route, fresh, reply);
            }
            CoordinatorMsg::PromptOpened { prompt, route, options, reply } => {
                let answer = self.open_prompt(prompt, route, options);
                let _ = reply.send(answer);
            }
            CoordinatorMsg::PromptFinished { prompt, result } => self.prompt_finished(prompt, &result),
            CoordinatorMsg::PromptTimedOut { prompt } => self.prompt_timed_out(prompt),
            CoordinatorMsg::Cancel => self.cancel_flow(&StepUpError::Cancelled),
            CoordinatorMsg::Reset { reply } => {
                self.epoch = self.epoch.wrapping_add(1);
                self.apply(&FlowEvent::Reset);
                self.fail_active(StepUpError::Cancelled);
                self.end_prompt(&Err(StepUpError::Cancelled));
                if let Some(reply) = reply {
                    let _ = reply.send(());
                }
            }
            CoordinatorMsg::Inspect { reply } => {
                let _ = reply.send(EngineSnapshot {
                    state: self.flow.state().clone(),
                    tokens: self.args.tokens.snapshot(),
                    pending_otp: self.flow.pending_otp().cloned(),
                });
            }
            CoordinatorMsg::TokenConsumed { token_id } => {
                self.apply(&FlowEvent::TokenConsumed { token_id: token_id.clone() });
                self.args.tokens.remove(&token_id);
            }
            CoordinatorMsg::TokenExpired { token_id } => self.token_timer_fired(token_id),
        }
    }

    /// Ends the flow however it is ended (the app cancels, the person gives up, the prompt times out, every
    /// caller left): the machine cancels, and the running verification's caller and every prompt waiter hear
    /// `error`. A verifier whose job is still queued then skips it (the machine left `verifying`), so nobody
    /// may be left waiting for it.
    fn cancel_flow(&mut self, error: &StepUpError) {
        self.apply(&FlowEvent::Cancel);
        self.fail_active(error.clone());
        self.end_prompt(&Err(error.clone()));
    }

    /// Feeds one event to the machine and publishes the state it leads to, before anything else happens: a
    /// caller answered after this sees the state its call produced (`verify_otp` returns, `state()` says
    /// `elevated`), and a verifier handed a job after this sees its flow as the current one.
    fn apply(&mut self, event: &FlowEvent) -> Effect {
        let effect = self.flow.handle(event);
        self.publish();
        effect
    }

    /// Publishes the machine's state on the watch channel if it changed.
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
}
