//! The answer to a request the guard did not let through: 403 `elevated_access_token_required` with the
//! RFC 9470 `WWW-Authenticate` challenge (what the engine's middleware steps up on), or 503
//! `elevated_check_unavailable` when the guard could not check (nothing is let through).

use http::{HeaderValue, Response, StatusCode, header};
use stepup_proto::headers::challenge_with;
use stepup_proto::{ErrorBody, ErrorCode, TokenScope};

use crate::error::{GuardError, Unavailable};

/// What the challenge asks for besides the scope; the guard holds tokens to it too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChallengeOptions {
    /// RFC 9470 `max_age`: the user must have proved themselves at most this many seconds ago. A token whose
    /// `iat` is older (or that has none) is refused ([`crate::Refusal::TooOld`]), and the engine answers the
    /// challenge with a fresh verification even when it holds a token.
    pub max_age_secs: Option<u64>,
    /// RFC 9470 `acr_values`: how the user must prove themselves, as the methods a token records in `amr`
    /// (`totp passkey` asks for MFA). A token earned otherwise is refused ([`crate::Refusal::Method`]).
    pub acr_values: Vec<String>,
}

impl ChallengeOptions {
    /// No `max_age`, no `acr_values`.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks for an authentication at most `secs` old.
    #[must_use]
    pub fn max_age(mut self, secs: u64) -> Self {
        self.max_age_secs = Some(secs);
        self
    }

    /// Asks for one of these methods (as `amr` values: `totp`, `passkey`, `recovery`, `email`, `sms`,
    /// `wallet`, ...).
    #[must_use]
    pub fn acr_values<I, S>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.acr_values = methods.into_iter().map(Into::into).collect();
        self
    }
}

/// The refusal answer of a guarded call: status, `{error, code}` body and, for a 403, the challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    status: StatusCode,
    body: ErrorBody,
    challenge: Option<String>,
}

impl Rejection {
    /// The answer to `error` for a call requiring `scope`.
    #[must_use]
    pub fn new(error: &GuardError, scope: &TokenScope, options: &ChallengeOptions) -> Self {
        match error {
            GuardError::Refused(refusal) => {
                let message = capitalised(&refusal.to_string());
                let acr = (!options.acr_values.is_empty()).then(|| options.acr_values.join(" "));
                let challenge = challenge_with(
                    &message,
                    std::slice::from_ref(scope),
                    options.max_age_secs,
                    acr.as_deref(),
                );
                Self {
                    status: StatusCode::FORBIDDEN,
                    body: ErrorBody::new(ErrorCode::ElevatedAccessTokenRequired, message),
                    challenge: Some(challenge),
                }
            }
            GuardError::Unavailable(why) => {
                // The reason (a connection error, say) is for the log, not for the caller.
                tracing::warn!(error = %why, "the elevated access token could not be checked; refused");
                let message = match why {
                    Unavailable::Keys { .. } => {
                        "The token issuer's keys cannot be fetched right now; try again later"
                    }
                    _ => "Single-use tokens cannot be checked right now; try again later",
                };
                Self {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    body: ErrorBody::new(ErrorCode::ElevatedCheckUnavailable, message),
                    challenge: None,
                }
            }
        }
    }

    /// 403 or 503.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `{error, code}` body.
    #[must_use]
    pub fn body(&self) -> &ErrorBody {
        &self.body
    }

    /// The `WWW-Authenticate` value, for a 403.
    #[must_use]
    pub fn challenge(&self) -> Option<&str> {
        self.challenge.as_deref()
    }

    /// The HTTP answer, with a body type of the caller's stack (`axum::body::Body`, `String`, `Full<Bytes>`).
    #[must_use]
    pub fn into_http<B: From<String>>(self) -> Response<B> {
        // An `ErrorBody` always serialises (strings only); the fallback keeps this free of panics regardless.
        let json = serde_json::to_string(&self.body)
            .unwrap_or_else(|_| r#"{"error":"refused","code":"elevated_access_token_required"}"#.to_owned());
        let mut response = Response::new(B::from(json));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(value) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The refusal's text as a sentence for the answer.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
}
