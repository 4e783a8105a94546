//! `TotpVerifier`: checks an authenticator-app code (`POST /users/mfa/auth/totp`).

use stepup_core::{Jwt, StepUpError};
use stepup_proto::TotpAuthRequest;

use super::{Verifier, VerifierConfig, VerifierKind, VerifyJob, VerifyRequest};
use crate::api::ApiClient;

/// Verifies TOTP codes.
#[derive(Debug)]
pub(crate) struct TotpVerifier {
    api: ApiClient,
}

#[async_trait::async_trait]
impl Verifier for TotpVerifier {
    const KIND: VerifierKind = VerifierKind::Totp;

    fn new(config: &VerifierConfig) -> Self {
        Self { api: config.api.clone() }
    }

    async fn verify(&self, job: &VerifyJob) -> Result<Option<Jwt>, StepUpError> {
        let VerifyRequest::Totp { code, device_id } = &job.request else {
            return Err(StepUpError::MethodNotAvailable { method: job.request.method(None) });
        };
        let request = TotpAuthRequest {
            code: code.clone(),
            id: device_id.as_ref().map(|id| id.as_str().to_owned()),
            requested_scopes: job.requested_scopes(),
            create_mfa_token: None,
        };
        Ok(self.api.totp_auth(&request).await?.elevated_access_token)
    }
}
