//! `PasskeyAuthenticator`: the user's WebAuthn authenticator, and a software implementation.

use stepup_core::Cause;
use stepup_proto::{
    PasskeyAuthRequest, PasskeyAuthenticationOptions, PasskeyRegisterRequest, PasskeyRegistrationOptions,
};

/// Why an authenticator could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasskeyError {
    /// The user declined or did not confirm in time.
    #[error("the user declined the passkey prompt")]
    Declined,
    /// None of the authenticator's passkeys is one the server asked for.
    #[error("the authenticator holds no passkey for this account")]
    NoCredential,
    /// The authenticator failed or refused the request.
    #[error("the authenticator failed")]
    Failed(#[source] Cause),
}

/// A WebAuthn authenticator as the client (browser/OS) sees it: `navigator.credentials.get` and `.create`.
///
/// The engine hands it the server's options and sends its answer back unchanged, so the server's WebAuthn check
/// is the real one. [`SoftwarePasskey`] is a software authenticator with real CTAP2 cryptography.
#[async_trait::async_trait]
pub trait PasskeyAuthenticator: Send + Sync {
    /// Signs the server's challenge with one of the allowed passkeys (WebAuthn get-assertion). The answer's
    /// `requestedScopes` is left empty; the engine fills it in.
    ///
    /// # Errors
    /// [`PasskeyError`] when the user declines, no passkey matches, or the authenticator fails.
    async fn authenticate(
        &self,
        options: &PasskeyAuthenticationOptions,
    ) -> Result<PasskeyAuthRequest, PasskeyError>;

    /// Creates a new passkey for the server's registration options (WebAuthn make-credential).
    ///
    /// # Errors
    /// As [`PasskeyAuthenticator::authenticate`].
    async fn register(
        &self,
        options: &PasskeyRegistrationOptions,
    ) -> Result<PasskeyRegisterRequest, PasskeyError>;
}

#[cfg(feature = "software-passkey")]
pub use software::SoftwarePasskey;

#[cfg(feature = "software-passkey")]
mod software {
    use passkey::authenticator::{Authenticator, MemoryStore, UiHint, UserCheck, UserValidationMethod};
    use passkey::client::{Client, DefaultClientData, WebauthnError};
    use passkey::crypto::rust_crypto::RustCryptoBackend;
    use passkey::types::Passkey;
    use passkey::types::ctap2::{Aaguid, Ctap2Error};
    use passkey::types::webauthn::{CredentialCreationOptions, CredentialRequestOptions};
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use stepup_proto::{
        PasskeyAuthRequest, PasskeyAuthenticationOptions, PasskeyRegisterRequest, PasskeyRegistrationOptions,
    };
    use tokio::sync::Mutex;
    use url::Url;

    use super::{Cause, PasskeyAuthenticator, PasskeyError};

    /// The person at the authenticator: always present; verified (PIN/biometrics) unless built otherwise.
    struct SoftwareUser {
        verifies: bool,
    }

    #[async_trait::async_trait]
    impl UserValidationMethod for SoftwareUser {
        type PasskeyItem = Passkey;

        async fn check_user<'a>(
            &self,
            _hint: UiHint<'a, Passkey>,
            presence: bool,
            _verification: bool,
        ) -> Result<UserCheck, Ctap2Error> {
            Ok(UserCheck { presence, verification: self.verifies })
        }

        fn is_verification_enabled(&self) -> Option<bool> {
            Some(self.verifies)
        }

