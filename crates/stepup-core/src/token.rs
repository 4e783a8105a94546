//! `ElevatedToken`: an elevated access token as the client sees it.
//!
//! The client reads the JWT payload to learn the token's scopes, expiry and single-use flag, without checking the
//! signature: it cannot (it has no key it trusts for that) and need not (the server checks every use). These
//! claims steer what the client *attaches*, never what it *allows*.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::id::shared_id;
use serde_json::{Map, Value};

use crate::scope::{Scope, ScopeSet};
use crate::secret::Jwt;
use crate::time::UnixTime;

/// Longest JWT the client accepts. Real tokens are well under 2 KiB; the bound keeps a hostile server from making
/// the client decode megabytes.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Why a string is not a usable elevated access token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not three `.`-separated parts, empty, or longer than [`MAX_TOKEN_LEN`].
    #[error("the token is not a JWT (three dot-separated parts, at most 16 KiB)")]
    Malformed,
    /// The payload part is not base64url.
    #[error("the token payload is not base64url")]
    PayloadNotBase64,
    /// The payload is not a JSON object.
    #[error("the token payload is not a JSON object")]
    PayloadNotJson,
    /// A claim has the wrong type or an impossible value.
    #[error("the token claim `{claim}` has the wrong type or value")]
    InvalidClaim {
        /// The claim's name.
        claim: &'static str,
    },
    /// The `scope` claim is missing or lists no scope.
    #[error("the token grants no scope")]
    NoScopes,
    /// The `exp` claim is missing.
    #[error("the token has no expiry (`exp`)")]
    MissingExpiry,
    /// The token's expiry is not after the current time.
    #[error("the token expired at {expires_at} (now {now})")]
    Expired {
        /// The token's `exp`.
        expires_at: UnixTime,
        /// The time it was checked at.
        now: UnixTime,
    },
}

shared_id! {
    /// A token's identity: its `jti` claim, or, for a token without one, a digest of the token.
    TokenId
}

/// The public description of a stored token: everything but the token itself. This is what verify and prompt
/// calls return; the raw JWT never leaves the engine unless asked for explicitly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// The token's id (`jti`).
    pub id: TokenId,
    /// The scopes it grants.
    pub scopes: ScopeSet,
    /// When it stops being accepted (`exp`).
    pub expires_at: UnixTime,
    /// Whether the server accepts it once only.
    pub single_use: bool,
}

/// An elevated access token: the raw JWT (redacted in `Debug`) and the claims the client reads from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElevatedToken {
    raw: Jwt,
    info: TokenInfo,
    issued_at: Option<UnixTime>,
    amr: Vec<String>,
}

impl ElevatedToken {
    /// Reads a JWT's payload (`scope` space-delimited, `exp`, `singleUse` defaulting to false, optional `jti`,
    /// `iat`, `amr`). The signature is not checked; see the module docs.
    ///
    /// # Errors
    /// [`TokenError::Malformed`] unless it is three dot-separated parts of at most [`MAX_TOKEN_LEN`] bytes,
    /// [`TokenError::PayloadNotBase64`] / [`TokenError::PayloadNotJson`] for an unreadable payload,
    /// [`TokenError::InvalidClaim`] for a claim of the wrong type, [`TokenError::NoScopes`],
    /// [`TokenError::MissingExpiry`], and [`TokenError::Expired`] if `exp <= now`.
    pub fn parse(raw: Jwt, now: UnixTime) -> Result<Self, TokenError> {
        let claims = decode_payload(raw.expose_secret())?;
        let scopes = match claims.get("scope") {
            None | Some(Value::Null) => ScopeSet::empty(),
            Some(Value::String(scopes)) => ScopeSet::from_space_delimited(scopes),
            Some(_) => return Err(TokenError::InvalidClaim { claim: "scope" }),
        };
        let expires_at = match claims.get("exp") {
            None | Some(Value::Null) => return Err(TokenError::MissingExpiry),
            Some(value) => numeric_date(value).ok_or(TokenError::InvalidClaim { claim: "exp" })?,
        };
        let issued_at = match claims.get("iat") {
            None | Some(Value::Null) => None,
            Some(value) => Some(numeric_date(value).ok_or(TokenError::InvalidClaim { claim: "iat" })?),
        };
        let single_use = match claims.get("singleUse") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(single_use)) => *single_use,
            Some(_) => return Err(TokenError::InvalidClaim { claim: "singleUse" }),
        };
        let id = match claims.get("jti") {
            None | Some(Value::Null) => digest_id(raw.expose_secret()),
            Some(Value::String(jti)) if !jti.is_empty() => TokenId::new(jti),
            Some(_) => return Err(TokenError::InvalidClaim { claim: "jti" }),
        };
        let amr = match claims.get("amr") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(method)) => vec![method.clone()],
            Some(Value::Array(methods)) => methods
                .iter()
                .map(|m| m.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or(TokenError::InvalidClaim { claim: "amr" })?,
            Some(_) => return Err(TokenError::InvalidClaim { claim: "amr" }),
        };
        if scopes.is_empty() {
            return Err(TokenError::NoScopes);
        }
        if expires_at <= now {
            return Err(TokenError::Expired { expires_at, now });
        }
        Ok(Self { raw, info: TokenInfo { id, scopes, expires_at, single_use }, issued_at, amr })
    }

    /// The raw JWT, to put in the `x-dyn-elevated-access-token` header.
    #[must_use]
    pub fn raw(&self) -> &Jwt {
        &self.raw
    }

    /// The public description (no secret).
    #[must_use]
    pub fn info(&self) -> &TokenInfo {
        &self.info
    }

    /// The token's id.
    #[must_use]
    pub fn id(&self) -> &TokenId {
        &self.info.id
    }

    /// The scopes it grants.
    #[must_use]
    pub fn scopes(&self) -> &ScopeSet {
        &self.info.scopes
    }

    /// When it expires.
    #[must_use]
    pub fn expires_at(&self) -> UnixTime {
        self.info.expires_at
    }

    /// When it was issued, if the token says.
    #[must_use]
    pub fn issued_at(&self) -> Option<UnixTime> {
        self.issued_at
    }

    /// Whether the server accepts it once only.
    #[must_use]
    pub fn is_single_use(&self) -> bool {
        self.info.single_use
    }

    /// The authentication methods the token records (`amr`), e.g. `["totp"]`.
    #[must_use]
    pub fn amr(&self) -> &[String] {
        &self.amr
    }

    /// Whether the token is expired at `now` (`exp <= now`).
    #[must_use]
    pub fn is_expired_at(&self, now: UnixTime) -> bool {
        self.info.expires_at <= now
    }

    /// Whether the token grants `scope`.
    #[must_use]
    pub fn covers(&self, scope: &Scope) -> bool {
        self.info.scopes.contains(scope)
    }

    /// Whether the token grants every scope of `scopes`.
    #[must_use]
    pub fn covers_all(&self, scopes: &ScopeSet) -> bool {
        self.info.scopes.covers(scopes)
    }
}

