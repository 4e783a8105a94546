//! The in-process store: one backend instance, no replicas.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{SingleUseStore, SpentToken};
use crate::error::StoreError;

/// Records spent tokens in this process's memory. Correct for a single instance only: a replica next to it
/// keeps its own record, so a token spent here could be spent there again — use [`super::RedisStore`] or
/// [`super::PostgresStore`] for replicas.
#[derive(Debug, Default)]
pub struct InProcessStore {
    spent: Mutex<Spent>,
}

#[derive(Debug, Default)]
struct Spent {
    /// `(issuer, token id)` -> keep until.
    records: HashMap<(String, String), u64>,
    /// The size at which expired records are next swept: doubling keeps the sweeps amortised O(1) per spend.
    sweep_at: usize,
}

/// The fewest records before the first sweep.
const FIRST_SWEEP: usize = 1024;

impl InProcessStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// How many records are kept (expired ones go at the next sweep).
    #[must_use]
    pub fn len(&self) -> usize {
        self.spent.lock().map_or(0, |spent| spent.records.len())
    }

    /// Whether no record is kept.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl SingleUseStore for InProcessStore {
    async fn spend(&self, token: SpentToken<'_>) -> Result<bool, StoreError> {
        // Held for a hash lookup and insert only; never across an await.
        let mut spent =
            self.spent.lock().map_err(|_| StoreError::new("in-process", "the lock is poisoned"))?;
        if spent.records.len() >= spent.sweep_at.max(FIRST_SWEEP) {
            spent.records.retain(|_, keep_until| *keep_until > token.now);
            spent.sweep_at = spent.records.len().saturating_mul(2);
        }
        let key = (token.issuer.to_owned(), token.token_id.to_owned());
        match spent.records.get(&key) {
            Some(keep_until) if *keep_until > token.now => Ok(false),
            _ => {
                spent.records.insert(key, token.keep_until);
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: &str, keep_until: u64, now: u64) -> SpentToken<'_> {
        SpentToken { issuer: "i", token_id: id, keep_until, now }
    }

    #[tokio::test]
    async fn a_token_is_spent_once_and_expired_records_are_swept() {
        let store = InProcessStore::new();
        assert!(store.spend(token("a", 100, 10)).await.unwrap());
        assert!(!store.spend(token("a", 100, 11)).await.unwrap());
        // Same id from another issuer is another token.
        assert!(store.spend(SpentToken { issuer: "j", ..token("a", 100, 11) }).await.unwrap());
        for i in 0..FIRST_SWEEP {
            assert!(store.spend(token(&i.to_string(), 50, 10)).await.unwrap());
        }
        // At t=60 the short records are past: their ids spend again, and the sweeps keep the map to about
        // twice what is alive however many tokens come and go.
        assert!(store.spend(token("0", 100, 60)).await.unwrap());
        assert!(!store.spend(token("a", 100, 61)).await.unwrap());
        for i in 0..10 * FIRST_SWEEP {
            assert!(store.spend(token(&format!("n{i}"), 61 + i as u64, 60 + i as u64)).await.unwrap());
        }
        assert!(store.len() <= 2 * FIRST_SWEEP + 2, "{}", store.len());
    }
}
