//! `SessionInfo`: what the client reads from the session JWT, without checking its signature.
//!
//! The server answers every verify call with the session JWT, re-signed when its claims change (after an MFA
//! verification: `mfa_auth_time`). The engine adopts such a JWT only when it is for the same user as the one it
//! holds (`sub`), so a confused or hostile answer cannot swap the user under the app; the claims are read for that
//! decision and for the app's information, never to allow anything (the server checks every use).

use serde_json::Value;

use crate::secret::Jwt;
use crate::time::UnixTime;
use crate::token::{TokenError, decode_payload, numeric_date};

/// The readable claims of a session JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The user (`sub`).
    pub subject: String,
    /// The session id (`sid`, else `jti`), if the token names one.
    pub session_id: Option<String>,
    /// When the session ends (`exp`), if the token says.
    pub expires_at: Option<UnixTime>,
    /// When the session last passed an MFA verification (`mfa_auth_time`), if the server says.
    pub mfa_auth_time: Option<UnixTime>,
}

impl SessionInfo {
    /// Reads a session JWT's claims.
    ///
    /// # Errors
    /// [`TokenError::Malformed`], [`TokenError::PayloadNotBase64`] or [`TokenError::PayloadNotJson`] for a token
    /// that is not a JWT; [`TokenError::InvalidClaim`] for a missing or empty `sub`, or a time claim that is not
    /// a NumericDate.
    pub fn parse(jwt: &Jwt) -> Result<Self, TokenError> {
        let claims = decode_payload(jwt.expose_secret())?;
        let subject = match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            _ => return Err(TokenError::InvalidClaim { claim: "sub" }),
        };
        let time = |claim: &'static str| match claims.get(claim) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => numeric_date(value).map(Some).ok_or(TokenError::InvalidClaim { claim }),
        };
        let session_id = ["sid", "jti"]
            .iter()
            .find_map(|claim| claims.get(*claim).and_then(Value::as_str).filter(|id| !id.is_empty()))
            .map(str::to_owned);
        Ok(Self { subject, session_id, expires_at: time("exp")?, mfa_auth_time: time("mfa_auth_time")? })
    }

    /// Whether `other` is a JWT of the same user as `current` (both readable, same `sub`): the rule for adopting
    /// a session an answer carries.
    #[must_use]
    pub fn same_user(current: &Jwt, other: &Jwt) -> bool {
        match (Self::parse(current), Self::parse(other)) {
            (Ok(a), Ok(b)) => a.subject == b.subject,
            _ => false,
        }
    }

    /// Whether `other` is a JWT of the same session as `current`: the same user and the same session id
    /// (`sid`, else `jti`), or the same user when neither names one. Elevated tokens are bound to the session
    /// that earned them, so they survive only a change of JWT within one session.
    #[must_use]
    pub fn same_session(current: &Jwt, other: &Jwt) -> bool {
        match (Self::parse(current), Self::parse(other)) {
            (Ok(a), Ok(b)) => a.subject == b.subject && a.session_id == b.session_id,
            _ => false,
        }
    }

    /// Whether `self` may stand in for `held` as the same session re-issued: the same user, the same session id
    /// when `held` names one, and an MFA time no older. The rule for adopting a verify answer's session, and for
    /// renewing the session a waiting or retried request carries.
    #[must_use]
    pub fn renews(&self, held: &SessionInfo) -> bool {
        self.subject == held.subject
            && (held.session_id.is_none() || held.session_id == self.session_id)
            && self.mfa_auth_time >= held.mfa_auth_time
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn jwt(claims: &Value) -> Jwt {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        Jwt::new(format!("{}.{}.sig", part(&serde_json::json!({"alg": "EdDSA"})), part(claims)))
    }

    #[test]
    fn claims_are_read_and_users_compared() {
        let first = jwt(&serde_json::json!({"sub": "u1", "jti": "s1", "exp": 100}));
        let info = SessionInfo::parse(&first).unwrap();
        assert_eq!(info.subject, "u1");
        assert_eq!(info.session_id.as_deref(), Some("s1"));
        assert_eq!(info.expires_at, Some(UnixTime(100)));
        assert_eq!(info.mfa_auth_time, None);
        let reissued = jwt(&serde_json::json!({"sub": "u1", "sid": "s1", "exp": 100, "mfa_auth_time": 50}));
        assert_eq!(SessionInfo::parse(&reissued).unwrap().mfa_auth_time, Some(UnixTime(50)));
        assert!(SessionInfo::same_user(&first, &reissued));
        let other = jwt(&serde_json::json!({"sub": "u2"}));
        assert!(!SessionInfo::same_user(&first, &other));
        assert!(!SessionInfo::same_user(&first, &Jwt::new("opaque")));
        assert!(SessionInfo::same_session(&first, &reissued));
        let new_session = jwt(&serde_json::json!({"sub": "u1", "sid": "s2", "exp": 100}));
        assert!(SessionInfo::same_user(&first, &new_session));
        assert!(!SessionInfo::same_session(&first, &new_session));
        assert!(!SessionInfo::same_session(&first, &jwt(&serde_json::json!({"sub": "u1"}))));
        assert!(SessionInfo::same_session(&other, &jwt(&serde_json::json!({"sub": "u2", "exp": 5}))));
    }

    #[test]
    fn bad_session_tokens_have_their_errors() {
        assert_eq!(SessionInfo::parse(&Jwt::new("opaque")), Err(TokenError::Malformed));
        assert_eq!(
            SessionInfo::parse(&jwt(&serde_json::json!({"exp": 1}))),
            Err(TokenError::InvalidClaim { claim: "sub" })
        );
        assert_eq!(
            SessionInfo::parse(&jwt(&serde_json::json!({"sub": ""}))),
            Err(TokenError::InvalidClaim { claim: "sub" })
        );
        assert_eq!(
            SessionInfo::parse(&jwt(&serde_json::json!({"sub": "u", "exp": "soon"}))),
            Err(TokenError::InvalidClaim { claim: "exp" })
        );
    }
}
