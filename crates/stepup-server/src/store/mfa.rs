//! MFA: TOTP devices (with the last accepted step), recovery codes, and the failure lockout.

use rusqlite::{OptionalExtension as _, named_params};

use super::calling_thread_sqlite::in_write_transaction;
use super::{Pool, Store, StoreError, with_pool};

/// A TOTP device. `Debug` leaves the secret out.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MfaDeviceRow {
    /// Id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Base32 secret.
    pub secret: String,
    /// Whether a first code was accepted.
    pub verified: bool,
    /// The last accepted time step (RFC 6238 §5.2: a step is accepted once).
    pub last_step: Option<i64>,
    /// Created, Unix seconds.
    pub created_at: i64,
    /// Verified, Unix seconds.
    pub verified_at: Option<i64>,
    /// Whether it is the user's default device (`PUT /users/mfa/{id}`).
    pub is_default: bool,
    /// While unverified: the scopes (space-delimited) of the elevated token that started the enrolment, the most
    /// the verification completing it may ask for.
    pub enrolment_scopes: String,
}

/// A recovery code (hashed).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RecoveryCodeRow {
    /// Id.
    pub id: String,
    /// Argon2id PHC string.
    pub code_hash: String,
}

impl MfaDeviceRow {
    /// The row as rusqlite reads it (the columns `FromRow` reads).
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get("id")?,
            user_id: row.get("user_id")?,
            secret: row.get("secret")?,
            verified: row.get("verified")?,
            last_step: row.get("last_step")?,
            created_at: row.get("created_at")?,
            verified_at: row.get("verified_at")?,
            is_default: row.get("is_default")?,
            enrolment_scopes: row.get("enrolment_scopes")?,
        })
    }
}

impl std::fmt::Debug for MfaDeviceRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaDeviceRow")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("secret", &stepup_core::secret::REDACTED)
            .field("verified", &self.verified)
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

/// What became of a TOTP code's time step ([`Store::accept_totp_step`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpStep {
    /// Accepted: the device is verified and the step spent.
    Accepted,
    /// The step (or a later one) was accepted before: a replayed code.
    Replayed,
    /// The user has another verified TOTP device already, so this enrolment cannot complete.
    AnotherDeviceVerified,
}

/// A TOTP code to settle ([`Store::settle_totp_attempt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpAttemptRequest<'a> {
    /// The user.
    pub user_id: &'a str,
    /// The device the code is for.
    pub device_id: &'a str,
    /// The time step the code matched, or `None` for a wrong code.
    pub step: Option<i64>,
    /// Now, Unix seconds.
    pub now: i64,
    /// Failures in a row allowed: an attempt counted beyond them is not looked at ([`TotpAttempt::OverLimit`]).
    pub max_failures: i64,
}

impl TotpAttemptRequest<'_> {
    /// Once the attempt is counted as the `failures`-th failure in a row: the step to spend, or what the attempt
    /// comes to without spending one.
    fn step_to_spend(&self, failures: i64) -> Result<i64, TotpAttempt> {
        if failures > self.max_failures {
            return Err(TotpAttempt::OverLimit);
        }
        self.step.ok_or(TotpAttempt::Failed(failures))
    }
}

impl TotpAttempt {
    /// What an attempt counted as the `failures`-th failure came to when its step met the device.
    fn spent(step: TotpStep, failures: i64) -> Self {
        match step {
            TotpStep::Accepted => TotpAttempt::Accepted,
            TotpStep::Replayed => TotpAttempt::Failed(failures),
            TotpStep::AnotherDeviceVerified => TotpAttempt::AnotherDeviceVerified,
        }
    }
}

/// What a TOTP code came to ([`Store::settle_totp_attempt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpAttempt {
    /// Accepted: the step is spent and the run of failures ended.
    Accepted,
    /// A wrong code, or a spent step: counted, the failures in a row, this one included.
    Failed(i64),
    /// Counted beyond the allowed failures: the code was not looked at (the caller locks MFA).
    OverLimit,
    /// MFA is locked until this time (Unix seconds); nothing was counted.
    Locked {
        /// When the lock ends.
        until: i64,
    },
    /// The user has another verified TOTP device already, so this enrolment cannot complete (counted).
    AnotherDeviceVerified,
}

