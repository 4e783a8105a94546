//! `PasskeyVerifier`: a WebAuthn assertion from the `PasskeyAuthenticator` (`/users/passkeys/authenticate`, then
//! `POST /users/mfa/auth/passkey`).

use std::sync::Arc;
use stepup_core::Cause;

use stepup_core::{Jwt, StepUpError};

use super::{Verifier, VerifierConfig, VerifierKind, VerifyJob};
use crate::api::ApiClient;
use crate::signers::{PasskeyAuthenticator, PasskeyError};

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

    fn new(config: &VerifierConfig) -> Self {
        Self { api: config.api.clone(), authenticator: config.passkey.clone() }
    }

    async fn verify(&self, job: &VerifyJob) -> Result<Option<Jwt>, StepUpError> {
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
}
