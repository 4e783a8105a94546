//! The resource guard: what a protected call checks before it acts.
//!
//! `check` verifies the `x-dyn-elevated-access-token` header: the environment's signature, the `elevated` use,
//! audience, subject (the session's user: a token is not transferable), expiry and scope, and spends a
//! single-use token in the database so no replica accepts it twice. Anything else is the 403
//! `elevated_access_token_required` challenge with the RFC 9470 `WWW-Authenticate` header.
//!
//! A scope the environment does not require step-up for (its policy leaves it out, or step-up is switched off)
//! opens without a token: the check told the client "not required", so the guard must not ask for one. Calls that
//! add or remove an MFA factor use [`check_factor_change`] instead, which the policy never opens for a user who
//! has MFA.
//!
//! Other axum servers put [`RequiredScope`] on a route (`route_layer(Extension(RequiredScope(scope)))`) and take
//! [`Elevated`] as an extractor in the handler; or they call [`check`] themselves. The reference server's routes
//! call [`check`] directly.
//!
//! ```ignore
//! use axum::{Extension, Router, routing::post};
//! use stepup_server::guard::{Elevated, RequiredScope};
//!
//! async fn export_key(elevated: Elevated) -> String {
//!     format!("exported under token {}", elevated.claims.jti)
//! }
//!
//! let app: Router<AppState> = Router::new()
//!     .route("/sdk/{environment_id}/wallet/export", post(export_key))
//!     .route_layer(Extension(RequiredScope(TokenScope::WalletExport)));
//! ```

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use stepup_core::ScopeSet;
use stepup_proto::TokenScope;
use stepup_proto::headers::ELEVATED_ACCESS_TOKEN;

use crate::auth::Session;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::time;
use crate::tokens::ElevatedClaims;

/// The scope a route requires, set with `route_layer(Extension(RequiredScope(scope)))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredScope(pub TokenScope);

/// A call the guard let through; as an extractor it runs [`check`] for the route's [`RequiredScope`] (and needs
/// a session: 401 without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elevated {
    /// The verified token's claims; `None` when the environment does not require step-up for the scope.
    pub claims: Option<ElevatedClaims>,
}

/// Checks the request's elevated token for `scope` on behalf of `session`'s user; see the module docs.
///
/// # Errors
/// The 403 challenge (token missing, unreadable, forged, another environment's or user's, expired, without the
/// scope, or already spent), or 500 on storage failure.
pub async fn check(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    scope: &TokenScope,
) -> Result<Elevated, ApiError> {
    if !session.env.config.policy.requires_step_up(scope) {
        return Ok(Elevated { claims: None });
    }
    let claims = verified(state, session, headers, scope).await?;
    spend(state, &claims, scope).await?;
    Ok(Elevated { claims: Some(claims) })
}

/// The `amr` values of MFA proofs.
const MFA_AMR: [&str; 3] = ["totp", "recovery", "passkey"];

/// The `amr` values of re-authentications of the user themselves (not the app backend's word, not the admin's).
const REAUTHENTICATION_AMR: [&str; 3] = ["email", "sms", "wallet"];

