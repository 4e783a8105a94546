//! The tag that marks a request as needing an elevated token for a scope.

use stepup_core::Scope;

/// The scope a request needs an elevated token for: a request extension read by
/// [`StepUpMiddleware`](super::StepUpMiddleware). Requests without it pass through untouched.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ElevatedScope(pub Scope);

/// A request the server guards with a recent authentication of the session, not with a token (it answers an RFC
/// 9470 challenge with `max_age`): no token goes out with it, and the middleware answers its challenge by a fresh
/// verification for `scope` (whose token the retry carries). Read by [`StepUpMiddleware`](super::StepUpMiddleware).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StepUpOnChallenge(pub Scope);

/// `.elevated(scope)` and `.step_up_on_challenge(scope)` on request builders.
pub trait ElevatedRequestExt: Sized {
    /// Marks the request as needing an elevated token for `scope` ([`ElevatedScope`]).
    #[must_use]
    fn elevated(self, scope: Scope) -> Self;

    /// Marks the request as guarded by a recent authentication ([`StepUpOnChallenge`]): nothing is attached, and
    /// a challenge is answered by stepping up for `scope`.
    #[must_use]
    fn step_up_on_challenge(self, scope: Scope) -> Self;
}

impl ElevatedRequestExt for reqwest_middleware::RequestBuilder {
    fn elevated(self, scope: Scope) -> Self {
        self.with_extension(ElevatedScope(scope))
    }

    fn step_up_on_challenge(self, scope: Scope) -> Self {
        self.with_extension(StepUpOnChallenge(scope))
    }
}
