//! Codes and proofs: sending one-time codes, and running one verification at a time through the verifiers.
//!
//! The machine numbers each verification and says whether it may start; the coordinator hands the job to the
//! verifier, remembers who to answer, and feeds the result back. Results for any other number (the flow was
//! cancelled, reset or timed out) are stale and dropped.

use std::sync::Arc;

use ractor::RpcReplyPort;
use stepup_core::{
    AttemptId, CredentialId, Effect, ElevatedToken, FlowEvent, FlowState, Method, MethodOptions,
    OtpVerification, Route, ScopeSet, StepUpError,
};

use super::{CoordinatorState, VerifyCaller};
use crate::prompt::PromptId;
use crate::verifiers::otp::{OtpVerifier, SendOtp};
use crate::verifiers::{JobTicket, VerifierKind, VerifyRequest};

/// A verification in progress: its number, which verifier runs it, and who waits for it.
#[derive(Debug)]
pub(super) struct ActiveVerification {
    pub(super) attempt: AttemptId,
    pub(super) kind: VerifierKind,
    pub(super) method: Method,
    pub(super) caller: VerifyCaller,
}

impl CoordinatorState {
    pub(super) async fn send_otp(
        &mut self,
        credential: Option<CredentialId>,
        prompt: Option<PromptId>,
        reuse_code_for: Option<Method>,
        reply: RpcReplyPort<Result<OtpVerification, StepUpError>>,
    ) {
        if let Err(refused) = self.admit_prompt_request(prompt) {
            let _ = reply.send(Err(refused));
            return;
        }
        // A user with MFA cannot re-authenticate by a code: when the flow knows it (a check told it), say so now
        // rather than send a code the server will refuse to elevate by.
        if self.flow.state().options().and_then(MethodOptions::route) == Some(Route::Mfa) {
            let _ = reply.send(Err(StepUpError::ReauthenticationNotAllowed));
            return;
        }
        let pending = self.flow.pending_otp().filter(|otp| Some(otp.channel.method()) == reuse_code_for);
        if let Some(pending) = pending {
            let _ = reply.send(Ok(pending.clone()));
            return;
        }
        let command = SendOtp { credential, epoch: self.epoch, reply_to: self.myself.clone(), reply };
        if let Err(SendOtp { reply, .. }) = self.verifiers.command::<OtpVerifier>(command).await {
            let _ = reply.send(Err(StepUpError::VerifierFailed { method: Method::EmailOtp }));
        }
    }

    pub(super) fn otp_sent(
        &mut self,
        result: Result<OtpVerification, StepUpError>,
        epoch: u64,
        reply: RpcReplyPort<Result<OtpVerification, StepUpError>>,
    ) {
        if epoch != self.epoch {
            // Asked for before a reset: the code went out, but the state it belonged to is gone.
            let _ = reply.send(Err(StepUpError::Cancelled));
            return;
        }
        if let Ok(sent) = &result {
            self.apply(&FlowEvent::OtpSent { verification: sent.clone() });
        }
        let _ = reply.send(result);
    }

    /// Starts a verification for `scopes` with the request's method: brings the machine to `prompting` on the
    /// method's route for those scopes (a custom UI calls verify methods without a prompt), and hands the
    /// verifier the job the machine numbered.
    pub(super) async fn verify(&mut self, scopes: ScopeSet, request: VerifyRequest, caller: VerifyCaller) {
        if let Err(refused) = self.admit_prompt_request(caller.prompt()) {
            return caller.refuse(refused);
        }
        if self.active.is_some() {
            return caller.refuse(StepUpError::Busy);
        }
        let method = request.method(self.flow.pending_otp());
        // Refusals that need no state come first, so a refused call leaves the flow as it was.
        if method.is_otp() && self.flow.pending_otp().is_none() {
            return caller.refuse(StepUpError::OtpNotSent);
        }
        if let Err(refused) = self.enter_prompt(&scopes, method.route()) {
            return caller.refuse(refused);
        }
        let (attempt, scopes, otp) = match self.apply(&FlowEvent::VerificationStarted { method }) {
            Effect::Verify { attempt, scopes, otp, .. } => (attempt, scopes, otp),
            Effect::Refused(refused) => return caller.refuse(refused),
            other => return caller.answer(other),
        };
        let kind = request.kind();
        self.active = Some(ActiveVerification { attempt, kind, method, caller });
        let ticket = JobTicket { attempt, scopes, otp, reply_to: self.myself.clone() };
        if !request.dispatch(ticket, &mut self.verifiers).await {
            // The verifier could not start, or is stopping: the supervision event will not see this flow.
            self.finish_verification(attempt, Err(StepUpError::VerifierFailed { method }));
            return;
        }
        self.arm_verification_timeout(attempt);
    }

