//! The database as the guard's single-use store: `consumed_tokens`, shared by every replica, so a spent token is
//! spent for all of them (the insert's primary key decides races). Housekeeping purges expired rows.

use async_trait::async_trait;
use stepup_guard::{SingleUseStore, SpentToken};

use super::{Store, StoreError};

/// [`Store::consume_token`] behind `stepup-guard`'s [`SingleUseStore`]. Every token it sees is this server's
/// own (the guard trusts no other issuer), so the issuer is not part of the key.
#[derive(Debug, Clone)]
pub struct DatabaseSingleUse {
    store: Store,
}

impl DatabaseSingleUse {
    /// The store on `store`'s database.
    #[must_use]
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[async_trait]
impl SingleUseStore for DatabaseSingleUse {
    async fn spend(&self, token: SpentToken<'_>) -> Result<bool, stepup_guard::StoreError> {
        let keep_until = i64::try_from(token.keep_until).unwrap_or(i64::MAX);
        self.store
            .consume_token(token.token_id, keep_until)
            .await
            .map_err(|e| stepup_guard::StoreError::new("database", e))
    }
}

impl From<stepup_guard::StoreError> for StoreError {
    /// The database failed under the guard: kept as an I/O error of the database, so it answers as every other
    /// storage failure does (503, counted as a database error).
    fn from(error: stepup_guard::StoreError) -> Self {
        StoreError::Sqlx(sqlx::Error::Io(std::io::Error::other(error.to_string())))
    }
}
