//! The engine's public message API: what an embedding app may send the coordinator actor, and the typed handle
//! that sends only that.
//!
//! The coordinator also takes reports — a verifier finished, a timer fired, the prompt driver opened a prompt —
//! which only the engine's own actors may send: an app able to send "verified" would elevate without a proof.
//! So apps get an [`EngineHandle`], not the actor: it accepts [`EngineRequest`]s alone (ractor's
//! `DerivedActorRef`, kept inside, since that type derefs to the untyped `ActorCell`). `ractor::cast!` and
//! `ractor::call!` work on it as on an actor; the state is on [`crate::StepUpAuth::subscribe`].
//!
//! ```no_run
//! # async fn example(engine: stepup_engine::StepUpAuth) -> Result<(), Box<dyn std::error::Error>> {
//! use stepup_engine::{EngineRequest, VerifyRequest};
//! use stepup_core::{Scope, ScopeSet};
//! let handle = engine.handle()?;
//! let requirement = ractor::call!(handle, |reply| EngineRequest::Check { scope: Scope::WalletExport, reply })??;
//! if requirement.required {
//!     let code = ractor::call!(handle, |reply| EngineRequest::SendOtp { credential: None, reply })??;
//!     # let _ = code;
//! }
//! ractor::cast!(handle, EngineRequest::Cancel)?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{DerivedActorRef, MessagingErr, RpcReplyPort};
use stepup_core::{CredentialId, OtpVerification, Route, Scope, ScopeSet, StepUpError};

use crate::coordinator::{CoordinatorMsg, EngineSnapshot, TokenReply, VerifyCaller};
use crate::facade::StepUpRequirement;
use crate::verifiers::VerifyRequest;

/// What an app may ask of the engine, by message. Each is what the [`crate::StepUpAuth`] method of the same
/// name does.
#[derive(Debug)]
#[non_exhaustive]
pub enum EngineRequest {
    /// Ask the server whether `scope` needs step-up (a stored token for it answers "no" without asking).
    Check {
        /// The scope.
        scope: Scope,
        /// The answer, once the flow has taken it in (the published state shows it).
        reply: RpcReplyPort<Result<StepUpRequirement, StepUpError>>,
    },
    /// Send a one-time code to the user's email or phone (`credential`, or the email, else the phone).
    SendOtp {
        /// Which credential.
        credential: Option<CredentialId>,
        /// The sent code's description.
        reply: RpcReplyPort<Result<OtpVerification, StepUpError>>,
    },
    /// Verify a proof for `scopes` and store the token.
    Verify {
        /// The scopes to elevate.
        scopes: ScopeSet,
        /// The proof.
        request: VerifyRequest,
        /// The stored token's description.
        reply: TokenReply,
    },
    /// Run a prompt flow through the front end (or join the one running for these scopes).
    Prompt {
        /// The scopes to elevate.
        scopes: ScopeSet,
        /// `None` routes automatically: MFA if the user has MFA methods, else re-authentication.
        route: Option<Route>,
        /// Verify afresh even when a stored token covers the scopes.
        fresh: bool,
        /// The stored token's description, when the flow ends.
        reply: TokenReply,
    },
    /// Cancel the running flow: every waiting caller gets `Cancelled`.
    Cancel,
    /// Forget everything: tokens, flow, pending code. Waiting callers get `Cancelled`.
    Reset {
        /// Answered once the reset is done.
        reply: Option<RpcReplyPort<()>>,
    },
    /// The state and the tokens between two messages, a consistent pair.
    Inspect {
        /// The answer.
        reply: RpcReplyPort<EngineSnapshot>,
    },
}

impl From<EngineRequest> for CoordinatorMsg {
    fn from(request: EngineRequest) -> Self {
        match request {
            EngineRequest::Check { scope, reply } => CoordinatorMsg::Check { scope, reply },
            EngineRequest::SendOtp { credential, reply } => {
                CoordinatorMsg::SendOtp { credential, prompt: None, reuse_code_for: None, reply }
            }
            EngineRequest::Verify { scopes, request, reply } => {
                CoordinatorMsg::Verify { scopes, request, caller: VerifyCaller::App(reply) }
            }
            EngineRequest::Prompt { scopes, route, fresh, reply } => {
                CoordinatorMsg::Prompt { scopes, route, fresh, reply }
            }
            EngineRequest::Cancel => CoordinatorMsg::Cancel,
            EngineRequest::Reset { reply } => CoordinatorMsg::Reset { reply },
            EngineRequest::Inspect { reply } => CoordinatorMsg::Inspect { reply },
        }
    }
}

/// Back from the coordinator's message when a send fails (ractor hands the message back): only what an
/// [`EngineRequest`] became converts.
impl TryFrom<CoordinatorMsg> for EngineRequest {
    type Error = CoordinatorMsg;

    fn try_from(message: CoordinatorMsg) -> Result<Self, CoordinatorMsg> {
        Ok(match message {
            CoordinatorMsg::Check { scope, reply } => EngineRequest::Check { scope, reply },
            CoordinatorMsg::SendOtp { credential, prompt: None, reuse_code_for: None, reply } => {
                EngineRequest::SendOtp { credential, reply }
            }
            CoordinatorMsg::Verify { scopes, request, caller: VerifyCaller::App(reply) } => {
                EngineRequest::Verify { scopes, request, reply }
            }
            CoordinatorMsg::Prompt { scopes, route, fresh, reply } => {
                EngineRequest::Prompt { scopes, route, fresh, reply }
            }
            CoordinatorMsg::Cancel => EngineRequest::Cancel,
            CoordinatorMsg::Reset { reply } => EngineRequest::Reset { reply },
            CoordinatorMsg::Inspect { reply } => EngineRequest::Inspect { reply },
            other => return Err(other),
        })
    }
}

