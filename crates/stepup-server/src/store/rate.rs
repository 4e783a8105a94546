//! Rate limits: exact slots for small limits, fixed-window counters for large ones (`verify::rate` picks).

use super::{Store, StoreError, with_pool};

/// What a claim on a small limit got ([`Store::claim_rate_slot`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotClaim {
    /// This slot is the caller's.
    Claimed(i64),
    /// Every slot is taken; the oldest was claimed at this time (Unix seconds).
    Full {
        /// When the oldest claim was made.
        oldest: i64,
    },
}

/// What a count against a large limit got ([`Store::count_rate_event`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountClaim {
    /// Counted in the window that ends at this time (Unix seconds).
    Counted {
        /// The end of the window.
        window_end: i64,
    },
    /// The limit is reached in the window that ends at this time.
    Full {
        /// The end of the full window.
        window_end: i64,
    },
}

impl Store {
    /// Claims one of `slots` rate slots of `key`: a slot that is free, or was claimed at or before
    /// `window_start`. One conditional upsert per slot, so parallel claims on any replicas never exceed `slots`. `expires_at` is when the claim frees (for the purge).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn claim_rate_slot(
        &self,
        environment_id: &str,
        key: &str,
        slots: i64,
        now: i64,
        window_start: i64,
        expires_at: i64,
    ) -> Result<SlotClaim, StoreError> {
        for slot in 0..slots {
            let claimed: Option<i64> = with_pool!(self, |pool| {
                sqlx::query_scalar(
                    "INSERT INTO rate_slots (environment_id, slot_key, slot, sent_at, expires_at) VALUES ($1, $2, $3, $4, $6) \
                     ON CONFLICT (environment_id, slot_key, slot) DO UPDATE SET sent_at = $4, expires_at = $6 \
                     WHERE rate_slots.sent_at <= $5 RETURNING slot",
                )
                .bind(environment_id)
                .bind(key)
                .bind(slot)
                .bind(now)
                .bind(window_start)
                .bind(expires_at)
                .fetch_optional(pool)
                .await?
            });
            if claimed.is_some() {
                return Ok(SlotClaim::Claimed(slot));
            }
        }
        let oldest: Option<i64> = with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT MIN(sent_at) AS oldest FROM rate_slots WHERE environment_id = $1 AND slot_key = $2",
        )
        .bind(environment_id)
        .bind(key)
        .fetch_one(pool)
        .await?);
        Ok(SlotClaim::Full { oldest: oldest.unwrap_or(now) })
    }

    /// Frees a slot [`Store::claim_rate_slot`] claimed at `claimed_at`, unless it was claimed again since.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn release_rate_slot(
        &self,
        environment_id: &str,
        key: &str,
        slot: i64,
        claimed_at: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "DELETE FROM rate_slots WHERE environment_id = $1 AND slot_key = $2 AND slot = $3 AND sent_at = $4",
            )
            .bind(environment_id)
            .bind(key)
            .bind(slot)
            .bind(claimed_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Takes back one event [`Store::count_rate_event`] counted in the window ending at `window_end`, if that
    /// window is still the current one.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn uncount_rate_event(
        &self,
        environment_id: &str,
        key: &str,
        window_end: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE rate_counters SET count = count - 1 \
             WHERE environment_id = $1 AND counter_key = $2 AND expires_at = $3 AND count > 0",
            )
            .bind(environment_id)
            .bind(key)
            .bind(window_end)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Counts one event of `key` in its current window, if fewer than `max` were counted: one atomic upsert that
    /// starts a new window (count 1, ending at `window_end`) when the stored one ended at or before `now`.
    /// Concurrent counts on any replicas never exceed `max` in a window.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn count_rate_event(
        &self,
        environment_id: &str,
        key: &str,
        max: i64,
        now: i64,
        window_end: i64,
    ) -> Result<CountClaim, StoreError> {
        let counted: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "INSERT INTO rate_counters (environment_id, counter_key, count, expires_at) VALUES ($1, $2, 1, $4) \
                 ON CONFLICT (environment_id, counter_key) DO UPDATE SET \
                 count = CASE WHEN rate_counters.expires_at <= $3 THEN 1 ELSE rate_counters.count + 1 END, \
                 expires_at = CASE WHEN rate_counters.expires_at <= $3 THEN $4 ELSE rate_counters.expires_at END \
                 WHERE rate_counters.expires_at <= $3 OR rate_counters.count < $5 RETURNING expires_at",
            )
            .bind(environment_id)
            .bind(key)
            .bind(now)
            .bind(window_end)
            .bind(max)
            .fetch_optional(pool)
            .await?
        });
        if let Some(window_end) = counted {
            return Ok(CountClaim::Counted { window_end });
        }
        let full: Option<i64> = with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT expires_at FROM rate_counters WHERE environment_id = $1 AND counter_key = $2",
        )
        .bind(environment_id)
        .bind(key)
        .fetch_optional(pool)
        .await?);
        Ok(CountClaim::Full { window_end: full.unwrap_or(window_end) })
    }
}
