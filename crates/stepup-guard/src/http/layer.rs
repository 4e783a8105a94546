//! The tower layer: checks the request's token for one scope before the inner service sees the request.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use stepup_proto::TokenScope;
use tower_layer::Layer;
use tower_service::Service;

use super::{CheckedBy, Elevated, elevated_token};
use crate::challenge::Rejection;
use crate::guard::Guard;
use crate::requirement::{Requirement, SessionBinding};

/// Requires an elevated token for a scope (made by [`Guard::require`]). A request it lets through carries the
/// verified token as [`Elevated`] in its extensions; any other gets the 403 challenge (or a 503) and never
/// reaches the inner service. A [`SessionBinding`] in the request's extensions (put there by the backend's own
/// authentication, earlier in the stack) binds the token to that user and session.
#[derive(Debug, Clone)]
pub struct RequireElevatedLayer {
    guard: Guard,
    scope: TokenScope,
}

impl Guard {
    /// A tower layer that requires a token granting `scope`; see [`RequireElevatedLayer`].
    #[must_use]
    pub fn require(&self, scope: TokenScope) -> RequireElevatedLayer {
        RequireElevatedLayer { guard: self.clone(), scope }
    }
}

impl<S> Layer<S> for RequireElevatedLayer {
    type Service = RequireElevatedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireElevatedService { inner, guard: self.guard.clone(), scope: self.scope.clone() }
    }
}

/// The service [`RequireElevatedLayer`] wraps around another.
#[derive(Debug, Clone)]
pub struct RequireElevatedService<S> {
    inner: S,
    guard: Guard,
    scope: TokenScope,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireElevatedService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The service polled ready is the one that must be called: take it, leave a fresh clone behind (tower's
        // usual dance for services that call the inner one from a future).
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let guard = self.guard.clone();
        let scope = self.scope.clone();
        Box::pin(async move {
            let mut requirement = Requirement::scope(scope.clone());
            if let Some(binding) = request.extensions().get::<SessionBinding>() {
                requirement = requirement.bound_to(binding);
            }
            let checked = guard.check(elevated_token(request.headers()), &requirement).await;
            match checked {
                Ok(verified) => {
                    request.extensions_mut().insert(Elevated(verified));
                    request.extensions_mut().insert(CheckedBy(guard.clone()));
                    inner.call(request).await
                }
                Err(error) => Ok(Rejection::new(&error, &scope, guard.challenge_options()).into_http()),
            }
        })
    }
}
