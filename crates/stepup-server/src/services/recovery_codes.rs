//! Recovery-code management: showing the codes (made on first read), regenerating them, and the user's
//! acknowledgement that they are saved. Each needs a recent MFA verification of the session, as Dynamic's client
//! calls them with the session alone. Step-up by a code is the recovery method's (`methods::recovery`).

use stepup_core::{Method, RecoveryCode};
use stepup_proto::RecoveryCodesResponse;

use super::limits::{self, Limit};
use super::{Limited, ServiceError, notify};
use crate::auth::Session;
use crate::delivery::SecurityEvent;
use crate::methods::recovery;
use crate::state::AppState;
use crate::store::secs;

/// What recovery-code calls need: recovery codes enabled, and an MFA verification of this session at most the
/// policy's `recent_mfa_max_age_secs` old (an MFA verification re-signs the session, and the call goes through).
///
/// # Errors
/// [`ServiceError::MethodDisabled`]; [`ServiceError::RecentMfaRequired`] (the RFC 9470 challenge with `max_age`).
pub fn require_recent_mfa(state: &AppState, session: &Session) -> Result<(), ServiceError> {
    let policy = &session.env.config.policy;
    if !policy.method_enabled(Method::RecoveryCode) {
        return Err(ServiceError::MethodDisabled(Method::RecoveryCode));
    }
    let max_age_secs = policy.recent_mfa_max_age_secs;
    if session.has_recent_mfa(state.now(), max_age_secs) {
        Ok(())
    } else {
        Err(ServiceError::RecentMfaRequired { max_age_secs })
    }
}

/// Ten new codes for the user (replacing any), within the user's hourly allowance of generations.
async fn new_codes(state: &AppState, session: &Session) -> Result<RecoveryCodesResponse, ServiceError> {
    let limits = &session.env.config.limits;
    let limit = Limit { max: limits.recovery_code_generations_per_hour, window_secs: 3600 };
    let key = format!("recovery:{}", session.user_id);
    limits::claim(state, session.env.id(), &key, limit, Limited::RecoveryCodes).await?;
    let (codes, rows) = state
        .hash_work()
        .run(recovery::generate)
        .await?
        .map_err(|_| ServiceError::Internal { what: "making recovery codes" })?;
    state.store().replace_recovery_codes(&session.user_id, &rows, secs(state.now())).await?;
    // Shown: until the user says they are saved (`PUT /users`), SdkUser says `pending`.
    state.store().set_backup_code_acknowledgement(&session.user_id, "pending").await?;
    Ok(RecoveryCodesResponse {
        count: codes.len(),
        recovery_codes: codes.into_iter().map(RecoveryCode::new).collect(),
    })
}

/// The user's codes: made and shown on the first read, once (of concurrent first reads, one shows codes, the
/// others a count). Codes are stored hashed, so later reads answer the count of unused codes and no codes.
///
/// # Errors
/// As [`require_recent_mfa`]; [`ServiceError::TooMany`], [`ServiceError::Storage`], [`ServiceError::Internal`].
pub async fn get(state: &AppState, session: &Session) -> Result<RecoveryCodesResponse, ServiceError> {
    require_recent_mfa(state, session)?;
    if state.store().claim_first_recovery_codes(&session.user_id, secs(state.now())).await? {
        return new_codes(state, session).await;
    }
    let (unused, _) = state.store().unused_recovery_codes(&session.user_id).await?;
    Ok(RecoveryCodesResponse { count: unused.len(), recovery_codes: vec![] })
}

/// Replaces all codes with 10 new ones, and tells the user by email.
///
/// # Errors
/// As [`get`].
pub async fn regenerate(state: &AppState, session: &Session) -> Result<RecoveryCodesResponse, ServiceError> {
    require_recent_mfa(state, session)?;
    // A later first read must not make another set.
    state.store().claim_first_recovery_codes(&session.user_id, secs(state.now())).await?;
    let codes = new_codes(state, session).await?;
    notify::security_event(state, &session.env, &session.user_id, SecurityEvent::RecoveryCodesRegenerated)
        .await;
    Ok(codes)
}
