//! Passkeys: the request (`verify_passkey_mfa`), the `PasskeyVerifier` — a WebAuthn assertion from the
//! `PasskeyAuthenticator` (`/users/passkeys/authenticate`, then `POST /users/mfa/auth/passkey`) — and the prompt
//! step (the person confirms, then uses the authenticator).

use std::sync::Arc;

use stepup_core::{Cause, Jwt, StepUpError};

use super::{NoCommand, Verifier, VerifierConfig, VerifierKind, VerifyJob, VerifyRequest};
use crate::api::ApiClient;
use crate::frontend::{PromptReply, PromptRequest};
use crate::prompt::PromptTask;
use crate::signers::{PasskeyAuthenticator, PasskeyError};

/// `verify_passkey_mfa`: an assertion of one of the user's passkeys (the authenticator is the engine's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PasskeyRequest;

impl From<PasskeyRequest> for VerifyRequest {
    fn from(request: PasskeyRequest) -> Self {
        VerifyRequest::Passkey(request)
    }
}

/// Verifies passkeys.
pub(crate) struct PasskeyVerifier {
    api: ApiClient,
    authenticator: Option<Arc<dyn PasskeyAuthenticator>>,
}

impl std::fmt::Debug for PasskeyVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeyVerifier").field("has_authenticator", &self.authenticator.is_some()).finish()
    }
}

/// How an authenticator's failure reads to the engine's callers.
pub(crate) fn passkey_error(error: PasskeyError) -> StepUpError {
    match error {
        PasskeyError::Declined => StepUpError::Cancelled,
        PasskeyError::NoCredential => StepUpError::NoPasskeyCredentials,
        failed @ PasskeyError::Failed(_) => {
            StepUpError::SignerFailed { what: "passkey authenticator", cause: Cause::new(failed) }
        }
    }
}

#[async_trait::async_trait]
impl Verifier for PasskeyVerifier {
    const KIND: VerifierKind = VerifierKind::Passkey;
    type Request = PasskeyRequest;
    type Command = NoCommand;

    fn new(config: &VerifierConfig) -> Self {
        Self { api: config.api.clone(), authenticator: config.passkey.clone() }
    }

    async fn verify(&self, job: &VerifyJob<PasskeyRequest>) -> Result<Option<Jwt>, StepUpError> {
        let authenticator = self
            .authenticator
            .as_ref()
            .ok_or(StepUpError::NotConfigured { what: "passkey authenticator" })?;
        // The server answers 404 when the user has no passkey, which is Dynamic's "no passkey credentials". A
        // 404 can also mean a wrong environment or base URL, so the user's MFA methods confirm it (one more
        // call, on this error path only).
        let options = match self.api.passkey_authentication_options().await {
            Err(not_found @ StepUpError::NotFound { .. }) => {
                return Err(match self.api.mfa_methods().await {
                    Ok(methods) if methods.passkeys.is_empty() => StepUpError::NoPasskeyCredentials,
                    _ => not_found,
                });
            }
            other => other?,
        };
        let mut assertion = authenticator.authenticate(&options).await.map_err(passkey_error)?;
        assertion.requested_scopes = job.requested_scopes();
        Ok(self.api.passkey_auth(&assertion).await?.elevated_access_token)
    }

    async fn command(&self, command: NoCommand, _timeout: std::time::Duration) {
        match command {}
    }
}

/// The prompt step: the person confirms, and the authenticator is used when the verifier runs.
pub(crate) async fn read_proof(task: &PromptTask) -> Result<Option<VerifyRequest>, StepUpError> {
    task.ask_for(PromptRequest::UsePasskey, |reply| match reply {
        PromptReply::Confirm => Ok(PasskeyRequest.into()),
        other => Err(other),
    })
    .await
}
