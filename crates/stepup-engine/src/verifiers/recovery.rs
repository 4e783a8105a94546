//! `RecoveryVerifier`: spends a recovery code (`POST /users/mfa/auth/recovery`).

use stepup_core::{Jwt, StepUpError};
use stepup_proto::RecoveryAuthRequest;

use super::{Verifier, VerifierConfig, VerifierKind, VerifyJob, VerifyRequest};
use crate::api::ApiClient;

/// Verifies recovery codes.
#[derive(Debug)]
pub(crate) struct RecoveryVerifier {
    api: ApiClient,
}

#[async_trait::async_trait]
impl Verifier for RecoveryVerifier {
    const KIND: VerifierKind = VerifierKind::Recovery;

    fn new(config: &VerifierConfig) -> Self {
        Self { api: config.api.clone() }
    }

    async fn verify(&self, job: &VerifyJob) -> Result<Option<Jwt>, StepUpError> {
        let VerifyRequest::RecoveryCode { code } = &job.request else {
            return Err(StepUpError::MethodNotAvailable { method: job.request.method(None) });
        };
        let request = RecoveryAuthRequest {
            code: code.clone(),
            requested_scopes: job.requested_scopes(),
            create_mfa_token: None,
        };
        Ok(self.api.recovery_auth(&request).await?.elevated_access_token)
    }
}
