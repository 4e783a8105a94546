//! The prompt driver: a task that walks the person through one prompt flow with the `Frontend`.
//!
//! It is a client of the coordinator like any custom UI: it asks the server for the user's options, tells the
//! coordinator which prompt it opened, and sends `SendOtp`/`Verify` calls. It keeps no flow facts: whether a
//! failed try may be retried, how many tries are left and whether the sent code is still good are the flow
//! machine's decisions, which come back in the coordinator's answers. The coordinator owns the outcome and
//! answers every caller waiting on the flow; cancelling or resetting aborts this task.

use ractor::{ActorRef, RpcReplyPort};
use stepup_core::{
    Credential, CredentialId, MAX_ATTEMPTS, MethodOptions, OtpVerification, Route, ScopeSet, StepUpError,
    TokenInfo,
};
use tokio::task::JoinHandle;

use crate::coordinator::{Attempt, CoordinatorMsg, VerifyCaller};
use crate::frontend::{PromptReply, PromptRequest, SharedFrontend};
use crate::verifiers::{self, VerifierConfig, VerifyRequest};

/// The number of a prompt flow; reports from an older prompt are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PromptId(pub(crate) u64);

/// Everything one prompt needs.
pub(crate) struct PromptTask {
    pub(crate) id: PromptId,
    pub(crate) coordinator: ActorRef<CoordinatorMsg>,
    pub(crate) config: VerifierConfig,
    pub(crate) frontend: SharedFrontend,
    pub(crate) scopes: ScopeSet,
    pub(crate) route: Option<Route>,
}

/// Starts the driver.
pub(crate) fn spawn(task: PromptTask) -> JoinHandle<()> {
    tokio::spawn(async move {
        let result = task.run().await;
        // The coordinator answers the callers, then tells the front end (`Frontend::finished`).
        let _ = task.coordinator.cast(CoordinatorMsg::PromptFinished { prompt: task.id, result });
    })
}

/// How the use of one credential ended.
enum Used {
    Elevated(TokenInfo),
    /// The person wants another method.
    ChooseAgain,
}

impl PromptTask {
    async fn run(&self) -> Result<TokenInfo, StepUpError> {
        let (options, default) = self.options().await?;
        let route = match self.route {
            Some(route) => route,
            None => options.route().ok_or(StepUpError::NoMethodsAvailable { route: None })?,
        };
        if !route.prompts_a_person() {
            // External auth is the app backend's proof: the app calls `verify_external_auth`, nobody is asked.
            return Err(StepUpError::NoMethodsAvailable { route: Some(route) });
        }
        let open =
            |reply| CoordinatorMsg::PromptOpened { prompt: self.id, route, options: options.clone(), reply };
        self.ask(open, StepUpError::EngineStopped).await??;
        let usable = options.for_route(route);
        let credentials = usable.credentials();
        if credentials.is_empty() {
            return Err(StepUpError::NoMethodsAvailable { route: Some(route) });
        }
        let preselected = default.filter(|id| credentials.iter().any(|c| c.id == *id));
        // The tries left as the machine last said (it counts them per prompt, across methods): shown when a
        // resend is refused.
        let mut attempts_left = MAX_ATTEMPTS;
        loop {
            let credential = if let [only] = credentials {
                only.clone()
            } else {
                match self
                    .frontend
                    .prompt(PromptRequest::ChooseMethod {
                        route,
                        options: usable.clone(),
                        preselected: preselected.clone(),
                    })
                    .await
                {
                    // Only one of the credentials offered, as the server described it (not as the reply does).
                    PromptReply::Choose(chosen) => {
                        match credentials.iter().find(|c| c.id == chosen.id && c.method == chosen.method) {
                            Some(offered) => offered.clone(),
                            None => continue,
                        }
                    }
                    PromptReply::Cancel => return Err(StepUpError::Cancelled),
                    // Any other answer does not pick a method: ask again (the prompt timeout bounds this).
                    _ => continue,
                }
            };
            match self.use_credential(&credential, &mut attempts_left).await? {
                Used::Elevated(info) => return Ok(info),
                Used::ChooseAgain if credentials.len() > 1 => {}
                Used::ChooseAgain => return Err(StepUpError::Cancelled),
            }
        }
    }

