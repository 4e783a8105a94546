//! Prompt flows: the prompt driver's task, single flight per scope set, and every caller waiting on it.
//!
//! The driver (`crate::prompt`) is a client like any custom UI; this side decides whether a prompt starts or is
//! joined, admits the driver's requests while its prompt is the running one, and ends it — with the token, an
//! error, a cancel, a reset or the prompt timeout — answering every waiter once.

use stepup_core::{FlowEvent, MethodOptions, Route, ScopeSet, StepUpError, TokenInfo};
use tokio::task::JoinHandle;

use super::{CoordinatorState, TokenReply};
use crate::prompt::{self, PromptId};

/// A prompt flow in progress: the driver task and the callers waiting on it.
pub(super) struct RunningPrompt {
    pub(super) id: PromptId,
    pub(super) scopes: ScopeSet,
    /// Whether it verifies afresh by MFA (the answer to a `max_age` challenge): only such a prompt can stand in
    /// for another fresh one.
    fresh_mfa: bool,
    task: JoinHandle<()>,
    waiters: Vec<TokenReply>,
}

impl std::fmt::Debug for RunningPrompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningPrompt")
            .field("id", &self.id)
            .field("scopes", &self.scopes)
            .field("waiters", &self.waiters.len())
            .finish_non_exhaustive()
    }
}

impl CoordinatorState {
    pub(super) fn start_prompt(
        &mut self,
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
            // Single flight: a prompt for these scopes is running; wait for it instead of opening another. A
            // fresh verification joins only a fresh MFA one: another prompt's token is no recent MFA.
            if prompt.scopes.covers(&scopes) && (!fresh || prompt.fresh_mfa) {
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
        // The prompt asks for exactly its scopes, not those the flow gathered from earlier checks.
        let _ = self.apply(&FlowEvent::FlowRequested { scopes: scopes.clone() });
        self.last_prompt = PromptId(self.last_prompt.0.wrapping_add(1));
        let id = self.last_prompt;
        let task = prompt::spawn(prompt::PromptTask {
            id,
            coordinator: self.myself.clone(),
            config: self.args.verifiers.clone(),
            frontend,
            scopes: scopes.clone(),
            route,
        });
        let fresh_mfa = fresh && route == Some(Route::Mfa);
        self.prompt = Some(RunningPrompt { id, scopes, fresh_mfa, task, waiters: vec![reply] });
        self.arm_prompt_timeout(id);
    }

    /// The driver of prompt `prompt` asked the server and chose `route`: the machine opens the prompt, for
    /// exactly the prompt's scopes (a check while the driver asked may have widened the flow).
    pub(super) fn open_prompt(
        &mut self,
        prompt: PromptId,
        route: Route,
        options: MethodOptions,
    ) -> Result<(), StepUpError> {
        self.admit_prompt_request(Some(prompt))?;
        let scopes = self.prompt.as_ref().map(|p| p.scopes.clone()).unwrap_or_default();
        if let stepup_core::Effect::Refused(error) = self.apply(&FlowEvent::FlowRequested { scopes }) {
            return Err(error);
        }
        match self.apply(&FlowEvent::PromptOpened { route, options }) {
            stepup_core::Effect::Refused(error) => Err(error),
            _ => Ok(()),
        }
    }

    pub(super) fn prompt_finished(&mut self, prompt: PromptId, result: &Result<TokenInfo, StepUpError>) {
        if self.prompt.as_ref().is_some_and(|p| p.id == prompt) {
            match result {
                // The flow ends with the prompt, a verification an app started inside it included.
                Err(error) => self.cancel_flow(error),
                Ok(_) => self.end_prompt(result),
            }
        }
    }

    /// A token was stored: if it covers what the prompt asked for, the prompt is done. Ended here, not when
    /// its driver task reports back, so a prompt for other scopes that arrives in between starts instead of
    /// meeting `Busy`.
    pub(super) fn settle_prompt(&mut self, info: &TokenInfo) {
        if self.prompt.as_ref().is_some_and(|prompt| info.scopes.covers(&prompt.scopes)) {
            self.end_prompt(&Ok(info.clone()));
        }
    }

    /// Admits a request from prompt `prompt` (if any), or refuses it: the prompt must still be the running one,
    /// and someone must still be waiting for it. Not a pure check: a prompt every caller gave up on is ended
    /// here, at its next step (hence the name).
    pub(super) fn admit_prompt_request(&mut self, prompt: Option<PromptId>) -> Result<(), StepUpError> {
        let Some(id) = prompt else { return Ok(()) };
        let Some(running) = self.prompt.as_mut().filter(|p| p.id == id) else {
            return Err(StepUpError::Cancelled);
        };
        running.waiters.retain(|waiter| !waiter.is_closed());
        if running.waiters.is_empty() {
            tracing::debug!(prompt = id.0, "every caller left the prompt; ending it");
            self.cancel_flow(&StepUpError::Cancelled);
            return Err(StepUpError::Cancelled);
        }
        Ok(())
    }

    /// Ends the running prompt: stops its driver and answers every waiter with `result`.
    pub(super) fn end_prompt(&mut self, result: &Result<TokenInfo, StepUpError>) {
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
