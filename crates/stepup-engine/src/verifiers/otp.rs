//! One-time codes by email or SMS: the request (`verify_otp`), the `OtpVerifier` that sends codes and checks
//! them (`/emailVerifications/*`, `/smsVerifications/*`), and the prompt step (show where the code went, read
//! it, resend on request).

use ractor::{ActorRef, RpcReplyPort};
use stepup_core::otp::{mask_email, mask_phone};
use stepup_core::{
    Credential, CredentialId, Jwt, OtpChannel, OtpCode, OtpVerification, StepUpError, VerificationId,
};
use stepup_proto::{CredentialFormat, OtpVerifyRequest, SmsVerificationCreateRequest, VerifiedCredential};

use super::{Verifier, VerifierConfig, VerifierKind, VerifyJob, VerifyRequest};
use crate::api::ApiClient;
use crate::coordinator::CoordinatorMsg;
use crate::frontend::{PromptReply, PromptRequest};
use crate::prompt::PromptTask;

/// `verify_otp`: the code the person typed, for the code sent last (`send_otp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpRequest {
    /// The code.
    pub code: OtpCode,
}

impl From<OtpRequest> for VerifyRequest {
    fn from(request: OtpRequest) -> Self {
        VerifyRequest::Otp(request)
    }
}

/// What the verifier checks: the typed code, and the sent code it answers (the flow's, from the machine).
#[derive(Debug)]
pub(crate) struct OtpProof {
    pub(crate) code: OtpCode,
    pub(crate) sent: OtpVerification,
}

/// The OTP verifier's command: send a code, and cast `CoordinatorMsg::OtpSent` back, which answers `reply`. If the
/// verifier dies first, `reply` is dropped and the caller sees the failure.
#[derive(Debug)]
pub(crate) struct SendOtp {
    /// The email or phone credential; `None` picks the user's email, else phone.
    pub(crate) credential: Option<CredentialId>,
    /// The coordinator's reset count when it asked, echoed back: a code sent for a state since reset is not kept.
    pub(crate) epoch: u64,
    /// Where to send the result.
    pub(crate) reply_to: ActorRef<CoordinatorMsg>,
    /// The caller waiting for it.
    pub(crate) reply: RpcReplyPort<Result<OtpVerification, StepUpError>>,
}

/// Sends and verifies one-time codes (email and SMS: one verifier, the sent code says the channel).
#[derive(Debug)]
pub(crate) struct OtpVerifier {
    api: ApiClient,
}

#[async_trait::async_trait]
impl Verifier for OtpVerifier {
    const KIND: VerifierKind = VerifierKind::Otp;
    type Request = OtpProof;
    type Command = SendOtp;

    fn new(config: &VerifierConfig) -> Self {
        Self { api: config.api.clone() }
    }

    async fn verify(&self, job: &VerifyJob<OtpProof>) -> Result<Option<Jwt>, StepUpError> {
        let OtpProof { code, sent } = &job.request;
        let request = OtpVerifyRequest {
            verification_uuid: sent.id.as_str().to_owned(),
            verification_token: code.clone(),
            requested_scopes: job.requested_scopes(),
            captcha_token: None,
            session_public_key: None,
        };
        let answer = match sent.channel {
            OtpChannel::Email => self.api.verify_email(&request).await?,
            OtpChannel::Sms => self.api.verify_sms(&request).await?,
        };
        Ok(answer.verify.elevated_access_token)
    }

    async fn command(&self, command: SendOtp, timeout: std::time::Duration) {
        let SendOtp { credential, epoch, reply_to, reply } = command;
        let result = tokio::time::timeout(timeout, self.send(credential.as_ref()))
            .await
            .unwrap_or(Err(StepUpError::Timeout));
        let _ = reply_to.cast(CoordinatorMsg::OtpSent { result, epoch, reply });
    }
}

