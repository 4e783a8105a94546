//! `ApiError`: every refusal the server sends, as `{error, code}` with the right status and headers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use stepup_proto::headers::{ELEVATED_ACCESS_TOKEN, recent_authentication_challenge, step_up_challenge};
use stepup_proto::{ErrorBody, ErrorCode, TokenScope};

use crate::store::StoreError;

/// The RFC 9470 challenge an error carries in `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    /// An elevated token for these scopes is needed.
    Scopes(Vec<TokenScope>),
    /// An MFA verification at most this many seconds old is needed (`max_age`).
    RecentAuthentication(u64),
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    retry_after: Option<u64>,
    challenge: Option<Challenge>,
    database: bool,
}

/// What an error answer carries as a response extension for the request log and the metrics (the code, and
/// whether the database failed), so they need not parse the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    /// The error code.
    pub code: ErrorCode,
    /// Whether a database error caused it.
    pub database: bool,
}

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody::new(code, message),
            retry_after: None,
            challenge: None,
            database: false,
        }
    }

    /// 400 `bad_request`.
    #[must_use]
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    /// 401 `unauthorized`.
    #[must_use]
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
    }

    /// 404 `not_found`.
    #[must_use]
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    /// 403 `elevated_access_token_required` with the RFC 9470 challenge for `scopes`.
    #[must_use]
    pub fn elevated_required(scopes: Vec<TokenScope>, message: impl Into<String>) -> Self {
        let mut error = Self::new(StatusCode::FORBIDDEN, ErrorCode::ElevatedAccessTokenRequired, message);
        error.challenge = Some(Challenge::Scopes(scopes));
        error
    }

    /// 403 `insufficient_user_authentication`: the call needs an MFA verification of this session at most
    /// `max_age_secs` old, with the RFC 9470 challenge `Bearer error="insufficient_user_authentication",
    /// max_age=N`.
    #[must_use]
    pub fn recent_mfa_required(max_age_secs: u64) -> Self {
        let mut error = Self::new(
            StatusCode::FORBIDDEN,
            ErrorCode::InsufficientUserAuthentication,
            format!("This call needs an MFA verification of this session in the last {max_age_secs} seconds"),
        );
        error.challenge = Some(Challenge::RecentAuthentication(max_age_secs));
        error
    }

    /// 405 `method_not_allowed`.
    #[must_use]
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            "Method not allowed on this path",
        )
    }

    /// 503 with `code`: a service the server needs is unreachable.
    #[must_use]
    pub fn unavailable(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// Any status with a code, for answers rebuilt from a framework's own rejection.
    #[must_use]
    pub fn with_status(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(status, code, message)
    }

    /// 422 with `code`.
    #[must_use]
    pub fn unprocessable(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 422 `lock_too_many_attempts`, with `Retry-After`.
    #[must_use]
    pub fn locked(retry_after_secs: u64) -> Self {
        let mut error = Self::unprocessable(
            ErrorCode::LockTooManyAttempts,
            "Too many failed attempts; MFA is locked for a while",
        );
        error.retry_after = Some(retry_after_secs.max(1));
        error
    }

    /// 429 with `code` and `Retry-After`.
    #[must_use]
    pub fn too_many(code: ErrorCode, message: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, code, message);
        error.retry_after = Some(retry_after_secs.max(1));
        error
    }

    /// 500 without details (they go to the log, never to the client).
    #[must_use]
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unknown("internal_error".into()),
            "Internal error",
        )
    }

    /// The status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The code.
    #[must_use]
    pub fn code(&self) -> &ErrorCode {
        &self.body.code
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.body.error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body.clone())).into_response();
        response.extensions_mut().insert(ErrorInfo { code: self.body.code.clone(), database: self.database });
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        let challenge = match &self.challenge {
            Some(Challenge::Scopes(scopes)) => Some(step_up_challenge(
                &format!("An elevated access token ({ELEVATED_ACCESS_TOKEN}) is required"),
                scopes,
            )),
            Some(Challenge::RecentAuthentication(max_age)) => {
                Some(recent_authentication_challenge("A recent MFA verification is required", *max_age))
            }
            None => None,
        };
        if let Some(value) = challenge.and_then(|value| HeaderValue::from_str(&value).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "storage error");
        ApiError { database: true, ..ApiError::internal() }
    }
}
