//! The prompt driver: a task that walks the person through one prompt flow with the `Frontend`.
//!
//! It is a client of the coordinator like any custom UI: it asks the server for the user's options, tells the
//! coordinator which prompt it opened, and sends `SendOtp`/`Verify` calls. The coordinator owns the outcome and
//! answers every caller waiting on the flow; cancelling or resetting aborts this task.

use ractor::{ActorRef, RpcReplyPort};
use stepup_core::{
    Credential, MAX_ATTEMPTS, Method, MethodOptions, OtpCode, OtpVerification, RecoveryCode, Route, ScopeSet,
    StepUpError, TokenInfo, TotpCode,
};
use stepup_proto::WalletMessage;
use tokio::task::JoinHandle;

use crate::coordinator::CoordinatorMsg;
use crate::frontend::{PromptReply, PromptRequest, SharedFrontend};
use crate::verifiers::{VerifierConfig, VerifyRequest};

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

/// How one try of a method ended.
enum Attempt {
    Elevated(TokenInfo),
    /// The person wants another method.
    ChooseAgain,
}

impl PromptTask {
    async fn run(&self) -> Result<TokenInfo, StepUpError> {
        let options = self.options().await?;
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
        loop {
            let credential = if let [only] = credentials {
                only.clone()
            } else {
                match self
                    .frontend
                    .prompt(PromptRequest::ChooseMethod { route, options: usable.clone() })
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
            match self.use_credential(&credential).await? {
                Attempt::Elevated(info) => return Ok(info),
                Attempt::ChooseAgain if credentials.len() > 1 => {}
                Attempt::ChooseAgain => return Err(StepUpError::Cancelled),
            }
        }
    }

    /// The user's options for the first scope (the server answers with every usable credential).
    async fn options(&self) -> Result<MethodOptions, StepUpError> {
        let first = self.scopes.iter().next().ok_or(StepUpError::NoScopes)?;
        let check = self.config.api.step_up_check(first).await?;
        Ok(MethodOptions::from_check(&check))
    }

    /// Tries `credential` until it elevates, the tries run out, or the person gives up.
    async fn use_credential(&self, credential: &Credential) -> Result<Attempt, StepUpError> {
        let mut attempts_left = MAX_ATTEMPTS;
        let mut sent: Option<OtpVerification> = None;
        loop {
            let Some(request) = self.read_proof(credential, &mut sent, attempts_left).await? else {
                return Ok(Attempt::ChooseAgain);
            };
            let method = request.method(sent.as_ref());
            let prompt = Some(self.id);
            let verify =
                |reply| CoordinatorMsg::Verify { scopes: self.scopes.clone(), request, prompt, reply };
            let result = self.ask(verify, StepUpError::VerifierFailed { method }).await?;
            match result {
                Ok(info) => return Ok(Attempt::Elevated(info)),
                Err(error) if error.is_retryable() && attempts_left > 1 => {
                    attempts_left -= 1;
                    if matches!(error, StepUpError::InvalidVerification { .. }) {
                        sent = None;
                    }
                    let notice = PromptRequest::Failed { error, attempts_left };
                    if self.frontend.prompt(notice).await == PromptReply::Cancel {
                        return Err(StepUpError::Cancelled);
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Asks the person for the proof `credential` needs; `None` when they want another method.
    async fn read_proof(
        &self,
        credential: &Credential,
        sent: &mut Option<OtpVerification>,
        attempts_left: u8,
    ) -> Result<Option<VerifyRequest>, StepUpError> {
        // The code sent before the person asked for another: still good if the new one cannot be sent.
        let mut before_resend: Option<OtpVerification> = None;
        let request = match credential.method {
            Method::EmailOtp | Method::SmsOtp => loop {
                let otp = match sent.as_ref() {
                    Some(otp) => otp.clone(),
                    None => match self.send_otp(credential).await {
                        Ok(otp) => {
                            *sent = Some(otp.clone());
                            otp
                        }
                        // A refused resend (too many sends, a network hiccup) does not end the flow: the person
                        // hears why and types the code they already have.
                        Err(error) if before_resend.is_some() => {
                            let notice = PromptRequest::Failed { error, attempts_left };
                            if self.frontend.prompt(notice).await == PromptReply::Cancel {
                                return Err(StepUpError::Cancelled);
                            }
                            *sent = before_resend.take();
                            continue;
                        }
                        Err(error) => return Err(error),
                    },
                };
                let ask =
                    PromptRequest::EnterOtp { destination_masked: otp.destination_masked, can_resend: true };
                match self.frontend.prompt(ask).await {
                    PromptReply::Code(code) => {
                        break VerifyRequest::Otp { code: OtpCode::new(code.expose_secret()) };
                    }
                    PromptReply::Resend => before_resend = sent.take(),
                    PromptReply::Cancel => return Err(StepUpError::Cancelled),
                    _ => return Ok(None),
                }
            },
            Method::Totp => match self.frontend.prompt(PromptRequest::EnterTotp).await {
                PromptReply::Code(code) => VerifyRequest::Totp {
                    code: TotpCode::new(code.expose_secret()),
                    device_id: Some(credential.id.clone()),
                },
                PromptReply::Cancel => return Err(StepUpError::Cancelled),
                _ => return Ok(None),
            },
            Method::RecoveryCode => match self.frontend.prompt(PromptRequest::EnterRecoveryCode).await {
                PromptReply::Code(code) => {
                    VerifyRequest::RecoveryCode { code: RecoveryCode::new(code.expose_secret()) }
                }
                PromptReply::Cancel => return Err(StepUpError::Cancelled),
                _ => return Ok(None),
            },
            Method::Passkey => match self.frontend.prompt(PromptRequest::UsePasskey).await {
                PromptReply::Confirm => VerifyRequest::Passkey,
                PromptReply::Cancel => return Err(StepUpError::Cancelled),
                _ => return Ok(None),
            },
            // Never among a person's routes' credentials (`run` refuses the external route); no one could type it.
            Method::ExternalAuth => {
                return Err(StepUpError::MethodNotAvailable { method: Method::ExternalAuth });
            }
            Method::ExternalWallet => {
                let wallet = self
                    .config
                    .wallet
                    .as_ref()
                    .ok_or(StepUpError::NotConfigured { what: "wallet signer" })?;
                let ask = PromptRequest::ConfirmWallet {
                    address: wallet.address(),
                    message: WalletMessage::statement_for(&self.config.wallet_message.app_name),
                };
                match self.frontend.prompt(ask).await {
                    PromptReply::Confirm => VerifyRequest::Wallet { wallet_id: Some(credential.id.clone()) },
                    PromptReply::Cancel => return Err(StepUpError::Cancelled),
                    _ => return Ok(None),
                }
            }
        };
        Ok(Some(request))
    }

    async fn send_otp(&self, credential: &Credential) -> Result<OtpVerification, StepUpError> {
        let id = Some(credential.id.clone());
        let dropped = StepUpError::VerifierFailed { method: credential.method };
        let prompt = Some(self.id);
        self.ask(|reply| CoordinatorMsg::SendOtp { credential: id, prompt, reply }, dropped).await?
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
