//! The keys tokens are checked with: each pinned to one algorithm, found by the token's `kid`.
//!
//! [`KeySource`] is where a [`crate::Guard`] looks keys up. [`StaticKeys`] holds a fixed list; [`Jwks`] (feature
//! `jwks`) fetches a JWKS URL and caches it; a server that signs tokens itself implements the trait over its own
//! key ring (the reference server does).

#[cfg(feature = "jwks")]
mod jwks;

#[cfg(feature = "jwks")]
pub use jwks::{Jwks, JwksOptions};

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{GuardError, KeyError, Refusal, Unavailable};
use crate::guard::MAX_TOKEN_LEN;

/// A signature algorithm a key can be pinned to: the asymmetric ones an issuer of elevated tokens uses (an HMAC
/// key would let every verifier mint tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519 (the reference server's).
    EdDsa,
}

impl Algorithm {
    /// The algorithm a JWS header's `alg` names, if it is one of these.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Algorithm::Rs256),
            "ES256" => Some(Algorithm::Es256),
            "EdDSA" => Some(Algorithm::EdDsa),
            _ => None,
        }
    }

    /// The JWS name (`RS256`, `ES256`, `EdDSA`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::Es256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

/// A trusted public key, pinned to one algorithm: a token signed with another algorithm never reaches it.
#[derive(Clone)]
pub struct Key {
    kid: Option<String>,
    algorithm: Algorithm,
    decoding: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// A key from a PEM public key (SPKI) for `algorithm`. A key with a `kid` takes only tokens that name it;
    /// one without takes any token of its algorithm.
    ///
    /// # Errors
    /// [`KeyError::Unreadable`] if the PEM does not hold such a key.
    pub fn from_pem(algorithm: Algorithm, pem: &[u8], kid: Option<String>) -> Result<Self, KeyError> {
        let decoding = match algorithm {
            Algorithm::Rs256 => DecodingKey::from_rsa_pem(pem),
            Algorithm::Es256 => DecodingKey::from_ec_pem(pem),
            Algorithm::EdDsa => DecodingKey::from_ed_pem(pem),
        }
        .map_err(|e| KeyError::Unreadable { algorithm: algorithm.name(), reason: e.to_string() })?;
        Ok(Self { kid, algorithm, decoding })
    }

    /// An Ed25519 key from its 32 public bytes.
    #[must_use]
    pub fn ed25519(kid: Option<String>, public: &[u8; 32]) -> Self {
        Self { kid, algorithm: Algorithm::EdDsa, decoding: DecodingKey::from_ed_der(public) }
    }

    /// The signing keys of a JWK set (`{"keys": [...]}`): RSA, P-256 and Ed25519 keys not marked for
    /// encryption, each pinned to its `alg` or, without one, to the algorithm its key type implies. Keys of other
    /// types, or whose `alg` contradicts their type, are left out.
    ///
    /// # Errors
    /// [`KeyError::NotAJwkSet`] if the document is not a JWK set.
    pub fn from_jwks_json(document: &[u8]) -> Result<Vec<Self>, KeyError> {
        let set: JwkSet =
            serde_json::from_slice(document).map_err(|e| KeyError::NotAJwkSet(e.to_string()))?;
        Ok(set
            .keys
            .iter()
            .filter(|jwk| !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)))
            .filter_map(|jwk| {
                let implied = match &jwk.algorithm {
                    AlgorithmParameters::RSA(_) => Algorithm::Rs256,
                    AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                        Algorithm::Es256
                    }
                    // Exactly 32 bytes: jsonwebtoken slices a shorter key at verification and panics.
                    AlgorithmParameters::OctetKeyPair(p)
                        if p.curve == EllipticCurve::Ed25519
                            && URL_SAFE_NO_PAD.decode(&p.x).is_ok_and(|x| x.len() == 32) =>
                    {
                        Algorithm::EdDsa
                    }
                    _ => return None,
                };
                let consistent = match jwk.common.key_algorithm {
                    None => true,
                    Some(KeyAlgorithm::RS256) => implied == Algorithm::Rs256,
                    Some(KeyAlgorithm::ES256) => implied == Algorithm::Es256,
                    Some(KeyAlgorithm::EdDSA) => implied == Algorithm::EdDsa,
                    Some(_) => false,
                };
                let decoding = DecodingKey::from_jwk(jwk).ok().filter(|_| consistent)?;
                Some(Self { kid: jwk.common.key_id.clone(), algorithm: implied, decoding })
            })
            .collect())
    }

    /// The key id, if the key has one.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm the key is pinned to.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Whether this key may have signed a token whose header says `kid` and `algorithm`.
    #[must_use]
    pub fn fits(&self, kid: Option<&str>, algorithm: Algorithm) -> bool {
        self.algorithm == algorithm && self.kid.as_deref().is_none_or(|own| Some(own) == kid)
    }

    /// Checks the token's signature with this key and reads its claims. Only the signature: every claim is
    /// the caller's to check.
    pub(crate) fn decode<C: serde::de::DeserializeOwned>(&self, token: &str) -> Result<C, SignatureError> {
        let mut validation = Validation::new(self.algorithm.jsonwebtoken());
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        jsonwebtoken::decode::<C>(token, &self.decoding, &validation).map(|data| data.claims).map_err(
            |error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => SignatureError::Mismatch,
                jsonwebtoken::errors::ErrorKind::Json(_) => SignatureError::Claims,
                _ => SignatureError::Malformed,
            },
        )
    }
}

