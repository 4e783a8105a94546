//! The last word on error answers: every error leaves as `{error, code}` JSON.
//!
//! The handlers' own errors already are (`ApiError`), but the framework answers some requests itself with a
//! plain-text body or none: a path whose method does not exist (405), a path or query that does not parse, a body
//! of the wrong media type. Dynamic's client throws the raw `Response` at its caller for an error that is not
//! JSON with an `error` field, so such answers are rewritten here, keeping their status and headers (`Allow`).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use stepup_proto::ErrorCode;

use crate::error::ApiError;

/// The most of a non-JSON error body kept as the message.
const MAX_MESSAGE_BYTES: usize = 1024;

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"))
}

/// The code of an error the framework answered itself.
fn code_for(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::BadRequest,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::REQUEST_TIMEOUT => ErrorCode::RequestTimeout,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        other => ErrorCode::Unknown(
            other.canonical_reason().unwrap_or("error").to_ascii_lowercase().replace([' ', '-'], "_"),
        ),
    }
}

/// Rewrites an error answer that is not JSON into the protocol's error body.
pub(crate) async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_MESSAGE_BYTES)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message =
        if text.is_empty() { status.canonical_reason().unwrap_or("Error").to_owned() } else { text };
    let rebuilt = ApiError::with_status(status, code_for(status), message).into_response();
    let (rebuilt_parts, rebuilt_body) = rebuilt.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in &rebuilt_parts.headers {
        parts.headers.insert(name, value.clone());
    }
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::new(rebuilt_body))
}