    /// Makes sure the machine is prompting on `route` for (at least) `scopes`.
    fn enter_prompt(&mut self, scopes: &ScopeSet, route: Route) -> Result<(), StepUpError> {
        if scopes.is_empty() {
            return Err(StepUpError::NoScopes);
        }
        match &self.prompt {
            // The app's backend vouching mid-prompt would switch the person's prompt to another route under them.
            Some(_) if !route.prompts_a_person() => return Err(StepUpError::Busy),
            // A prompt owns the flow: a verification for scopes it covers is part of it; others must wait.
            Some(prompt) if !prompt.scopes.covers(scopes) => return Err(StepUpError::Busy),
            // The prompt's scopes, exactly: a check since may have widened the flow, and the token must grant
            // what the prompt asked for and no more.
            Some(prompt) => {
                let prompt_scopes = prompt.scopes.clone();
                refused(self.apply(&FlowEvent::FlowRequested { scopes: prompt_scopes }))?;
            }
            // Without a prompt the caller's scopes are the request, exactly.
            None => refused(self.apply(&FlowEvent::FlowRequested { scopes: scopes.clone() }))?,
        }
        if matches!(self.flow.state(), FlowState::Prompting { route: current, .. } if *current == route) {
            return Ok(());
        }
        refused(self.apply(&FlowEvent::PromptOpened { route, options: MethodOptions::unknown() }))
    }

    /// Feeds a verifier's result (or a timeout, or a crash) for `attempt`, and answers the caller with what the
    /// machine made of it.
    pub(super) fn finish_verification(
        &mut self,
        attempt: AttemptId,
        result: Result<Arc<ElevatedToken>, StepUpError>,
    ) {
        let Some(active) = self.active.take_if(|a| a.attempt == attempt) else {
            tracing::debug!(%attempt, "dropping a stale verification result");
            return;
        };
        let effect = match result {
            Ok(token) => self.apply(&FlowEvent::Verified { attempt, token }),
            Err(error) => self.apply(&FlowEvent::VerificationFailed { attempt, error }),
        };
        if let Effect::Elevated(info) = &effect {
            self.arm_expiry(info);
            self.settle_prompt(info);
        }
        active.caller.answer(effect);
    }

    /// Answers the running verification's caller with `error` (the flow was cancelled, reset or timed out; the
    /// machine has left `verifying`, so the verifier skips the job if it has not begun).
    pub(super) fn fail_active(&mut self, error: StepUpError) {
        if let Some(active) = self.active.take() {
            active.caller.refuse(error);
        }
    }

    /// Verifier `kind` died: only the flow it was serving fails.
    pub(super) fn verifier_died(&mut self, kind: VerifierKind) {
        if let Some(active) = self.active.as_ref().filter(|a| a.kind == kind) {
            let (attempt, method) = (active.attempt, active.method);
            self.finish_verification(attempt, Err(StepUpError::VerifierFailed { method }));
        }
    }
}

/// The machine's refusal as an error; any other effect of a step towards a prompt needs nothing.
fn refused(effect: Effect) -> Result<(), StepUpError> {
    match effect {
        Effect::Refused(error) => Err(error),
        _ => Ok(()),
    }
}