/// Why [`Key::decode`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignatureError {
    /// The signature is not this key's (another key with the same `kid` may still fit).
    Mismatch,
    /// The signature verified but the claims are not the expected JSON.
    Claims,
    /// The token is not a well-formed JWS for this key.
    Malformed,
}

/// Where a guard finds the keys a token may have been signed with.
#[async_trait]
pub trait KeySource: Send + Sync + 'static {
    /// The trusted keys that may have signed a token whose header names `kid` and `algorithm`, at `now` (Unix
    /// seconds). An empty list refuses the token ([`crate::Refusal::UnknownKey`]).
    ///
    /// # Errors
    /// [`Unavailable::Keys`] when the keys cannot be had right now (a JWKS out of reach with nothing cached):
    /// the request is refused with a 503, never let through.
    async fn keys_for(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
        now: u64,
    ) -> Result<Vec<Arc<Key>>, Unavailable>;
}

/// A fixed list of keys (from PEM files, or a JWKS read at start).
#[derive(Debug, Clone, Default)]
pub struct StaticKeys {
    keys: Vec<Arc<Key>>,
}

impl StaticKeys {
    /// These keys.
    #[must_use]
    pub fn new(keys: impl IntoIterator<Item = Key>) -> Self {
        Self { keys: keys.into_iter().map(Arc::new).collect() }
    }

    /// The keys that fit a token's `kid` and algorithm.
    #[must_use]
    pub fn matching(&self, kid: Option<&str>, algorithm: Algorithm) -> Vec<Arc<Key>> {
        self.keys.iter().filter(|key| key.fits(kid, algorithm)).cloned().collect()
    }

    /// Whether there are no keys.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[async_trait]
impl KeySource for StaticKeys {
    async fn keys_for(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
        _now: u64,
    ) -> Result<Vec<Arc<Key>>, Unavailable> {
        Ok(self.matching(kid, algorithm))
    }
}

/// Text from a token, fit to repeat in an answer: at most 32 visible ASCII characters (a header may hold
/// kilobytes, and a header value must be ASCII).
fn printable(text: &str) -> String {
    text.chars().filter(char::is_ascii_graphic).take(32).collect()
}

/// The header fields read before the signature is checked (to pick and pin the key).
#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// RFC 7515 `crit`: parameters the verifier must understand, else refuse the token.
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

fn read_header(token: &str) -> Result<Header, Refusal> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(Refusal::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| Refusal::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| Refusal::Malformed)
}

/// Checks a JWS's signature with the keys `source` holds for its header (`kid`, `alg`) and reads its payload
/// as `C`. Nothing but the signature: every claim is the caller's to check. [`crate::Guard`] runs this first;
/// a server checking other JWTs against the same kinds of keys (an app backend's assertions) runs it too.
///
/// # Errors
/// [`Refusal::Malformed`] (not a JWS, too long, a payload that is not `C`), [`Refusal::CriticalHeader`],
/// [`Refusal::Algorithm`] (not RS256, ES256 or EdDSA), [`Refusal::UnknownKey`] (no key fits),
/// [`Refusal::Signature`]; [`Unavailable::Keys`] when the source cannot answer.
pub async fn verified_payload<C: DeserializeOwned>(
    source: &dyn KeySource,
    token: &str,
    now: u64,
) -> Result<C, GuardError> {
    let header = read_header(token)?;
    // RFC 7515 §4.1.11: a header parameter the verifier must understand; none is understood here.
    if header.crit.is_some() {
        return Err(Refusal::CriticalHeader.into());
    }
    let algorithm = Algorithm::from_name(&header.alg)
        .ok_or_else(|| Refusal::Algorithm { alg: printable(&header.alg) })?;
    let keys = source.keys_for(header.kid.as_deref(), algorithm, now).await?;
    if keys.is_empty() {
        return Err(Refusal::UnknownKey { kid: header.kid.as_deref().map(printable) }.into());
    }
    for key in &keys {
        match key.decode::<C>(token) {
            Ok(payload) => return Ok(payload),
            // Another key with the same `kid` (or none) may have signed it; a key that cannot check this token
            // (a broken JWKS entry, say) does not stop the others from being tried.
            Err(SignatureError::Mismatch | SignatureError::Malformed) => {}
            Err(SignatureError::Claims) => return Err(Refusal::Malformed.into()),
        }
    }
    Err(Refusal::Signature.into())
}
