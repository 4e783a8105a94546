//! Spending single-use tokens exactly once, across every replica that shares the store.
//!
//! [`SingleUseStore::spend`] records a token id until the token expires and says whether this call was the
//! first: of any number of racing calls, on any number of replicas, exactly one gets `true`. A store that cannot
//! answer returns an error, and the guard refuses the request (fail closed): a single-use token is never let
//! through unspent.

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;

pub use memory::InProcessStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "redis")]
pub use redis::{RedisOptions, RedisStore};

use async_trait::async_trait;

use crate::error::StoreError;

/// A single-use token to spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpentToken<'a> {
    /// The token's issuer: ids are unique per issuer only.
    pub issuer: &'a str,
    /// The token's id (`jti`, or the token's digest).
    pub token_id: &'a str,
    /// Until when (Unix seconds) the record must be kept: the token's expiry plus the guard's leeway and clock
    /// skew. After that every replica refuses the token as expired, so the record may go.
    pub keep_until: u64,
    /// The guard's clock, Unix seconds.
    pub now: u64,
}

impl SpentToken<'_> {
    /// How long the record must be kept from now, at least a second.
    #[must_use]
    pub fn remaining_secs(&self) -> u64 {
        self.keep_until.saturating_sub(self.now).max(1)
    }
}

/// Where spent single-use tokens are recorded.
#[async_trait]
pub trait SingleUseStore: Send + Sync + 'static {
    /// Records the token as spent; `Ok(true)` if this call spent it, `Ok(false)` if it was spent before.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot answer; the guard then refuses the request.
    async fn spend(&self, token: SpentToken<'_>) -> Result<bool, StoreError>;
}