/// Where a reserved MFA attempt stands ([`Store::mfa_reserve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaReservation {
    /// Counted: the number of failures in a row, this attempt included.
    Counted(i64),
    /// MFA is locked until this time (Unix seconds); nothing was counted.
    Locked {
        /// When the lock ends.
        until: i64,
    },
}

/// How long a first recovery-code read may take before its claim counts as abandoned (longer than the longest
/// request timeout anyone should configure).
pub const ABANDONED_FIRST_READ_SECS: i64 = 120;

/// The `UPDATE` that accepts a TOTP time step (`$1`) for a device (`$2`) at `$3`, if later than the last one.
macro_rules! accept_step_sql {
    () => {
        "UPDATE mfa_devices SET last_step = $1, verified = 1, verified_at = COALESCE(verified_at, $3) \
         WHERE id = $2 AND (last_step IS NULL OR last_step < $1)"
    };
}

/// [`Store::accept_totp_step`] on SQLite: the two `UPDATE`s as one command (numbered parameters bind across its
/// statements; `changes()` is the first one's count). Whether the step was accepted.
async fn accept_step_on_sqlite<'c>(
    executor: impl sqlx::Executor<'c, Database = sqlx::Sqlite>,
    device_id: &str,
    user_id: &str,
    step: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query(concat!(
        accept_step_sql!(),
        "; UPDATE mfa_lockouts SET failures = 0 WHERE user_id = $4 AND changes() = 1"
    ))
    .bind(step)
    .bind(device_id)
    .bind(now)
    .bind(user_id)
    .execute(executor)
    .await
    // The device's row, and the lockout's when the first changed one.
    .map(|done| done.rows_affected() >= 1)
}

/// [`Store::accept_totp_step`] inside a transaction of the calling thread: the step, and the end of the run of
/// failures when it was accepted.
fn accept_step_in(
    transaction: &rusqlite::Transaction<'_>,
    device_id: &str,
    user_id: &str,
    step: i64,
    now: i64,
) -> Result<TotpStep, rusqlite::Error> {
    // A verified device first, with an `UPDATE` that sets `last_step` alone: setting `verified` (even to the 1 it
    // holds) makes SQLite rewrite the device's entries in the partial indexes that name it, one more page to
    // write and a unique check per step-up. An enrolment's first code (or a replay) takes the full `UPDATE`.
    let mut accepted = transaction
        .prepare_cached(ACCEPT_VERIFIED_DEVICE_STEP)?
        .execute(named_params! {"$1": step, "$2": device_id})?
        == 1;
    if !accepted {
        // A unique violation undoes this statement only (SQLite's default ABORT), not the transaction.
        accepted = match transaction
            .prepare_cached(accept_step_sql!())?
            .execute(named_params! {"$1": step, "$2": device_id, "$3": now})
        {
            Ok(changed) => changed == 1,
            Err(error) if super::is_sqlite_unique_violation(&error) => {
                return Ok(TotpStep::AnotherDeviceVerified);
            }
            Err(error) => return Err(error),
        };
    }
    if !accepted {
        return Ok(TotpStep::Replayed);
    }
    transaction.prepare_cached(RESET_FAILURES)?.execute(named_params! {"$1": user_id})?;
    Ok(TotpStep::Accepted)
}

/// [`Store::settle_totp_attempt`] on the calling thread: the reservation, and the step when the reservation
/// allows it, in one transaction (one commit).
fn settle_totp_attempt_on_calling_thread(
    connection: &mut rusqlite::Connection,
    attempt: &TotpAttemptRequest<'_>,
) -> Result<TotpAttempt, rusqlite::Error> {
    in_write_transaction(connection, |transaction| {
        Ok(match reserve_in(transaction, attempt.user_id, attempt.now)? {
            MfaReservation::Locked { until } => TotpAttempt::Locked { until },
            MfaReservation::Counted(failures) => match attempt.step_to_spend(failures) {
                Ok(step) => TotpAttempt::spent(
                    accept_step_in(transaction, attempt.device_id, attempt.user_id, step, attempt.now)?,
                    failures,
                ),
                Err(settled) => settled,
            },
        })
    })
}

