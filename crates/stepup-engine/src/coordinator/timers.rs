//! Timers: token expiry, and the time limits of verifications and prompts. Every timer is a message the
//! coordinator sends itself (`send_after`); one that fires for something already over finds nothing to do.

use std::time::Duration;

use stepup_core::{AttemptId, FlowEvent, StepUpError, TokenId, TokenInfo};

use super::{CoordinatorMsg, CoordinatorState};
use crate::prompt::PromptId;

impl CoordinatorState {
    /// Fails verification attempt `attempt` with `Timeout` if it still runs after the verify timeout.
    pub(super) fn arm_verification_timeout(&self, attempt: AttemptId) {
        let wait = self.args.verifiers.timeouts.verify;
        self.myself.send_after(wait, move || CoordinatorMsg::VerificationTimedOut { attempt });
    }

    /// Ends prompt `prompt` with `Timeout` if it still runs after the prompt timeout.
    pub(super) fn arm_prompt_timeout(&self, prompt: PromptId) {
        self.myself.send_after(self.args.verifiers.timeouts.prompt, move || CoordinatorMsg::PromptTimedOut {
            prompt,
        });
    }

    /// The person walked away: the flow ends for everyone waiting on it, and a verification still running for
    /// it is dropped when it reports.
    pub(super) fn prompt_timed_out(&mut self, prompt: PromptId) {
        if self.prompt.as_ref().is_some_and(|p| p.id == prompt) {
            self.cancel_flow(&StepUpError::Timeout);
        }
    }

    /// Tells the machine when `info`'s token runs out.
    pub(super) fn arm_expiry(&self, info: &TokenInfo) {
        let wait = self.args.tokens.now().until(info.expires_at);
        let token_id = info.id.clone();
        self.myself.send_after(wait, move || CoordinatorMsg::TokenExpired { token_id });
    }

    pub(super) fn token_timer_fired(&mut self, token_id: TokenId) {
        let now = self.args.tokens.now();
        let snapshot = self.args.tokens.snapshot();
        if let Some(token) = snapshot.by_id(&token_id)
            && !token.is_expired_at(now)
        {
            // The engine's clock is behind the timer (seconds are whole): look again when it catches up.
            let wait = now.until(token.expires_at()).max(Duration::from_millis(100));
            self.myself.send_after(wait, move || CoordinatorMsg::TokenExpired { token_id });
            return;
        }
        self.apply(&FlowEvent::TokenExpired { token_id });
        self.args.tokens.prune_at(now);
    }
}
