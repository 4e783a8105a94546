//! The HTTP surface: one file per area of the API, all under `/sdk/{environment_id}`, plus `/admin` and
//! `/health`.

mod admin;
mod cors;
mod environment;
mod external_auth;
mod fallback;
mod mfa;
pub mod openapi;
pub mod operator;
mod otp;
mod passkey;
mod protected;
mod request_bounds;
pub mod request_log;
mod step_up;
mod users;
mod wallet;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post, put};
use stepup_core::{Method, Route};
use stepup_proto::{ErrorCode, TokenScope, VerifyResponse};

use crate::auth::Session;
use crate::error::ApiError;
use crate::services::issuance;
use crate::state::{AppState, Environment};

pub(crate) use crate::services::known_user;
pub(crate) use crate::services::views::sdk_user;
pub use admin::{AdminSession, CreateSessionRequest, CreateUserRequest, LinkWalletRequest, OutboxMessage};

/// Largest request body accepted; anything bigger is a 400.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The whole router.
pub fn router(state: AppState) -> Router {
    let sdk = Router::new()
        .route("/stepUp/check", post(step_up::check))
        .route("/emailVerifications/create", post(otp::create_email))
        .route("/smsVerifications/create", post(otp::create_sms))
        .route("/emailVerifications/verify", post(otp::verify_email))
        .route("/smsVerifications/verify", post(otp::verify_sms))
        .route("/emailVerifications/signin", post(otp::signin))
        .route("/smsVerifications/signin", post(otp::signin))
        .route("/nonces", get(wallet::nonces))
        .route("/wallets/verify", post(wallet::verify))
        .route("/externalAuth/verify", post(external_auth::verify))
        .route("/users", get(users::current_user).put(users::update_user))
        .route("/users/mfa", get(mfa::devices))
        .route("/users/mfa/methods", get(mfa::methods))
        .route("/users/mfa/register/totp", get(mfa::register_totp))
        .route("/users/mfa/auth/totp", post(mfa::auth_totp))
        .route("/users/mfa/auth/recovery", post(mfa::auth_recovery))
        .route("/users/mfa/auth/passkey", post(passkey::authenticate))
        .route("/users/passkeys/register", get(passkey::registration_options).post(passkey::register))
        .route("/users/passkeys/authenticate", get(passkey::authentication_options))
        .route("/users/passkeys", get(passkey::passkeys).delete(passkey::delete))
        .route("/users/mfa/recovery", get(mfa::get_recovery_codes).post(mfa::regenerate_recovery_codes))
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

/// The checks of a step-up verification before its factor is spent (a refused request must not cost the user a
/// one-time code, a TOTP step, a recovery code or a nonce). Without `requestedScopes` the verification asks for no
/// token, and only the scopes' shape is checked.
///
/// # Errors
/// 422 `invalid_scopes` for an unknown scope; with scopes: 422 `step_up_disabled` when step-up is off,
/// `method_disabled` when the proof's method is off, `mfa_required` for re-authentication by a user with MFA.
pub(crate) async fn check_step_up_request(
    state: &AppState,
    session: &Session,
    proof: Method,
    requested: Option<&[TokenScope]>,
) -> Result<(), ApiError> {
    check_scopes(requested)?;
    if requested.is_none_or(<[TokenScope]>::is_empty) {
        return Ok(());
    }
    let policy = &session.env.config.policy;
    if !policy.step_up_enabled {
        return Err(ApiError::unprocessable(
            ErrorCode::StepUpDisabled,
            "Step-up is switched off for this environment",
        ));
    }
    if !policy.method_enabled(proof) {
        return Err(ApiError::unprocessable(
            ErrorCode::MethodDisabled,
            format!("Step-up by {} is not enabled for this environment", proof.amr()),
        ));
    }
    // Re-authentication proofs, which a user with MFA may not step up with (docs/design.md §1).
    if proof.route() == Route::Reauthenticate && has_mfa(state, &session.user_id).await? {
        return Err(ApiError::unprocessable(
            ErrorCode::MfaRequired,
            "This user has MFA methods: step up with MFA, not re-authentication",
        ));
    }
    Ok(())
}

/// Refuses scopes the server would not grant, before any factor is spent (a wrong scope must not cost the user a
/// one-time code, a TOTP step, a recovery code or a nonce).
///
/// # Errors
/// 422 `invalid_scopes`.
pub(crate) fn check_scopes(requested: Option<&[TokenScope]>) -> Result<(), ApiError> {
    match requested {
        Some(scopes) if scopes.iter().any(|s| !s.is_known()) => Err(ApiError::unprocessable(
            stepup_proto::ErrorCode::InvalidScopes,
            "Requested scopes must be known token scopes",
        )),
        _ => Ok(()),
    }
}

/// Whether the user has a verified MFA method (a verified TOTP device or a passkey).
pub(crate) async fn has_mfa(state: &AppState, user_id: &str) -> Result<bool, ApiError> {
    Ok(state.store().totp_devices(user_id).await?.iter().any(|d| d.verified)
        || !state.store().passkeys(user_id).await?.is_empty())
}

/// Refuses enrolling a method the environment does not enable: a factor registered here would make the user an
/// MFA user (re-authentication refused) whom the check then offers nothing.
///
/// # Errors
/// 422 `method_disabled`.
pub(crate) fn require_method(session: &Session, method: Method) -> Result<(), ApiError> {
    if session.env.config.policy.method_enabled(method) {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            ErrorCode::MethodDisabled,
            format!(
                "{} is not enabled for this environment",
                crate::config::setting_name(method).unwrap_or("external")
            ),
        ))
    }
}

