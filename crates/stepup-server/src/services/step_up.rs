//! The step-up policy every verification method shares: what is checked before a factor is spent, and what a
//! verified proof earns (the session re-signed, an elevated token for the requested scopes).

use stepup_core::{Jwt, Method, Route};
use stepup_proto::{TokenScope, VerifyResponse};

use super::views::sdk_user;
use super::{ServiceError, issuance, limits};
use crate::auth::Session;
use crate::environment::Environment;
use crate::state::AppState;

/// The checks of a step-up verification before its factor is spent (a refused request must not cost the user a
/// one-time code, a TOTP step, a recovery code or a nonce). Without `requestedScopes` the verification asks for no
/// token, and only the scopes' shape is checked.
///
/// # Errors
/// [`ServiceError::InvalidScopes`] for an unknown scope; with scopes: [`ServiceError::StepUpDisabled`],
/// [`ServiceError::MethodDisabled`] when the proof's method is off, [`ServiceError::MfaRequired`] for
/// re-authentication by a user with MFA.
pub async fn check_request(
    state: &AppState,
    session: &Session,
    proof: Method,
    requested: Option<&[TokenScope]>,
) -> Result<(), ServiceError> {
    check_scopes(requested)?;
    if requested.is_none_or(<[TokenScope]>::is_empty) {
        return Ok(());
    }
    let policy = &session.env.config.policy;
    if !policy.step_up_enabled {
        return Err(ServiceError::StepUpDisabled);
    }
    if !policy.method_enabled(proof) {
        return Err(ServiceError::MethodDisabled(proof));
    }
    // Re-authentication proofs, which a user with MFA may not step up with (docs/design.md §1).
    if proof.route() == Route::Reauthenticate && has_mfa(state, &session.user_id).await? {
        return Err(ServiceError::MfaRequired(Route::Reauthenticate));
    }
    Ok(())
}

/// Refuses scopes the server would not grant, before any factor is spent.
///
/// # Errors
/// [`ServiceError::InvalidScopes`].
pub fn check_scopes(requested: Option<&[TokenScope]>) -> Result<(), ServiceError> {
    match requested {
        Some(scopes) if scopes.iter().any(|s| !s.is_known()) => Err(ServiceError::InvalidScopes),
        _ => Ok(()),
    }
}

/// Whether the user has a verified MFA method (a verified TOTP device or a passkey).
///
/// # Errors
/// [`ServiceError::Storage`].
pub async fn has_mfa(state: &AppState, user_id: &str) -> Result<bool, ServiceError> {
    Ok(state.store().totp_devices(user_id).await?.iter().any(|d| d.verified)
        || !state.store().passkeys(user_id).await?.is_empty())
}

/// Refuses enrolling a method the environment does not enable: a factor registered here would make the user an
/// MFA user (re-authentication refused) whom the check then offers nothing.
///
/// # Errors
/// [`ServiceError::MethodDisabled`].
pub fn require_method(env: &Environment, method: Method) -> Result<(), ServiceError> {
    if env.config.policy.method_enabled(method) { Ok(()) } else { Err(ServiceError::MethodDisabled(method)) }
}

/// Counts one enrolment or passkey ceremony the user starts (a TOTP registration, passkey registration or
/// authentication options) against the environment's hourly allowance. The rows are bounded anyway (one
/// pending TOTP device, [`crate::store::MAX_OPEN_CEREMONIES`] open ceremonies of a kind); this bounds the work.
///
/// # Errors
/// [`ServiceError::TooMany`], [`ServiceError::Storage`].
pub async fn count_ceremony(state: &AppState, session: &Session) -> Result<(), ServiceError> {
    let limit =
        limits::Limit { max: session.env.config.limits.ceremonies_per_user_per_hour, window_secs: 3600 };
    let key = format!("ceremony:{}", session.user_id);
    limits::count(state, session.env.id(), &key, limit, super::Limited::Ceremonies).await.map(|_| ())
}

/// The answer to a step-up verification inside a session: the user, the session re-signed (with a new
/// `mfa_auth_time` after an MFA proof) in `jwt` and `minifiedJwt`, its expiry, and an elevated token for
/// `requested_scopes` when any were requested.
///
/// # Errors
/// [`ServiceError::InvalidScopes`], [`ServiceError::UnknownUser`] for a user that is gone,
/// [`ServiceError::Storage`] or [`ServiceError::Internal`] when storage or signing fails.
pub async fn respond(
    state: &AppState,
    session: &Session,
    requested_scopes: Option<&[TokenScope]>,
    proof: Method,
) -> Result<VerifyResponse, ServiceError> {
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
/// [`ServiceError::UnknownUser`] for a user that is gone, [`ServiceError::Storage`].
pub async fn verify_response(
    state: &AppState,
    env: &Environment,
    user_id: &str,
    session_expires_at: u64,
    session_jwt: Jwt,
    elevated_access_token: Option<Jwt>,
) -> Result<VerifyResponse, ServiceError> {
    let (user, credentials) =
        state.store().user_with_credentials(env.id(), user_id).await?.ok_or(ServiceError::UnknownUser)?;
    Ok(VerifyResponse {
        jwt: Some(session_jwt.clone()),
        minified_jwt: Some(session_jwt),
        mfa_token: None,
        user: sdk_user(env, &user, &credentials),
        expires_at: session_expires_at,
        elevated_access_token,
    })
}
