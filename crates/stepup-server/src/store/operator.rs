//! What operators do to accounts: unlock, reset MFA, list, delete, end every session.

use super::{Store, StoreError, UserRow, with_pool};

/// What an MFA reset removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MfaReset {
    /// TOTP devices (verified or pending).
    pub devices: u64,
    /// Passkeys.
    pub passkeys: u64,
    /// Recovery codes (used or not).
    pub recovery_codes: u64,
}

impl Store {
    /// Ends a user's MFA lockout and forgets the failures counted. Returns whether there was anything to end.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn unlock_user(&self, user_id: &str, now: i64) -> Result<bool, StoreError> {
        let ended = with_pool!(self, |pool| {
            let ended = sqlx::query(
                "DELETE FROM mfa_lockouts WHERE user_id = $1 AND (locked_until > $2 OR failures > 0)",
            )
            .bind(user_id)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected();
            sqlx::query("DELETE FROM mfa_lockouts WHERE user_id = $1").bind(user_id).execute(pool).await?;
            ended
        });
        Ok(ended > 0)
    }

    /// Removes every MFA method of a user — TOTP devices, passkeys, passkey ceremonies in progress, recovery
    /// codes — and the lockout, in one transaction: the user is back to re-authentication (email, SMS, wallet).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn reset_mfa(&self, user_id: &str) -> Result<MfaReset, StoreError> {
        let removed = |table: &'static str| format!("DELETE FROM {table} WHERE user_id = $1");
        Ok(with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // The first three are counted (in this order), the rest only emptied.
            let mut counted = [0u64; 3];
            let tables = [
                "mfa_devices",
                "passkeys",
                "recovery_codes",
                "webauthn_challenges",
                "recovery_code_sets",
                "mfa_lockouts",
            ];
            for (index, table) in tables.into_iter().enumerate() {
                let removed =
                    sqlx::query(&removed(table)).bind(user_id).execute(&mut *tx).await?.rows_affected();
                if let Some(count) = counted.get_mut(index) {
                    *count = removed;
                }
            }
            let [devices, passkeys, recovery_codes] = counted;
            sqlx::query("UPDATE users SET mfa_backup_code_acknowledgement = NULL WHERE id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            MfaReset { devices, passkeys, recovery_codes }
        }))
    }

    /// Ends every session of a user (their JWTs are refused from now on, and so are the elevated tokens bound
    /// to them). Returns how many were live.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn revoke_user_sessions(&self, user_id: &str, now: i64) -> Result<u64, StoreError> {
        let result = with_pool!(self, |pool| sqlx::query(
            "UPDATE sessions SET revoked = 1 WHERE user_id = $1 AND revoked = 0 AND expires_at > $2",
        )
        .bind(user_id)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(result)
    }

    /// Up to `limit` users of an environment with ids after `after`, in id order (keyset pagination: stable
    /// while users are added).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn list_users(
        &self,
        environment_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<UserRow>, StoreError> {
        Ok(with_pool!(self, |pool| sqlx::query_as(
            "SELECT id, environment_id, email, phone_number, mfa_backup_code_acknowledgement FROM users \
             WHERE environment_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(environment_id)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(pool)
        .await?))
    }

    /// Deletes a user and everything that is theirs (credentials, sessions, MFA, codes sent for them) in one
    /// transaction. Returns whether the user existed.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn delete_user(&self, environment_id: &str, user_id: &str) -> Result<bool, StoreError> {
        Ok(with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let existed = sqlx::query("DELETE FROM users WHERE id = $1 AND environment_id = $2")
                .bind(user_id)
                .bind(environment_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
            if existed {
                for table in [
                    "credentials",
                    "sessions",
                    "otp_verifications",
                    "mfa_devices",
                    "passkeys",
                    "webauthn_challenges",
                    "recovery_codes",
                    "recovery_code_sets",
                    "mfa_lockouts",
                ] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            existed
        }))
    }
}
