//! MFA: devices and passkeys listing, TOTP registration and authentication, recovery codes.

use serde::{Deserialize, Serialize};

use crate::TokenScope;
use crate::open_enum::open_enum;
use crate::secret::{RecoveryCode, SecretString, TotpCode};

/// How many recovery codes a user gets.
pub const RECOVERY_CODE_COUNT: usize = 10;

open_enum! {
    /// The type of an MFA device (`MFADeviceType`).
    pub enum MfaDeviceType, expecting "an MFA device type" {
        /// A TOTP authenticator app.
        Totp => "totp",
        /// A passkey.
        Passkey => "passkey",
        /// Email.
        Email => "email",
    }
}

/// An MFA device of the user (`MFADevice`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MfaDevice {
    /// The device's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What kind of device.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MfaDeviceType>,
    /// Whether the user finished registering it (a first code was accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// When it was created (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When it was verified (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<String>,
    /// Whether it is the user's default device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    /// A name the user gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// A passkey of the user (`UserPasskey`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UserPasskey {
    /// The passkey record's id.
    pub id: String,
    /// The WebAuthn credential id, base64url.
    pub credential_id: String,
    /// When it was registered (RFC 3339).
    pub created_at: String,
    /// When it was last used or changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// A name the user gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// The user agent that registered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The origin it was registered at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// Answer of `GET /users/mfa/methods` (`MFAMethodsResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MfaMethodsResponse {
    /// The user's MFA devices.
    pub devices: Vec<MfaDevice>,
    /// The user's passkeys.
    pub passkeys: Vec<UserPasskey>,
    /// Whether the user has at least one verified MFA method (then MFA is required and re-authentication refused).
    pub user_has_verified_mfa_methods: bool,
}

/// Answer of `GET /users/mfa` (`MFAListDevicesResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MfaDevicesResponse {
    /// How many devices.
    pub count: usize,
    /// The user's MFA devices.
    pub devices: Vec<MfaDevice>,
}

/// Answer of `GET /users/passkeys` (`GetUserPasskeysResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserPasskeysResponse {
    /// How many passkeys.
    pub count: usize,
    /// The user's passkeys.
    pub passkeys: Vec<UserPasskey>,
}

/// Body of `PUT /users/mfa/{id}` (`MFAUpdateDeviceRequest`). Dynamic's client sends no body at all, which means
/// "make it the default".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MfaUpdateDeviceRequest {
    /// Whether the device becomes the user's default.
    pub default: bool,
}

/// Answer of `GET /users/mfa/register/totp` (`MFARegisterTotpDeviceGetResponse`). Needs `credential:link`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TotpRegistration {
    /// The new device's id; pass it to the first `/users/mfa/auth/totp` to finish registration.
    pub id: String,
    /// Always `totp`.
    #[serde(rename = "type")]
    pub kind: MfaDeviceType,
    /// The shared secret, base32.
    pub secret: SecretString,
    /// The `otpauth://` URI (it contains the secret).
    pub uri: SecretString,
}

/// Asks the server for an MFA token beside the answer (`createMfaToken`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CreateMfaToken {
    /// Whether the MFA token is single-use.
    pub single_use: bool,
}

/// Body of `POST /users/mfa/auth/totp` (`MFAAuthTotpDevicePostRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TotpAuthRequest {
    /// The 6-digit code.
    pub code: TotpCode,
    /// The device id; the user's default TOTP device if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Scopes to get an elevated token for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_scopes: Option<Vec<TokenScope>>,
    /// Ask for an MFA token too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_mfa_token: Option<CreateMfaToken>,
}

/// Body of `POST /users/mfa/auth/recovery` (`MFAAuthRecoveryDevicePostRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RecoveryAuthRequest {
    /// One recovery code.
    pub code: RecoveryCode,
    /// Scopes to get an elevated token for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_scopes: Option<Vec<TokenScope>>,
    /// Ask for an MFA token too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_mfa_token: Option<CreateMfaToken>,
}

/// Answer of `GET` / `POST /users/mfa/recovery` (get, creating if none / regenerate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RecoveryCodesResponse {
    /// How many codes.
    pub count: usize,
    /// The codes; each works once.
    pub recovery_codes: Vec<RecoveryCode>,
}