/// The check of calls that add or remove an MFA factor: TOTP and passkey registration (`credential:link`),
/// device and passkey deletion (`credential:unlink`).
///
/// For a user without MFA there is no factor to protect yet. Removing one is up to the policy, as any call
/// ([`check`]). Adding the first one is not: the new factor can then earn every scope the policy guards (a
/// recent MFA opens the recovery codes, the factor's next proof asks for any scope), so enrolling it takes what
/// those scopes take — a `credential:link` token earned by re-authenticating the user (email, SMS or wallet),
/// or one granting every guarded scope, even when the policy leaves `credential:link` unguarded. Only with
/// step-up switched off, when nothing is guarded, does the call need no token.
/// For a user with MFA the policy never opens it (switching step-up off, or leaving `credential:*` out of the
/// scopes, must not let a stolen session add its own factor): the call needs a recent MFA verification of the
/// session, or an elevated token for the scope that an MFA proof earned. A token earned otherwise — by an email
/// code before the user had MFA, or by the app's backend — does not count.
///
/// # Errors
/// The 403 challenge for `scope`, or 500 on storage failure.
pub async fn check_factor_change(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    scope: &TokenScope,
) -> Result<Elevated, ApiError> {
    if !crate::routes::has_mfa(state, &session.user_id).await? {
        let policy = &session.env.config.policy;
        if *scope != TokenScope::CredentialLink || !policy.step_up_enabled {
            return check(state, session, headers, scope).await;
        }
        let claims = verified(state, session, headers, scope).await?;
        let reauthenticated = claims.amr.iter().any(|amr| REAUTHENTICATION_AMR.contains(&amr.as_str()));
        let granted = ScopeSet::from_space_delimited(&claims.scope);
        let covers_guarded = policy.step_up_scopes.iter().all(|guarded| granted.contains(guarded));
        // Checked before a single-use token is spent, as below.
        if !reauthenticated && !covers_guarded {
            return Err(ApiError::elevated_required(
                vec![scope.clone()],
                "Adding a first MFA method needs a re-authentication (email, SMS or wallet)".to_owned(),
            ));
        }
        spend(state, &claims, scope).await?;
        return Ok(Elevated { claims: Some(claims) });
    }
    if session.has_recent_mfa(state.now(), session.env.config.policy.recent_mfa_max_age_secs) {
        return Ok(Elevated { claims: None });
    }
    let claims = verified(state, session, headers, scope).await?;
    // Checked before a single-use token is spent: a token that cannot do this keeps its use.
    if !claims.amr.iter().any(|amr| MFA_AMR.contains(&amr.as_str())) {
        return Err(ApiError::elevated_required(
            vec![scope.clone()],
            "Changing the MFA methods of a user with MFA needs a token earned by MFA".to_owned(),
        ));
    }
    spend(state, &claims, scope).await?;
    Ok(Elevated { claims: Some(claims) })
}

/// The request's elevated token for `scope`, verified (signature, use, audience, subject, session, expiry,
/// scope) but not yet spent.
async fn verified(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    scope: &TokenScope,
) -> Result<ElevatedClaims, ApiError> {
    let challenge = |why: &str| ApiError::elevated_required(vec![scope.clone()], why.to_owned());
    let token = headers
        .get(ELEVATED_ACCESS_TOKEN)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| challenge("An elevated access token is required for this scope"))?;
    let claims: ElevatedClaims = state
        .verify_jwt(&session.env, token)
        .await
        .map_err(|_| challenge("The elevated access token is invalid"))?;
    if claims.token_use != "elevated" || claims.aud != session.env.id() || claims.sub != session.user_id {
        return Err(challenge("The elevated access token is invalid"));
    }
    // Bound to the session that earned it: after `/revoke` no later session of the user can use it (the revoked
    // session itself is refused with a 401 before this).
    if claims.sid != session.session_id {
        return Err(challenge("The elevated access token belongs to another session"));
    }
    if time(i64::try_from(claims.exp).unwrap_or(0)) <= state.now() {
        return Err(challenge("The elevated access token has expired"));
    }
    if !ScopeSet::from_space_delimited(&claims.scope).contains(scope) {
        return Err(challenge("The elevated access token does not grant this scope"));
    }
    Ok(claims)
}

/// Spends a single-use token, so no replica accepts it again.
async fn spend(state: &AppState, claims: &ElevatedClaims, scope: &TokenScope) -> Result<(), ApiError> {
    if claims.single_use {
        let exp = i64::try_from(claims.exp).unwrap_or(i64::MAX);
        let spent = state.store().consume_token(&claims.jti, exp).await?;
        if spent {
            state.metrics().token_spent();
        }
        if !spent {
            return Err(ApiError::elevated_required(
                vec![scope.clone()],
                "The elevated access token was already used".to_owned(),
            ));
        }
    }
    Ok(())
}

impl FromRequestParts<AppState> for Elevated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(RequiredScope(scope)) = parts.extensions.get::<RequiredScope>().cloned() else {
            // A route that takes `Elevated` without saying which scope is a server bug, not a client error.
            tracing::error!("Elevated extractor used on a route without a RequiredScope extension");
            return Err(ApiError::internal());
        };
        let session = Session::from_request_parts(parts, state).await?;
        check(state, &session, &parts.headers, &scope).await
    }
}
