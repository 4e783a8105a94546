//! MFA: methods, TOTP registration and authentication, recovery codes, device deletion.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use stepup_core::{Method, RecoveryCode, SecretString};
use stepup_proto::{
    ErrorCode, MfaDevice, MfaDeviceType, MfaDevicesResponse, MfaMethodsResponse, MfaUpdateDeviceRequest,
    RecoveryAuthRequest, RecoveryCodesResponse, TokenScope, TotpAuthRequest, TotpRegistration,
    VerifyResponse,
};

use super::{check_step_up_request, step_up_response};
use crate::auth::{ApiJson, ApiPath, OptionalJson, Session};
use crate::delivery::SecurityEvent;
use crate::error::ApiError;
use crate::guard;
use crate::random;
use crate::state::AppState;
use crate::store::secs;
use crate::store::{MfaDeviceRow, TotpStep};
use crate::verify::{mfa_lock, rate, recovery, totp};

fn rfc3339(unix: i64) -> String {
    crate::store::time(unix).to_rfc3339()
}

fn mfa_device(d: MfaDeviceRow) -> MfaDevice {
    MfaDevice {
        id: Some(d.id),
        kind: Some(MfaDeviceType::Totp),
        verified: Some(d.verified),
        created_at: Some(rfc3339(d.created_at)),
        verified_at: d.verified_at.map(rfc3339),
        default: Some(d.is_default),
        alias: None,
    }
}

/// The device a TOTP code without a device id is for: the default one, else the oldest verified one.
pub(crate) fn default_device(devices: &[MfaDeviceRow]) -> Option<&MfaDeviceRow> {
    devices.iter().find(|d| d.verified && d.is_default).or_else(|| devices.iter().find(|d| d.verified))
}

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
    crate::auth::ApiQuery(query): crate::auth::ApiQuery<MethodsQuery>,
) -> Result<Json<MfaMethodsResponse>, ApiError> {
    let devices = state.store().totp_devices(&session.user_id).await?;
    let passkeys = super::passkey::list(&state, &session.user_id).await?;
    let user_has_verified_mfa_methods = devices.iter().any(|d| d.verified) || !passkeys.is_empty();
    let verified_only = query.verified_only.unwrap_or(false);
    Ok(Json(MfaMethodsResponse {
        devices: devices.into_iter().filter(|d| d.verified || !verified_only).map(mfa_device).collect(),
        passkeys,
        user_has_verified_mfa_methods,
    }))
}

/// `GET /users/mfa`: the user's TOTP devices (`{count, devices}`).
pub(crate) async fn devices(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<MfaDevicesResponse>, ApiError> {
    let devices: Vec<MfaDevice> =
        state.store().totp_devices(&session.user_id).await?.into_iter().map(mfa_device).collect();
    Ok(Json(MfaDevicesResponse { count: devices.len(), devices }))
}

/// `PUT /users/mfa/{id}`: makes a verified device the default (the one a code without a device id is for, and
/// the check's `defaultCredentialId`). Dynamic's client sends no body; `{"default": true}` means the same, and
/// `{"default": false}` is refused (a user always has a default when they have devices). Answers 204.
pub(crate) async fn set_default_device(
    State(state): State<AppState>,
    session: Session,
    ApiPath((_environment_id, device_id)): ApiPath<(String, String)>,
    OptionalJson(request): OptionalJson<Option<MfaUpdateDeviceRequest>>,
) -> Result<StatusCode, ApiError> {
    if request.is_some_and(|r| !r.default) {
        return Err(ApiError::bad_request("A device can only be made the default (`default: true`)"));
    }
    if state.store().set_default_mfa_device(&session.user_id, &device_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("No such verified MFA device"))
    }
}

