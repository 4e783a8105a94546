//! Authenticator-app management: the user's MFA methods and devices, enrolling a device (behind
//! `credential:link`; the first code, `methods::totp`, completes it), the default device, and deletion (behind
//! `credential:unlink`).

use stepup_core::{Method, SecretString};
use stepup_proto::{MfaDevice, MfaDeviceType, MfaMethodsResponse, TokenScope, TotpRegistration};

use super::{Missing, ServiceError, known_user, notify, passkeys, secrets, step_up};
use crate::auth::Session;
use crate::delivery::SecurityEvent;
use crate::guard;
use crate::methods::totp;
use crate::random;
use crate::state::AppState;
use crate::store::{MfaDeviceRow, secs, time};

/// The wire view of a stored device.
fn mfa_device(d: MfaDeviceRow) -> MfaDevice {
    let rfc3339 = |unix| time(unix).to_rfc3339();
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

/// The user's TOTP devices (only verified ones with `verified_only`) and passkeys.
///
/// # Errors
/// [`ServiceError::Storage`].
pub async fn methods(
    state: &AppState,
    user_id: &str,
    verified_only: bool,
) -> Result<MfaMethodsResponse, ServiceError> {
    let devices = state.store().totp_devices(user_id).await?;
    let passkeys = passkeys::list(state, user_id).await?;
    let user_has_verified_mfa_methods = devices.iter().any(|d| d.verified) || !passkeys.is_empty();
    Ok(MfaMethodsResponse {
        devices: devices.into_iter().filter(|d| d.verified || !verified_only).map(mfa_device).collect(),
        passkeys,
        user_has_verified_mfa_methods,
    })
}

/// The user's TOTP devices, oldest first.
///
/// # Errors
/// [`ServiceError::Storage`].
pub async fn devices(state: &AppState, user_id: &str) -> Result<Vec<MfaDevice>, ServiceError> {
    Ok(state.store().totp_devices(user_id).await?.into_iter().map(mfa_device).collect())
}

/// Makes a verified device the default (the one a code without a device id is for, and the check's
/// `defaultCredentialId`).
///
/// # Errors
/// [`ServiceError::NotFound`] for a device that is not a verified one of the user's; [`ServiceError::Storage`].
pub async fn set_default(state: &AppState, user_id: &str, device_id: &str) -> Result<(), ServiceError> {
    if state.store().set_default_mfa_device(user_id, device_id).await? {
        Ok(())
    } else {
        Err(ServiceError::NotFound(Missing::VerifiedMfaDevice))
    }
}

/// Starts enrolling an authenticator app: a new, unverified device (replacing an unfinished one). Needs TOTP
/// enabled and `credential:link` (for a user with MFA, earned by MFA, or a recent MFA:
/// `guard::check_factor_change`). The first successful `/users/mfa/auth/totp` with its id verifies it, asking
/// for at most the scopes the enrolling token granted.
///
/// # Errors
/// [`ServiceError::MethodDisabled`], [`ServiceError::MfaDeviceAlreadyExists`] (checked before a token is spent),
/// [`ServiceError::ElevatedRequired`], [`ServiceError::TooMany`] over the ceremony limit,
/// [`ServiceError::UnknownUser`], [`ServiceError::Storage`].
pub async fn register_totp(
    state: &AppState,
    session: &Session,
    elevated: Option<&str>,
) -> Result<TotpRegistration, ServiceError> {
    step_up::require_method(&session.env, Method::Totp)?;
    // One authenticator app per user, as Dynamic has it: checked before any token is spent on the call.
    if state.store().totp_devices(&session.user_id).await?.iter().any(|d| d.verified) {
        return Err(ServiceError::MfaDeviceAlreadyExists);
    }
    let granted = guard::check_factor_change(state, session, elevated, &TokenScope::CredentialLink).await?;
    // What the enrolling token granted is all the verification that completes the enrolment may ask for: a
    // `credential:link` token must not turn into every scope by way of a device it just created.
    let enrolment_scopes = granted
        .claims
        .map(|claims| claims.scopes.iter().map(TokenScope::as_str).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    step_up::count_ceremony(state, session).await?;
    let user = known_user(state, &session.env, &session.user_id).await?;
    let secret = totp::new_secret().map_err(|_| ServiceError::randomness())?;
    let account = user.email.unwrap_or_else(|| user.id.clone());
    let uri = totp::otpauth_uri(&secret, &session.env.config.app_name, &account)
        .map_err(|_| ServiceError::Internal { what: "making an otpauth URI" })?;
    let id = random::uuid().map_err(|_| ServiceError::randomness())?;
    let sealed = secrets::seal_totp_secret(state.key_encryption_key(), &id, &secret)?;
    let now = secs(state.now());
    state.store().insert_totp_device(&id, &session.user_id, &sealed, &enrolment_scopes, now).await?;
    Ok(TotpRegistration {
        id,
        kind: MfaDeviceType::Totp,
        secret: SecretString::new(secret),
        uri: SecretString::new(uri),
    })
}

/// Deletes an MFA device. Needs `credential:unlink` (for a user with MFA, earned by MFA, or a recent MFA).
///
/// # Errors
/// [`ServiceError::ElevatedRequired`], [`ServiceError::NotFound`], [`ServiceError::Storage`].
pub async fn delete_device(
    state: &AppState,
    session: &Session,
    elevated: Option<&str>,
    device_id: &str,
) -> Result<(), ServiceError> {
    guard::check_factor_change(state, session, elevated, &TokenScope::CredentialUnlink).await?;
    if !state.store().delete_mfa_device(&session.user_id, device_id).await? {
        return Err(ServiceError::NotFound(Missing::MfaDevice));
    }
    notify::security_event(state, &session.env, &session.user_id, SecurityEvent::TotpRemoved).await;
    Ok(())
}
