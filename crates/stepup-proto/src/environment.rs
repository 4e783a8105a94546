//! Environment-level calls: signing keys (JWKS) and project settings.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One public signing key (an OKP Ed25519 JWK).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwk {
    /// Key type, `OKP`.
    pub kty: String,
    /// Curve, `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// The key id, as in the JWT header's `kid`.
    pub kid: String,
    /// Algorithm, `EdDSA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Use, `sig`.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
}

/// Answer of `GET /.well-known/jwks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JwksResponse {
    /// The environment's public signing keys.
    pub keys: Vec<Jwk>,
}

/// Answer of `GET /settings`: enough of Dynamic's project settings for its clients to initialise. The sections
/// are free-form objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectSettings {
    /// Enabled chains.
    pub chains: Vec<Value>,
    /// KYC fields.
    pub kyc: Vec<Value>,
    /// Look and feel.
    pub design: Map<String, Value>,
    /// General settings (app name, ...).
    pub general: Map<String, Value>,
    /// Privacy settings.
    pub privacy: Map<String, Value>,
    /// SDK settings.
    pub sdk: Map<String, Value>,
    /// Security settings (MFA, ...).
    pub security: Map<String, Value>,
}