/// The three dot-separated parts of a compact JWT — header, payload, signature — with nothing decoded or
/// checked; `None` unless there are exactly three and the token is 1 to [`MAX_TOKEN_LEN`] bytes long. The one
/// place stepup (client and server) takes a JWT apart.
#[must_use]
pub fn split_jwt(raw: &str) -> Option<[&str; 3]> {
    if raw.is_empty() || raw.len() > MAX_TOKEN_LEN {
        return None;
    }
    let mut parts = raw.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(payload), Some(signature), None) => Some([header, payload, signature]),
        _ => None,
    }
}

pub(crate) fn decode_payload(raw: &str) -> Result<Map<String, Value>, TokenError> {
    let [_header, payload, _signature] = split_jwt(raw).ok_or(TokenError::Malformed)?;
    // Some encoders pad; the JWT form has no padding.
    let bytes =
        URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).map_err(|_| TokenError::PayloadNotBase64)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(claims)) => Ok(claims),
        _ => Err(TokenError::PayloadNotJson),
    }
}

/// A JWT NumericDate: seconds since the epoch, possibly fractional (RFC 7519 §2). Negative is invalid.
pub(crate) fn numeric_date(value: &Value) -> Option<UnixTime> {
    let number = value.as_number()?;
    if let Some(secs) = number.as_u64() {
        return Some(UnixTime(secs));
    }
    let secs = number.as_f64()?;
    // Truncation is the intent: a fractional expiry counts from its whole second.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (secs.is_finite() && secs >= 0.0).then_some(UnixTime(secs as u64))
}

