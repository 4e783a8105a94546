//! `VerifierActor<V>`: runs a [`Verifier`] as a ractor actor — one job at a time, each within the verify
//! timeout, a job whose verification is no longer the current one skipped — and reads the elevated token of
//! its answer.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use stepup_core::{ElevatedToken, FlowState, Jwt, ScopeSet, SharedClock, StepUpError};
use tokio::sync::watch;

use super::{Verifier, VerifierConfig, VerifyJob};
use crate::coordinator::CoordinatorMsg;

/// A verifier actor's messages.
pub(crate) enum VerifierMsg<V: Verifier> {
    /// Run one verification and cast `CoordinatorMsg::VerifierDone` back.
    Verify(VerifyJob<V::Request>),
    /// Run one of the verifier's own commands.
    Command(V::Command),
}

impl<V: Verifier> std::fmt::Debug for VerifierMsg<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifierMsg::Verify(job) => f.debug_tuple("Verify").field(job).finish(),
            VerifierMsg::Command(command) => f.debug_tuple("Command").field(command).finish(),
        }
    }
}

/// Runs a [`Verifier`] as a ractor actor.
#[derive(Debug)]
pub(crate) struct VerifierActor<V>(std::marker::PhantomData<fn() -> V>);

impl<V> Default for VerifierActor<V> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

/// A verifier actor's state: the verifier, the clock, the verify timeout and the flow's published state.
pub(crate) struct VerifierState<V> {
    verifier: V,
    clock: SharedClock,
    verify_timeout: std::time::Duration,
    state: watch::Receiver<FlowState>,
}

impl<V: Verifier> Actor for VerifierActor<V> {
    type Msg = VerifierMsg<V>;
    type State = VerifierState<V>;
    type Arguments = VerifierConfig;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        config: VerifierConfig,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(VerifierState {
            verifier: V::new(&config),
            clock: config.clock.clone(),
            verify_timeout: config.timeouts.verify,
            state: config.state.clone(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            VerifierMsg::Verify(job) => {
                let current = matches!(
                    &*state.state.borrow(),
                    FlowState::Verifying { attempt, .. } if *attempt == job.attempt
                );
                if !current {
                    tracing::debug!(attempt = %job.attempt, verifier = V::KIND.name(), "skipping a stale job");
                    return Ok(());
                }
                let result =
                    match tokio::time::timeout(state.verify_timeout, state.verifier.verify(&job)).await {
                        Ok(Ok(token)) => elevated_token(token, &job.scopes, &state.clock),
                        Ok(Err(error)) => Err(error),
                        Err(_elapsed) => Err(StepUpError::Timeout),
                    };
                // The coordinator may be gone (engine dropped): then nobody needs the answer.
                let _ = job.reply_to.cast(CoordinatorMsg::VerifierDone { attempt: job.attempt, result });
            }
            VerifierMsg::Command(command) => state.verifier.command(command, state.verify_timeout).await,
        }
        Ok(())
    }
}

/// Reads the elevated token of a verify answer. Scopes were asked for, so an answer without a token is an
/// error, not a sign-in.
fn elevated_token(
    raw: Option<Jwt>,
    scopes: &ScopeSet,
    clock: &SharedClock,
) -> Result<Arc<ElevatedToken>, StepUpError> {
    let raw = raw.ok_or(StepUpError::MissingToken)?;
    let token = ElevatedToken::parse(raw, clock.now())?;
    if !token.covers_all(scopes) {
        return Err(StepUpError::ScopesNotGranted {
            requested: scopes.clone(),
            granted: token.scopes().clone(),
        });
    }
    Ok(Arc::new(token))
}
