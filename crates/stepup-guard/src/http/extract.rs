//! axum extractors: [`Elevated`] takes what the layer verified; [`RequireElevated`] checks by itself, for the
//! scope the route names with [`RequiredScope`].

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use stepup_proto::TokenScope;

use super::{CheckedBy, Elevated, elevated_token};
use crate::challenge::Rejection;
use crate::claims::VerifiedToken;
use crate::guard::Guard;
use crate::requirement::{Requirement, SessionBinding};

/// The scope a route requires, for [`RequireElevated`]: `route_layer(Extension(RequiredScope(scope)))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredScope(pub TokenScope);

/// A handler argument that checks the request's token itself: for the route's [`RequiredScope`], with the
/// [`Guard`] of the app's state (`Guard: FromRef<S>`), bound to the request's [`SessionBinding`] if any. A
/// request the [`crate::RequireElevatedLayer`] already let through is not checked (nor spent) twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequireElevated(pub VerifiedToken);

/// Why an extractor refused: the guard's answer, or a route set up wrong (500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardRejection {
    /// The guard's 403 or 503.
    Guard(Rejection),
    /// The route has no [`RequiredScope`] (for [`RequireElevated`]) or no layer (for [`Elevated`]): a bug in
    /// the backend, answered 500 and logged.
    Misconfigured(&'static str),
}

impl IntoResponse for GuardRejection {
    fn into_response(self) -> Response {
        match self {
            GuardRejection::Guard(rejection) => rejection.into_http(),
            GuardRejection::Misconfigured(what) => {
                tracing::error!(what, "a guarded route is set up wrong");
                let body = r#"{"error":"Internal error","code":"internal_error"}"#;
                (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "application/json")], body)
                    .into_response()
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Elevated {
    type Rejection = GuardRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, GuardRejection> {
        parts.extensions.get::<Elevated>().cloned().ok_or(GuardRejection::Misconfigured(
            "`Elevated` taken on a route without a RequireElevatedLayer",
        ))
    }
}

impl<S> FromRequestParts<S> for RequireElevated
where
    Guard: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = GuardRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, GuardRejection> {
        let Some(RequiredScope(scope)) = parts.extensions.get::<RequiredScope>().cloned() else {
            return Err(GuardRejection::Misconfigured(
                "`RequireElevated` taken on a route without a RequiredScope",
            ));
        };
        let mut requirement = Requirement::scope(scope.clone());
        if let Some(binding) = parts.extensions.get::<SessionBinding>() {
            requirement = requirement.bound_to(binding);
        }
        let guard = Guard::from_ref(state);
        let reject = |error| GuardRejection::Guard(Rejection::new(&error, &scope, guard.challenge_options()));
        if let (Some(Elevated(verified)), Some(CheckedBy(checked_by))) =
            (parts.extensions.get::<Elevated>(), parts.extensions.get::<CheckedBy>())
            && checked_by.is_same(&guard)
        {
            // Checked and (if single-use) spent by this guard already: only the claims against this requirement.
            return match guard.check_claims_now(verified, &requirement) {
                Ok(()) => Ok(RequireElevated(verified.clone())),
                Err(refusal) => Err(reject(refusal.into())),
            };
        }
        let guard = Guard::from_ref(state);
        match guard.check(elevated_token(&parts.headers), &requirement).await {
            Ok(verified) => {
                // A second extractor in the same handler must not spend the token again.
                parts.extensions.insert(Elevated(verified.clone()));
                Ok(RequireElevated(verified))
            }
            Err(error) => {
                Err(GuardRejection::Guard(Rejection::new(&error, &scope, guard.challenge_options())))
            }
        }
    }
}