/// Identity for a token without `jti`: a digest of the whole token (the JWT itself never becomes an id).
///
/// FNV-1a, 64 bits: stable across Rust versions and processes (unlike `DefaultHasher`), and enough to tell a
/// handful of tokens apart. It is not a commitment: 64 bits of a JWT reveal nothing usable about it.
fn digest_id(raw: &str) -> TokenId {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let digest = raw.bytes().fold(OFFSET, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME));
    TokenId::new(format!("digest:{digest:016x}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwt(claims: &Value) -> Jwt {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
        Jwt::new(format!("eyJhbGciOiJFZERTQSJ9.{payload}.c2ln"))
    }

    const NOW: UnixTime = UnixTime(1_000);

    #[test]
    fn a_jwt_splits_into_exactly_three_parts_within_the_length_bound() {
        assert_eq!(split_jwt("a.b.c"), Some(["a", "b", "c"]));
        assert_eq!(split_jwt("a..c"), Some(["a", "", "c"]), "parts may be empty; decoding judges them");
        for bad in ["", "a.b", "a.b.c.d", "abc"] {
            assert_eq!(split_jwt(bad), None, "{bad:?}");
        }
        let long = format!("a.{}.c", "b".repeat(MAX_TOKEN_LEN));
        assert_eq!(split_jwt(&long), None, "longer than MAX_TOKEN_LEN");
    }

    #[test]
    fn parses_scopes_expiry_single_use_and_id() {
        let token = ElevatedToken::parse(
            jwt(&json!({"scope": "wallet:export user:delete", "exp": 1300, "singleUse": true, "jti": "t-1",
                        "iat": 1000, "amr": ["totp"]})),
            NOW,
        )
        .unwrap();
        assert_eq!(token.scopes(), &ScopeSet::from([Scope::UserDelete, Scope::WalletExport]));
        assert_eq!(token.expires_at(), UnixTime(1300));
        assert!(token.is_single_use());
        assert_eq!(token.id().as_str(), "t-1");
        assert_eq!(token.issued_at(), Some(UnixTime(1000)));
        assert_eq!(token.amr(), &["totp".to_owned()]);
        assert!(token.covers(&Scope::WalletExport));
        assert!(!token.covers(&Scope::WalletSign));
        assert!(!token.is_expired_at(UnixTime(1299)));
        assert!(token.is_expired_at(UnixTime(1300)));
    }

    #[test]
    fn single_use_defaults_to_false_and_missing_jti_gets_a_digest_id() {
        let a = ElevatedToken::parse(jwt(&json!({"scope": "wallet:sign", "exp": 2000})), NOW).unwrap();
        let b = ElevatedToken::parse(jwt(&json!({"scope": "wallet:sign", "exp": 2001})), NOW).unwrap();
        assert!(!a.is_single_use());
        assert!(a.id().as_str().starts_with("digest:"));
        assert_ne!(a.id(), b.id());
    }

    #[test]
    fn fractional_expiry_and_amr_string_are_accepted() {
        let token =
            ElevatedToken::parse(jwt(&json!({"scope": "wallet:sign", "exp": 2000.7, "amr": "email"})), NOW)
                .unwrap();
        assert_eq!(token.expires_at(), UnixTime(2000));
        assert_eq!(token.amr(), &["email".to_owned()]);
    }

    #[test]
    fn each_way_of_being_wrong_has_its_error() {
        let parse = |raw: &str| ElevatedToken::parse(Jwt::new(raw), NOW).unwrap_err();
        assert_eq!(parse(""), TokenError::Malformed);
        assert_eq!(parse("only.two"), TokenError::Malformed);
        assert_eq!(parse("a.b.c.d"), TokenError::Malformed);
        assert_eq!(parse(&"a".repeat(MAX_TOKEN_LEN + 1)), TokenError::Malformed);
        assert_eq!(parse("a.!!!.c"), TokenError::PayloadNotBase64);
        assert_eq!(parse(&format!("a.{}.c", URL_SAFE_NO_PAD.encode("[1,2]"))), TokenError::PayloadNotJson);
        assert_eq!(parse(&format!("a.{}.c", URL_SAFE_NO_PAD.encode("not json"))), TokenError::PayloadNotJson);

        let claims = |claims: Value| ElevatedToken::parse(jwt(&claims), NOW).unwrap_err();
        assert_eq!(claims(json!({"exp": 2000})), TokenError::NoScopes);
        assert_eq!(claims(json!({"scope": "  ", "exp": 2000})), TokenError::NoScopes);
        assert_eq!(
            claims(json!({"scope": ["wallet:sign"], "exp": 2000})),
            TokenError::InvalidClaim { claim: "scope" }
        );
        assert_eq!(claims(json!({"scope": "wallet:sign"})), TokenError::MissingExpiry);
        assert_eq!(
            claims(json!({"scope": "wallet:sign", "exp": "2000"})),
            TokenError::InvalidClaim { claim: "exp" }
        );
        assert_eq!(
            claims(json!({"scope": "wallet:sign", "exp": -5})),
            TokenError::InvalidClaim { claim: "exp" }
        );
        assert_eq!(
            claims(json!({"scope": "wallet:sign", "exp": 2000, "iat": "x"})),
            TokenError::InvalidClaim { claim: "iat" }
        );
        assert_eq!(
            claims(json!({"scope": "wallet:sign", "exp": 2000, "singleUse": "yes"})),
            TokenError::InvalidClaim { claim: "singleUse" }
        );
        assert_eq!(
            claims(json!({"scope": "wallet:sign", "exp": 2000, "jti": 7})),
            TokenError::InvalidClaim { claim: "jti" }
        );
        assert_eq!(
            claims(json!({"scope": "wallet:sign", "exp": 2000, "amr": [1]})),
            TokenError::InvalidClaim { claim: "amr" }
        );
        assert_eq!(
            claims(json!({"scope": "wallet:sign", "exp": 1000})),
            TokenError::Expired { expires_at: UnixTime(1000), now: NOW }
        );
    }

    #[test]
    fn debug_never_prints_the_jwt() {
        let raw = jwt(&json!({"scope": "wallet:sign", "exp": 2000, "jti": "visible-id"}));
        let secret_part = raw.expose_secret().to_owned();
        let token = ElevatedToken::parse(raw, NOW).unwrap();
        let debug = format!("{token:?}");
        assert!(!debug.contains(&secret_part), "{debug}");
        assert!(!debug.contains("c2ln"), "{debug}");
        assert!(debug.contains("visible-id"));
    }
}
