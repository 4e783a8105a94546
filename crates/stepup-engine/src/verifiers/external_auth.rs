//! `ExternalAuthVerifier`: elevation granted by the app's own backend (`POST /externalAuth/verify`). The app's
//! backend signs a short JWT for the user and the scopes; this verifier hands it to the server. No person is
//! asked, so no front end is involved; the flow machine still runs the verification like any other (flow number,
//! stale results dropped, cancel and reset honoured).

use stepup_core::{Jwt, StepUpError};

use super::{Verifier, VerifierConfig, VerifierKind, VerifyJob, VerifyRequest};
use crate::api::ApiClient;

/// Verifies the app backend's JWTs.
#[derive(Debug)]
pub(crate) struct ExternalAuthVerifier {
    api: ApiClient,
}

#[async_trait::async_trait]
impl Verifier for ExternalAuthVerifier {
    const KIND: VerifierKind = VerifierKind::ExternalAuth;

    fn new(config: &VerifierConfig) -> Self {
        Self { api: config.api.clone() }
    }

    async fn verify(&self, job: &VerifyJob) -> Result<Option<Jwt>, StepUpError> {
        let VerifyRequest::ExternalAuth { jwt } = &job.request else {
            return Err(StepUpError::MethodNotAvailable { method: job.request.method(None) });
        };
        // The scopes are the backend's, in its JWT; the actor checks that the token covers the caller's.
        Ok(Some(self.api.external_auth(jwt).await?.elevated_access_token))
    }
}
