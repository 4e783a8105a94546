//! External-auth elevation: the app's own backend vouches for the user with a short JWT it signed, and the server
//! answers an elevated token for the scopes in it (Dynamic's `requestExternalAuthElevatedToken`).

use serde::{Deserialize, Serialize};

use crate::secret::Jwt;

/// Body of `POST /externalAuth/verify` (Dynamic's `ExternalAuthSigninRequest`).
///
/// The JWT is signed by the app's backend (RS256, ES256 or EdDSA) with a key the environment trusts, and says
/// `sub` (the user), `aud` (the environment id), `scope` (space-delimited scopes), `jti` (single use) and `exp`
/// (a short lifetime).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExternalAuthVerifyRequest {
    /// The backend's JWT.
    pub jwt: Jwt,
    /// The client's session public key (Dynamic's clients send it; the reference server ignores it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_public_key: Option<String>,
}

/// Answer of `POST /externalAuth/verify`. Dynamic's API answers `ExternalAuthAssertionResponse`, the elevated token
/// alone; the reference server answers a whole VerifyResponse (the user and the session too), and the extra fields
/// are read when present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExternalAuthResponse {
    /// The elevated token for the scopes of the backend's JWT.
    pub elevated_access_token: Jwt,
    /// The session, when the server sends it (see `VerifyResponse::minified_jwt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minified_jwt: Option<Jwt>,
    /// The session again, under its other name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<Jwt>,
}
