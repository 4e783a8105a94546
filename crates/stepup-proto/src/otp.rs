//! Email and SMS one-time codes: create, verify (with `requestedScopes`) and sign in.

use serde::{Deserialize, Serialize};

use crate::TokenScope;
use crate::secret::OtpCode;

/// Body of `POST /emailVerifications/create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EmailVerificationCreateRequest {
    /// Where to send the code.
    pub email: String,
    /// A captcha token, when the environment asks for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captcha_token: Option<String>,
}

/// Answer of `POST /emailVerifications/create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EmailVerificationCreateResponse {
    /// The id to verify the code against.
    #[serde(rename = "verificationUUID")]
    pub verification_uuid: String,
    /// Where the code went.
    pub email: String,
}

/// Body of `POST /smsVerifications/create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SmsVerificationCreateRequest {
    /// Country calling code, e.g. `1`.
    pub phone_country_code: String,
    /// The number without country code.
    pub phone_number: String,
    /// ISO 3166 country code, e.g. `US`.
    pub iso_country_code: String,
    /// A captcha token, when the environment asks for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captcha_token: Option<String>,
}

/// Answer of `POST /smsVerifications/create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SmsVerificationCreateResponse {
    /// The id to verify the code against.
    #[serde(rename = "verificationUUID")]
    pub verification_uuid: String,
    /// The number the code went to.
    pub phone_number: String,
    /// Its country calling code.
    pub phone_country_code: String,
    /// Its ISO country code.
    pub iso_country_code: String,
}

/// Body of `POST /emailVerifications/{verify,signin}` and `POST /smsVerifications/{verify,signin}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct OtpVerifyRequest {
    /// The id from the create call.
    #[serde(rename = "verificationUUID")]
    pub verification_uuid: String,
    /// The code the user typed (Dynamic calls it `verificationToken`).
    pub verification_token: OtpCode,
    /// Scopes to get an elevated token for (verify only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_scopes: Option<Vec<TokenScope>>,
    /// A captcha token, when the environment asks for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captcha_token: Option<String>,
    /// The session's public key, for environments that bind sessions to a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_public_key: Option<String>,
}
