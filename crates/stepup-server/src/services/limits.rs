//! Rate limits in the database, so every replica counts the same: small limits as claimable slots (`max` slots
//! per key, each free again `window` after it was claimed; one conditional upsert per slot, so concurrent
//! requests on any replicas never take more than `max` in a window), large ones as fixed-window counters. Keys are
//! namespaced by what they limit (`send:`, `recovery:`, `nonces:`, ...).

use super::{Limited, ServiceError};
use crate::state::AppState;
use crate::store::{CountClaim, SlotClaim, secs};

/// One limit: `max` per `window_secs` for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// How many in a window.
    pub max: u32,
    /// The window, seconds.
    pub window_secs: u64,
}

/// What a successful [`claim`] or [`count`] took, so that it can be given back ([`release`]) when the action it
/// paid for did not happen (a code that could not be delivered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// A slot of a small limit.
    Slot {
        /// The limit's key.
        key: String,
        /// The slot.
        slot: i64,
        /// When it was claimed.
        at: i64,
    },
    /// One count of a large limit.
    Count {
        /// The limit's key.
        key: String,
        /// The end of the window it was counted in.
        window_end: i64,
    },
}

/// Gives back what [`claim`] or [`count`] took.
///
/// # Errors
/// [`ServiceError::Storage`].
pub async fn release(state: &AppState, environment_id: &str, claimed: &Claimed) -> Result<(), ServiceError> {
    match claimed {
        Claimed::Slot { key, slot, at } => {
            state.store().release_rate_slot(environment_id, key, *slot, *at).await?
        }
        Claimed::Count { key, window_end } => {
            state.store().uncount_rate_event(environment_id, key, *window_end).await?;
        }
    }
    Ok(())
}

/// Claims one of `limit.max` slots of `key` in environment `environment_id`.
///
/// # Errors
/// [`ServiceError::TooMany`] naming `limited`, with the seconds until the oldest slot frees, when every slot is
/// taken; [`ServiceError::Storage`].
pub async fn claim(
    state: &AppState,
    environment_id: &str,
    key: &str,
    limit: Limit,
    limited: Limited,
) -> Result<Claimed, ServiceError> {
    let now = secs(state.now());
    let window = i64::try_from(limit.window_secs).unwrap_or(i64::MAX);
    let window_start = now.saturating_sub(window);
    match state
        .store()
        .claim_rate_slot(
            environment_id,
            key,
            i64::from(limit.max),
            now,
            window_start,
            now.saturating_add(window),
        )
        .await?
    {
        SlotClaim::Claimed(slot) => Ok(Claimed::Slot { key: key.to_owned(), slot, at: now }),
        SlotClaim::Full { oldest } => {
            let retry_after_secs = u64::try_from(oldest - window_start).unwrap_or(1).max(1);
            Err(ServiceError::TooMany { limit: limited, retry_after_secs })
        }
    }
}

/// Counts one event of `key` against a large limit (hundreds or more), in fixed windows of
/// `limit.window_secs`: one query whatever the limit, where [`claim`] tries slot after slot. A fixed window lets
/// up to twice `limit.max` through across a window boundary, which a large limit can afford.
///
/// # Errors
/// [`ServiceError::TooMany`] naming `limited`, with the seconds until the window ends, when `limit.max` are
/// counted; [`ServiceError::Storage`].
pub async fn count(
    state: &AppState,
    environment_id: &str,
    key: &str,
    limit: Limit,
    limited: Limited,
) -> Result<Claimed, ServiceError> {
    let now = secs(state.now());
    let window = i64::try_from(limit.window_secs).unwrap_or(i64::MAX);
    match state
        .store()
        .count_rate_event(environment_id, key, i64::from(limit.max), now, now.saturating_add(window))
        .await?
    {
        CountClaim::Counted { window_end } => Ok(Claimed::Count { key: key.to_owned(), window_end }),
        CountClaim::Full { window_end } => {
            let retry_after_secs = u64::try_from(window_end.saturating_sub(now)).unwrap_or(1).max(1);
            Err(ServiceError::TooMany { limit: limited, retry_after_secs })
        }
    }
}
