//! The guard in an HTTP stack: a tower layer for any tower service (axum, hyper, tonic), and axum extractors
//! (feature `axum`).

#[cfg(feature = "axum")]
mod extract;
mod layer;

#[cfg(feature = "axum")]
pub use extract::{GuardRejection, RequireElevated, RequiredScope};
pub use layer::{RequireElevatedLayer, RequireElevatedService};

use http::HeaderMap;
use stepup_proto::headers::ELEVATED_ACCESS_TOKEN;

use crate::claims::VerifiedToken;

/// The token the guard let a request through with, in the request's extensions for the handler (and, with
/// feature `axum`, an extractor of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elevated(pub VerifiedToken);

/// Which guard let the request through (beside [`Elevated`]): an extractor further in may reuse that check —
/// no second spend of a single-use token — only when it is the same guard, and then re-checks the claims
/// against its own requirement (another scope, another binding).
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "axum"), allow(dead_code))] // Read by the axum extractors.
pub(crate) struct CheckedBy(pub(crate) crate::guard::Guard);

/// The request's elevated access token: the `x-dyn-elevated-access-token` header. A value that is not visible
/// ASCII is read as an empty token (refused as malformed), not as none.
#[must_use]
pub fn elevated_token(headers: &HeaderMap) -> Option<&str> {
    headers.get(ELEVATED_ACCESS_TOKEN).map(|value| value.to_str().unwrap_or(""))
}
