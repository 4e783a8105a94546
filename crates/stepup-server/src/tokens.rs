//! Signed JWTs: EdDSA (Ed25519) in JWS compact form, with `kid`.
//!
//! Written on ed25519-dalek directly rather than through a JWT crate: the format is three base64url parts, and
//! the checks that matter (algorithm pinned to EdDSA, key chosen by `kid` from this environment's keys only,
//! strict signature verification, then typed claims) fit in one page that can be read in full.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stepup_core::Jwt;
use stepup_proto::Jwk;

/// What a session token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// Issuer: the server's base for the environment.
    pub iss: String,
    /// The user's id.
    pub sub: String,
    /// The environment id.
    pub aud: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Issued at.
    pub iat: u64,
    /// The session id (revocation looks it up).
    pub jti: String,
    /// Always `session`: an elevated token can never pass as a session, nor the other way round.
    pub token_use: String,
}

/// What an elevated access token says (DESIGN §9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElevatedClaims {
    /// Issuer.
    pub iss: String,
    /// The user's id.
    pub sub: String,
    /// The environment id.
    pub aud: String,
    /// Granted scopes, space-delimited.
    pub scope: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Issued at.
    pub iat: u64,
    /// Token id (single use is recorded by it).
    pub jti: String,
    /// Whether the token is accepted once only.
    #[serde(rename = "singleUse")]
    pub single_use: bool,
    /// The method used (`totp`, `email`, ...).
    pub amr: Vec<String>,
    /// Always `elevated`.
    pub token_use: String,
}

/// Why a JWT is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not three base64url parts with a JSON header.
    #[error("malformed token")]
    Malformed,
    /// The header names another algorithm than EdDSA.
    #[error("unsupported algorithm")]
    Algorithm,
    /// The `kid` names no key of this environment.
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
    /// The claims are not of the expected kind.
    #[error("unexpected claims")]
    Claims,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    kid: String,
}

/// One environment's signing key.
pub struct EnvironmentKey {
    kid: String,
    signing: SigningKey,
    verifying: VerifyingKey,
}

impl std::fmt::Debug for EnvironmentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvironmentKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl EnvironmentKey {
    /// A key from its 32-byte secret.
    #[must_use]
    pub fn from_secret(kid: String, secret: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(secret);
        let verifying = signing.verifying_key();
        Self { kid, signing, verifying }
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK.
    #[must_use]
    pub fn jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(self.verifying.as_bytes()),
            kid: self.kid.clone(),
            alg: Some("EdDSA".into()),
            key_use: Some("sig".into()),
        }
    }

    /// Signs claims into a JWT.
    ///
    /// # Errors
    /// [`JwtError::Claims`] if the claims do not serialise (never for this module's claim types).
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<Jwt, JwtError> {
        let header = Header { alg: "EdDSA".into(), typ: Some("JWT".into()), kid: self.kid.clone() };
        let header = serde_json::to_vec(&header).map_err(|_| JwtError::Claims)?;
        let claims = serde_json::to_vec(claims).map_err(|_| JwtError::Claims)?;
        let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
        let signature = self.signing.sign(signing_input.as_bytes());
        Ok(Jwt::new(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))))
    }

    /// Verifies a JWT signed by this key and reads its claims. Expiry, audience and use are the caller's checks.
    ///
    /// # Errors
    /// [`JwtError`] for each way the token can be wrong.
    pub fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<C, JwtError> {
        if token.len() > stepup_core::token::MAX_TOKEN_LEN {
            return Err(JwtError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header: Header = decode_json(header_b64)?;
        if header.alg != "EdDSA" {
            return Err(JwtError::Algorithm);
        }
        if header.kid != self.kid {
            return Err(JwtError::UnknownKey);
        }
        let signature = URL_SAFE_NO_PAD.decode(signature_b64).map_err(|_| JwtError::Malformed)?;
        let signature = Signature::from_slice(&signature).map_err(|_| JwtError::Malformed)?;
        let signing_input_len = header_b64.len() + 1 + claims_b64.len();
        let signing_input = token.get(..signing_input_len).ok_or(JwtError::Malformed)?;
        self.verifying
            .verify_strict(signing_input.as_bytes(), &signature)
            .map_err(|_| JwtError::Signature)?;
        decode_json(claims_b64).map_err(|_| JwtError::Claims)
    }
}

fn decode_json<T: DeserializeOwned>(part: &str) -> Result<T, JwtError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> EnvironmentKey {
        EnvironmentKey::from_secret(format!("k{seed}"), &[seed; 32])
    }

    fn claims() -> SessionClaims {
        SessionClaims {
            iss: "stepup".into(),
            sub: "u".into(),
            aud: "dev".into(),
            exp: 10,
            iat: 1,
            jti: "s".into(),
            token_use: "session".into(),
        }
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let key = key(1);
        let jwt = key.sign(&claims()).unwrap();
        assert_eq!(key.verify::<SessionClaims>(jwt.expose_secret()).unwrap(), claims());
        let parts: Vec<&str> = jwt.expose_secret().split('.').collect();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["kid"], "k1");
    }

    #[test]
    fn tampering_other_keys_and_algorithms_are_refused() {
        let key1 = key(1);
        let jwt = key1.sign(&claims()).unwrap();
        let raw = jwt.expose_secret();
        // Another environment's key (other kid).
        assert_eq!(key(2).verify::<SessionClaims>(raw), Err(JwtError::UnknownKey));
        // Same kid, other secret: the signature fails.
        let impostor = EnvironmentKey::from_secret("k1".into(), &[9; 32]);
        assert_eq!(
            impostor.sign(&claims()).map(|j| key1.verify::<SessionClaims>(j.expose_secret())).unwrap(),
            Err(JwtError::Signature)
        );
        // Changed claims.
        let mut parts: Vec<String> = raw.split('.').map(str::to_owned).collect();
        let mut forged = claims();
        forged.sub = "admin".into();
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(key1.verify::<SessionClaims>(&parts.join(".")), Err(JwtError::Signature));
        // alg=none.
        let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#);
        parts[0] = none;
        assert_eq!(key1.verify::<SessionClaims>(&parts.join(".")), Err(JwtError::Algorithm));
        // Garbage.
        assert_eq!(key1.verify::<SessionClaims>("a.b"), Err(JwtError::Malformed));
        assert_eq!(key1.verify::<SessionClaims>("!.!.!"), Err(JwtError::Malformed));
        // A session token is not elevated claims.
        assert_eq!(key1.verify::<ElevatedClaims>(raw), Err(JwtError::Claims));
    }
}
