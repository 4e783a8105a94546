//! The claims of an elevated access token, read from the two shapes in use: the reference server's (`iss`,
//! `sub`, `aud`, `scope`, `exp`, `iat`, `jti`, `sid`, `singleUse`, `amr`, `token_use: "elevated"`) and
//! Dynamic's (`iss` = `<api host>/<environment id>`, `sub`, `scope`, `exp`, `iat`, `singleUse`; `aud`, `jti` and
//! `sid` not documented, so optional here). `scope` is one space-delimited string in both; `singleUse` is
//! camelCase and absent means multi-use.
//!
//! Every claim is read by hand from its JSON value, so a claim of the wrong type is a typed refusal naming it
//! ([`Refusal::InvalidClaim`]) instead of a generic parse error.

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use stepup_proto::TokenScope;

use crate::error::Refusal;

/// The longest `jti` (and `sid`) accepted: ids, not documents.
pub const MAX_ID_LEN: usize = 256;

/// The payload as signed: every claim this guard reads, each still raw JSON.
#[derive(Debug, Deserialize)]
pub(crate) struct RawClaims {
    #[serde(default)]
    iss: Option<Value>,
    #[serde(default)]
    sub: Option<Value>,
    #[serde(default)]
    aud: Option<Value>,
    #[serde(default)]
    scope: Option<Value>,
    #[serde(default)]
    exp: Option<Value>,
    #[serde(default)]
    iat: Option<Value>,
    #[serde(default)]
    nbf: Option<Value>,
    #[serde(default)]
    jti: Option<Value>,
    #[serde(default)]
    sid: Option<Value>,
    #[serde(default, rename = "singleUse")]
    single_use: Option<Value>,
    #[serde(default)]
    amr: Option<Value>,
    #[serde(default)]
    token_use: Option<Value>,
}

/// A token the guard verified: signature, issuer, audience, use, times, bindings and scope. Handlers read who
/// it was issued to and what it grants from here.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedToken {
    /// `iss`.
    pub issuer: String,
    /// `sub`: the user the token was issued to.
    pub subject: String,
    /// `aud`, as a list (empty when the token has none).
    pub audience: Vec<String>,
    /// `scope`, split on spaces.
    pub scopes: Vec<TokenScope>,
    /// `exp`, Unix seconds.
    pub expires_at: u64,
    /// `iat`, if present.
    pub issued_at: Option<u64>,
    /// The token's id: its `jti`, or for a token without one `sha256:` and the hex digest of its signing input
    /// (header and payload: not the signature, which ECDSA lets anyone re-form into a second valid one), so a
    /// single-use token without a `jti` is still spent exactly once.
    pub token_id: String,
    /// `sid`: the session that earned the token, if it names one.
    pub session_id: Option<String>,
    /// `singleUse` (absent: `false`).
    pub single_use: bool,
    /// `amr`: how the user proved themselves (`totp`, `passkey`, `email`, ...), if the token says.
    pub amr: Vec<String>,
    /// `token_use`, if present (the reference server's say `elevated`).
    pub token_use: Option<String>,
    /// `nbf`, if present.
    pub not_before: Option<u64>,
}

impl VerifiedToken {
    /// Whether the token grants `scope`.
    #[must_use]
    pub fn grants(&self, scope: &TokenScope) -> bool {
        self.scopes.contains(scope)
    }
}

fn string(value: Option<&Value>, claim: &'static str) -> Result<Option<String>, Refusal> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(Refusal::InvalidClaim { claim }),
    }
}

fn required_string(value: Option<&Value>, claim: &'static str) -> Result<String, Refusal> {
    string(value, claim)?.ok_or(Refusal::InvalidClaim { claim })
}

fn bounded_id(value: Option<&Value>, claim: &'static str) -> Result<Option<String>, Refusal> {
    let id = string(value, claim)?;
    if id.as_ref().is_some_and(|id| id.len() > MAX_ID_LEN) {
        return Err(Refusal::InvalidClaim { claim });
    }
    Ok(id)
}

/// A NumericDate (RFC 7519 §2): seconds, possibly with a fraction (whole seconds are enough here).
fn time(value: Option<&Value>, claim: &'static str) -> Result<Option<u64>, Refusal> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64))
            .map(Some)
            .ok_or(Refusal::InvalidClaim { claim }),
        Some(_) => Err(Refusal::InvalidClaim { claim }),
    }
}

fn strings(value: Option<&Value>, claim: &'static str) -> Result<Vec<String>, Refusal> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(one)) => Ok(vec![one.clone()]),
        Some(Value::Array(many)) => many
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(Refusal::InvalidClaim { claim }),
        Some(_) => Err(Refusal::InvalidClaim { claim }),
    }
}

