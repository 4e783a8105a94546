//! The MFA lockout: 5 failed MFA attempts in a row lock the user's MFA for 15 minutes.

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::secs;

/// Failures in a row that lock MFA.
pub const MAX_FAILURES: i64 = 5;
/// How long the lock lasts.
pub const LOCK_SECS: u64 = 15 * 60;

/// Refuses MFA while the user is locked.
///
/// # Errors
/// 422 `lock_too_many_attempts` with `Retry-After` while locked.
pub async fn ensure_unlocked(state: &AppState, user_id: &str) -> Result<(), ApiError> {
    let now = secs(state.now());
    let locked_until = state.store().mfa_locked_until(user_id).await?;
    if locked_until > now {
        return Err(ApiError::locked(u64::try_from(locked_until - now).unwrap_or(1)));
    }
    Ok(())
}

/// Counts a failed attempt and returns what to answer: the lock if this failure caused it, else `error`.
pub async fn failed(state: &AppState, user_id: &str, error: ApiError) -> ApiError {
    let lock_until = secs(state.now().plus_secs(LOCK_SECS));
    match state.store().mfa_failed(user_id, MAX_FAILURES, lock_until).await {
        Ok(true) => ApiError::locked(LOCK_SECS),
        Ok(false) => error,
        Err(store_error) => store_error.into(),
    }
}

/// Ends a run of failures after a success.
///
/// # Errors
/// 500 on storage failure.
pub async fn succeeded(state: &AppState, user_id: &str) -> Result<(), ApiError> {
    Ok(state.store().mfa_succeeded(user_id).await?)
}
