//! Why a request was not let through: a [`Refusal`] (the token does not open this call: answer the RFC 9470
//! challenge, the client may step up) or an outage (keys or the single-use store out of reach: answer 503,
//! never let the request through).

use std::fmt;

/// Why a token does not open the call. Every refusal answers 403 `elevated_access_token_required` with the
/// RFC 9470 challenge: the client steps up and tries again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No token came with the call.
    #[error("an elevated access token is required for this scope")]
    Missing,
    /// Not a JWT: three base64url parts with a JSON header, at most [`crate::MAX_TOKEN_LEN`] bytes.
    #[error("the elevated access token is not a JWT")]
    Malformed,
    /// The header names an algorithm no trusted key is pinned to (`none`, `HS256`, ...).
    #[error("the elevated access token's algorithm `{alg}` is not accepted")]
    Algorithm {
        /// The header's `alg`.
        alg: String,
    },
    /// The header has `crit` parameters, which this guard does not implement (RFC 7515 §4.1.11).
    #[error("the elevated access token's header has critical parameters")]
    CriticalHeader,
    /// No trusted key has the token's `kid` and algorithm.
    #[error("no trusted key matches the elevated access token (kid {kid:?})")]
    UnknownKey {
        /// The header's `kid`.
        kid: Option<String>,
    },
    /// The signature does not verify.
    #[error("the elevated access token's signature does not verify")]
    Signature,
    /// A claim is missing, of the wrong type, or out of bounds.
    #[error("the elevated access token has no valid `{claim}` claim")]
    InvalidClaim {
        /// The claim.
        claim: &'static str,
    },
    /// `iss` is not a trusted issuer.
    #[error("the elevated access token is from another issuer")]
    Issuer,
    /// `aud` does not name this backend.
    #[error("the elevated access token is for another audience")]
    Audience,
    /// The token is not an elevated access token (a session token signed by the same key, say).
    #[error("the token is not an elevated access token")]
    NotElevated,
    /// `exp` is past (beyond the leeway).
    #[error("the elevated access token has expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond the allowed clock skew).
    #[error("the elevated access token is not valid yet")]
    NotYetValid,
    /// The token does not grant the required scope.
    #[error("the elevated access token does not grant `{scope}`")]
    ScopeNotGranted {
        /// The required scope.
        scope: String,
    },
    /// The token was issued to another user (`sub`).
    #[error("the elevated access token belongs to another user")]
    OtherSubject,
    /// The token was earned in another session (`sid`), or carries no session where one is required.
    #[error("the elevated access token belongs to another session")]
    OtherSession,
    /// The user proved themselves longer ago than the challenge's `max_age` allows (by `iat`, or no `iat`).
    #[error("the elevated access token was earned too long ago")]
    TooOld,
    /// The token was earned by a method the challenge's `acr_values` do not list (by `amr`).
    #[error("the elevated access token was earned by another method")]
    Method,
    /// The single-use token was spent before, here or on another replica.
    #[error("the elevated access token was already used")]
    Spent,
}

/// Why the guard could not decide: the request is refused all the same (fail closed), with a 503.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unavailable {
    /// The signing keys (JWKS) could not be fetched and none are cached.
    #[error("the signing keys could not be fetched: {reason}")]
    Keys {
        /// What failed (for the log; the answer does not carry it).
        reason: String,
    },
    /// The single-use store did not answer, so a single-use token cannot be spent.
    #[error("the single-use store failed: {0}")]
    SingleUseStore(#[from] StoreError),
}

/// A request the guard did not let through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// The token does not open the call (403 with the RFC 9470 challenge).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The guard could not check it (503; nothing was let through).
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

impl GuardError {
    /// The refusal, if the token was refused (rather than the guard being out of reach).
    #[must_use]
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            GuardError::Refused(refusal) => Some(refusal),
            GuardError::Unavailable(_) => None,
        }
    }
}

impl From<StoreError> for GuardError {
    fn from(error: StoreError) -> Self {
        GuardError::Unavailable(Unavailable::SingleUseStore(error))
    }
}

/// A single-use store that failed: unreachable, timed out, or answered something unexpected. The message is for
/// the log (it names no token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    store: &'static str,
    reason: String,
}

impl StoreError {
    /// An error of the store named `store` (`redis`, `postgres`, ...).
    #[must_use]
    pub fn new(store: &'static str, reason: impl fmt::Display) -> Self {
        Self { store, reason: reason.to_string() }
    }

    /// Which store failed.
    #[must_use]
    pub fn store(&self) -> &'static str {
        self.store
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.store, self.reason)
    }
}

impl std::error::Error for StoreError {}

/// Why a [`crate::Guard`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No trusted issuer was named (`GuardBuilder::issuer`).
    #[error("the guard needs at least one trusted issuer (`iss`)")]
    NoIssuer,
    /// No audience was named (`GuardBuilder::audience`).
    #[error("the guard needs at least one audience (`aud`)")]
    NoAudience,
    /// No keys: neither static keys nor a JWKS URL nor a key source.
    #[error("the guard needs keys: static keys, a JWKS URL or a key source")]
    NoKeys,
    /// A key source was given beside static keys or a JWKS URL, which it would replace.
    #[error("a key source replaces static keys and a JWKS URL: give one or the other")]
    ConflictingKeys,
    /// No single-use store was chosen: a single-use token could not be spent.
    #[error(
        "the guard needs a single-use store (in-process for one instance; Redis or PostgreSQL for replicas)"
    )]
    NoSingleUseStore,
    /// A key could not be read.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The PEM or JWK does not hold a public key of the named algorithm.
    #[error("not a {algorithm} public key: {reason}")]
    Unreadable {
        /// The algorithm the key was meant for.
        algorithm: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// The JWK set is not JSON of the JWKS shape.
    #[error("not a JWK set: {0}")]
    NotAJwkSet(String),
    /// The JWKS URL is not an absolute `http`/`https` URL.
    #[error("the JWKS URL `{0}` is not an absolute http(s) URL")]
    Url(String),
}
