//! Recovery codes: the request (`verify_recovery_code`), the `RecoveryVerifier` (`POST /users/mfa/auth/recovery`),
//! and the prompt step (read one of the codes).

use stepup_core::{Jwt, RecoveryCode, StepUpError};
use stepup_proto::RecoveryAuthRequest;

use super::{NoCommand, Verifier, VerifierConfig, VerifierKind, VerifyJob, VerifyRequest};
use crate::api::ApiClient;
use crate::frontend::{PromptReply, PromptRequest};
use crate::prompt::PromptTask;

/// `verify_recovery_code`: one of the user's recovery codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryCodeRequest {
    /// The code.
    pub code: RecoveryCode,
}

impl From<RecoveryCodeRequest> for VerifyRequest {
    fn from(request: RecoveryCodeRequest) -> Self {
        VerifyRequest::RecoveryCode(request)
    }
}

/// Verifies recovery codes.
#[derive(Debug)]
pub(crate) struct RecoveryVerifier {
    api: ApiClient,
}

#[async_trait::async_trait]
impl Verifier for RecoveryVerifier {
    const KIND: VerifierKind = VerifierKind::Recovery;
    type Request = RecoveryCodeRequest;
    type Command = NoCommand;

    fn new(config: &VerifierConfig) -> Self {
        Self { api: config.api.clone() }
    }

    async fn verify(&self, job: &VerifyJob<RecoveryCodeRequest>) -> Result<Option<Jwt>, StepUpError> {
        let request = RecoveryAuthRequest {
            code: job.request.code.clone(),
            requested_scopes: job.requested_scopes(),
            create_mfa_token: None,
        };
        Ok(self.api.recovery_auth(&request).await?.elevated_access_token)
    }

    async fn command(&self, command: NoCommand, _timeout: std::time::Duration) {
        match command {}
    }
}

/// The prompt step: one recovery code.
pub(crate) async fn read_proof(task: &PromptTask) -> Result<Option<VerifyRequest>, StepUpError> {
    task.ask_for(PromptRequest::EnterRecoveryCode, |reply| match reply {
        PromptReply::Code(code) => {
            Ok(RecoveryCodeRequest { code: RecoveryCode::new(code.expose_secret()) }.into())
        }
        other => Err(other),
    })
    .await
}
