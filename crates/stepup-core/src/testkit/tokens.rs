//! Elevated tokens for tests: JWT-shaped strings with chosen claims and a dummy signature.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::scope::ScopeSet;
use crate::secret::Jwt;
use crate::time::UnixTime;
use crate::token::ElevatedToken;

/// A JWT-shaped string with these claims (`scope`, `exp`, `singleUse`, `jti`) and a dummy signature. The client
/// never checks signatures, so this is all it reads.
#[must_use]
pub fn token_jwt(scopes: &ScopeSet, expires_at: UnixTime, single_use: bool, jti: &str) -> Jwt {
    let claims = serde_json::json!({
        "scope": scopes.to_space_delimited(),
        "exp": expires_at.as_secs(),
        "singleUse": single_use,
        "jti": jti,
    });
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    Jwt::new(format!("{header}.{payload}.dGVzdC1zaWduYXR1cmU"))
}

/// An elevated token with these claims. `scopes` must not be empty and `expires_at` must be after the epoch
/// (the token is parsed as of time 0, so any later time is accepted).
///
/// # Panics
/// If the claims are not a valid token (empty scopes, `expires_at` of 0): a test bug.
#[must_use]
#[allow(clippy::panic)]
pub fn token(scopes: &ScopeSet, expires_at: UnixTime, single_use: bool, jti: &str) -> Arc<ElevatedToken> {
    match ElevatedToken::parse(token_jwt(scopes, expires_at, single_use, jti), UnixTime(0)) {
        Ok(token) => Arc::new(token),
        Err(error) => panic!("testkit::token: invalid claims: {error}"),
    }
}
