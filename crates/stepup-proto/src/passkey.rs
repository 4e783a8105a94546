//! WebAuthn passkeys: authentication options and assertions (MFA), registration options and attestations.
//!
//! Byte fields (challenge, ids, authenticator data, signatures) are base64url strings without padding, as in
//! the WebAuthn JSON serialisation.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::TokenScope;
use crate::open_enum::open_enum;

open_enum! {
    /// WebAuthn user-verification requirement.
    pub enum UserVerification, expecting "a user verification requirement" {
        /// The authenticator should not verify the user.
        Discouraged => "discouraged",
        /// Verify the user if the authenticator can.
        Preferred => "preferred",
        /// The user must be verified (PIN, biometrics).
        Required => "required",
    }
}

/// A credential the authenticator may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasskeyAllowCredential {
    /// The credential id, base64url.
    pub id: String,
    /// The credential type: `public-key` (the only one WebAuthn defines). Authenticators skip descriptors of
    /// types they do not know, so it must be sent back as received.
    #[serde(rename = "type", default = "public_key")]
    pub kind: String,
    /// Transports hint (`usb`, `nfc`, `ble`, `internal`, `hybrid`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transports: Option<Vec<String>>,
}

fn public_key() -> String {
    "public-key".to_owned()
}

/// Answer of `GET /users/passkeys/authenticate` (`GetPasskeyAuthenticationOptionsResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PasskeyAuthenticationOptions {
    /// The single-use challenge, base64url.
    pub challenge: String,
    /// How long the ceremony may take, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// The relying party id (a domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rp_id: Option<String>,
    /// Whether user verification is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_verification: Option<UserVerification>,
    /// The user's credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<Vec<PasskeyAllowCredential>>,
}

/// The authenticator's answer inside an assertion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorAssertionResponse {
    /// The client data JSON, base64url.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    /// Authenticator data, base64url.
    pub authenticator_data: String,
    /// Signature, base64url.
    pub signature: String,
    /// The user handle, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_handle: Option<String>,
}

/// Body of `POST /users/mfa/auth/passkey` (`PasskeyAuthRequest`): a WebAuthn assertion plus scopes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PasskeyAuthRequest {
    /// The credential id, base64url.
    pub id: String,
    /// The credential id, base64url (the same bytes as `id`).
    pub raw_id: String,
    /// The authenticator's answer.
    pub response: AuthenticatorAssertionResponse,
    /// Always `public-key`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Client extension outputs.
    #[serde(default)]
    pub client_extension_results: Map<String, Value>,
    /// `platform` or `cross-platform`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_attachment: Option<String>,
    /// Scopes to get an elevated token for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_scopes: Option<Vec<TokenScope>>,
}

/// The relying party in registration options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RelyingParty {
    /// The RP id (a domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The RP's display name.
    pub name: String,
}

/// The user in registration options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PasskeyUser {
    /// The user handle, base64url.
    pub id: String,
    /// A user name.
    pub name: String,
    /// A display name.
    pub display_name: String,
}

/// A public-key algorithm the RP accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PubKeyCredParam {
    /// Always `public-key`.
    #[serde(rename = "type")]
    pub kind: String,
    /// COSE algorithm id (-7 ES256, -8 EdDSA, -257 RS256).
    pub alg: i64,
}

/// What the RP asks of the authenticator at registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorSelection {
    /// `required`, `preferred` or `discouraged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident_key: Option<String>,
    /// Whether user verification is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_verification: Option<UserVerification>,
    /// `platform` or `cross-platform`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_attachment: Option<String>,
}

/// Answer of `GET /users/passkeys/register`: WebAuthn creation options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PasskeyRegistrationOptions {
    /// The relying party.
    pub rp: RelyingParty,
    /// The user.
    pub user: PasskeyUser,
    /// The single-use challenge, base64url.
    pub challenge: String,
    /// Accepted algorithms.
    pub pub_key_cred_params: Vec<PubKeyCredParam>,
    /// How long the ceremony may take, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Credentials the user already has (not to be registered twice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_credentials: Option<Vec<PasskeyAllowCredential>>,
    /// Requirements on the authenticator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_selection: Option<AuthenticatorSelection>,
    /// `none`, `indirect`, `direct` or `enterprise`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<String>,
}

/// The authenticator's answer inside an attestation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorAttestationResponse {
    /// The client data JSON, base64url. Dynamic's client sends it as `clientDataJson` (its serializer's
    /// spelling); both are read, `clientDataJSON` is written.
    #[serde(rename = "clientDataJSON", alias = "clientDataJson")]
    pub client_data_json: String,
    /// The attestation object (CBOR), base64url.
    pub attestation_object: String,
    /// Transports the authenticator supports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transports: Option<Vec<String>>,
}

/// Body of `POST /users/passkeys/register`: a WebAuthn attestation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PasskeyRegisterRequest {
    /// The new credential's id, base64url.
    pub id: String,
    /// The same bytes as `id`, base64url.
    pub raw_id: String,
    /// The authenticator's answer.
    pub response: AuthenticatorAttestationResponse,
    /// Always `public-key`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Client extension outputs.
    #[serde(default)]
    pub client_extension_results: Map<String, Value>,
    /// `platform` or `cross-platform`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_attachment: Option<String>,
}
