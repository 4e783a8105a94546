//! One structured log event and one latency observation per request, and the request id.
//!
//! The request id comes from the caller's `X-Request-Id` when it is a sane token (1–128 of `A-Z a-z 0-9 . _ -`,
//! so a log line cannot be forged through it), else a new UUID; it goes back in the answer's `X-Request-Id` and
//! is on every event logged while the request runs. The event names the route by its template
//! (`/sdk/{environment_id}/users/mfa/auth/totp`), never the path a caller typed, and holds no header, body or
//! query: no code, secret or token reaches the log.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use stepup_proto::ErrorCode;
use tracing::Instrument as _;

use crate::error::ErrorInfo;
use crate::state::AppState;

/// The header the request id travels in.
pub const REQUEST_ID: &str = "x-request-id";

fn caller_id(request: &Request) -> Option<String> {
    let value = request.headers().get(REQUEST_ID)?.to_str().ok()?;
    let sane = (1..=128).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    sane.then(|| value.to_owned())
}

/// The HTTP method as a label from a fixed set: hyper takes any token as a method, and a label per made-up method
/// would grow the metrics without bound.
fn known_method(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::HEAD => "HEAD",
        _ => "other",
    }
}

/// The middleware: outermost, so it sees every answer (timeouts, CORS refusals and unknown paths included).
pub(crate) async fn log(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = match caller_id(&request) {
        Some(id) => id,
        None => crate::random::uuid().unwrap_or_default(),
    };
    let method = known_method(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let span = tracing::info_span!("request", id = %request_id);
    let mut response = next.run(request).instrument(span.clone()).await;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    let error = response.extensions().get::<ErrorInfo>().cloned();
    let code = error.as_ref().map(|info| info.code.as_str().to_owned());
    let metrics = state.metrics();
    metrics.request(method, &route, status, latency.as_secs_f64());
    if let Some(method) = crate::methods::verification_label(&route) {
        metrics
            .verification(method, code.as_deref().unwrap_or(if status < 400 { "success" } else { "error" }));
    }
    if let Some(info) = &error {
        if info.database {
            metrics.database_error();
        }
        if info.code == ErrorCode::ElevatedAccessTokenRequired {
            metrics.guard_refusal();
        }
    }
    span.in_scope(|| {
        tracing::info!(
            target: "stepup_server::request",
            method,
            route,
            status,
            latency_ms = latency.as_secs_f64() * 1000.0,
            code = code.as_deref().unwrap_or(""),
            "request"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_request_ids_are_taken() {
        let with = |value: &str| {
            let request =
                Request::builder().header(REQUEST_ID, value).body(axum::body::Body::empty()).unwrap();
            caller_id(&request)
        };
        assert_eq!(with("abc-123_X.y").as_deref(), Some("abc-123_X.y"));
        assert_eq!(with("two words"), None);
        assert_eq!(with("line\"break"), None);
        assert_eq!(with(&"a".repeat(129)), None);
        assert_eq!(known_method(&axum::http::Method::from_bytes(b"QWERTY123").unwrap()), "other");
    }
}
