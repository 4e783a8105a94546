//! Extractors: the environment from the path, the session from `Authorization`, the admin token, and JSON
//! bodies whose rejections are 400s with the protocol's error body.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq as _;

use crate::environment::Environment;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::time;
use crate::tokens::SessionClaims;

/// The environment named by the `{environment_id}` path segment.
#[derive(Debug, Clone)]
pub struct Env(pub Arc<Environment>);

impl FromRequestParts<AppState> for Env {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("Unknown environment"))?;
        let id = params
            .iter()
            .find(|(name, _)| *name == "environment_id")
            .map(|(_, value)| value.to_owned())
            .ok_or_else(|| ApiError::not_found("Unknown environment"))?;
        state.environment(&id).cloned().map(Env).ok_or_else(|| ApiError::not_found("Unknown environment"))
    }
}

/// The bearer token of `Authorization: Bearer <token>`, if any.
pub(crate) fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// A signed-in user: a valid, unexpired, unrevoked session JWT of this environment.
#[derive(Debug, Clone)]
pub struct Session {
    /// The environment.
    pub env: Arc<Environment>,
    /// The user's id.
    pub user_id: String,
    /// The session's id.
    pub session_id: String,
    /// When the session ends, Unix seconds.
    pub expires_at: u64,
    /// The verified claims of the session JWT (a verify answer re-signs them: `services::issuance::reissue_session`).
    pub claims: SessionClaims,
}

impl Session {
    /// Whether the session passed an MFA verification at most `max_age_secs` ago (by the server's clock; a time
    /// up to a minute ahead is another replica's clock running ahead, and counts as now).
    #[must_use]
    pub fn has_recent_mfa(&self, now: stepup_core::UnixTime, max_age_secs: u64) -> bool {
        const REPLICA_SKEW_SECS: u64 = 60;
        self.claims.mfa_auth_time.is_some_and(|at| {
            at <= now.as_secs() + REPLICA_SKEW_SECS && now.as_secs().saturating_sub(at) <= max_age_secs
        })
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Env(env) = Env::from_request_parts(parts, state).await?;
        let token = bearer(parts).ok_or_else(|| ApiError::unauthorized("A session token is required"))?;
        let claims: SessionClaims = crate::services::issuance::verify_session(state, &env, token)
            .await
            .map_err(|_| ApiError::unauthorized("The session token is invalid"))?;
        if claims.token_use != "session" || claims.aud != env.id() {
            return Err(ApiError::unauthorized("The session token is invalid"));
        }
        if time(i64::try_from(claims.exp).unwrap_or(0)) <= state.now() {
            return Err(ApiError::unauthorized("The session has expired"));
        }
        let session = state.store().session(&claims.jti).await?;
        match session {
            Some(row) if !row.revoked && row.user_id == claims.sub => Ok(Session {
                env,
                user_id: claims.sub.clone(),
                session_id: claims.jti.clone(),
                expires_at: claims.exp,
                claims,
            }),
            _ => Err(ApiError::unauthorized("The session has ended")),
        }
    }
}

/// A session if the request carries one (sending a code and asking for nonces work signed in or out; a bad
/// token is still a 401).
#[derive(Debug, Clone)]
pub struct MaybeSession(pub Option<Session>);

impl FromRequestParts<AppState> for MaybeSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if bearer(parts).is_none() {
            return Ok(MaybeSession(None));
        }
        Session::from_request_parts(parts, state).await.map(|s| MaybeSession(Some(s)))
    }
}

/// The elevated token the request carries in `x-dyn-elevated-access-token`, if any (the resource guard checks
/// it; a header that is not text is no token). `Debug` leaves the token out.
#[derive(Clone, Default)]
pub struct ElevatedHeader(pub Option<String>);

impl std::fmt::Debug for ElevatedHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = self.0.as_ref().map(|_| stepup_core::secret::REDACTED);
        f.debug_tuple("ElevatedHeader").field(&token).finish()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ElevatedHeader {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let token =
            parts.headers.get(stepup_proto::headers::ELEVATED_ACCESS_TOKEN).and_then(|v| v.to_str().ok());
        Ok(ElevatedHeader(token.map(str::to_owned)))
    }
}

