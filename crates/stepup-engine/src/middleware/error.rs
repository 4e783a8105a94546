//! `MiddlewareError`: why the middleware gave a caller an error instead of a response.

use stepup_core::{ScopeSet, StepUpError};

/// Why an elevated request failed in the middleware. It reaches the caller inside
/// `reqwest_middleware::Error::Middleware`; [`MiddlewareError::from_error`] finds it there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MiddlewareError {
    /// The server challenged the request and the step-up did not succeed (cancelled, failed, no front end...).
    #[error("step-up for {scopes} did not succeed: {source}")]
    StepUp {
        /// The scopes the step-up was for.
        scopes: ScopeSet,
        /// Why (`StepUpError::Cancelled` when the person cancelled).
        source: StepUpError,
    },
    /// Every step-up this request ran succeeded, but each token was gone before the retry: taken by requests sent
    /// during the flow (a single-use scope), or expired at once.
    #[error("the tokens of three step-ups for {scopes} were gone before the request could be retried")]
    TokenLost {
        /// The scopes.
        scopes: ScopeSet,
    },
    /// The server challenged the request, but its body is a stream that cannot be sent again, so the request was
    /// not retried (and no step-up was started). Send such bodies after stepping up, or as bytes.
    #[error("the request for {scopes} met a step-up challenge, and its streamed body cannot be sent again")]
    BodyNotReplayable {
        /// The scopes the challenge asked for.
        scopes: ScopeSet,
    },
}

impl MiddlewareError {
    /// The middleware's error inside an error from a `reqwest_middleware` client, if that is what it is.
    #[must_use]
    pub fn from_error(error: &reqwest_middleware::Error) -> Option<&Self> {
        match error {
            reqwest_middleware::Error::Middleware(inner) => inner.downcast_ref::<Self>(),
            _ => None,
        }
    }

    /// The step-up error, for [`MiddlewareError::StepUp`].
    #[must_use]
    pub fn step_up_error(&self) -> Option<&StepUpError> {
        match self {
            MiddlewareError::StepUp { source, .. } => Some(source),
            MiddlewareError::TokenLost { .. } | MiddlewareError::BodyNotReplayable { .. } => None,
        }
    }
}

impl From<MiddlewareError> for reqwest_middleware::Error {
    fn from(error: MiddlewareError) -> Self {
        reqwest_middleware::Error::middleware(error)
    }
}
