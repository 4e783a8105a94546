//! `StepUpMiddleware`: elevated tokens applied to an app's own HTTP calls, and step-up challenges answered, so the
//! app never handles a token (docs/design.md §7).
//!
//! ```text
//! app ──request.elevated(scope)──▶ StepUpMiddleware ──x-dyn-elevated-access-token──▶ API
//!                                     │  ▲ 403 elevated_access_token_required, or 401/403 with
//!                                     │  │ WWW-Authenticate: Bearer error="insufficient_user_authentication"
//!                                     ▼  │
//!                          one step-up per scope at a time (the front end prompts), then one retry
//! ```
//!
//! A request opts in with a tag ([`ElevatedRequestExt::elevated`], or the [`ElevatedScope`] extension; or
//! [`ElevatedRequestExt::step_up_on_challenge`] for a route guarded by a recent authentication rather than a token);
//! untagged requests pass through untouched. The token is read from the lock-free token cell at send time; a single-use
//! token is taken by exactly one request.

mod challenge;
mod error;
mod flights;
mod layer;
mod tag;

pub use challenge::{Challenge, challenge_in};
pub use error::MiddlewareError;
pub(crate) use flights::StepUpFlights;
pub use layer::StepUpMiddleware;
pub use tag::{ElevatedRequestExt, ElevatedScope, StepUpOnChallenge};
