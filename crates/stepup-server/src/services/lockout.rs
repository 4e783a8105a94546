//! The MFA lockout: 5 failed MFA attempts in a row lock the user's MFA for 15 minutes.
//!
//! An attempt is counted *before* its factor's answer is used and forgiven on success, so any number of parallel
//! guesses get at most [`MAX_FAILURES`] tries between them: passkeys and recovery codes [`reserve`] before they
//! check; a TOTP code, cheap to check, is checked first and settled after, the count and the step in one
//! transaction where the store can ([`settle_totp`]).

use super::ServiceError;
use crate::state::AppState;
use crate::store::{MfaReservation, TotpAttempt, TotpAttemptRequest, secs};

/// Failures in a row that lock MFA.
pub const MAX_FAILURES: i64 = 5;
/// How long the lock lasts.
pub const LOCK_SECS: u64 = 15 * 60;

/// A reserved attempt: its place in the current run of failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt(i64);

fn locked_for(state: &AppState, until: i64) -> ServiceError {
    ServiceError::Locked { retry_after_secs: u64::try_from(until - secs(state.now())).unwrap_or(1).max(1) }
}

/// Reserves an attempt.
///
/// # Errors
/// [`ServiceError::Locked`] while locked, or when this attempt is beyond the limit (it then starts the lock);
/// [`ServiceError::Storage`].
pub async fn reserve(state: &AppState, user_id: &str) -> Result<Attempt, ServiceError> {
    match state.store().mfa_reserve(user_id, secs(state.now())).await? {
        MfaReservation::Locked { until } => Err(locked_for(state, until)),
        MfaReservation::Counted(count) if count > MAX_FAILURES => {
            Err(lock_beyond_the_limit(state, user_id).await?)
        }
        MfaReservation::Counted(count) => Ok(Attempt(count)),
    }
}

/// An attempt was counted beyond [`MAX_FAILURES`]: locks MFA, and returns what to answer.
async fn lock_beyond_the_limit(state: &AppState, user_id: &str) -> Result<ServiceError, ServiceError> {
    let until = secs(state.now().plus_secs(LOCK_SECS));
    state.store().mfa_lock(user_id, until).await?;
    state.metrics().lockout();
    Ok(ServiceError::Locked { retry_after_secs: LOCK_SECS })
}

/// A TOTP code for `device_id`, `step` the time step it matched (`None`: a wrong code): [`reserve`], and the step
/// accepted when the reservation allows it ([`failed`] or [`succeeded`] as it turns out), in one round trip
/// where the store can ([`crate::store::Store::settle_totp_attempt`]).
///
/// # Errors
/// As [`reserve`] and [`failed`], with `error` for a wrong or spent code; [`ServiceError::MfaDeviceAlreadyExists`]
/// when another device was verified first; [`ServiceError::Storage`].
pub async fn settle_totp(
    state: &AppState,
    user_id: &str,
    device_id: &str,
    step: Option<i64>,
    error: ServiceError,
) -> Result<(), ServiceError> {
    let attempt =
        TotpAttemptRequest { user_id, device_id, step, now: secs(state.now()), max_failures: MAX_FAILURES };
    match state.store().settle_totp_attempt(&attempt).await? {
        TotpAttempt::Accepted => Ok(()),
        TotpAttempt::Failed(count) => Err(failed(state, user_id, Attempt(count), error).await),
        TotpAttempt::OverLimit => Err(lock_beyond_the_limit(state, user_id).await?),
        TotpAttempt::Locked { until } => Err(locked_for(state, until)),
        TotpAttempt::AnotherDeviceVerified => Err(ServiceError::MfaDeviceAlreadyExists),
    }
}

/// The attempt failed: returns what to answer, the lock if this was the last allowed failure, else `error`.
pub async fn failed(state: &AppState, user_id: &str, attempt: Attempt, error: ServiceError) -> ServiceError {
    if attempt.0 < MAX_FAILURES {
        return error;
    }
    match state.store().mfa_lock(user_id, secs(state.now().plus_secs(LOCK_SECS))).await {
        Ok(()) => {
            state.metrics().lockout();
            ServiceError::Locked { retry_after_secs: LOCK_SECS }
        }
        Err(store_error) => store_error.into(),
    }
}

/// The attempt succeeded: the run of failures ends.
///
/// # Errors
/// [`ServiceError::Storage`].
pub async fn succeeded(state: &AppState, user_id: &str) -> Result<(), ServiceError> {
    Ok(state.store().mfa_succeeded(user_id).await?)
}
