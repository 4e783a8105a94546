//! Housekeeping: the purge of everything that can no longer be used, and row counts (tests and operators see
//! that floods leave the tables bounded).

use super::{Store, StoreError, with_pool};

/// How long a TOTP enrolment may wait for its first code before it is forgotten.
pub const PENDING_ENROLMENT_TTL_SECS: i64 = 24 * 3600;

/// Every table with rows that end, by the column that says when.
const EXPIRING: [&str; 8] = [
    "consumed_tokens",
    "nonces",
    "otp_verifications",
    "webauthn_challenges",
    "rate_slots",
    "rate_counters",
    "sessions",
    "outbox",
];

/// The tables [`Store::row_counts`] reports.
pub const COUNTED_TABLES: [&str; 16] = [
    "users",
    "credentials",
    "sessions",
    "otp_verifications",
    "outbox",
    "mfa_devices",
    "recovery_codes",
    "recovery_code_sets",
    "mfa_lockouts",
    "consumed_tokens",
    "nonces",
    "passkeys",
    "webauthn_challenges",
    "rate_slots",
    "rate_counters",
    "signing_keys",
];

impl Store {
    /// Deletes what can no longer be used: rows past their expiry (spent tokens, nonces, one-time codes,
    /// ceremony states, rate slots and counters, sessions — a session JWT past its `exp` is refused for expiry
    /// anyway), outbox messages a day old, TOTP enrolments never confirmed within a day, and lockout rows that
    /// say nothing (no failures, no lock in force). Every replica runs it once a minute; the deletes are
    /// idempotent.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn purge_expired(&self, now: i64) -> Result<(), StoreError> {
        for table in EXPIRING {
            let (column, cutoff) = match table {
                // The outbox is the dev delivery channel: a message is kept a day, for people reading it late.
                "outbox" => ("created_at", now - 24 * 3600),
                // A spent token's `expires_at` is when it may be forgotten: its writers (the guard, external auth)
                // add the clock skew to `exp` themselves, so a replica whose clock runs behind still finds it.
                _ => ("expires_at", now),
            };
            with_pool!(self, |pool| {
                sqlx::query(&format!("DELETE FROM {table} WHERE {column} <= $1"))
                    .bind(cutoff)
                    .execute(pool)
                    .await?;
            });
        }
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM mfa_devices WHERE verified = 0 AND created_at <= $1")
                .bind(now - PENDING_ENROLMENT_TTL_SECS)
                .execute(pool)
                .await?;
        });
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM mfa_lockouts WHERE failures = 0 AND locked_until <= $1")
                .bind(now)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The number of rows of each of [`COUNTED_TABLES`], in that order.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn row_counts(&self) -> Result<Vec<(&'static str, i64)>, StoreError> {
        let mut counts = Vec::with_capacity(COUNTED_TABLES.len());
        for table in COUNTED_TABLES {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let count: i64 = with_pool!(self, |pool| sqlx::query_scalar(&sql).fetch_one(pool).await?);
            counts.push((table, count));
        }
        Ok(counts)
    }
}