/// `GET /users/mfa/register/totp`: a new, unverified TOTP device. Needs `credential:link` (for a user with MFA,
/// earned by MFA, or a recent MFA: `guard::check_factor_change`), and TOTP enabled. The first successful
/// `/users/mfa/auth/totp` with its id verifies it.
pub(crate) async fn register_totp(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> Result<Json<TotpRegistration>, ApiError> {
    super::require_method(&session, Method::Totp)?;
    // One authenticator app per user, as Dynamic has it: checked before any token is spent on the call.
    if state.store().totp_devices(&session.user_id).await?.iter().any(|d| d.verified) {
        return Err(ApiError::unprocessable(
            ErrorCode::MfaDeviceAlreadyExists,
            "The user has an authenticator app already; delete it before registering another",
        ));
    }
    let elevated =
        guard::check_factor_change(&state, &session, &headers, &TokenScope::CredentialLink).await?;
    // What the enrolling token granted is all the verification that completes the enrolment may ask for: a
    // `credential:link` token must not turn into every scope by way of a device it just created.
    let enrolment_scopes = elevated.claims.map(|claims| claims.scope).unwrap_or_default();
    super::count_ceremony(&state, &session).await?;
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
    state
        .store()
        .insert_totp_device(
            &id,
            &session.user_id,
            &state.seal_totp_secret(&id, &secret)?,
            &enrolment_scopes,
            secs(state.now()),
        )
        .await?;
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
    check_step_up_request(&state, &session, Method::Totp, request.requested_scopes.as_deref()).await?;
    let devices = state.store().totp_devices(&session.user_id).await?;
    let device = match &request.id {
        Some(id) => devices.iter().find(|d| &d.id == id),
        None => default_device(&devices),
    }
    .ok_or_else(|| ApiError::unprocessable(ErrorCode::MfaDeviceNotFound, "No such MFA device"))?;
    if !device.verified {
        // The code that completes an enrolment: at most the scopes of the token that started it.
        let allowed = stepup_core::ScopeSet::from_space_delimited(&device.enrolment_scopes);
        let asked: stepup_core::ScopeSet = request.requested_scopes.iter().flatten().cloned().collect();
        if !allowed.covers(&asked) {
            return Err(ApiError::unprocessable(
                ErrorCode::InvalidScopes,
                "Completing an enrolment may ask for no more scopes than the token that started it granted",
            ));
        }
    }
    let attempt = mfa_lock::reserve(&state, &session.user_id).await?;
    let secret = state.open_totp_secret(&device.id, &device.secret)?;
    let checker =
        totp::totp(&secret, &session.env.config.app_name, "user").map_err(|_| ApiError::internal())?;
    let now = state.now();
    let invalid = || ApiError::unprocessable(ErrorCode::MfaInvalidCode, "The code is not valid");
    let Some(step) = totp::matched_step(&checker, request.code.expose_secret(), now.as_secs()) else {
        return Err(mfa_lock::failed(&state, &session.user_id, attempt, invalid()).await);
    };
    // RFC 6238 §5.2: a code's time step is accepted once per device; a replay (or an older step) fails.
    match state
        .store()
        .accept_totp_step(&device.id, i64::try_from(step).unwrap_or(i64::MAX), secs(now))
        .await?
    {
        TotpStep::Accepted => {}
        TotpStep::Replayed => {
            return Err(mfa_lock::failed(&state, &session.user_id, attempt, invalid()).await);
        }
        TotpStep::AnotherDeviceVerified => {
            return Err(ApiError::unprocessable(
                ErrorCode::MfaDeviceAlreadyExists,
                "The user has an authenticator app already; delete it before registering another",
            ));
        }
    }
    mfa_lock::succeeded(&state, &session.user_id).await?;
    let response =
        step_up_response(&state, &session, request.requested_scopes.as_deref(), Method::Totp).await?;
    if !device.verified {
        crate::services::notify::security_event(
            &state,
            &session.env,
            &session.user_id,
            SecurityEvent::TotpAdded,
        )
        .await;
    }
    Ok(Json(response))
}

/// `POST /users/mfa/auth/recovery`: one recovery code, spent on success.
pub(crate) async fn auth_recovery(
    State(state): State<AppState>,
    session: Session,
    ApiJson(request): ApiJson<RecoveryAuthRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    check_step_up_request(&state, &session, Method::RecoveryCode, request.requested_scopes.as_deref())
        .await?;
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
    // Argon2 is deliberately slow and takes 8 MiB a hash: off the async workers, a bounded number at once.
    let matched = state.hash_work().run(move || recovery::find(code.expose_secret(), &unused)).await?;
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
        step_up_response(&state, &session, request.requested_scopes.as_deref(), Method::RecoveryCode).await?;
    Ok(Json(response))
}

/// Ten new codes for the user (replacing any), within the user's hourly allowance of generations.
async fn new_codes(state: &AppState, session: &Session) -> Result<RecoveryCodesResponse, ApiError> {
    let limits = &session.env.config.limits;
    let limit = rate::Limit { max: limits.recovery_code_generations_per_hour, window_secs: 3600 };
    rate::claim(
        state,
        session.env.id(),
        &format!("recovery:{}", session.user_id),
        limit,
        ErrorCode::RecoveryCodesRateLimited,
        "Recovery codes were made too often; try again later",
    )
    .await?;
    let (codes, rows) = state.hash_work().run(recovery::generate).await?.map_err(|_| ApiError::internal())?;
    state.store().replace_recovery_codes(&session.user_id, &rows, secs(state.now())).await?;
    // Shown: until the user says they are saved (`PUT /users`), SdkUser says `pending`.
    state.store().set_backup_code_acknowledgement(&session.user_id, "pending").await?;
    Ok(RecoveryCodesResponse {
        count: codes.len(),
        recovery_codes: codes.into_iter().map(RecoveryCode::new).collect(),
    })
}

/// What recovery-code calls need: recovery codes enabled, and a recent MFA verification of this session (the
/// session alone, as Dynamic's client calls these, right after enrolling or authenticating a device). A session
/// whose last MFA is older than the policy's `recent_mfa_max_age_secs` gets the RFC 9470 challenge with
/// `max_age`; an MFA verification re-signs the session and the call goes through.
fn require_recent_mfa(state: &AppState, session: &Session) -> Result<(), ApiError> {
    let policy = &session.env.config.policy;
    if !policy.method_enabled(Method::RecoveryCode) {
        return Err(ApiError::unprocessable(
            ErrorCode::MethodDisabled,
            "Recovery codes are not enabled for this environment",
        ));
    }
    let max_age = policy.recent_mfa_max_age_secs;
    if session.has_recent_mfa(state.now(), max_age) {
        Ok(())
    } else {
        Err(ApiError::recent_mfa_required(max_age))
    }
}

/// `GET /users/mfa/recovery`: creates the user's 10 codes if there are none and shows them, once. Codes are
/// stored hashed, so later calls answer the count of unused codes and no codes (regenerate to see new ones).
/// Needs a recent MFA verification of the session.
pub(crate) async fn get_recovery_codes(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<RecoveryCodesResponse>, ApiError> {
    require_recent_mfa(&state, &session)?;
    // The first read creates the codes, once: of concurrent first reads, one shows codes, the others a count.
    if state.store().claim_first_recovery_codes(&session.user_id, secs(state.now())).await? {
        return Ok(Json(new_codes(&state, &session).await?));
    }
    let (unused, _) = state.store().unused_recovery_codes(&session.user_id).await?;
    Ok(Json(RecoveryCodesResponse { count: unused.len(), recovery_codes: vec![] }))
}

/// `POST /users/mfa/recovery`: replaces all codes with 10 new ones. Needs a recent MFA verification of the
/// session.
pub(crate) async fn regenerate_recovery_codes(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<RecoveryCodesResponse>, ApiError> {
    require_recent_mfa(&state, &session)?;
    // A later first read must not make another set.
    state.store().claim_first_recovery_codes(&session.user_id, secs(state.now())).await?;
    let codes = new_codes(&state, &session).await?;
    crate::services::notify::security_event(
        &state,
        &session.env,
        &session.user_id,
        SecurityEvent::RecoveryCodesRegenerated,
    )
    .await;
    Ok(Json(codes))
}

/// `DELETE /users/mfa/{id}`: removes an MFA device. Needs `credential:unlink` (for a user with MFA, earned by
/// MFA, or a recent MFA: `guard::check_factor_change`).
pub(crate) async fn delete_device(
    State(state): State<AppState>,
    session: Session,
    ApiPath((_environment_id, device_id)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    guard::check_factor_change(&state, &session, &headers, &TokenScope::CredentialUnlink).await?;
    if state.store().delete_mfa_device(&session.user_id, &device_id).await? {
        crate::services::notify::security_event(
            &state,
            &session.env,
            &session.user_id,
            SecurityEvent::TotpRemoved,
        )
        .await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("No such MFA device"))
    }
}
