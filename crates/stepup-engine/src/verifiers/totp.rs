//! Authenticator-app codes: the request (`verify_totp_mfa`), the `TotpVerifier` (`POST /users/mfa/auth/totp`),
//! and the prompt step (read the code the app shows).

use stepup_core::{Credential, CredentialId, Jwt, StepUpError, TotpCode};
use stepup_proto::TotpAuthRequest;

use super::{NoCommand, Verifier, VerifierConfig, VerifierKind, VerifyJob, VerifyRequest};
use crate::api::ApiClient;
use crate::frontend::{PromptReply, PromptRequest};
use crate::prompt::PromptTask;

/// `verify_totp_mfa`: a TOTP code, of `device_id` or the user's default device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpRequest {
    /// The code.
    pub code: TotpCode,
    /// The device, if the user has several.
    pub device_id: Option<CredentialId>,
}

impl From<TotpRequest> for VerifyRequest {
    fn from(request: TotpRequest) -> Self {
        VerifyRequest::Totp(request)
    }
}

/// Verifies TOTP codes.
#[derive(Debug)]
pub(crate) struct TotpVerifier {
    api: ApiClient,
}

#[async_trait::async_trait]
impl Verifier for TotpVerifier {
    const KIND: VerifierKind = VerifierKind::Totp;
    type Request = TotpRequest;
    type Command = NoCommand;

    fn new(config: &VerifierConfig) -> Self {
        Self { api: config.api.clone() }
    }

    async fn verify(&self, job: &VerifyJob<TotpRequest>) -> Result<Option<Jwt>, StepUpError> {
        let request = TotpAuthRequest {
            code: job.request.code.clone(),
            id: job.request.device_id.as_ref().map(|id| id.as_str().to_owned()),
            requested_scopes: job.requested_scopes(),
            create_mfa_token: None,
        };
        Ok(self.api.totp_auth(&request).await?.elevated_access_token)
    }

    async fn command(&self, command: NoCommand, _timeout: std::time::Duration) {
        match command {}
    }
}

/// The prompt step: the code of the chosen device.
pub(crate) async fn read_proof(
    task: &PromptTask,
    credential: &Credential,
) -> Result<Option<VerifyRequest>, StepUpError> {
    task.ask_for(PromptRequest::EnterTotp, |reply| match reply {
        PromptReply::Code(code) => Ok(TotpRequest {
            code: TotpCode::new(code.expose_secret()),
            device_id: Some(credential.id.clone()),
        }
        .into()),
        other => Err(other),
    })
    .await
}
