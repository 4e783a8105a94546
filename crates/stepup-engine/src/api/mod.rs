//! The HTTP layer: [`ApiClient`] and its typed calls to the SDK API (docs/design.md §7, §8).

pub(crate) mod client;
pub(crate) mod endpoints;

pub use client::{ApiClient, ApiClientError, ApiConfig, ConnectionPool, install_default_crypto_provider};
pub use endpoints::MAX_NONCES;