/// Compares a presented token (admin, metrics) with the configured one in time that depends on neither: both
/// are hashed (SHA-256) and the digests compared in constant time. Comparing the bytes themselves in constant
/// time still returns at once for a different length, which tells a caller the token's length.
pub(crate) fn same_secret(given: &str, expected: &str) -> bool {
    use sha2::{Digest as _, Sha256};
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    bool::from(given.as_slice().ct_eq(expected.as_slice()))
}

/// A request of the admin API: `Authorization: Bearer <admin token>`.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The admin router is only mounted when a token is configured; this is the second lock on that door.
        let expected = state.admin_token().ok_or_else(|| ApiError::not_found("Not found"))?;
        // No bearer never matches, even a token configured empty (which `ServerConfig::validate` refuses).
        let matches = bearer(parts).is_some_and(|given| same_secret(given, expected.expose_secret()));
        if matches { Ok(Admin) } else { Err(ApiError::unauthorized("The admin token is missing or wrong")) }
    }
}

/// Path parameters; a rejection (a segment that does not parse) is a 400 with the protocol's error body.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(ApiError::bad_request(format!("Invalid path: {}", rejection.body_text()))),
        }
    }
}

/// A query string; a rejection (a repeated or malformed parameter) is a 400 with the protocol's error body.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::bad_request(format!("Invalid query: {}", rejection.body_text()))),
        }
    }
}

/// A JSON object body; malformed JSON, another JSON value than an object, wrong types, a wrong content type or
/// an unreadable body is a 400 with the protocol's error body (never a 500, never axum's plain-text rejection).
///
/// Why the object check: serde reads a struct from a JSON array too (`["wallet:export"]` as `{scope}`), so a
/// body of the wrong shape would be taken for the right one.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

/// A JSON body that may be absent: an empty body (with or without `Content-Type: application/json`, as
/// Dynamic's client sends on calls without one) is `T::default()`; anything else is read as [`ApiJson`].
#[derive(Debug, Clone)]
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::bad_request("The request body is too large or unreadable"))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        require_object(&bytes)?;
        serde_json::from_slice(&bytes)
            .map(OptionalJson)
            .map_err(|e| ApiError::bad_request(format!("Invalid request body: {e}")))
    }
}

/// Refuses a body that is not a JSON object (by its first significant byte; the parser checks the rest).
fn require_object(bytes: &[u8]) -> Result<(), ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(()),
        _ => Err(ApiError::bad_request("The request body must be a JSON object")),
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        // The body is in memory already (`routes::request_bounds` reads it whole), so looking at it first is free.
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, crate::routes::MAX_BODY_BYTES)
            .await
            .map_err(|_| ApiError::bad_request("The request body is too large or unreadable"))?;
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            require_object(&bytes)?;
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(ApiError::bad_request(match rejection {
                JsonRejection::JsonDataError(e) => format!("Invalid request body: {}", e.body_text()),
                JsonRejection::JsonSyntaxError(_) => "The request body is not valid JSON".to_owned(),
                JsonRejection::MissingJsonContentType(_) => {
                    "Expected Content-Type: application/json".to_owned()
                }
                JsonRejection::BytesRejection(_) => "The request body is too large or unreadable".to_owned(),
                _ => "Invalid request body".to_owned(),
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_elevated_header_does_not_print_its_token() {
        let shown = format!("{:?}", ElevatedHeader(Some("eyJhbGciOiJFZERTQSJ9.secret.sig".into())));
        assert!(!shown.contains("eyJ") && shown.contains(stepup_core::secret::REDACTED), "{shown}");
        assert_eq!(format!("{:?}", ElevatedHeader(None)), "ElevatedHeader(None)");
    }

    #[test]
    fn admin_tokens_compare_by_digest_whatever_their_lengths() {
        assert!(same_secret("s3cret-admin-token", "s3cret-admin-token"));
        for other in ["", "s", "s3cret-admin-toke", "s3cret-admin-token!", "S3cret-admin-token"] {
            assert!(!same_secret(other, "s3cret-admin-token"), "{other:?}");
        }
    }
}
