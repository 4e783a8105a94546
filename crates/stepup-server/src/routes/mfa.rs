//! MFA management over HTTP: the user's methods and devices, enrolling an authenticator app, the default
//! device, deleting one, and the recovery codes (`services::mfa`, `services::recovery_codes`). Step-up by a
//! TOTP or recovery code is the methods' (`methods::totp`, `methods::recovery`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use stepup_proto::{
    MfaDevicesResponse, MfaMethodsResponse, MfaUpdateDeviceRequest, RecoveryCodesResponse, TotpRegistration,
};

use crate::auth::{ApiPath, ApiQuery, ElevatedHeader, OptionalJson, Session};
use crate::error::ApiError;
use crate::services::{mfa, recovery_codes};
use crate::state::AppState;

/// `?verifiedOnly=` of `GET /users/mfa/methods` (Dynamic's client sends `true`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MethodsQuery {
    #[serde(default)]
    verified_only: Option<bool>,
}

/// `GET /users/mfa/methods`: TOTP devices (only verified ones with `?verifiedOnly=true`) and passkeys.
pub(crate) async fn methods(
    State(state): State<AppState>,
    session: Session,
    ApiQuery(query): ApiQuery<MethodsQuery>,
) -> Result<Json<MfaMethodsResponse>, ApiError> {
    Ok(Json(mfa::methods(&state, &session.user_id, query.verified_only.unwrap_or(false)).await?))
}

/// `GET /users/mfa`: the user's TOTP devices (`{count, devices}`).
pub(crate) async fn devices(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<MfaDevicesResponse>, ApiError> {
    let devices = mfa::devices(&state, &session.user_id).await?;
    Ok(Json(MfaDevicesResponse { count: devices.len(), devices }))
}

/// `PUT /users/mfa/{id}`: makes a verified device the default. Dynamic's client sends no body; `{"default":
/// true}` means the same, and `{"default": false}` is refused (a user always has a default when they have
/// devices). Answers 204.
pub(crate) async fn set_default_device(
    State(state): State<AppState>,
    session: Session,
    ApiPath((_environment_id, device_id)): ApiPath<(String, String)>,
    OptionalJson(request): OptionalJson<Option<MfaUpdateDeviceRequest>>,
) -> Result<StatusCode, ApiError> {
    if request.is_some_and(|r| !r.default) {
        return Err(ApiError::bad_request("A device can only be made the default (`default: true`)"));
    }
    mfa::set_default(&state, &session.user_id, &device_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /users/mfa/register/totp`: a new, unverified TOTP device.
pub(crate) async fn register_totp(
    State(state): State<AppState>,
    session: Session,
    ElevatedHeader(elevated): ElevatedHeader,
) -> Result<Json<TotpRegistration>, ApiError> {
    Ok(Json(mfa::register_totp(&state, &session, elevated.as_deref()).await?))
}

/// `DELETE /users/mfa/{id}`: removes an MFA device. Answers 204.
pub(crate) async fn delete_device(
    State(state): State<AppState>,
    session: Session,
    ApiPath((_environment_id, device_id)): ApiPath<(String, String)>,
    ElevatedHeader(elevated): ElevatedHeader,
) -> Result<StatusCode, ApiError> {
    mfa::delete_device(&state, &session, elevated.as_deref(), &device_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /users/mfa/recovery`: the user's codes (made and shown on first read).
pub(crate) async fn recovery_codes(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<RecoveryCodesResponse>, ApiError> {
    Ok(Json(recovery_codes::get(&state, &session).await?))
}

/// `POST /users/mfa/recovery`: ten new codes, replacing all.
pub(crate) async fn regenerate_recovery_codes(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<RecoveryCodesResponse>, ApiError> {
    Ok(Json(recovery_codes::regenerate(&state, &session).await?))
}