impl RawClaims {
    /// Reads every claim into its type; `token` is the whole JWT (its digest stands in for a missing `jti`).
    pub(crate) fn read(self, token: &str) -> Result<VerifiedToken, Refusal> {
        let scope = required_string(self.scope.as_ref(), "scope")?;
        let scopes: Vec<TokenScope> = scope.split_ascii_whitespace().map(TokenScope::parse).collect();
        if scopes.is_empty() {
            return Err(Refusal::InvalidClaim { claim: "scope" });
        }
        let single_use = match self.single_use {
            None | Some(Value::Null) => false,
            Some(Value::Bool(single_use)) => single_use,
            Some(_) => return Err(Refusal::InvalidClaim { claim: "singleUse" }),
        };
        let token_id = match bounded_id(self.jti.as_ref(), "jti")? {
            Some(jti) => jti,
            None => {
                let signing_input = token.rsplit_once('.').map_or(token, |(input, _signature)| input);
                format!("sha256:{}", hex(&Sha256::digest(signing_input.as_bytes())))
            }
        };
        Ok(VerifiedToken {
            issuer: required_string(self.iss.as_ref(), "iss")?,
            subject: required_string(self.sub.as_ref(), "sub")?,
            audience: strings(self.aud.as_ref(), "aud")?,
            scopes,
            expires_at: time(self.exp.as_ref(), "exp")?.ok_or(Refusal::InvalidClaim { claim: "exp" })?,
            issued_at: time(self.iat.as_ref(), "iat")?,
            token_id,
            session_id: bounded_id(self.sid.as_ref(), "sid")?,
            single_use,
            amr: strings(self.amr.as_ref(), "amr")?,
            token_use: string(self.token_use.as_ref(), "token_use")?,
            not_before: time(self.nbf.as_ref(), "nbf")?,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(payload: Value) -> Result<VerifiedToken, Refusal> {
        serde_json::from_value::<RawClaims>(payload).unwrap().read("h.p.s")
    }

    #[test]
    fn the_reference_servers_shape() {
        let token = read(json!({
            "iss": "stepup-reference-server", "sub": "u1", "aud": "dev", "scope": "wallet:export credential:link",
            "exp": 2000, "iat": 1000, "jti": "t1", "sid": "s1", "singleUse": true, "amr": ["totp"],
            "token_use": "elevated"
        }))
        .unwrap();
        assert_eq!(token.scopes, vec![TokenScope::WalletExport, TokenScope::CredentialLink]);
        assert_eq!(token.audience, vec!["dev".to_owned()]);
        assert_eq!((token.token_id.as_str(), token.session_id.as_deref()), ("t1", Some("s1")));
        assert!(token.single_use);
        assert_eq!(token.amr, vec!["totp".to_owned()]);
        assert_eq!(token.token_use.as_deref(), Some("elevated"));
    }

    /// Dynamic's: no `aud`, `jti` or `sid` documented; `singleUse` absent means multi-use; the id of a token
    /// without `jti` is its digest.
    #[test]
    fn dynamics_shape() {
        let token = read(json!({
            "iss": "app.dynamicauth.com/2762a57b-faa4-41ce-9f16-abff9300e2c9", "sub": "user-1",
            "scope": "wallet:export", "exp": 2000.5, "iat": 1000
        }))
        .unwrap();
        assert_eq!(token.expires_at, 2000);
        assert!(!token.single_use);
        assert!(token.audience.is_empty() && token.session_id.is_none() && token.token_use.is_none());
        assert!(token.token_id.starts_with("sha256:") && token.token_id.len() == 7 + 64);
    }

    #[test]
    fn claims_of_the_wrong_type_are_named() {
        let base = json!({"iss": "i", "sub": "u", "scope": "wallet:export", "exp": 2000});
        let with = |claim: &str, value: Value| {
            let mut payload = base.clone();
            payload[claim] = value;
            read(payload)
        };
        for (claim, value, name) in [
            ("scope", json!(["wallet:export"]), "scope"),
            ("scope", json!("  "), "scope"),
            ("exp", json!("2000"), "exp"),
            ("exp", Value::Null, "exp"),
            ("sub", json!(7), "sub"),
            ("iss", json!(""), "iss"),
            ("singleUse", json!("true"), "singleUse"),
            ("jti", json!("x".repeat(MAX_ID_LEN + 1)), "jti"),
            ("aud", json!([1]), "aud"),
            ("nbf", json!(-1), "nbf"),
            ("amr", json!({"m": 1}), "amr"),
        ] {
            assert_eq!(with(claim, value), Err(Refusal::InvalidClaim { claim: name }), "{claim}");
        }
    }
}
