//! External wallets: the request (`verify_wallet`), the `WalletVerifier` — an EIP-4361 message signed by the
//! external wallet (`GET /nonces`, the `WalletSigner`, then `POST /wallets/verify`) — and the prompt step (the
//! person sees the address and the statement, and confirms).

use std::sync::Arc;

use stepup_core::{Cause, Credential, CredentialId, Jwt, SharedClock, StepUpError};
use stepup_proto::{CredentialFormat, WalletMessage, WalletVerifyRequest};

use super::{NoCommand, Verifier, VerifierConfig, VerifierKind, VerifyJob, VerifyRequest};
use crate::api::ApiClient;
use crate::frontend::{PromptReply, PromptRequest};
use crate::prompt::PromptTask;
use crate::signers::{SignerError, WalletSigner};

/// `verify_wallet`: a signature of the external wallet; `wallet_id` names which of the user's wallets (checked
/// against the signer's address), `None` means the signer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletRequest {
    /// The user's wallet credential, if the app names one.
    pub wallet_id: Option<CredentialId>,
}

impl From<WalletRequest> for VerifyRequest {
    fn from(request: WalletRequest) -> Self {
        VerifyRequest::Wallet(request)
    }
}

/// What the wallet message says about the app: its name (in the statement) and its origin (domain and URI, which
/// the server checks against the environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletMessageSettings {
    /// The app's name, shown in the statement.
    pub app_name: String,
    /// The app's origin, e.g. `https://app.example.com` (the reference server's dev environment: `http://localhost`).
    pub app_origin: String,
}

impl Default for WalletMessageSettings {
    fn default() -> Self {
        Self { app_name: "this app".to_owned(), app_origin: "http://localhost".to_owned() }
    }
}

impl WalletMessageSettings {
    /// The message's `domain`: the origin's host and port.
    #[must_use]
    pub(crate) fn domain(&self) -> &str {
        let without_scheme =
            self.app_origin.split_once("://").map_or(self.app_origin.as_str(), |(_, rest)| rest);
        without_scheme.split('/').next().unwrap_or(without_scheme)
    }

    /// The message's `URI`: the origin with a trailing `/`, as Dynamic's client writes it.
    #[must_use]
    pub(crate) fn uri(&self) -> String {
        format!("{}/", self.app_origin.trim_end_matches('/'))
    }
}

/// Verifies external-wallet signatures.
pub(crate) struct WalletVerifier {
    api: ApiClient,
    signer: Option<Arc<dyn WalletSigner>>,
    settings: WalletMessageSettings,
    clock: SharedClock,
}

impl std::fmt::Debug for WalletVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletVerifier")
            .field("signer", &self.signer.as_ref().map(|s| s.address()))
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl WalletVerifier {
    /// Checks the wallet the app named against the signer: it must be one of the user's wallets, external, the
    /// signer's address, and on the signer's chain. The credential names its chain as Dynamic's credentials do
    /// (`eip155`), the signer as connectors do (`EVM`): both spellings of a chain match
    /// ([`stepup_proto::chain::same_chain`]).
    async fn check_named_wallet(
        &self,
        id: &CredentialId,
        signer: &dyn WalletSigner,
    ) -> Result<(), StepUpError> {
        let user = self.api.user().await?;
        let wallet = user
            .verified_credentials
            .iter()
            .find(|c| c.id == id.as_str())
            .ok_or_else(|| StepUpError::NotFound { message: format!("no credential {id}") })?;
        if wallet.format != CredentialFormat::Blockchain {
            return Err(StepUpError::UnsupportedCredential { format: wallet.format.clone() });
        }
        if wallet.is_embedded_wallet() {
            return Err(StepUpError::EmbeddedWalletNotAllowed);
        }
        let same_address =
            wallet.address.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(&signer.address()));
        let same_chain = wallet
            .chain
            .as_deref()
            .is_none_or(|chain| stepup_proto::chain::same_chain(chain, &signer.chain()));
        if !same_address || !same_chain {
            return Err(StepUpError::WalletNotLinked);
        }
        Ok(())
    }

    /// The message to sign, with a fresh nonce from the server.
    async fn message(&self, signer: &dyn WalletSigner) -> Result<WalletMessage, StepUpError> {
        let nonces = self.api.nonces(1).await?;
        let nonce = nonces.nonces.into_iter().next().ok_or_else(|| StepUpError::UnexpectedResponse {
            message: "GET /nonces answered no nonce".to_owned(),
        })?;
        Ok(WalletMessage {
            domain: self.settings.domain().to_owned(),
            address: signer.address(),
            statement: WalletMessage::statement_for(&self.settings.app_name),
            uri: self.settings.uri(),
            version: "1".to_owned(),
            chain_id: signer.chain_id().to_string(),
            nonce,
            issued_at: self.clock.now().to_rfc3339(),
            request_id: self.api.environment_id().to_owned(),
        })
    }
}

