//! Extractors: the environment from the path, the session from `Authorization`, the admin token, and JSON
//! bodies whose rejections are 400s with the protocol's error body.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq as _;

use crate::error::ApiError;
use crate::state::{AppState, Environment};
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
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Env(env) = Env::from_request_parts(parts, state).await?;
        let token = bearer(parts).ok_or_else(|| ApiError::unauthorized("A session token is required"))?;
        let claims: SessionClaims =
            env.key.verify(token).map_err(|_| ApiError::unauthorized("The session token is invalid"))?;
        if claims.token_use != "session" || claims.aud != env.id() {
            return Err(ApiError::unauthorized("The session token is invalid"));
        }
        if time(i64::try_from(claims.exp).unwrap_or(0)) <= state.now() {
            return Err(ApiError::unauthorized("The session has expired"));
        }
        let session = state.store().session(&claims.jti).await?;
        match session {
            Some(row) if !row.revoked && row.user_id == claims.sub => {
                Ok(Session { env, user_id: claims.sub, session_id: claims.jti, expires_at: claims.exp })
            }
            _ => Err(ApiError::unauthorized("The session has ended")),
        }
    }
}

/// A request of the admin API: `Authorization: Bearer <admin token>`.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The admin router is only mounted when a token is configured; this is the second lock on that door.
        let expected = state.admin_token().ok_or_else(|| ApiError::not_found("Not found"))?;
        let given = bearer(parts).unwrap_or("");
        if bool::from(given.as_bytes().ct_eq(expected.expose_secret().as_bytes())) {
            Ok(Admin)
        } else {
            Err(ApiError::unauthorized("The admin token is missing or wrong"))
        }
    }
}

/// A JSON body; malformed JSON, wrong types, a wrong content type or an oversized body is a 400 with the
/// protocol's error body (never a 500, never axum's plain-text rejection).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
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
