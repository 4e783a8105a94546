//! Every request is read whole, within a size and a time limit, before its handler runs.
//!
//! Reading the body first is what keeps keep-alive connections safe. A handler that reads no body (`POST
//! /admin/.../sessions` sent with `{}`) used to answer before the body had arrived; hyper then found the body
//! unread, gave up the connection, and closed it after the answer — while the client, told nothing, had already
//! written its next request on it, which was lost unanswered. Read here, the body is always consumed, for every
//! route, and the handlers that do want it get it from memory (each is at most [`MAX_BODY_BYTES`]).
//!
//! The time limit covers the head-to-answer time of one request, body upload included, so a client trickling
//! its body cannot hold a connection and a handler task forever.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use stepup_proto::ErrorCode;

use super::MAX_BODY_BYTES;
use crate::error::ApiError;
use crate::state::AppState;

/// Reads the request body (at most [`MAX_BODY_BYTES`]) and runs the handler, all within the request timeout.
pub(crate) async fn bounded(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let timeout = state.connection_limits().request_timeout();
    match tokio::time::timeout(timeout, read_body_then_run(request, next)).await {
        Ok(response) => response,
        Err(_elapsed) => {
            let mut response = ApiError::with_status(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::RequestTimeout,
                "The request took too long",
            )
            .into_response();
            // Part of the body may still be on its way: the connection cannot carry another request.
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

async fn read_body_then_run(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            let mut response = too_large();
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
        Err(_) => return ApiError::bad_request("The request body could not be read").into_response(),
    };
    next.run(Request::from_parts(parts, Body::from(body))).await
}

fn too_large() -> Response {
    ApiError::with_status(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        format!("The request body is larger than {MAX_BODY_BYTES} bytes"),
    )
    .into_response()
}