/// How a wallet's failure reads to the engine's callers.
fn signer_error(error: SignerError) -> StepUpError {
    match error {
        SignerError::Declined => StepUpError::Cancelled,
        failed @ SignerError::Failed(_) => {
            StepUpError::SignerFailed { what: "wallet", cause: Cause::new(failed) }
        }
    }
}

#[async_trait::async_trait]
impl Verifier for WalletVerifier {
    const KIND: VerifierKind = VerifierKind::Wallet;
    type Request = WalletRequest;
    type Command = NoCommand;

    fn new(config: &VerifierConfig) -> Self {
        Self {
            api: config.api.clone(),
            signer: config.wallet.clone(),
            settings: config.wallet_message.clone(),
            clock: config.clock.clone(),
        }
    }

    async fn verify(&self, job: &VerifyJob<WalletRequest>) -> Result<Option<Jwt>, StepUpError> {
        let WalletRequest { wallet_id } = &job.request;
        let signer = self.signer.as_deref().ok_or(StepUpError::NotConfigured { what: "wallet signer" })?;
        // Embedded wallets never qualify (docs/design.md §1): refuse before asking anyone to sign anything.
        if signer.is_embedded() {
            return Err(StepUpError::EmbeddedWalletNotAllowed);
        }
        if let Some(id) = wallet_id {
            self.check_named_wallet(id, signer).await?;
        }
        let message = self.message(signer).await?.to_string();
        let signature = signer.sign_message(&message).await.map_err(signer_error)?;
        let request = WalletVerifyRequest {
            signed_message: signature,
            message_to_sign: message,
            public_wallet_address: signer.address(),
            chain: signer.chain(),
            wallet_name: signer.wallet_name(),
            wallet_provider: signer.wallet_provider(),
            requested_scopes: job.requested_scopes(),
            network: None,
        };
        Ok(self.api.verify_wallet(&request).await?.elevated_access_token)
    }

    async fn command(&self, command: NoCommand, _timeout: std::time::Duration) {
        match command {}
    }
}

/// The prompt step: the wallet's address and the statement it will sign, for the person to confirm.
pub(crate) async fn read_proof(
    task: &PromptTask,
    credential: &Credential,
) -> Result<Option<VerifyRequest>, StepUpError> {
    let config = task.config();
    let wallet = config.wallet.as_ref().ok_or(StepUpError::NotConfigured { what: "wallet signer" })?;
    let ask = PromptRequest::ConfirmWallet {
        address: wallet.address(),
        message: WalletMessage::statement_for(&config.wallet_message.app_name),
    };
    task.ask_for(ask, |reply| match reply {
        PromptReply::Confirm => Ok(WalletRequest { wallet_id: Some(credential.id.clone()) }.into()),
        other => Err(other),
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_and_uri_come_from_the_origin() {
        let settings =
            WalletMessageSettings { app_name: "A".into(), app_origin: "http://localhost:8080".into() };
        assert_eq!(settings.domain(), "localhost:8080");
        assert_eq!(settings.uri(), "http://localhost:8080/");
        let default = WalletMessageSettings::default();
        assert_eq!(default.domain(), "localhost");
        assert_eq!(default.uri(), "http://localhost/");
    }
}
