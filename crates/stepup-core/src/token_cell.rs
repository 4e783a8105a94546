//! `TokenCell`: the engine's store of elevated tokens, read without locks.
//!
//! Every API call that needs a scope reads the cell, so reads must be cheap and never wait for a writer: the
//! cell is an [`ArcSwap`] of an immutable [`TokenSet`]. A read is one atomic load and a scan of a short list.
//! Writers build a new set and swap it in; a writer never blocks a reader.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use crate::scope::{Scope, ScopeSet};
use crate::time::{SharedClock, SystemClock, UnixTime};
use crate::token::{ElevatedToken, TokenId};

/// An immutable list of tokens, at most one per scope set, newest first.
#[derive(Debug, Default, Clone)]
pub struct TokenSet {
    tokens: Vec<Arc<ElevatedToken>>,
}

impl TokenSet {
    /// The tokens, newest first.
    #[must_use]
    pub fn tokens(&self) -> &[Arc<ElevatedToken>] {
        &self.tokens
    }

    /// Number of tokens (expired ones not yet pruned included).
    #[must_use]
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the set holds no token.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The newest unexpired token that grants `scope`.
    #[must_use]
    pub fn find(&self, scope: &Scope, now: UnixTime) -> Option<&Arc<ElevatedToken>> {
        self.position(scope, now).and_then(|i| self.tokens.get(i))
    }

    /// The newest unexpired token that grants every scope of `scopes`.
    #[must_use]
    pub fn find_covering(&self, scopes: &ScopeSet, now: UnixTime) -> Option<&Arc<ElevatedToken>> {
        self.position_covering(scopes, now).and_then(|i| self.tokens.get(i))
    }

    fn position(&self, scope: &Scope, now: UnixTime) -> Option<usize> {
        // The hot path of every scoped request: resolve the scope to its bit once, then test each token's mask.
        match scope.known_index() {
            Some(index) => self
                .tokens
                .iter()
                .position(|token| !token.is_expired_at(now) && token.scopes().contains_known(index)),
            None => self.tokens.iter().position(|token| !token.is_expired_at(now) && token.covers(scope)),
        }
    }

    fn position_covering(&self, scopes: &ScopeSet, now: UnixTime) -> Option<usize> {
        self.tokens.iter().position(|token| !token.is_expired_at(now) && token.covers_all(scopes))
    }

    /// The token with this id, expired or not.
    #[must_use]
    pub fn by_id(&self, id: &TokenId) -> Option<&Arc<ElevatedToken>> {
        self.tokens.iter().find(|token| token.id() == id)
    }

    fn with_inserted(&self, token: Arc<ElevatedToken>, now: UnixTime) -> TokenSet {
        let mut tokens = Vec::with_capacity(self.tokens.len() + 1);
        tokens.push(Arc::clone(&token));
        tokens.extend(
            self.tokens
                .iter()
                .filter(|old| {
                    !old.is_expired_at(now) && old.scopes() != token.scopes() && old.id() != token.id()
                })
                .cloned(),
        );
        TokenSet { tokens }
    }

    fn without(&self, id: &TokenId, now: UnixTime) -> TokenSet {
        TokenSet {
            tokens: self.tokens.iter().filter(|t| t.id() != id && !t.is_expired_at(now)).cloned().collect(),
        }
    }
}

/// A token found by [`TokenCell::get`], read in place from the cell's current set.
///
/// Why not an `Arc<ElevatedToken>`: cloning one touches the token's shared reference count, which every
/// concurrent request would contend on. A `TokenRef` pins the set through arc-swap's per-thread slots instead.
/// Keep it briefly (long enough to build a header); call [`to_arc`](Self::to_arc) to keep the token longer.
pub struct TokenRef {
    set: Guard<Arc<TokenSet>>,
    index: usize,
}

impl TokenRef {
    fn new(set: Guard<Arc<TokenSet>>, index: Option<usize>) -> Option<Self> {
        // Only positions of tokens that exist become a TokenRef, so `deref` always finds its token.
        index.filter(|i| *i < set.tokens.len()).map(|index| Self { set, index })
    }

    /// The token, kept alive on its own.
    #[must_use]
    pub fn to_arc(&self) -> Arc<ElevatedToken> {
        Arc::clone(&self.set.tokens[self.index])
    }
}

impl Deref for TokenRef {
    type Target = ElevatedToken;

    fn deref(&self) -> &ElevatedToken {
        &self.set.tokens[self.index]
    }
}

impl fmt::Debug for TokenRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// The shared token store. Clones share the same tokens.
///
/// - [`get`](Self::get) is lock-free and skips expired tokens.
/// - [`claim`](Self::claim) hands a single-use token to exactly one caller, however many race for it.
/// - [`insert`](Self::insert) keeps one token per normalised scope set (a new token replaces the old one for the
///   same set) and prunes expired tokens.
#[derive(Debug, Clone)]
pub struct TokenCell {
    inner: Arc<ArcSwap<TokenSet>>,
    clock: SharedClock,
}

