//! The operator tools, for the admin API and the CLI alike: unlock a user locked out of MFA, reset a user's
//! MFA, list and delete users, end all of a user's sessions, rotate an environment's signing key.

use serde::{Deserialize, Serialize};
use stepup_proto::SdkUser;

use super::views::sdk_user;
use super::{ServiceError, environment, known_user};
use crate::delivery::SecurityEvent;
use crate::state::AppState;
use crate::store::secs;

/// The most users one page of `GET /admin/environments/{env}/users` holds.
pub const MAX_PAGE: i64 = 200;

/// Answer of `POST .../users/{userId}/unlock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnlockAnswer {
    /// Whether the user was locked or had failures counted.
    pub unlocked: bool,
}

/// Answer of `POST .../users/{userId}/mfa/reset`: what was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MfaResetAnswer {
    /// TOTP devices.
    pub devices: u64,
    /// Passkeys.
    pub passkeys: u64,
    /// Recovery codes.
    pub recovery_codes: u64,
    /// Live sessions ended with it (whoever holds one may be the reason for the reset).
    pub revoked_sessions: u64,
}

/// Answer of `POST .../users/{userId}/sessions/revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevokeAnswer {
    /// How many live sessions were ended.
    pub revoked: u64,
}

/// Answer of `DELETE .../users/{userId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteAnswer {
    /// Always true (an unknown user is a 404).
    pub deleted: bool,
}

/// Answer of `GET /admin/environments/{env}/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserPage {
    /// The users, in id order.
    pub users: Vec<SdkUser>,
    /// The `after` of the next page, when there may be one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Answer of `POST /admin/environments/{env}/signing-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedKey {
    /// The new current key's id.
    pub kid: String,
    /// Every key id the JWKS now publishes, current first.
    pub published: Vec<String>,
}

/// Body of `POST /admin/environments/{env}/signing-keys` (optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateRequest {
    /// Delete every other key at once (a key leaked): every token they signed stops verifying. Default: keep
    /// them until what they signed has expired.
    #[serde(default)]
    pub retire_previous: bool,
}

/// Ends a user's MFA lockout.
///
/// # Errors
/// [`ServiceError::UnknownEnvironment`], [`ServiceError::UnknownUser`], [`ServiceError::Storage`].
pub async fn unlock_user(
    state: &AppState,
    environment_id: &str,
    user_id: &str,
) -> Result<UnlockAnswer, ServiceError> {
    let env = environment(state, environment_id)?;
    known_user(state, &env, user_id).await?;
    let unlocked = state.store().unlock_user(user_id, secs(state.now())).await?;
    tracing::info!(user = %user_id, unlocked, "operator: MFA lockout ended");
    Ok(UnlockAnswer { unlocked })
}

/// Removes every MFA method of a user (TOTP devices, passkeys, recovery codes), ends every session of the user
/// (a reset follows a lost device or a takeover: a session with a recent MFA could enrol a new factor at once),
/// and tells the user by email.
///
/// # Errors
/// [`ServiceError::UnknownEnvironment`], [`ServiceError::UnknownUser`], [`ServiceError::Storage`].
pub async fn reset_mfa(
    state: &AppState,
    environment_id: &str,
    user_id: &str,
) -> Result<MfaResetAnswer, ServiceError> {
    let env = environment(state, environment_id)?;
    known_user(state, &env, user_id).await?;
    let reset = state.store().reset_mfa(user_id).await?;
    let revoked_sessions = state.store().revoke_user_sessions(user_id, secs(state.now())).await?;
    tracing::info!(
        user = %user_id,
        devices = reset.devices,
        passkeys = reset.passkeys,
        revoked_sessions,
        "operator: MFA reset"
    );
    super::notify::security_event_now(state, &env, user_id, SecurityEvent::MfaReset).await;
    Ok(MfaResetAnswer {
        devices: reset.devices,
        passkeys: reset.passkeys,
        recovery_codes: reset.recovery_codes,
        revoked_sessions,
    })
}

/// Ends every live session of a user (and with them the elevated tokens bound to them).
///
/// # Errors
/// [`ServiceError::UnknownEnvironment`], [`ServiceError::UnknownUser`], [`ServiceError::Storage`].
pub async fn revoke_sessions(
    state: &AppState,
    environment_id: &str,
    user_id: &str,
) -> Result<RevokeAnswer, ServiceError> {
    let env = environment(state, environment_id)?;
    known_user(state, &env, user_id).await?;
    let revoked = state.store().revoke_user_sessions(user_id, secs(state.now())).await?;
    tracing::info!(user = %user_id, revoked, "operator: sessions revoked");
    Ok(RevokeAnswer { revoked })
}

/// One page of an environment's users, in id order.
///
/// # Errors
/// [`ServiceError::UnknownEnvironment`], [`ServiceError::BadInput`] for a limit outside 1 to [`MAX_PAGE`],
/// [`ServiceError::Storage`].
pub async fn list_users(
    state: &AppState,
    environment_id: &str,
    after: Option<&str>,
    limit: Option<i64>,
) -> Result<UserPage, ServiceError> {
    let env = environment(state, environment_id)?;
    let limit = limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ServiceError::BadInput(format!("limit must be 1 to {MAX_PAGE}")));
    }
    let rows = state.store().list_users(env.id(), after, limit).await?;
    let next = (i64::try_from(rows.len()).unwrap_or(i64::MAX) == limit)
        .then(|| rows.last().map(|u| u.id.clone()))
        .flatten();
    let mut users = Vec::with_capacity(rows.len());
    for user in &rows {
        let credentials = state.store().credentials(&user.id).await?;
        users.push(sdk_user(&env, user, &credentials));
    }
    Ok(UserPage { users, next })
}

/// Deletes a user and all that is theirs; their sessions end with them.
///
/// # Errors
/// [`ServiceError::UnknownEnvironment`], [`ServiceError::UnknownUser`], [`ServiceError::Storage`].
pub async fn delete_user(
    state: &AppState,
    environment_id: &str,
    user_id: &str,
) -> Result<DeleteAnswer, ServiceError> {
    let env = environment(state, environment_id)?;
    if !state.store().delete_user(env.id(), user_id).await? {
        return Err(ServiceError::UnknownUser);
    }
    tracing::info!(user = %user_id, "operator: user deleted");
    Ok(DeleteAnswer { deleted: true })
}

/// Adds a new signing key to an environment; it signs from now on, on this replica at once and on the others
/// within a minute (or at the first token that names it). Tokens signed with the previous key verify until
/// they expire.
///
/// # Errors
/// [`ServiceError::UnknownEnvironment`], [`ServiceError::Internal`] when the new key cannot be made or
/// stored.
pub async fn rotate_signing_key(
    state: &AppState,
    environment_id: &str,
    retire_previous: bool,
) -> Result<RotatedKey, ServiceError> {
    let env = environment(state, environment_id)?;
    let failed = |error: crate::signing_keys::SigningKeyError| {
        tracing::error!(%error, "signing key rotation failed");
        ServiceError::Internal { what: "signing key rotation" }
    };
    let now = secs(state.now());
    let kid = crate::signing_keys::rotate(
        state.store(),
        &env.config,
        state.key_encryption_key(),
        now,
        retire_previous,
    )
    .await
    .map_err(failed)?;
    super::issuance::reload_signing_keys(state, &env).await.map_err(failed)?;
    let published = env.keys.ring().jwks().into_iter().map(|jwk| jwk.kid).collect();
    tracing::info!(environment = %env.id(), %kid, retire_previous, "operator: signing key rotated");
    Ok(RotatedKey { kid, published })
}
