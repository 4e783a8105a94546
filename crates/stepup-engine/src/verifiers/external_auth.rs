//! External auth: elevation granted by the app's own backend (`POST /externalAuth/verify`). The app's backend
//! signs a short JWT for the user and the scopes; the `ExternalAuthVerifier` hands it to the server. No person is
//! asked, so there is no prompt step; the flow machine still runs the verification like any other (attempt
//! number, stale results dropped, cancel and reset honoured).

use stepup_core::{Jwt, StepUpError};

use super::{NoCommand, Verifier, VerifierConfig, VerifierKind, VerifyJob, VerifyRequest};
use crate::api::ApiClient;

/// `verify_external_auth`: a JWT the app's backend signed for this user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalAuthRequest {
    /// The backend's JWT.
    pub jwt: Jwt,
}

impl From<ExternalAuthRequest> for VerifyRequest {
    fn from(request: ExternalAuthRequest) -> Self {
        VerifyRequest::ExternalAuth(request)
    }
}

/// Verifies the app backend's JWTs.
#[derive(Debug)]
pub(crate) struct ExternalAuthVerifier {
    api: ApiClient,
}

#[async_trait::async_trait]
impl Verifier for ExternalAuthVerifier {
    const KIND: VerifierKind = VerifierKind::ExternalAuth;
    type Request = ExternalAuthRequest;
    type Command = NoCommand;

    fn new(config: &VerifierConfig) -> Self {
        Self { api: config.api.clone() }
    }

    async fn verify(&self, job: &VerifyJob<ExternalAuthRequest>) -> Result<Option<Jwt>, StepUpError> {
        // The scopes are the backend's, in its JWT; the actor checks that the token covers the caller's.
        Ok(Some(self.api.external_auth(&job.request.jwt).await?.elevated_access_token))
    }

    async fn command(&self, command: NoCommand, _timeout: std::time::Duration) {
        match command {}
    }
}
