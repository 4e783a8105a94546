//! Passkeys (webauthn-rs `Passkey` as JSON, with its counter) and single-use ceremony states.

use super::{Store, StoreError, with_pool};

/// A stored passkey.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PasskeyRow {
    /// Record id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// WebAuthn credential id, base64url.
    pub credential_id: String,
    /// webauthn-rs `Passkey`, JSON.
    pub passkey: String,
    /// Origin it was registered at.
    pub origin: Option<String>,
    /// Created, Unix seconds.
    pub created_at: i64,
    /// Last used or changed, Unix seconds.
    pub updated_at: i64,
}

/// What a stored WebAuthn ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    /// Registering a new passkey.
    Registration,
    /// Asserting a registered one.
    Authentication,
}

impl CeremonyKind {
    /// Its name in the `kind` column.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::Registration => "registration",
            CeremonyKind::Authentication => "authentication",
        }
    }
}

/// The most ceremonies of one kind (registration, authentication) a user has open at once.
pub const MAX_OPEN_CEREMONIES: i64 = 5;

impl Store {
    /// Stores a passkey.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn insert_passkey(&self, row: &PasskeyRow) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO passkeys (id, user_id, credential_id, passkey, origin, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&row.id)
            .bind(&row.user_id)
            .bind(&row.credential_id)
            .bind(&row.passkey)
            .bind(&row.origin)
            .bind(row.created_at)
            .bind(row.updated_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// A user's passkeys, oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn passkeys(&self, user_id: &str) -> Result<Vec<PasskeyRow>, StoreError> {
        Ok(with_pool!(self, |pool| sqlx::query_as(
            "SELECT id, user_id, credential_id, passkey, origin, created_at, updated_at FROM passkeys \
             WHERE user_id = $1 ORDER BY created_at, id",
        )
        .bind(user_id)
        .fetch_all(pool)
        .await?))
    }

    /// Saves a passkey's new state (its counter) after a use.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn update_passkey(&self, id: &str, passkey: &str, now: i64) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE passkeys SET passkey = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(passkey)
                .bind(now)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Deletes a passkey of a user. Returns whether it existed.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn delete_passkey(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        let result =
            with_pool!(self, |pool| sqlx::query("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
                .bind(id)
                .bind(user_id)
                .execute(pool)
                .await?
                .rows_affected());
        Ok(result == 1)
    }

    /// Stores a ceremony state under its challenge.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn insert_challenge(
        &self,
        challenge: &str,
        user_id: &str,
        kind: CeremonyKind,
        state: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO webauthn_challenges (challenge, user_id, kind, state, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(challenge)
            .bind(user_id)
            .bind(kind.as_str())
            .bind(state)
            .bind(expires_at)
            .execute(pool)
            .await?;
            // A user has a few ceremonies open at most (a tab or two): older ones beyond that are dropped, so one
            // session cannot fill the table.
            // The new one always stays; of the others, the newest `MAX_OPEN_CEREMONIES - 1`.
            sqlx::query(
                "DELETE FROM webauthn_challenges WHERE user_id = $1 AND kind = $2 AND challenge <> $3 \
                 AND challenge NOT IN (SELECT challenge FROM webauthn_challenges WHERE user_id = $1 AND kind = $2 \
                 AND challenge <> $3 ORDER BY expires_at DESC, challenge DESC LIMIT $4)",
            )
            .bind(user_id)
            .bind(kind.as_str())
            .bind(challenge)
            .bind(MAX_OPEN_CEREMONIES - 1)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Takes a ceremony state: deletes it and returns it if it is this user's, of this kind and unexpired. A
    /// challenge is thus used once, success or failure (webauthn-rs itself would accept it twice).
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn take_challenge(
        &self,
        challenge: &str,
        user_id: &str,
        kind: CeremonyKind,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let taken: Option<(String, String, String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "DELETE FROM webauthn_challenges WHERE challenge = $1 RETURNING user_id, kind, state, expires_at",
            )
            .bind(challenge)
            .fetch_optional(pool)
            .await?
        });
        Ok(taken.and_then(|(owner, stored_kind, state, expires_at)| {
            (owner == user_id && stored_kind == kind.as_str() && expires_at > now).then_some(state)
        }))
    }
}