/// [`Store::mfa_reserve`] inside a transaction of the calling thread. (In one of its own, not in autocommit: an
/// `INSERT ... RETURNING` read by `query_row` commits when the statement is reset, and rusqlite drops an error of
/// that reset — a commit that failed would count as made.)
fn reserve_in(
    transaction: &rusqlite::Transaction<'_>,
    user_id: &str,
    now: i64,
) -> Result<MfaReservation, rusqlite::Error> {
    let counted = transaction
        .prepare_cached(COUNT_ATTEMPT)?
        .query_row(named_params! {"$1": user_id, "$2": now}, |row| row.get(0))
        .optional()?;
    Ok(match counted {
        Some(failures) => MfaReservation::Counted(failures),
        None => MfaReservation::Locked {
            until: transaction
                .prepare_cached(LOCKED_UNTIL)?
                .query_row(named_params! {"$1": user_id}, |row| row.get(0))?,
        },
    })
}

/// `accept_step_sql!` for a device verified before: the step alone.
const ACCEPT_VERIFIED_DEVICE_STEP: &str = "UPDATE mfa_devices SET last_step = $1 \
     WHERE id = $2 AND verified = 1 AND (last_step IS NULL OR last_step < $1)";

/// The upsert that counts an MFA attempt of user `$1` at `$2` as a failure, unless MFA is locked: the failures in
/// a row, or no row while locked.
const COUNT_ATTEMPT: &str = "INSERT INTO mfa_lockouts (user_id, failures, locked_until) VALUES ($1, 1, 0) \
     ON CONFLICT (user_id) DO UPDATE SET failures = mfa_lockouts.failures + 1 \
     WHERE mfa_lockouts.locked_until <= $2 RETURNING failures";

/// Until when user `$1`'s MFA is locked.
const LOCKED_UNTIL: &str = "SELECT locked_until FROM mfa_lockouts WHERE user_id = $1";

/// The `UPDATE` that ends user `$1`'s run of MFA failures.
const RESET_FAILURES: &str = "UPDATE mfa_lockouts SET failures = 0 WHERE user_id = $1";

