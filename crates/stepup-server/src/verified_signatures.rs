//! `VerifiedSignatures`: the session tokens whose Ed25519 signature this replica has already checked (or made),
//! so that a session's many requests pay for one signature check instead of one each (about 50 µs of CPU on
//! every signed-in request: docs/benchmarks.md).
//!
//! Only the signature check is remembered. Everything else is checked on every request as before: the header
//! must name a key the ring holds *now* (a key retired or dropped after a leak stops its tokens here at once),
//! the issuer, audience, `iat`/`nbf`, expiry and use, and the session's database row — so a session ended on any
//! replica is refused on every replica at once. A token is remembered by the SHA-256 of all its bytes: header,
//! claims and signature, so a remembered signature can never vouch for other claims.
//!
//! Bounded: [`CAPACITY`] digests in [`SHARDS`] shards; a full shard is emptied (its tokens are checked again on
//! their next use). Only tokens that verified (or that this replica signed) go in, so requests with forged tokens
//! cannot fill it.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use sha2::{Digest as _, Sha256};

/// How many digests are held at most (about 48 bytes each: a few MiB per environment).
pub const CAPACITY: usize = 131_072;
/// Shards, each with its own lock, so concurrent requests rarely wait for one another.
pub const SHARDS: usize = 16;

/// Digests of tokens whose signature checked out. See the module docs.
#[derive(Debug)]
pub struct VerifiedSignatures {
    shards: [Mutex<HashSet<[u8; 32]>>; SHARDS],
}

impl Default for VerifiedSignatures {
    fn default() -> Self {
        Self { shards: std::array::from_fn(|_| Mutex::new(HashSet::new())) }
    }
}

impl VerifiedSignatures {
    /// Whether `token`'s signature was checked (or made) here.
    #[must_use]
    pub fn contains(&self, token: &str) -> bool {
        let digest = digest(token);
        self.shard(&digest).lock().unwrap_or_else(PoisonError::into_inner).contains(&digest)
    }

    /// Remembers that `token`'s signature is good.
    pub fn remember(&self, token: &str) {
        let digest = digest(token);
        let mut shard = self.shard(&digest).lock().unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= CAPACITY / SHARDS {
            shard.clear();
        }
        shard.insert(digest);
    }

    /// How many digests are held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().unwrap_or_else(PoisonError::into_inner).len()).sum()
    }

    /// Whether none is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, digest: &[u8; 32]) -> &Mutex<HashSet<[u8; 32]>> {
        &self.shards[usize::from(digest[0]) % SHARDS]
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_exact_tokens_only() {
        let seen = VerifiedSignatures::default();
        assert!(!seen.contains("a.b.c"));
        seen.remember("a.b.c");
        assert!(seen.contains("a.b.c"));
        assert!(!seen.contains("a.b.c "), "a token differing in any byte is another token");
        assert!(!seen.contains("a.x.c"));
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn stays_bounded() {
        let seen = VerifiedSignatures::default();
        for i in 0..(CAPACITY + CAPACITY / 2) {
            seen.remember(&format!("token-{i}"));
        }
        assert!(seen.len() <= CAPACITY, "{} digests held", seen.len());
        assert!(seen.contains(&format!("token-{}", CAPACITY + CAPACITY / 2 - 1)), "the newest is held");
    }
}
