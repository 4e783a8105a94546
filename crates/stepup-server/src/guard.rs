//! The resource guard: what a protected call checks before it acts.
//!
//! `check` verifies the elevated token the caller hands it (the `x-dyn-elevated-access-token` header, which the
//! [`ElevatedHeader`] extractor reads): the environment's signature, the `elevated` use, audience, subject (the
//! session's user: a token is not transferable), expiry and scope, and spends a single-use token in the database so
//! no replica accepts it twice. Anything else is [`ServiceError::ElevatedRequired`], which answers the 403
//! `elevated_access_token_required` challenge with the RFC 9470 `WWW-Authenticate` header.
//!
//! A scope the environment does not require step-up for (its policy leaves it out, or step-up is switched off)
//! opens without a token: the check told the client "not required", so the guard must not ask for one. Calls that
//! add or remove an MFA factor use [`check_factor_change`] instead, which the policy never opens for a user who
//! has MFA.
//!
//! Other axum servers put [`RequiredScope`] on a route (`route_layer(Extension(RequiredScope(scope)))`) and take
//! [`Elevated`] as an extractor in the handler; or they call [`check`] themselves with the header's value. The
//! reference server's services call [`check`] and [`check_factor_change`] directly.
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
use axum::http::request::Parts;
use stepup_core::{Route, ScopeSet};
use stepup_proto::TokenScope;

use crate::auth::{ElevatedHeader, Session};
use crate::error::ApiError;
use crate::services::{GuardRefusal, ServiceError, step_up};
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

/// Checks the request's elevated token (`token`, from `x-dyn-elevated-access-token`) for `scope` on behalf of
/// `session`'s user; see the module docs.
///
/// # Errors
/// [`ServiceError::ElevatedRequired`] (token missing, unreadable, forged, another environment's or user's,
/// expired, without the scope, or already spent), [`ServiceError::Storage`].
pub async fn check(
    state: &AppState,
    session: &Session,
    token: Option<&str>,
    scope: &TokenScope,
) -> Result<Elevated, ServiceError> {
    if !session.env.config.policy.requires_step_up(scope) {
        return Ok(Elevated { claims: None });
    }
    let claims = verified(state, session, token, scope).await?;
    spend(state, &claims, scope).await?;
    Ok(Elevated { claims: Some(claims) })
}

/// Whether a token's `amr` says it was earned on `route`: by a method of this server on that route (not the
/// admin's word, which is no method). Every method core adds on a route counts for it.
fn earned_on(claims: &ElevatedClaims, route: Route) -> bool {
    claims.amr.iter().any(|amr| route.methods().any(|method| method.amr() == amr.as_str()))
}

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
/// [`ServiceError::ElevatedRequired`] for `scope`, [`ServiceError::Storage`].
pub async fn check_factor_change(
    state: &AppState,
    session: &Session,
    token: Option<&str>,
    scope: &TokenScope,
) -> Result<Elevated, ServiceError> {
    let refused = |why| ServiceError::ElevatedRequired { scope: scope.clone(), why };
    if !step_up::has_mfa(state, &session.user_id).await? {
        let policy = &session.env.config.policy;
        if *scope != TokenScope::CredentialLink || !policy.step_up_enabled {
            return check(state, session, token, scope).await;
        }
        let claims = verified(state, session, token, scope).await?;
        let granted = ScopeSet::from_space_delimited(&claims.scope);
        let covers_guarded = policy.step_up_scopes.iter().all(|guarded| granted.contains(guarded));
        // Checked before a single-use token is spent, as below.
        if !earned_on(&claims, Route::Reauthenticate) && !covers_guarded {
            return Err(refused(GuardRefusal::NeedsReauthentication));
        }
        spend(state, &claims, scope).await?;
        return Ok(Elevated { claims: Some(claims) });
    }
    if session.has_recent_mfa(state.now(), session.env.config.policy.recent_mfa_max_age_secs) {
        return Ok(Elevated { claims: None });
    }
    let claims = verified(state, session, token, scope).await?;
    // Checked before a single-use token is spent: a token that cannot do this keeps its use.
    if !earned_on(&claims, Route::Mfa) {
        return Err(refused(GuardRefusal::NeedsMfa));
    }
    spend(state, &claims, scope).await?;
    Ok(Elevated { claims: Some(claims) })
}

