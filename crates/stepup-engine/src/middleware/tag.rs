//! The tag that marks a request as needing an elevated token for a scope.

use stepup_core::Scope;

/// The scope a request needs an elevated token for: a request extension read by
/// [`StepUpMiddleware`](super::StepUpMiddleware). Requests without it pass through untouched.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ElevatedScope(pub Scope);

/// `.elevated(scope)` on request builders: tags the request with [`ElevatedScope`].
pub trait ElevatedRequestExt: Sized {
    /// Marks the request as needing an elevated token for `scope`.
    #[must_use]
    fn elevated(self, scope: Scope) -> Self;
}

impl ElevatedRequestExt for reqwest_middleware::RequestBuilder {
    fn elevated(self, scope: Scope) -> Self {
        self.with_extension(ElevatedScope(scope))
    }
}
