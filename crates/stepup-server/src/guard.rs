//! The resource guard: what a protected call checks before it acts.
//!
//! `check` verifies the elevated token the caller hands it (the `x-dyn-elevated-access-token` header, which the
//! [`ElevatedHeader`] extractor reads) with `stepup-guard`, the crate app backends use too — one implementation:
//! the environment's signature, the `elevated` use, audience, subject (the session's user: a token is not
//! transferable), session, expiry and scope; it spends a single-use token in the database (the guard's store
//! here, [`crate::store::DatabaseSingleUse`]) so no replica accepts it twice. This module adds the policy. Anything else is [`ServiceError::ElevatedRequired`], which answers the 403
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
use stepup_core::Route;
use stepup_guard::{GuardError, Refusal, Requirement, Unavailable, VerifiedToken};
use stepup_proto::TokenScope;

use crate::auth::{ElevatedHeader, Session};
use crate::error::ApiError;
use crate::services::{GuardRefusal, ServiceError, issuance, step_up};
use crate::state::AppState;

/// The scope a route requires, set with `route_layer(Extension(RequiredScope(scope)))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredScope(pub TokenScope);

/// A call the guard let through; as an extractor it runs [`check`] for the route's [`RequiredScope`] (and needs
/// a session: 401 without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elevated {
    /// The verified token; `None` when the environment does not require step-up for the scope.
    pub claims: Option<VerifiedToken>,
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
    spend(state, session, &claims, scope).await?;
    Ok(Elevated { claims: Some(claims) })
}

/// Whether a token's `amr` says it was earned on `route`: by a method of this server on that route (not the
/// admin's word, which is no method). Every method core adds on a route counts for it.
fn earned_on(amr: &[String], route: Route) -> bool {
    amr.iter().any(|amr| route.methods().any(|method| method.amr() == amr.as_str()))
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
        let covers_guarded = policy.step_up_scopes.iter().all(|guarded| claims.grants(guarded));
        // Checked before a single-use token is spent, as below.
        if !earned_on(&claims.amr, Route::Reauthenticate) && !covers_guarded {
            return Err(refused(GuardRefusal::NeedsReauthentication));
        }
        spend(state, session, &claims, scope).await?;
        return Ok(Elevated { claims: Some(claims) });
    }
    if session.has_recent_mfa(state.now(), session.env.config.policy.recent_mfa_max_age_secs) {
        return Ok(Elevated { claims: None });
    }
    let claims = verified(state, session, token, scope).await?;
    // Checked before a single-use token is spent: a token that cannot do this keeps its use.
    if !earned_on(&claims.amr, Route::Mfa) {
        return Err(refused(GuardRefusal::NeedsMfa));
    }
    spend(state, session, &claims, scope).await?;
    Ok(Elevated { claims: Some(claims) })
}

/// The request's elevated token for `scope`, verified (signature, use, audience, subject, session, expiry,
/// scope) but not yet spent. A token naming a key this replica does not hold yet (made by another replica's
/// rotation) reloads the keys first.
async fn verified(
    state: &AppState,
    session: &Session,
    token: Option<&str>,
    scope: &TokenScope,
) -> Result<VerifiedToken, ServiceError> {
    let token = token.ok_or_else(|| refused(scope, GuardError::Refused(Refusal::Missing)))?;
    let requirement = Requirement::scope(scope.clone())
        .for_subject(session.user_id.as_str())
        .for_session(session.session_id.as_str());
    let now = state.now().as_secs();
    let guard = &session.env.guard;
    let unknown_key = |result: &Result<VerifiedToken, GuardError>| {
        matches!(result, Err(GuardError::Refused(Refusal::UnknownKey { .. })))
    };
    issuance::with_key_reload(state, &session.env, unknown_key, || guard.verify_at(token, &requirement, now))
        .await
        .map_err(|error| refused(scope, error))
}

/// Spends a single-use token, so no replica accepts it again.
async fn spend(
    state: &AppState,
    session: &Session,
    token: &VerifiedToken,
    scope: &TokenScope,
) -> Result<(), ServiceError> {
    session.env.guard.spend_at(token, state.now().as_secs()).await.map_err(|error| refused(scope, error))?;
    if token.single_use {
        state.metrics().token_spent();
    }
    Ok(())
}

/// The guard's answer as this server's: the refusals its clients know (the finer reasons of `stepup-guard`
/// read as an invalid token, as before), a database failure as one.
fn refused(scope: &TokenScope, error: GuardError) -> ServiceError {
    let why = match error {
        GuardError::Refused(Refusal::Missing) => GuardRefusal::Missing,
        GuardError::Refused(Refusal::OtherSession) => GuardRefusal::OtherSession,
        GuardError::Refused(Refusal::Expired) => GuardRefusal::Expired,
        GuardError::Refused(Refusal::ScopeNotGranted { .. }) => GuardRefusal::ScopeNotGranted,
        GuardError::Refused(Refusal::Spent) => GuardRefusal::Spent,
        GuardError::Refused(_) => GuardRefusal::Invalid,
        GuardError::Unavailable(Unavailable::SingleUseStore(error)) => {
            return ServiceError::Storage(error.into());
        }
        GuardError::Unavailable(_) => return ServiceError::Internal { what: "reading the signing keys" },
        _ => GuardRefusal::Invalid,
    };
    ServiceError::ElevatedRequired { scope: scope.clone(), why }
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

    fn earned_by(amr: &str) -> Vec<String> {
        vec![amr.into()]
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
