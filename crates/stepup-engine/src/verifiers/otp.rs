//! `OtpVerifier`: sends email/SMS one-time codes and checks them (`/emailVerifications/*`, `/smsVerifications/*`).

use stepup_core::otp::{mask_email, mask_phone};
use stepup_core::{CredentialId, Jwt, OtpChannel, OtpVerification, StepUpError, VerificationId};
use stepup_proto::{CredentialFormat, OtpVerifyRequest, SmsVerificationCreateRequest, VerifiedCredential};

use super::{Verifier, VerifierConfig, VerifierKind, VerifyJob, VerifyRequest};
use crate::api::ApiClient;

/// Sends and verifies one-time codes.
#[derive(Debug)]
pub(crate) struct OtpVerifier {
    api: ApiClient,
}

impl OtpVerifier {
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

#[async_trait::async_trait]
impl Verifier for OtpVerifier {
    const KIND: VerifierKind = VerifierKind::Otp;

    fn new(config: &VerifierConfig) -> Self {
        Self { api: config.api.clone() }
    }

    async fn verify(&self, job: &VerifyJob) -> Result<Option<Jwt>, StepUpError> {
        let VerifyRequest::Otp { code } = &job.request else {
            return Err(StepUpError::MethodNotAvailable { method: job.request.method(None) });
        };
        let otp = job.otp.as_ref().ok_or(StepUpError::OtpNotSent)?;
        let request = OtpVerifyRequest {
            verification_uuid: otp.id.as_str().to_owned(),
            verification_token: code.clone(),
            requested_scopes: job.requested_scopes(),
            captcha_token: None,
            session_public_key: None,
        };
        let answer = match otp.channel {
            OtpChannel::Email => self.api.verify_email(&request).await?,
            OtpChannel::Sms => self.api.verify_sms(&request).await?,
        };
        Ok(answer.verify.elevated_access_token)
    }

    async fn send_otp(&self, credential: Option<&CredentialId>) -> Result<OtpVerification, StepUpError> {
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
}
