//! MFA: methods, TOTP registration and authentication, recovery codes, device deletion.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use stepup_core::{RecoveryCode, SecretString};
use stepup_proto::{
    ErrorCode, MfaDevice, MfaDeviceType, MfaMethodsResponse, RecoveryAuthRequest, RecoveryCodesResponse,
    TokenScope, TotpAuthRequest, TotpRegistration, VerifyResponse,
};

use super::step_up_response;
use crate::auth::{ApiJson, Session};
use crate::error::ApiError;
use crate::guard;
use crate::random;
use crate::state::AppState;
use crate::store::secs;
use crate::verify::{mfa_lock, recovery, totp};

fn rfc3339(unix: i64) -> String {
    crate::store::time(unix).to_rfc3339()
}

/// `GET /users/mfa/methods`.
pub(crate) async fn methods(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<MfaMethodsResponse>, ApiError> {
    let devices = state.store().totp_devices(&session.user_id).await?;
    let passkeys = super::passkey::list(&state, &session.user_id).await?;
    let user_has_verified_mfa_methods = devices.iter().any(|d| d.verified) || !passkeys.is_empty();
    Ok(Json(MfaMethodsResponse {
        devices: devices
            .into_iter()
            .map(|d| MfaDevice {
                id: Some(d.id),
                kind: Some(MfaDeviceType::Totp),
                verified: Some(d.verified),
                created_at: Some(rfc3339(d.created_at)),
                verified_at: d.verified_at.map(rfc3339),
                default: None,
                alias: None,
            })
            .collect(),
        passkeys,
        user_has_verified_mfa_methods,
    }))
}

/// `GET /users/mfa/register/totp`: a new, unverified TOTP device. Needs `credential:link`. The first
/// successful `/users/mfa/auth/totp` with its id verifies it.
pub(crate) async fn register_totp(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> Result<Json<TotpRegistration>, ApiError> {
    guard::check(&state, &session, &headers, &TokenScope::CredentialLink).await?;
    let user = state
        .store()
        .user(session.env.id(), &session.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Unknown user"))?;
    let secret = totp::new_secret().map_err(|_| ApiError::internal())?;
    let account = user.email.unwrap_or_else(|| user.id.clone());
    let uri = totp::otpauth_uri(&secret, &session.env.config.app_name, &account)
        .map_err(|_| ApiError::internal())?;
    let id = random::uuid().map_err(|_| ApiError::internal())?;
    state.store().insert_totp_device(&id, &session.user_id, &secret, secs(state.now())).await?;
    Ok(Json(TotpRegistration {
        id,
        kind: MfaDeviceType::Totp,
        secret: SecretString::new(secret),
        uri: SecretString::new(uri),
    }))
}

/// `POST /users/mfa/auth/totp`: a TOTP code, for the given device or the user's first verified one.
pub(crate) async fn auth_totp(
    State(state): State<AppState>,
    session: Session,
    ApiJson(request): ApiJson<TotpAuthRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    super::check_scopes(request.requested_scopes.as_deref())?;
    let devices = state.store().totp_devices(&session.user_id).await?;
    let device = match &request.id {
        Some(id) => devices.iter().find(|d| &d.id == id),
        None => devices.iter().find(|d| d.verified),
    }
    .ok_or_else(|| ApiError::unprocessable(ErrorCode::MfaDeviceNotFound, "No such MFA device"))?;
    let attempt = mfa_lock::reserve(&state, &session.user_id).await?;
    let checker =
        totp::totp(&device.secret, &session.env.config.app_name, "user").map_err(|_| ApiError::internal())?;
    let now = state.now();
    let invalid = || ApiError::unprocessable(ErrorCode::MfaInvalidCode, "The code is not valid");
    let Some(step) = totp::matched_step(&checker, request.code.expose_secret(), now.as_secs()) else {
        return Err(mfa_lock::failed(&state, &session.user_id, attempt, invalid()).await);
    };
    // RFC 6238 §5.2: a code's time step is accepted once per device; a replay (or an older step) fails.
    if !state.store().accept_totp_step(&device.id, i64::try_from(step).unwrap_or(i64::MAX), secs(now)).await?
    {
        return Err(mfa_lock::failed(&state, &session.user_id, attempt, invalid()).await);
    }
    mfa_lock::succeeded(&state, &session.user_id).await?;
    let response = step_up_response(&state, &session, request.requested_scopes.as_deref(), "totp").await?;
    Ok(Json(response))
}

/// `POST /users/mfa/auth/recovery`: one recovery code, spent on success.
pub(crate) async fn auth_recovery(
    State(state): State<AppState>,
    session: Session,
    ApiJson(request): ApiJson<RecoveryAuthRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    super::check_scopes(request.requested_scopes.as_deref())?;
    // Recovery codes back up MFA: without an MFA method they are no factor at all.
    if !super::has_mfa(&state, &session.user_id).await? {
        return Err(ApiError::unprocessable(
            ErrorCode::MfaDeviceNotFound,
            "Recovery codes need an MFA method",
        ));
    }
    let attempt = mfa_lock::reserve(&state, &session.user_id).await?;
    let (unused, _) = state.store().unused_recovery_codes(&session.user_id).await?;
    let code = request.code.clone();
    // Argon2 is deliberately slow: keep it off the async workers.
    let matched = tokio::task::spawn_blocking(move || recovery::find(code.expose_secret(), &unused))
        .await
        .map_err(|_| ApiError::internal())?;
    let invalid = || ApiError::unprocessable(ErrorCode::MfaInvalidCode, "The recovery code is not valid");
    let spent = match matched {
        Some(id) => state.store().use_recovery_code(&id).await?,
        None => false,
    };
    if !spent {
        return Err(mfa_lock::failed(&state, &session.user_id, attempt, invalid()).await);
    }
    mfa_lock::succeeded(&state, &session.user_id).await?;
    let response =
        step_up_response(&state, &session, request.requested_scopes.as_deref(), "recovery").await?;
    Ok(Json(response))
}

async fn new_codes(state: &AppState, user_id: &str) -> Result<RecoveryCodesResponse, ApiError> {
    let (codes, rows) = tokio::task::spawn_blocking(recovery::generate)
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|_| ApiError::internal())?;
    state.store().replace_recovery_codes(user_id, &rows, secs(state.now())).await?;
    Ok(RecoveryCodesResponse {
        count: codes.len(),
        recovery_codes: codes.into_iter().map(RecoveryCode::new).collect(),
    })
}

/// `GET /users/mfa/recovery`: creates the user's 10 codes if there are none and shows them, once. Codes are
/// stored hashed, so later calls answer the count of unused codes and no codes (regenerate to see new ones).
pub(crate) async fn get_recovery_codes(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> Result<Json<RecoveryCodesResponse>, ApiError> {
    // Creating codes mints a factor: it needs the same step-up as linking one.
    guard::check(&state, &session, &headers, &TokenScope::CredentialLink).await?;
    let (unused, total) = state.store().unused_recovery_codes(&session.user_id).await?;
    if total == 0 {
        return Ok(Json(new_codes(&state, &session.user_id).await?));
    }
    Ok(Json(RecoveryCodesResponse { count: unused.len(), recovery_codes: vec![] }))
}

/// `POST /users/mfa/recovery`: replaces all codes with 10 new ones.
pub(crate) async fn regenerate_recovery_codes(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> Result<Json<RecoveryCodesResponse>, ApiError> {
    guard::check(&state, &session, &headers, &TokenScope::CredentialLink).await?;
    Ok(Json(new_codes(&state, &session.user_id).await?))
}

/// `DELETE /users/mfa/{id}`: removes an MFA device. Needs `credential:unlink`.
pub(crate) async fn delete_device(
    State(state): State<AppState>,
    session: Session,
    Path((_environment_id, device_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    guard::check(&state, &session, &headers, &TokenScope::CredentialUnlink).await?;
    if state.store().delete_mfa_device(&session.user_id, &device_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("No such MFA device"))
    }
}