impl Store {
    /// Adds an unverified TOTP device, replacing the user's unfinished one if there is one (one statement on the
    /// one-pending index, so concurrent enrolments leave one). `enrolment_scopes`: see [`MfaDeviceRow`].
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn insert_totp_device(
        &self,
        id: &str,
        user_id: &str,
        secret: &str,
        enrolment_scopes: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO mfa_devices (id, user_id, kind, secret, verified, created_at, enrolment_scopes) \
                 VALUES ($1, $2, 'totp', $3, 0, $4, $5) \
                 ON CONFLICT (user_id) WHERE verified = 0 DO UPDATE SET id = excluded.id, secret = excluded.secret, \
                 created_at = excluded.created_at, enrolment_scopes = excluded.enrolment_scopes, last_step = NULL",
            )
            .bind(id)
            .bind(user_id)
            .bind(secret)
            .bind(now)
            .bind(enrolment_scopes)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// A user's TOTP devices, oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn totp_devices(&self, user_id: &str) -> Result<Vec<MfaDeviceRow>, StoreError> {
        const DEVICES: &str = "SELECT id, user_id, secret, verified <> 0 AS verified, last_step, created_at, \
             verified_at, is_default <> 0 AS is_default, COALESCE(enrolment_scopes, '') AS enrolment_scopes \
             FROM mfa_devices WHERE user_id = $1 AND kind = 'totp' ORDER BY created_at, id";
        // Read by every TOTP step-up: on the calling thread where it can be (CallingThreadSqlite).
        if let Some(answer) = self.on_calling_thread(|connection| {
            connection
                .prepare_cached(DEVICES)?
                .query_map(named_params! {"$1": user_id}, MfaDeviceRow::read)?
                .collect()
        }) {
            return answer;
        }
        Ok(with_pool!(self, |pool| sqlx::query_as(DEVICES).bind(user_id).fetch_all(pool).await?))
    }

    /// Settles a TOTP code: reserves the attempt (counts it as a failure unless MFA is locked, as
    /// [`Store::mfa_reserve`]) and, when the reservation allows it, accepts the code's time step `step` for the
    /// device (as [`Store::accept_totp_step`], which also ends the run of failures). `step` is `None` for a code
    /// that matched no step: the attempt is counted and fails.
    ///
    /// On the calling thread (a SQLite file) the two are one transaction, one commit: a TOTP step-up is the
    /// hottest path (docs/benchmarks.md, TOTP step-ups under load). The caller checks the code before this
    /// reservation, not after, but its answer (`step`) is used only when the reservation, serialized by the write
    /// lock, allows it: parallel guesses still get at most `attempt.max_failures` answers between them.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn settle_totp_attempt(
        &self,
        attempt: &TotpAttemptRequest<'_>,
    ) -> Result<TotpAttempt, StoreError> {
        if let Some(settled) =
            self.on_calling_thread(|connection| settle_totp_attempt_on_calling_thread(connection, attempt))
        {
            return settled;
        }
        // The async way: the same two steps, each its own round trip.
        let failures = match self.mfa_reserve(attempt.user_id, attempt.now).await? {
            MfaReservation::Locked { until } => return Ok(TotpAttempt::Locked { until }),
            MfaReservation::Counted(failures) => failures,
        };
        Ok(match attempt.step_to_spend(failures) {
            Ok(step) => TotpAttempt::spent(
                self.accept_totp_step(attempt.device_id, attempt.user_id, step, attempt.now).await?,
                failures,
            ),
            Err(settled) => settled,
        })
    }

    /// Accepts time step `step` for a device if it is later than the last accepted one, and marks the device
    /// verified; when it is accepted, also ends `user_id`'s run of MFA failures (as `mfa_succeeded`), in the same
    /// round trip: each statement is a hand-off to the database (docs/benchmarks.md, TOTP step-ups under load).
    ///
    /// Two dialects here, on purpose: SQLite runs the two `UPDATE`s as one command (numbered parameters bind
    /// across its statements; `changes()` is the first one's count), PostgreSQL as one statement whose CTE
    /// resets the lockout only for the row it accepted. (On the calling thread, [`Store::settle_totp_attempt`]
    /// runs them in its own transaction.)
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn accept_totp_step(
        &self,
        device_id: &str,
        user_id: &str,
        step: i64,
        now: i64,
    ) -> Result<TotpStep, StoreError> {
        let accepted = match (self.pool(), self.sqlite_connections()) {
            (_, Some(connections)) => accept_step_on_sqlite(connections, device_id, user_id, step, now).await,
            (Pool::Sqlite(pool), None) => accept_step_on_sqlite(pool, device_id, user_id, step, now).await,
            (Pool::Postgres(pool), None) => sqlx::query_scalar::<_, i64>(concat!(
                "WITH accepted AS (",
                accept_step_sql!(),
                " RETURNING user_id), reset AS (UPDATE mfa_lockouts SET failures = 0 WHERE user_id = $4 \
                 AND user_id IN (SELECT user_id FROM accepted)) SELECT count(*) FROM accepted"
            ))
            .bind(step)
            .bind(device_id)
            .bind(now)
            .bind(user_id)
            .fetch_one(pool)
            .await
            .map(|count| count == 1),
        };
        match accepted.map_err(StoreError::from) {
            Ok(true) => Ok(TotpStep::Accepted),
            Ok(false) => Ok(TotpStep::Replayed),
            // `mfa_devices_one_verified_totp`: completing this enrolment would make a second verified device.
            Err(error) if error.is_unique_violation() => Ok(TotpStep::AnotherDeviceVerified),
            Err(error) => Err(error),
        }
    }

    /// Makes a verified device of the user the default one (and no other). Returns `false` when the user has no
    /// verified device with this id.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn set_default_mfa_device(&self, user_id: &str, device_id: &str) -> Result<bool, StoreError> {
        // One statement, so two concurrent calls leave exactly one default.
        let changed = with_pool!(self, |pool| sqlx::query(
            "UPDATE mfa_devices SET is_default = CASE WHEN id = $2 THEN 1 ELSE 0 END \
             WHERE user_id = $1 AND EXISTS (SELECT 1 FROM mfa_devices d WHERE d.id = $2 AND d.user_id = $1 \
             AND d.verified = 1)",
        )
        .bind(user_id)
        .bind(device_id)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(changed > 0)
    }

    /// Deletes an MFA device of a user. Returns whether it existed.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn delete_mfa_device(&self, user_id: &str, device_id: &str) -> Result<bool, StoreError> {
        let deleted =
            with_pool!(self, |pool| sqlx::query("DELETE FROM mfa_devices WHERE id = $1 AND user_id = $2")
                .bind(device_id)
                .bind(user_id)
                .execute(pool)
                .await?
                .rows_affected());
        Ok(deleted == 1)
    }

    /// Marks that `user_id`'s recovery codes are being created for the first time. Returns `false` when they were
    /// before (by this call's rivals too: one statement decides), so concurrent first reads create one set. A
    /// mark [`ABANDONED_FIRST_READ_SECS`] old with no codes behind it is taken again: that first read failed or
    /// was cancelled before its codes were stored, and the user must not be left without codes.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn claim_first_recovery_codes(&self, user_id: &str, now: i64) -> Result<bool, StoreError> {
        let claimed = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO recovery_code_sets (user_id, created_at) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE \
                 SET created_at = $2 WHERE recovery_code_sets.created_at <= $3 \
                 AND NOT EXISTS (SELECT 1 FROM recovery_codes WHERE recovery_codes.user_id = $1)",
            )
            .bind(user_id)
            .bind(now)
            .bind(now.saturating_sub(ABANDONED_FIRST_READ_SECS))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(claimed == 1)
    }

    /// Replaces the user's recovery codes.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn replace_recovery_codes(
        &self,
        user_id: &str,
        codes: &[RecoveryCodeRow],
        now: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            for code in codes {
                sqlx::query(
                    "INSERT INTO recovery_codes (id, user_id, code_hash, used, created_at) VALUES ($1, $2, $3, 0, $4)",
                )
                .bind(&code.id)
                .bind(user_id)
                .bind(&code.code_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The user's unused recovery codes, and how many codes (used or not) exist.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn unused_recovery_codes(
        &self,
        user_id: &str,
    ) -> Result<(Vec<RecoveryCodeRow>, i64), StoreError> {
        let rows: Vec<(String, String, bool)> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT id, code_hash, used <> 0 AS used FROM recovery_codes WHERE user_id = $1 ORDER BY id",
        )
        .bind(user_id)
        .fetch_all(pool)
        .await?);
        let total = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let unused = rows
            .into_iter()
            .filter(|(_, _, used)| !used)
            .map(|(id, code_hash, _)| RecoveryCodeRow { id, code_hash })
            .collect();
        Ok((unused, total))
    }

    /// Spends a recovery code. Returns `false` if it was spent before.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn use_recovery_code(&self, id: &str) -> Result<bool, StoreError> {
        let spent = with_pool!(self, |pool| sqlx::query(
            "UPDATE recovery_codes SET used = 1 WHERE id = $1 AND used = 0"
        )
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(spent == 1)
    }

    /// Reserves one MFA attempt before the factor is checked: counts it as a failure up front, unless MFA is
    /// locked. Counting first (one conditional upsert) is what keeps parallel guesses from all passing a lock
    /// check.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn mfa_reserve(&self, user_id: &str, now: i64) -> Result<MfaReservation, StoreError> {
        // Made by every MFA attempt: on the calling thread where it can be (CallingThreadSqlite).
        if let Some(answer) = self.on_calling_thread(|connection| {
            in_write_transaction(connection, |transaction| reserve_in(transaction, user_id, now))
        }) {
            return answer;
        }
        Ok(with_pool!(self, |pool| {
            let counted: Option<i64> =
                sqlx::query_scalar(COUNT_ATTEMPT).bind(user_id).bind(now).fetch_optional(pool).await?;
            match counted {
                Some(failures) => MfaReservation::Counted(failures),
                None => MfaReservation::Locked {
                    until: sqlx::query_scalar(LOCKED_UNTIL).bind(user_id).fetch_one(pool).await?,
                },
            }
        }))
    }

    /// Locks MFA until `until` and restarts the count.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn mfa_lock(&self, user_id: &str, until: i64) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE mfa_lockouts SET failures = 0, locked_until = $2 WHERE user_id = $1")
                .bind(user_id)
                .bind(until)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// A successful MFA attempt ends the run of failures.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn mfa_succeeded(&self, user_id: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(RESET_FAILURES).bind(user_id).execute(pool).await?;
        });
        Ok(())
    }
}