impl Default for TokenCell {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenCell {
    /// An empty cell on the system clock.
    #[must_use]
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty cell that reads time from `clock`.
    #[must_use]
    pub fn with_clock(clock: SharedClock) -> Self {
        Self { inner: Arc::new(ArcSwap::from_pointee(TokenSet::default())), clock }
    }

    /// The cell's clock.
    #[must_use]
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The current time by the cell's clock.
    #[must_use]
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// The newest unexpired token granting `scope`, without removing it (even if single-use: use
    /// [`claim`](Self::claim) to spend one). Lock-free and wait-free for readers.
    #[must_use]
    pub fn get(&self, scope: &Scope) -> Option<TokenRef> {
        self.get_at(scope, self.clock.now())
    }

    /// [`get`](Self::get) at a given time.
    #[must_use]
    pub fn get_at(&self, scope: &Scope, now: UnixTime) -> Option<TokenRef> {
        let set = self.inner.load();
        let index = set.position(scope, now);
        TokenRef::new(set, index)
    }

    /// The newest unexpired token granting every scope of `scopes`. Lock-free.
    #[must_use]
    pub fn get_covering(&self, scopes: &ScopeSet) -> Option<TokenRef> {
        let set = self.inner.load();
        let index = set.position_covering(scopes, self.clock.now());
        TokenRef::new(set, index)
    }

    /// Claims a token for one request for `scope`: a multi-use token is returned and stays (any number of
    /// requests may claim it); a single-use token is removed, and of any number of racing callers exactly one
    /// gets it.
    #[must_use]
    pub fn claim(&self, scope: &Scope) -> Option<Arc<ElevatedToken>> {
        self.claim_at(scope, self.clock.now())
    }

    /// [`claim`](Self::claim) at a given time.
    #[must_use]
    pub fn claim_at(&self, scope: &Scope, now: UnixTime) -> Option<Arc<ElevatedToken>> {
        loop {
            let current = self.inner.load();
            let token = Arc::clone(current.find(scope, now)?);
            if !token.is_single_use() {
                return Some(token);
            }
            let next = Arc::new(current.without(token.id(), now));
            // The swap succeeds only if nobody changed the set since we loaded it. `current` keeps the old set
            // alive, so its address cannot be reused by a newer set (no ABA).
            let previous = self.inner.compare_and_swap(&*current, next);
            if Arc::ptr_eq(&*previous, &*current) {
                return Some(token);
            }
        }
    }

    /// Stores a token, replacing the one with the same scope set, and prunes expired tokens. Returns the stored
    /// token.
    pub fn insert(&self, token: ElevatedToken) -> Arc<ElevatedToken> {
        self.insert_at(Arc::new(token), self.clock.now())
    }

    /// [`insert`](Self::insert) of a shared token at a given time.
    pub fn insert_at(&self, token: Arc<ElevatedToken>, now: UnixTime) -> Arc<ElevatedToken> {
        self.inner.rcu(|current| current.with_inserted(Arc::clone(&token), now));
        token
    }

    /// Removes the token with this id, pruning expired ones in the same write. Returns whether it was there; when
    /// it was not, nothing is written.
    pub fn remove(&self, id: &TokenId) -> bool {
        // Usually the token is already gone (a single-use token is removed by `claim` before the flow hears of
        // it): a read is enough then, and readers never see a write.
        if self.inner.load().by_id(id).is_none() {
            return false;
        }
        let now = self.clock.now();
        let previous = self.inner.rcu(|current| current.without(id, now));
        previous.by_id(id).is_some()
    }

    /// Drops every token expired at the cell's current time. Returns how many were dropped.
    pub fn prune(&self) -> usize {
        self.prune_at(self.clock.now())
    }

    /// [`prune`](Self::prune) at a given time.
    pub fn prune_at(&self, now: UnixTime) -> usize {
        let mut pruned = 0;
        self.inner.rcu(|current| {
            let kept: Vec<_> = current.tokens.iter().filter(|t| !t.is_expired_at(now)).cloned().collect();
            pruned = current.len() - kept.len();
            TokenSet { tokens: kept }
        });
        pruned
    }

    /// Empties the cell.
    pub fn clear(&self) {
        if !self.inner.load().is_empty() {
            self.inner.store(Arc::new(TokenSet::default()));
        }
    }

    /// A consistent view of all tokens at this moment (expired ones not yet pruned included).
    #[must_use]
    pub fn snapshot(&self) -> Arc<TokenSet> {
        self.inner.load_full()
    }

    /// The earliest expiry among the stored tokens, for the owner's expiry timer.
    #[must_use]
    pub fn next_expiry(&self) -> Option<UnixTime> {
        self.inner.load().tokens.iter().map(|t| t.expires_at()).min()
    }
}
