//! The server's own JWTs: EdDSA (Ed25519) in JWS compact form, with `kid`, signed and verified here with
//! `ed25519-dalek` keys held for the key's life. (`jsonwebtoken`, which checks the app backends' tokens, rebuilds
//! the key pair from its PKCS #8 bytes on every signature — deriving the public key costs as much as signing —
//! and decompresses the public key on every verification; both were on every step-up: docs/benchmarks.md.)
//!
//! Verification pins everything before a signature is checked: the header must name EdDSA (so `alg: none`,
//! HMAC-with-the-public-key and the rest are refused by name) and this environment's `kid`; then the audience
//! must be the environment, the issuer this server ([`ISSUER`]), and neither `iat` nor `nbf` in the future (by
//! the server's clock, tests move it by hand; a minute's grace for replicas whose clocks run apart). Expiry and
//! use are the callers' checks.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stepup_core::Jwt;
use stepup_proto::Jwk;

/// The issuer (`iss`) of every token this server signs, and the only one its verification accepts.
pub const ISSUER: &str = "stepup-reference-server";

/// How far ahead of this server's clock a token's `iat` or `nbf` may be: another replica's clock running ahead.
pub const MAX_CLOCK_SKEW_SECS: u64 = 60;

/// The registered time claims verification checks besides `exp` (RFC 7519 §4.1).
pub trait TimeClaims {
    /// `iat`.
    fn issued_at(&self) -> u64;
    /// `nbf`, if the token has one.
    fn not_before(&self) -> Option<u64>;
}

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
    /// The session id again, under the name Dynamic's clients read (`sid`).
    #[serde(default)]
    pub sid: String,
    /// Always `session`: an elevated token can never pass as a session, nor the other way round.
    pub token_use: String,
    /// When this session last passed an MFA verification (TOTP, recovery code, passkey), Unix seconds. Calls that
    /// need a recent MFA (recovery codes) read it; a verify answer re-signs the session with the new time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_auth_time: Option<u64>,
    /// Not before (this server never sets it; checked when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

impl TimeClaims for SessionClaims {
    fn issued_at(&self) -> u64 {
        self.iat
    }

    fn not_before(&self) -> Option<u64> {
        self.nbf
    }
}

/// What an elevated access token says (docs/design.md §9).
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
    /// The session that earned it: the token opens nothing in any other session of the user, and nothing once
    /// that session is revoked (a token without one is refused).
    pub sid: String,
    /// Whether the token is accepted once only.
    #[serde(rename = "singleUse")]
    pub single_use: bool,
    /// The method used (`totp`, `email`, `external`...).
    pub amr: Vec<String>,
    /// Always `elevated`.
    pub token_use: String,
    /// Not before (this server never sets it; checked when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

impl TimeClaims for ElevatedClaims {
    fn issued_at(&self) -> u64 {
        self.iat
    }

    fn not_before(&self) -> Option<u64> {
        self.nbf
    }
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
    /// The claims are not of the expected kind (or for another audience).
    #[error("unexpected claims")]
    Claims,
    /// The issuer is not this server.
    #[error("another issuer")]
    Issuer,
    /// `iat` or `nbf` is in the future.
    #[error("not valid yet")]
    NotYetValid,
}

/// The header fields read before anything is verified.
#[derive(Deserialize)]
pub(crate) struct PeekedHeader {
    pub(crate) alg: String,
    #[serde(default)]
    pub(crate) kid: Option<String>,
    /// RFC 7515 `crit`: parameters the verifier must understand, else refuse the token.
    #[serde(default)]
    pub(crate) crit: Option<serde_json::Value>,
}