/// The coordinator, as apps may address it: [`EngineRequest`]s only. Cheap to clone. It does not keep the
/// engine alive (drop every [`crate::StepUpAuth`] and the actors stop; sends then fail).
#[derive(Clone)]
pub struct EngineHandle {
    actor: DerivedActorRef<EngineRequest>,
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineHandle").finish_non_exhaustive()
    }
}

impl EngineHandle {
    pub(crate) fn new(actor: DerivedActorRef<EngineRequest>) -> Self {
        Self { actor }
    }

    /// Sends a request without waiting (what `ractor::cast!` calls).
    ///
    /// # Errors
    /// [`MessagingErr`] when the engine has stopped; the request comes back in it.
    pub fn cast(&self, request: EngineRequest) -> Result<(), MessagingErr<EngineRequest>> {
        self.actor.cast(request)
    }

    /// Sends a request built around a reply port and waits for the answer, at most `timeout` (what
    /// `ractor::call!` and `ractor::call_t!` call).
    ///
    /// # Errors
    /// [`MessagingErr`] when the engine has stopped.
    pub async fn call<R, F>(
        &self,
        build: F,
        timeout: Option<Duration>,
    ) -> Result<CallResult<R>, MessagingErr<EngineRequest>>
    where
        F: FnOnce(RpcReplyPort<R>) -> EngineRequest,
        R: Send + 'static,
    {
        self.actor.call(build, timeout).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::time::Duration;

    use stepup_core::{Scope, ScopeSet, StepUpError};

    use crate::coordinator::{Attempt, CoordinatorMsg, VerifyCaller};
    use crate::prompt::PromptId;
    use crate::{StepUpAuth, VerifyRequest};

    async fn engine() -> StepUpAuth {
        crate::install_default_crypto_provider();
        // No server is needed: what is tested is refused before any request goes out.
        StepUpAuth::builder("http://127.0.0.1:9", "dev").build().await.unwrap()
    }

    /// A prompt driver aborted mid-step (cancel, reset, timeout) may still get a message out; the coordinator
    /// refuses it, so it can never start a flow of its own. Only the engine can send such a message now: apps
    /// have the `EngineRequest`s, which carry no prompt.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_from_an_ended_prompt_are_refused() {
        let engine = engine().await;
        let coordinator = engine.coordinator_actor();
        let scopes = ScopeSet::one(Scope::WalletExport);
        let verify = |reply| CoordinatorMsg::Verify {
            scopes,
            request: VerifyRequest::Passkey(crate::PasskeyRequest),
            caller: VerifyCaller::Prompt { id: PromptId(7), reply },
        };
        let answer = coordinator.call(verify, Some(Duration::from_secs(5))).await.unwrap().unwrap();
        assert_eq!(answer, Attempt::Failed(StepUpError::Cancelled));
        let send = |reply| CoordinatorMsg::SendOtp {
            credential: None,
            prompt: Some(PromptId(7)),
            reuse_code_for: None,
            reply,
        };
        let answer = coordinator.call(send, Some(Duration::from_secs(5))).await.unwrap().unwrap();
        assert_eq!(answer.unwrap_err(), StepUpError::Cancelled);
        assert!(!engine.state().is_in_flow(), "{:?}", engine.state());
    }

    /// Verifiers start when a flow first needs one: a new engine runs none, a TOTP verification starts the
    /// TOTP verifier only (and it keeps running for the next one).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_verifier_starts_when_a_flow_first_needs_it() {
        let engine = engine().await;
        let coordinator = engine.coordinator_actor().get_cell();
        assert_eq!(coordinator.get_children().len(), 0, "no verifier before any flow");
        for _ in 0..2 {
            // No server: the verification fails with a transport error, after the verifier ran it.
            let error = engine.verify_totp_mfa("123456", None, &[Scope::WalletExport]).await.unwrap_err();
            assert!(matches!(error, StepUpError::Transport { .. }), "{error:?}");
            assert_eq!(coordinator.get_children().len(), 1, "the TOTP verifier alone");
        }
    }

    /// Through the handle, `ractor::cast!` and `ractor::call!` work as on an actor, for requests only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_handle_takes_requests_with_ractors_macros() {
        let engine = engine().await;
        let handle = engine.handle().unwrap();
        let snapshot = ractor::call!(handle, |reply| super::EngineRequest::Inspect { reply }).unwrap();
        assert!(!snapshot.state.is_in_flow());
        ractor::cast!(handle, super::EngineRequest::Cancel).unwrap();
        let reset = ractor::call!(handle, |reply| super::EngineRequest::Reset { reply: Some(reply) });
        assert!(reset.is_ok());
        // The server is not there: a check is a transport error, not a hang.
        let check =
            ractor::call!(handle, |reply| super::EngineRequest::Check { scope: Scope::WalletExport, reply });
        assert!(matches!(check.unwrap(), Err(StepUpError::Transport { .. })), "a transport error");
        drop(engine);
    }
}
