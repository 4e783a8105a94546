//! The HTTP surface: one file per area of the API, all under `/sdk/{environment_id}`, plus `/admin` and
//! `/health`.

mod admin;
mod cors;
mod environment;
mod fallback;
mod mfa;
pub mod openapi;
pub mod operator;
mod passkey;
mod protected;
mod request_bounds;
pub mod request_log;
mod step_up;
mod users;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post, put};

use crate::error::ApiError;
use crate::methods;
use crate::state::AppState;

pub use admin::{AdminSession, CreateSessionRequest, CreateUserRequest, LinkWalletRequest, OutboxMessage};

/// Largest request body accepted; anything bigger is a 400.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The whole router.
pub fn router(state: AppState) -> Router {
    // The verification methods mount their own endpoints (`methods`); these are the rest of the SDK API.
    let sdk = methods::routes(Router::new())
        .route("/stepUp/check", post(step_up::check))
        .route("/users", get(users::current_user).put(users::update_user))
        .route("/users/mfa", get(mfa::devices))
        .route("/users/mfa/methods", get(mfa::methods))
        .route("/users/mfa/register/totp", get(mfa::register_totp))
        .route("/users/passkeys/register", get(passkey::registration_options).post(passkey::register))
        .route("/users/passkeys", get(passkey::passkeys).delete(passkey::delete))
        .route("/users/mfa/recovery", get(mfa::recovery_codes).post(mfa::regenerate_recovery_codes))
        .route("/users/mfa/{device_id}", put(mfa::set_default_device).delete(mfa::delete_device))
        .route("/revoke", post(users::revoke))
        .route("/settings", get(environment::settings))
        .route("/.well-known/jwks", get(environment::jwks))
        .route("/.well-known/jwks.json", get(environment::jwks))
        .route("/protected/{scope}", any(protected::protected));
    let mut app = Router::new()
        .nest("/sdk/{environment_id}", sdk)
        .route("/health", get(environment::health))
        .route("/health/live", get(environment::live))
        .route("/openapi.json", get(openapi::document));
    if state.admin_token().is_some() {
        app = app.nest("/admin", admin::router().merge(operator::router()));
    }
    if state.metrics_token().is_some() {
        app = app.route("/metrics", get(metrics_with_token));
    }
    app.method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .fallback(|| async { ApiError::not_found("Not found") })
        // Innermost first: every answer leaves as `{error, code}` JSON (axum's own plain-text rejections too), and
        // CORS headers go on all of them, errors included (timeouts too), so a browser can read why a call failed.
        .layer(axum::middleware::from_fn(fallback::json_errors))
        // The body is read whole and the request timed before anything but CORS runs.
        .layer(axum::middleware::from_fn_with_state(state.clone(), request_bounds::bounded))
        .layer(cors::layer(&state))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Outermost: one log event and one latency observation per answer, whoever made it.
        .layer(axum::middleware::from_fn_with_state(state.clone(), request_log::log))
        .with_state(state)
}

/// The router of the metrics listener (`[metrics] listen`): `GET /metrics` alone.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_open))
        .fallback(|| async { ApiError::not_found("Not found") })
        .with_state(state)
}

fn metrics_answer(state: &AppState) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    ([(axum::http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], state.metrics().encode())
        .into_response()
}

async fn metrics_open(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    metrics_answer(&state)
}

/// `GET /metrics` on the main listener: the metrics token as a bearer token, compared as digests.
async fn metrics_with_token(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match (given, state.metrics_token()) {
        (Some(given), Some(token)) if crate::auth::same_secret(given, token.expose_secret()) => {
            Ok(metrics_answer(&state))
        }
        _ => Err(ApiError::unauthorized("The metrics token is required")),
    }
}