        fn is_presence_enabled(&self) -> bool {
            true
        }
    }

    type Device = Client<MemoryStore, SoftwareUser, RustCryptoBackend, public_suffix::PublicSuffixList, ()>;

    /// A software passkey authenticator (1Password's `passkey` crates: CTAP2 authenticator + WebAuthn client)
    /// holding its passkeys in memory, with signature counters on as on most hardware keys. It answers for one
    /// origin (the web app's, e.g. `http://localhost:8080`); `localhost` over plain HTTP is allowed, as browsers
    /// allow it.
    pub struct SoftwarePasskey {
        device: Mutex<Device>,
        origin: Url,
    }

    impl std::fmt::Debug for SoftwarePasskey {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("SoftwarePasskey").field("origin", &self.origin.as_str()).finish_non_exhaustive()
        }
    }

    impl SoftwarePasskey {
        /// An authenticator with no passkeys yet, answering for `origin`, that verifies its user.
        ///
        /// # Errors
        /// [`PasskeyError::Failed`] when `origin` is not a URL.
        pub fn new(origin: &str) -> Result<Self, PasskeyError> {
            Self::build(origin, true)
        }

        /// An authenticator that checks presence only, never user verification (as a basic security key): the
        /// server, which requires UV, must refuse its assertions.
        ///
        /// # Errors
        /// As [`SoftwarePasskey::new`].
        pub fn without_user_verification(origin: &str) -> Result<Self, PasskeyError> {
            Self::build(origin, false)
        }

        fn build(origin: &str, verifies: bool) -> Result<Self, PasskeyError> {
            let origin = Url::parse(origin).map_err(|e| {
                PasskeyError::Failed(Cause::context(format!("origin `{origin}` is not a URL"), e))
            })?;
            let mut authenticator = Authenticator::new(
                Aaguid::new_empty(),
                MemoryStore::new(),
                SoftwareUser { verifies },
                RustCryptoBackend,
            );
            authenticator.set_make_credentials_with_signature_counter(true);
            let device = Client::new(authenticator).allows_insecure_localhost(true);
            Ok(Self { device: Mutex::new(device), origin })
        }

        /// How many passkeys the authenticator holds.
        pub async fn passkey_count(&self) -> usize {
            self.device.lock().await.authenticator().store().len()
        }
    }

    /// Moves a value between the wire types and the passkey crate's types through JSON: both follow the WebAuthn
    /// JSON shape, so nothing is lost and nothing is re-encoded by hand.
    fn convert<A: Serialize, B: DeserializeOwned>(value: A, what: &str) -> Result<B, PasskeyError> {
        let json = serde_json::to_value(value)
            .map_err(|e| PasskeyError::Failed(Cause::context(format!("{what} could not be encoded"), e)))?;
        serde_json::from_value(json)
            .map_err(|e| PasskeyError::Failed(Cause::context(format!("{what} could not be read"), e)))
    }

    fn webauthn_error(error: WebauthnError) -> PasskeyError {
        match error {
            WebauthnError::CredentialNotFound => PasskeyError::NoCredential,
            WebauthnError::TimeoutError => PasskeyError::Declined,
            // The passkey client's error type is no `std::error::Error`: its name is what there is.
            other => PasskeyError::Failed(Cause::message(format!("{other:?}"))),
        }
    }

    #[async_trait::async_trait]
    impl PasskeyAuthenticator for SoftwarePasskey {
        async fn authenticate(
            &self,
            options: &PasskeyAuthenticationOptions,
        ) -> Result<PasskeyAuthRequest, PasskeyError> {
            let request: CredentialRequestOptions =
                convert(serde_json::json!({ "publicKey": options }), "the assertion options")?;
            let mut device = self.device.lock().await;
            let answer = device
                .authenticate(&self.origin, request, DefaultClientData)
                .await
                .map_err(webauthn_error)?;
            convert(answer, "the assertion")
        }

        async fn register(
            &self,
            options: &PasskeyRegistrationOptions,
        ) -> Result<PasskeyRegisterRequest, PasskeyError> {
            let request: CredentialCreationOptions =
                convert(serde_json::json!({ "publicKey": options }), "the registration options")?;
            let mut device = self.device.lock().await;
            let created =
                device.register(&self.origin, request, DefaultClientData).await.map_err(webauthn_error)?;
            convert(created, "the attestation")
        }
    }
}