    /// The user's options for the first scope (the server answers with every usable credential), and the one the
    /// server suggests.
    async fn options(&self) -> Result<(MethodOptions, Option<CredentialId>), StepUpError> {
        let first = self.scopes.iter().next().ok_or(StepUpError::NoScopes)?;
        let check = self.config.api.step_up_check(first).await?;
        let default = check.default_credential_id.as_deref().map(CredentialId::new);
        Ok((MethodOptions::from_check(&check), default))
    }

    /// Tries `credential` until it elevates, the machine says the tries ran out, or the person gives up.
    async fn use_credential(
        &self,
        credential: &Credential,
        attempts_left: &mut u8,
    ) -> Result<Used, StepUpError> {
        // The first try of a credential sends it a code of its own; later tries use the code the flow holds
        // (the machine drops one the server killed, and then a new one is sent).
        let mut new_code = true;
        loop {
            let Some(request) =
                verifiers::read_proof(self, credential, &mut new_code, *attempts_left).await?
            else {
                return Ok(Used::ChooseAgain);
            };
            let caller = |reply| VerifyCaller::Prompt { id: self.id, reply };
            let verify = |reply| CoordinatorMsg::Verify {
                scopes: self.scopes.clone(),
                request,
                caller: caller(reply),
            };
            let dropped = StepUpError::VerifierFailed { method: credential.method };
            match self.ask(verify, dropped).await? {
                Attempt::Elevated(info) => return Ok(Used::Elevated(info)),
                Attempt::Retry { error, attempts_left: left } => {
                    *attempts_left = left;
                    self.show_failure(error, left).await?;
                }
                Attempt::Failed(error) => return Err(error),
            }
        }
    }

    /// What the verifiers share (the wallet signer and message settings, for the wallet step).
    pub(crate) fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// Asks the person (the front end) `request` and returns the reply.
    pub(crate) async fn ask_person(&self, request: PromptRequest) -> PromptReply {
        self.frontend.prompt(request).await
    }

    /// A prompt step that asks for one thing: `read` turns the reply into the request, or gives the reply back;
    /// a given-back `Cancel` ends the prompt, anything else means "another method" (`None`).
    pub(crate) async fn ask_for(
        &self,
        request: PromptRequest,
        read: impl FnOnce(PromptReply) -> Result<VerifyRequest, PromptReply> + Send,
    ) -> Result<Option<VerifyRequest>, StepUpError> {
        match read(self.ask_person(request).await) {
            Ok(request) => Ok(Some(request)),
            Err(PromptReply::Cancel) => Err(StepUpError::Cancelled),
            Err(_) => Ok(None),
        }
    }

    /// Shows a failed try (or a refused resend) with the tries left; `Cancelled` if the person gives up there.
    pub(crate) async fn show_failure(
        &self,
        error: StepUpError,
        attempts_left: u8,
    ) -> Result<(), StepUpError> {
        match self.ask_person(PromptRequest::Failed { error, attempts_left }).await {
            PromptReply::Cancel => Err(StepUpError::Cancelled),
            _ => Ok(()),
        }
    }

    /// A code for `credential`: a new one, or (unless `new_code`) the one the flow holds for its method.
    pub(crate) async fn send_otp(
        &self,
        credential: &Credential,
        new_code: bool,
    ) -> Result<OtpVerification, StepUpError> {
        let id = Some(credential.id.clone());
        let dropped = StepUpError::VerifierFailed { method: credential.method };
        let (prompt, reuse_code_for) = (Some(self.id), (!new_code).then_some(credential.method));
        self.ask(|reply| CoordinatorMsg::SendOtp { credential: id, prompt, reuse_code_for, reply }, dropped)
            .await?
    }

    /// A call to the coordinator without a timeout: the person may take their time, and the coordinator answers
    /// every call it takes. A dropped reply port means the actor holding it died: `dropped` says which.
    async fn ask<T: Send + 'static>(
        &self,
        message: impl FnOnce(RpcReplyPort<T>) -> CoordinatorMsg,
        dropped: StepUpError,
    ) -> Result<T, StepUpError> {
        match self.coordinator.call(message, None).await {
            Ok(ractor::rpc::CallResult::Success(answer)) => Ok(answer),
            Ok(ractor::rpc::CallResult::SenderError) => Err(dropped),
            Ok(ractor::rpc::CallResult::Timeout) => Err(StepUpError::Timeout),
            Err(_) => Err(StepUpError::EngineStopped),
        }
    }
}