/// The request's elevated token for `scope`, verified (signature, use, audience, subject, session, expiry,
/// scope) but not yet spent.
async fn verified(
    state: &AppState,
    session: &Session,
    token: Option<&str>,
    scope: &TokenScope,
) -> Result<ElevatedClaims, ServiceError> {
    let refused = |why| ServiceError::ElevatedRequired { scope: scope.clone(), why };
    let token = token.ok_or(refused(GuardRefusal::Missing))?;
    let claims: ElevatedClaims = crate::services::issuance::verify_jwt(state, &session.env, token)
        .await
        .map_err(|_| refused(GuardRefusal::Invalid))?;
    if claims.token_use != "elevated" || claims.aud != session.env.id() || claims.sub != session.user_id {
        return Err(refused(GuardRefusal::Invalid));
    }
    // Bound to the session that earned it: after `/revoke` no later session of the user can use it (the revoked
    // session itself is refused with a 401 before this).
    if claims.sid != session.session_id {
        return Err(refused(GuardRefusal::OtherSession));
    }
    if time(i64::try_from(claims.exp).unwrap_or(0)) <= state.now() {
        return Err(refused(GuardRefusal::Expired));
    }
    if !ScopeSet::from_space_delimited(&claims.scope).contains(scope) {
        return Err(refused(GuardRefusal::ScopeNotGranted));
    }
    Ok(claims)
}

/// Spends a single-use token, so no replica accepts it again.
async fn spend(state: &AppState, claims: &ElevatedClaims, scope: &TokenScope) -> Result<(), ServiceError> {
    if claims.single_use {
        let exp = i64::try_from(claims.exp).unwrap_or(i64::MAX);
        if !state.store().consume_token(&claims.jti, exp).await? {
            return Err(ServiceError::ElevatedRequired { scope: scope.clone(), why: GuardRefusal::Spent });
        }
        state.metrics().token_spent();
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
        let Ok(ElevatedHeader(token)) = ElevatedHeader::from_request_parts(parts, state).await;
        Ok(check(state, &session, token.as_deref(), &scope).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn earned_by(amr: &str) -> ElevatedClaims {
        ElevatedClaims {
            iss: String::new(),
            sub: String::new(),
            aud: String::new(),
            scope: String::new(),
            exp: 0,
            iat: 0,
            jti: String::new(),
            sid: String::new(),
            single_use: false,
            amr: vec![amr.into()],
            token_use: "elevated".into(),
            nbf: None,
        }
    }

    /// Which tokens may change factors: MFA proofs for users with MFA, re-authentications of the user for a first
    /// factor; never the app backend's word or the admin's.
    #[test]
    fn the_route_a_token_was_earned_on_comes_from_its_amr() {
        for amr in ["totp", "recovery", "passkey"] {
            assert!(earned_on(&earned_by(amr), Route::Mfa), "{amr}");
            assert!(!earned_on(&earned_by(amr), Route::Reauthenticate), "{amr}");
        }
        for amr in ["email", "sms", "wallet"] {
            assert!(earned_on(&earned_by(amr), Route::Reauthenticate), "{amr}");
            assert!(!earned_on(&earned_by(amr), Route::Mfa), "{amr}");
        }
        for amr in ["external", "admin", ""] {
            assert!(!earned_on(&earned_by(amr), Route::Mfa), "{amr}");
            assert!(!earned_on(&earned_by(amr), Route::Reauthenticate), "{amr}");
        }
    }
}