/// Counts one enrolment or passkey ceremony the user starts (a TOTP registration, passkey registration or
/// authentication options) against the environment's hourly allowance. The rows are bounded anyway (one
/// pending TOTP device, [`crate::store::MAX_OPEN_CEREMONIES`] open ceremonies of a kind); this bounds the work.
///
/// # Errors
/// 429 `rate_limited` with `Retry-After`; 500 on storage failure.
pub(crate) async fn count_ceremony(state: &AppState, session: &Session) -> Result<(), ApiError> {
    let limit = crate::verify::rate::Limit {
        max: session.env.config.limits.ceremonies_per_user_per_hour,
        window_secs: 3600,
    };
    crate::verify::rate::count(
        state,
        session.env.id(),
        &format!("ceremony:{}", session.user_id),
        limit,
        ErrorCode::RateLimited,
        "Too many enrolments and passkey ceremonies started; try again later",
    )
    .await
    .map(|_| ())
}

/// The answer to a step-up verification inside a session: the user, the session re-signed (with a new
/// `mfa_auth_time` after an MFA proof) in `jwt` and `minifiedJwt`, its expiry, and an elevated token for
/// `requested_scopes` when any were requested.
///
/// # Errors
/// 422 `invalid_scopes`, 404 for a user that is gone, 500 on storage or signing failure.
pub(crate) async fn step_up_response(
    state: &AppState,
    session: &Session,
    requested_scopes: Option<&[TokenScope]>,
    proof: Method,
) -> Result<VerifyResponse, ApiError> {
    // A method the environment switched off is no MFA here: it must not unlock what a recent MFA unlocks.
    let policy = &session.env.config.policy;
    let mfa = proof.route() == Route::Mfa && policy.method_enabled(proof);
    let jwt = issuance::reissue_session(state, &session.env, &session.claims, mfa)?;
    let elevated = match requested_scopes {
        Some(scopes) if !scopes.is_empty() => Some(issuance::elevated_token(
            state,
            &session.env,
            &session.user_id,
            &session.session_id,
            scopes,
            proof.amr(),
        )?),
        _ => None,
    };
    verify_response(state, &session.env, &session.user_id, session.expires_at, jwt, elevated).await
}

/// A `VerifyResponse`: the user, session `session_jwt` (in `jwt` and `minifiedJwt`) and its expiry, and an
/// elevated token if one was issued.
///
/// # Errors
/// 404 for a user that is gone, 500 on storage failure.
pub(crate) async fn verify_response(
    state: &AppState,
    env: &Environment,
    user_id: &str,
    session_expires_at: u64,
    session_jwt: stepup_core::Jwt,
    elevated_access_token: Option<stepup_core::Jwt>,
) -> Result<VerifyResponse, ApiError> {
    let user = known_user(state, env, user_id).await?;
    let credentials = state.store().credentials(user_id).await?;
    Ok(VerifyResponse {
        jwt: Some(session_jwt.clone()),
        minified_jwt: Some(session_jwt),
        mfa_token: None,
        user: sdk_user(env, &user, &credentials),
        expires_at: session_expires_at,
        elevated_access_token,
    })
}