/// Reads a JWT's header without verifying anything (to pick and pin the key).
///
/// # Errors
/// [`JwtError::Malformed`] unless the token is three dot-separated parts whose first is base64url JSON with `alg`.
pub(crate) fn peek_header(token: &str) -> Result<PeekedHeader, JwtError> {
    let [header, _payload, _signature] = stepup_core::token::split_jwt(token).ok_or(JwtError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

/// The JOSE header of every token a key signs (`typ`, `alg`, `kid`, in the order `jsonwebtoken` wrote them).
#[derive(Serialize)]
struct SignedHeader<'a> {
    typ: &'static str,
    alg: &'static str,
    kid: &'a str,
}

/// The registered claims checked before a token's own claims are read.
#[derive(Deserialize)]
struct Registered {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<String>,
}

/// One environment's signing key. The secret half zeroizes on drop (`ed25519-dalek`'s `zeroize` feature).
pub struct EnvironmentKey {
    kid: String,
    audience: String,
    signing: ed25519_dalek::SigningKey,
    verifying: ed25519_dalek::VerifyingKey,
    /// The base64url header every token of this key starts with.
    encoded_header: String,
}

impl std::fmt::Debug for EnvironmentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvironmentKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl EnvironmentKey {
    /// The key of environment `audience` from its 32-byte secret.
    #[must_use]
    pub fn from_secret(kid: String, audience: &str, secret: &[u8; 32]) -> Self {
        let signing = ed25519_dalek::SigningKey::from_bytes(secret);
        let header = SignedHeader { typ: "JWT", alg: "EdDSA", kid: &kid };
        // A struct of three strings always serialises.
        let encoded_header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default());
        Self {
            audience: audience.to_owned(),
            verifying: signing.verifying_key(),
            signing,
            encoded_header,
            kid,
        }
    }

    /// The public key's 32 bytes.
    fn public(&self) -> [u8; 32] {
        self.verifying.to_bytes()
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as the guard's key (`stepup-guard`, which checks this server's elevated tokens).
    #[must_use]
    pub fn guard_key(&self) -> stepup_guard::Key {
        stepup_guard::Key::ed25519(Some(self.kid.clone()), &self.public())
    }

    /// The public key as a JWK.
    #[must_use]
    pub fn jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(self.public()),
            kid: self.kid.clone(),
            alg: Some("EdDSA".into()),
            key_use: Some("sig".into()),
        }
    }

    /// Signs claims into a JWT. Ed25519 signatures are deterministic: the same claims give the same JWT.
    ///
    /// # Errors
    /// [`JwtError::Claims`] if the claims do not serialise or signing fails (never for this module's types).
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<Jwt, JwtError> {
        let payload = serde_json::to_vec(claims).map_err(|_| JwtError::Claims)?;
        let mut token = String::with_capacity(self.encoded_header.len() + payload.len() * 4 / 3 + 92);
        token.push_str(&self.encoded_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature = self.signing.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
        Ok(Jwt::new(token))
    }

    /// Verifies a JWT signed by this key for this environment (`aud`) and this server (`iss`), issued and valid
    /// by `now` (Unix seconds, give or take [`MAX_CLOCK_SKEW_SECS`]), and reads its claims. Expiry and use are the
    /// caller's checks.
    ///
    /// # Errors
    /// [`JwtError`] for each way the token can be wrong.
    pub fn verify<C: DeserializeOwned + TimeClaims>(&self, token: &str, now: u64) -> Result<C, JwtError> {
        self.check_header(token)?;
        let (signing_input, signature) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| JwtError::Malformed)?;
        let signature = ed25519_dalek::Signature::from_slice(&signature).map_err(|_| JwtError::Malformed)?;
        // Strict: no small-order keys and no malleated (non-canonical) signatures of a token already seen.
        self.verifying
            .verify_strict(signing_input.as_bytes(), &signature)
            .map_err(|_| JwtError::Signature)?;
        self.read_claims(token, now)
    }

    /// [`EnvironmentKey::verify`] without the signature check, for a token whose signature verified before
    /// (`crate::verified_signatures`): the header, issuer, audience and times are checked all the same.
    ///
    /// # Errors
    /// As [`EnvironmentKey::verify`], but never [`JwtError::Signature`].
    pub(crate) fn verify_claims<C: DeserializeOwned + TimeClaims>(
        &self,
        token: &str,
        now: u64,
    ) -> Result<C, JwtError> {
        self.check_header(token)?;
        self.read_claims(token, now)
    }

    /// The claims of a token whose header was checked: issuer, audience and times.
    fn read_claims<C: DeserializeOwned + TimeClaims>(&self, token: &str, now: u64) -> Result<C, JwtError> {
        let [_, payload, _] = stepup_core::token::split_jwt(token).ok_or(JwtError::Malformed)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| JwtError::Malformed)?;
        let registered: Registered = serde_json::from_slice(&payload).map_err(|_| JwtError::Claims)?;
        match registered.iss.as_deref() {
            None => return Err(JwtError::Claims),
            Some(issuer) if issuer != ISSUER => return Err(JwtError::Issuer),
            Some(_) => {}
        }
        if registered.aud.as_deref() != Some(self.audience.as_str()) {
            return Err(JwtError::Claims);
        }
        let claims: C = serde_json::from_slice(&payload).map_err(|_| JwtError::Claims)?;
        let latest = now.saturating_add(MAX_CLOCK_SKEW_SECS);
        if claims.issued_at() > latest || claims.not_before().is_some_and(|nbf| nbf > latest) {
            return Err(JwtError::NotYetValid);
        }
        Ok(claims)
    }

    /// The header names EdDSA, no `crit` parameters, and this key.
    fn check_header(&self, token: &str) -> Result<(), JwtError> {
        let header = peek_header(token)?;
        if header.alg != "EdDSA" || header.crit.is_some() {
            return Err(JwtError::Algorithm);
        }
        if header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(JwtError::UnknownKey);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> EnvironmentKey {
        EnvironmentKey::from_secret(format!("k{seed}"), "dev", &[seed; 32])
    }

    fn claims() -> SessionClaims {
        SessionClaims {
            iss: ISSUER.into(),
            sub: "u".into(),
            aud: "dev".into(),
            exp: 10,
            iat: 1,
            jti: "s".into(),
            sid: "s".into(),
            token_use: "session".into(),
            mfa_auth_time: None,
            nbf: None,
        }
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let key = key(1);
        let jwt = key.sign(&claims()).unwrap();
        assert_eq!(key.verify::<SessionClaims>(jwt.expose_secret(), 5).unwrap(), claims());
        let parts: Vec<&str> = jwt.expose_secret().split('.').collect();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["kid"], "k1");
        // Deterministic: re-signing the same claims gives the same token (a re-issued session that did not change
        // is the same JWT).
        assert_eq!(key.sign(&claims()).unwrap(), jwt);
    }

    #[test]
    fn the_signature_is_plain_ed25519_over_the_signing_input() {
        // An independent check of the JWS: ed25519-dalek verifies the signature with the JWK's key...
        use ed25519_dalek::Verifier as _;
        let key = key(3);
        let jwt = key.sign(&claims()).unwrap();
        let (input, signature) = jwt.expose_secret().rsplit_once('.').unwrap();
        let public: [u8; 32] = URL_SAFE_NO_PAD.decode(key.jwk().x).unwrap().try_into().unwrap();
        let verifying = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
        let signature =
            ed25519_dalek::Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap();
        verifying.verify(input.as_bytes(), &signature).unwrap();
        // ...and another JWT implementation (jsonwebtoken, which the guard uses) reads the whole token.
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        validation.validate_exp = false;
        validation.set_audience(&["dev"]);
        validation.set_issuer(&[ISSUER]);
        let decoding = jsonwebtoken::DecodingKey::from_ed_der(&public);
        let decoded =
            jsonwebtoken::decode::<SessionClaims>(jwt.expose_secret(), &decoding, &validation).unwrap();
        assert_eq!(decoded.claims, claims());
        assert_eq!(decoded.header.kid.as_deref(), Some("k3"));
        assert_eq!(decoded.header.typ.as_deref(), Some("JWT"));
    }

    /// A second signature for the same input (here: the signature with its `s` half pushed past the group order,
    /// which some Ed25519 verifiers accept) is refused, so a token has exactly one valid form.
    #[test]
    fn a_malleated_signature_is_refused() {
        let key1 = key(1);
        let jwt = key1.sign(&claims()).unwrap();
        let (input, signature) = jwt.expose_secret().rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
        // s + L (the group order, little-endian), which keeps the signature's value modulo L.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (byte, l) in bytes[32..].iter_mut().zip(L) {
            let sum = u16::from(*byte) + u16::from(l) + carry;
            *byte = (sum & 0xff) as u8;
            carry = sum >> 8;
        }
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bytes));
        assert_ne!(key1.verify::<SessionClaims>(&forged, 5), Ok(claims()));
    }

    #[test]
    fn tampering_other_keys_and_algorithms_are_refused() {
        let key1 = key(1);
        let jwt = key1.sign(&claims()).unwrap();
        let raw = jwt.expose_secret();
        // Another environment's key (other kid).
        assert_eq!(key(2).verify::<SessionClaims>(raw, 5), Err(JwtError::UnknownKey));
        // Same kid, other secret: the signature fails.
        let impostor = EnvironmentKey::from_secret("k1".into(), "dev", &[9; 32]);
        assert_eq!(
            impostor.sign(&claims()).map(|j| key1.verify::<SessionClaims>(j.expose_secret(), 5)).unwrap(),
            Err(JwtError::Signature)
        );
        // Same key for another environment: the audience is not this one.
        let elsewhere = EnvironmentKey::from_secret("k1".into(), "prod", &[1; 32]);
        assert_eq!(elsewhere.verify::<SessionClaims>(raw, 5), Err(JwtError::Claims));
        // Changed claims.
        let mut parts: Vec<String> = raw.split('.').map(str::to_owned).collect();
        let mut forged = claims();
        forged.sub = "admin".into();
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(key1.verify::<SessionClaims>(&parts.join("."), 5), Err(JwtError::Signature));
        // alg=none, and HS256 keyed with the public key.
        parts[0] = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#);
        assert_eq!(key1.verify::<SessionClaims>(&parts.join("."), 5), Err(JwtError::Algorithm));
        parts[0] = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","kid":"k1"}"#);
        assert_eq!(key1.verify::<SessionClaims>(&parts.join("."), 5), Err(JwtError::Algorithm));
        // No kid.
        parts[0] = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA"}"#);
        assert_eq!(key1.verify::<SessionClaims>(&parts.join("."), 5), Err(JwtError::UnknownKey));
        // Garbage.
        assert_eq!(key1.verify::<SessionClaims>("a.b", 5), Err(JwtError::Malformed));
        assert_eq!(key1.verify::<SessionClaims>("!.!.!", 5), Err(JwtError::Malformed));
        // A session token is not elevated claims.
        assert_eq!(key1.verify::<ElevatedClaims>(raw, 5), Err(JwtError::Claims));
    }

    /// The registered claims this server checks besides `exp`: `iss` is this server, and `iat` and `nbf` are
    /// not in the future (a minute's grace for replica clocks). A token signed with the right key for another
    /// issuer, or dated ahead, was accepted before.
    #[test]
    fn issuer_and_times_are_checked() {
        let key1 = key(1);
        let now = 1_000;
        let at = |claims: SessionClaims| {
            key1.verify::<SessionClaims>(key1.sign(&claims).unwrap().expose_secret(), now)
        };
        let base = SessionClaims { iat: now, exp: now + 60, ..claims() };
        assert_eq!(at(base.clone()), Ok(base.clone()));
        assert_eq!(at(SessionClaims { iss: "someone-else".into(), ..base.clone() }), Err(JwtError::Issuer));
        assert_eq!(at(SessionClaims { iat: now + 61, ..base.clone() }), Err(JwtError::NotYetValid));
        assert!(
            at(SessionClaims { iat: now + 60, ..base.clone() }).is_ok(),
            "a minute ahead is a replica's clock"
        );
        assert_eq!(at(SessionClaims { nbf: Some(now + 3600), ..base.clone() }), Err(JwtError::NotYetValid));
        assert!(at(SessionClaims { nbf: Some(now), ..base.clone() }).is_ok());
        // No `iss` at all is refused too.
        let mut value = serde_json::to_value(&base).unwrap();
        value.as_object_mut().unwrap().remove("iss");
        let unsigned_issuer = key1.sign(&value).unwrap();
        assert_eq!(key1.verify::<SessionClaims>(unsigned_issuer.expose_secret(), now), Err(JwtError::Claims));
    }
}
