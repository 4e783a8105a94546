//! The server's own tokens: sessions (started, and re-signed when their claims change) and elevated access
//! tokens, signed with the environment's current key; and the check of a token this server signed, against the
//! keys of every replica.

use stepup_core::Jwt;
use stepup_proto::TokenScope;

use super::ServiceError;
use crate::environment::Environment;
use crate::random;
use crate::signing_keys::SigningKeyError;
use crate::state::AppState;
use crate::store::secs;
use crate::tokens::{ElevatedClaims, ISSUER, JwtError, SessionClaims, TimeClaims};

/// Starts a session for a user and signs its JWT. Returns the JWT and its claims.
///
/// # Errors
/// [`ServiceError::Storage`], or [`ServiceError::Internal`] when randomness or signing fails.
pub async fn start_session(
    state: &AppState,
    env: &Environment,
    user_id: &str,
) -> Result<(Jwt, SessionClaims), ServiceError> {
    let now = state.now();
    let expires_at = now.plus_secs(env.config.policy.session_ttl_secs);
    let session_id = random::uuid().map_err(|_| ServiceError::Internal { what: "randomness" })?;
    state.store().insert_session(&session_id, user_id, env.id(), secs(expires_at)).await?;
    let claims = SessionClaims {
        iss: ISSUER.into(),
        sub: user_id.into(),
        aud: env.id().into(),
        exp: expires_at.as_secs(),
        iat: now.as_secs(),
        jti: session_id.clone(),
        sid: session_id,
        token_use: "session".into(),
        mfa_auth_time: None,
        nbf: None,
    };
    let jwt = env.keys.sign_session(&claims).map_err(|_| ServiceError::Internal { what: "signing" })?;
    Ok((jwt, claims))
}

/// [`start_session`], answering the JWT and its expiry (Unix seconds).
///
/// # Errors
/// As [`start_session`].
pub async fn session(state: &AppState, env: &Environment, user_id: &str) -> Result<(Jwt, u64), ServiceError> {
    let (jwt, claims) = start_session(state, env, user_id).await?;
    Ok((jwt, claims.exp))
}

/// The session JWT a verify answer carries: the same session (id, expiry, user), re-signed with
/// `mfa_auth_time` set to now when the verification was an MFA one. Dynamic's clients replace their session
/// with the answer's, so every verify answer must carry it (docs/design.md §8). Ed25519 signatures are
/// deterministic: unchanged claims give back the very JWT the request came with.
///
/// # Errors
/// [`ServiceError::Internal`] when signing fails.
pub fn reissue_session(
    state: &AppState,
    env: &Environment,
    claims: &SessionClaims,
    mfa: bool,
) -> Result<Jwt, ServiceError> {
    let mut claims = claims.clone();
    if claims.sid.is_empty() {
        claims.sid.clone_from(&claims.jti);
    }
    if mfa {
        claims.mfa_auth_time = Some(state.now().as_secs());
    }
    env.keys.sign_session(&claims).map_err(|_| ServiceError::Internal { what: "signing" })
}

/// Signs an elevated access token for `scopes` after verification with `method` (its `amr`), on the
/// environment's policy: single-use if any scope is, with the matching lifetime; bound to the session
/// `session_id` that earned it (its `sid`).
///
/// # Errors
/// [`ServiceError::InvalidScopes`] for an empty list or a scope this server does not know; [`ServiceError::Internal`]
/// when randomness or signing fails.
pub fn elevated_token(
    state: &AppState,
    env: &Environment,
    user_id: &str,
    session_id: &str,
    scopes: &[TokenScope],
    amr: &str,
) -> Result<Jwt, ServiceError> {
    if scopes.is_empty() || scopes.iter().any(|s| !s.is_known()) {
        return Err(ServiceError::InvalidScopes);
    }
    let mut sorted = scopes.to_vec();
    sorted.sort();
    sorted.dedup();
    let (single_use, ttl) = env.config.policy.token_terms(&sorted);
    let now = state.now();
    let names: Vec<&str> = sorted.iter().map(TokenScope::as_str).collect();
    let claims = ElevatedClaims {
        iss: ISSUER.into(),
        sub: user_id.into(),
        aud: env.id().into(),
        scope: names.join(" "),
        exp: now.plus_secs(ttl).as_secs(),
        iat: now.as_secs(),
        jti: random::uuid().map_err(|_| ServiceError::Internal { what: "randomness" })?,
        sid: session_id.into(),
        single_use,
        amr: vec![amr.into()],
        token_use: "elevated".into(),
        nbf: None,
    };
    let jwt =
        env.keys.ring().current().sign(&claims).map_err(|_| ServiceError::Internal { what: "signing" })?;
    state.metrics().token_issued(amr, single_use);
    Ok(jwt)
}

/// Verifies one of this server's JWTs for `env` against its signing keys, reloading them from the database
/// (at most once a second) when the token names a key this replica does not hold yet — one another replica
/// just made.
///
/// # Errors
/// [`JwtError`].
pub async fn verify_jwt<C: serde::de::DeserializeOwned + TimeClaims>(
    state: &AppState,
    env: &Environment,
    token: &str,
) -> Result<C, JwtError> {
    verify_reloading(state, env, |now| env.keys.verify(token, now)).await
}

/// [`verify_jwt`] for a session token: a token whose signature was checked or made on this replica before is
/// not checked again (only its signature: `crate::verified_signatures`).
///
/// # Errors
/// [`JwtError`].
pub async fn verify_session(
    state: &AppState,
    env: &Environment,
    token: &str,
) -> Result<SessionClaims, JwtError> {
    verify_reloading(state, env, |now| env.keys.verify_session(token, now)).await
}

/// Runs `verify` at the server's time, with [`with_key_reload`] for a key this replica does not hold yet.
async fn verify_reloading<C>(
    state: &AppState,
    env: &Environment,
    verify: impl Fn(u64) -> Result<C, JwtError>,
) -> Result<C, JwtError> {
    let now = state.now().as_secs();
    let unknown_key = |result: &Result<C, JwtError>| matches!(result, Err(JwtError::UnknownKey));
    with_key_reload(state, env, unknown_key, || async { verify(now) }).await
}

/// Runs `attempt` (a verification against `env`'s keys); when `unknown_key` says its token named a key this
/// replica does not hold, reloads the keys from the database — at most once a second, waiting for a reload
/// already running — and runs it once more.
pub async fn with_key_reload<T, F, Fut>(
    state: &AppState,
    env: &Environment,
    unknown_key: impl Fn(&T) -> bool,
    attempt: F,
) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let first = attempt().await;
    if !unknown_key(&first) {
        return first;
    }
    let mut last = env.keys.reload_gate().lock().await;
    // A reload may have run while this waited for the gate.
    let again = attempt().await;
    if !unknown_key(&again) || last.is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(1)) {
        return again;
    }
    *last = Some(tokio::time::Instant::now());
    if let Err(error) = reload_signing_keys(state, env).await {
        tracing::warn!(%error, "reloading signing keys failed");
    }
    attempt().await
}

/// Reloads an environment's signing keys from the database (after a rotation, here or on another replica).
///
/// # Errors
/// [`SigningKeyError`].
pub async fn reload_signing_keys(state: &AppState, env: &Environment) -> Result<(), SigningKeyError> {
    env.keys.reload(state.store(), &env.config, state.key_encryption_key(), secs(state.now())).await
}
