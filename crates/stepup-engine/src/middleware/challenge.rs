//! Recognising a step-up challenge in a response.

use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;
use stepup_core::ScopeSet;
use stepup_proto::headers::parse_step_up_challenge;
use stepup_proto::{ErrorBody, ErrorCode};

/// A response that asks for step-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scopes the challenge names (RFC 9470 `scope` parameter); empty when it names none.
    pub scopes: ScopeSet,
    /// RFC 9470 `max_age`: the user must have verified (by MFA, on the reference server) at most this many
    /// seconds ago. A held token does not answer such a challenge; a fresh verification does. `Some(0)` for the
    /// body code `insufficient_user_authentication` without a header.
    pub max_age: Option<u64>,
}

impl Challenge {
    /// Whether only a verification made now answers it (RFC 9470 `max_age`).
    #[must_use]
    pub fn needs_fresh_verification(&self) -> bool {
        self.max_age.is_some()
    }
}

/// The step-up challenge in a response's head, if there is one: a 401 or 403 whose `WWW-Authenticate` is an RFC
/// 9470 Bearer challenge with `error="insufficient_user_authentication"`. A 403 without such a header may still be
/// a challenge by its body's code (`elevated_access_token_required`), which the middleware reads when it is small JSON.
#[must_use]
pub fn challenge_in(status: StatusCode, headers: &reqwest::header::HeaderMap) -> Option<Challenge> {
    if status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN {
        return None;
    }
    headers.get_all(WWW_AUTHENTICATE).iter().filter_map(|value| value.to_str().ok()).find_map(|value| {
        let challenge = parse_step_up_challenge(value)?;
        let scopes = challenge.scopes.into_iter().collect();
        Some(Challenge { scopes, max_age: challenge.max_age })
    })
}

/// The challenge a 403 body says by its code alone (Dynamic's answer, with or without a header):
/// `elevated_access_token_required`, or `insufficient_user_authentication` (a recent MFA is needed).
pub(crate) fn challenge_in_body(body: &[u8]) -> Option<Challenge> {
    let body = serde_json::from_slice::<ErrorBody>(body).ok()?;
    match body.code {
        ErrorCode::ElevatedAccessTokenRequired => {
            Some(Challenge { scopes: ScopeSet::empty(), max_age: None })
        }
        ErrorCode::InsufficientUserAuthentication => {
            Some(Challenge { scopes: ScopeSet::empty(), max_age: Some(0) })
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderValue};

    use super::*;
    use stepup_core::Scope;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn rfc_9470_challenges_name_their_scopes() {
        let value = r#"Bearer error="insufficient_user_authentication", error_description="x", scope="wallet:export user:delete""#;
        let challenge = challenge_in(StatusCode::FORBIDDEN, &headers(value)).unwrap();
        let expected: ScopeSet = [Scope::WalletExport, Scope::UserDelete].into_iter().collect();
        assert_eq!(challenge.scopes, expected);
        assert_eq!(challenge.max_age, None);
        let bare = challenge_in(
            StatusCode::UNAUTHORIZED,
            &headers(r#"Bearer error="insufficient_user_authentication""#),
        );
        assert_eq!(bare, Some(Challenge { scopes: ScopeSet::default(), max_age: None }));
        let recent = challenge_in(
            StatusCode::FORBIDDEN,
            &headers(r#"Bearer error="insufficient_user_authentication", max_age=300"#),
        )
        .unwrap();
        assert_eq!(recent.max_age, Some(300));
        assert!(recent.needs_fresh_verification());
    }

    #[test]
    fn other_answers_are_not_challenges() {
        let step_up = r#"Bearer error="insufficient_user_authentication""#;
        assert_eq!(challenge_in(StatusCode::OK, &headers(step_up)), None, "only 401 and 403 challenge");
        assert_eq!(challenge_in(StatusCode::FORBIDDEN, &headers(r#"Bearer error="invalid_token""#)), None);
        assert_eq!(challenge_in(StatusCode::FORBIDDEN, &headers("Basic realm=\"x\"")), None);
        assert_eq!(challenge_in(StatusCode::FORBIDDEN, &HeaderMap::new()), None);
    }

    #[test]
    fn the_body_code_is_a_challenge() {
        let token = challenge_in_body(br#"{"error":"x","code":"elevated_access_token_required"}"#).unwrap();
        assert!(!token.needs_fresh_verification());
        let recent =
            challenge_in_body(br#"{"error":"x","code":"insufficient_user_authentication"}"#).unwrap();
        assert!(recent.needs_fresh_verification());
        assert_eq!(challenge_in_body(br#"{"error":"x","code":"forbidden"}"#), None);
        assert_eq!(challenge_in_body(b"not json"), None);
    }
}