impl OtpVerifier {
    async fn send(&self, credential: Option<&CredentialId>) -> Result<OtpVerification, StepUpError> {
        let user = self.api.user().await?;
        let destination = Self::destination(&user.verified_credentials, credential)?;
        let missing = |what: &str| StepUpError::UnexpectedResponse {
            message: format!("the user's credential {} has no {what}", destination.id),
        };
        if destination.format == CredentialFormat::Email {
            let email = destination.email.as_deref().or(destination.public_identifier.as_deref());
            let email = email.ok_or_else(|| missing("email"))?;
            let sent = self.api.create_email_verification(email).await?;
            return Ok(OtpVerification {
                id: VerificationId::new(&sent.verification_uuid),
                channel: OtpChannel::Email,
                destination_masked: mask_email(&sent.email),
            });
        }
        let request = SmsVerificationCreateRequest {
            phone_number: destination.phone_number.clone().ok_or_else(|| missing("phone number"))?,
            phone_country_code: destination.phone_country_code.clone().unwrap_or_default(),
            iso_country_code: destination.iso_country_code.clone().unwrap_or_default(),
            captcha_token: None,
        };
        let sent = self.api.create_sms_verification(&request).await?;
        Ok(OtpVerification {
            id: VerificationId::new(&sent.verification_uuid),
            channel: OtpChannel::Sms,
            destination_masked: mask_phone(&sent.phone_number),
        })
    }

    /// The credential a code goes to: the one named, or the user's email, else the user's phone.
    fn destination<'a>(
        credentials: &'a [VerifiedCredential],
        wanted: Option<&CredentialId>,
    ) -> Result<&'a VerifiedCredential, StepUpError> {
        let is_otp = |c: &&VerifiedCredential| {
            matches!(c.format, CredentialFormat::Email | CredentialFormat::PhoneNumber)
        };
        match wanted {
            Some(id) => {
                let credential = credentials
                    .iter()
                    .find(|c| c.id == id.as_str())
                    .ok_or_else(|| StepUpError::NotFound { message: format!("no credential {id}") })?;
                if is_otp(&credential) {
                    Ok(credential)
                } else {
                    Err(StepUpError::UnsupportedCredential { format: credential.format.clone() })
                }
            }
            None => {
                credentials.iter().filter(is_otp).min_by_key(|c| c.format != CredentialFormat::Email).ok_or(
                    StepUpError::NoMethodsAvailable { route: Some(stepup_core::Route::Reauthenticate) },
                )
            }
        }
    }
}

/// The prompt step: a code for `credential` — a new one on its first try (`new_code`), else the one the flow
/// holds — shown by where it went, read from the person, sent again when they ask. `None` when they want another
/// method.
pub(crate) async fn read_proof(
    task: &PromptTask,
    credential: &Credential,
    new_code: &mut bool,
    attempts_left: u8,
) -> Result<Option<VerifyRequest>, StepUpError> {
    // Whether the person asked for another code: a refused resend is not the end of the prompt.
    let mut resending = false;
    loop {
        let otp = match task.send_otp(credential, *new_code).await {
            Ok(otp) => otp,
            // A refused resend (too many sends, a network hiccup) does not end the flow: the person hears why
            // and types the code they already have (the flow still holds it).
            Err(error) if resending => {
                task.show_failure(error, attempts_left).await?;
                (*new_code, resending) = (false, false);
                continue;
            }
            Err(error) => return Err(error),
        };
        *new_code = false;
        let ask = PromptRequest::EnterOtp { destination_masked: otp.destination_masked, can_resend: true };
        match task.ask_person(ask).await {
            PromptReply::Code(code) => {
                let code = OtpCode::new(code.expose_secret());
                return Ok(Some(OtpRequest { code }.into()));
            }
            PromptReply::Resend => (*new_code, resending) = (true, true),
            PromptReply::Cancel => return Err(StepUpError::Cancelled),
            _ => return Ok(None),
        }
    }
}
