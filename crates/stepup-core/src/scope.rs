//! `Scope` and `ScopeSet`: what an elevated token is good for.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A scope of an elevated access token (`wallet:export`, `credential:unlink`, ...).
///
/// The same type as the wire's [`stepup_proto::TokenScope`]: one name for one idea.
pub use stepup_proto::TokenScope as Scope;

/// A normalised set of scopes: sorted by wire form and free of duplicates, so two sets with the same scopes are
/// equal whatever order they were given in. Cheap to clone (shared, immutable).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(from = "Vec<Scope>", into = "Vec<Scope>")]
pub struct ScopeSet {
    scopes: Arc<[Scope]>,
    /// Bit `i` is set when `Scope::KNOWN[i]` is in the set. `contains` runs on every scoped request, and a bit
    /// test is the cheapest membership check there is.
    known: u64,
}

// The mask has one bit per known scope.
const _: () = assert!(Scope::KNOWN.len() <= 64);

/// A hand-built `Scope::Unknown("wallet:export")` is the known scope `WalletExport`: make it so.
fn canonical(scope: Scope) -> Scope {
    match scope {
        Scope::Unknown(wire) => Scope::parse(&wire),
        known => known,
    }
}

fn bit(scope: &Scope) -> u64 {
    scope.known_index().map_or(0, |i| 1 << i)
}

impl ScopeSet {
    /// The empty set.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// A set holding one scope.
    #[must_use]
    pub fn one(scope: Scope) -> Self {
        let scope = canonical(scope);
        Self { known: bit(&scope), scopes: Arc::from([scope]) }
    }

    /// Parses a space-delimited list, as in a JWT `scope` claim or an RFC 9470 challenge.
    #[must_use]
    pub fn from_space_delimited(scopes: &str) -> Self {
        scopes.split_ascii_whitespace().map(Scope::parse).collect()
    }

    /// The scopes, sorted.
    #[must_use]
    pub fn as_slice(&self) -> &[Scope] {
        &self.scopes
    }

    /// Iterates over the scopes in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Scope> {
        self.scopes.iter()
    }

    /// Number of scopes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.scopes.len()
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }

    /// Whether `scope` is in the set.
    #[must_use]
    pub fn contains(&self, scope: &Scope) -> bool {
        match scope.known_index() {
            Some(i) => self.contains_known(i),
            None => self.scopes.binary_search(scope).is_ok(),
        }
    }

    /// Whether the set holds the known scope at `Scope::KNOWN[index]` (a bit test).
    pub(crate) fn contains_known(&self, index: usize) -> bool {
        index < 64 && self.known & (1 << index) != 0
    }

    /// Whether every scope of `other` is in this set.
    #[must_use]
    pub fn covers(&self, other: &ScopeSet) -> bool {
        other.known & !self.known == 0
            && other.iter().filter(|s| !s.is_known()).all(|scope| self.scopes.binary_search(scope).is_ok())
    }

    /// The union of both sets.
    #[must_use]
    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        if self.covers(other) {
            return self.clone();
        }
        self.iter().chain(other.iter()).cloned().collect()
    }

    /// The scopes joined by single spaces (the JWT `scope` claim form).
    #[must_use]
    pub fn to_space_delimited(&self) -> String {
        let parts: Vec<&str> = self.iter().map(Scope::as_str).collect();
        parts.join(" ")
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        let mut scopes: Vec<Scope> = iter.into_iter().map(canonical).collect();
        scopes.sort();
        scopes.dedup();
        let known = scopes.iter().fold(0, |mask, scope| mask | bit(scope));
        Self { scopes: scopes.into(), known }
    }
}

impl std::ops::Deref for ScopeSet {
    type Target = [Scope];

    fn deref(&self) -> &[Scope] {
        &self.scopes
    }
}

impl From<Vec<Scope>> for ScopeSet {
    fn from(scopes: Vec<Scope>) -> Self {
        scopes.into_iter().collect()
    }
}

impl From<&[Scope]> for ScopeSet {
    fn from(scopes: &[Scope]) -> Self {
        scopes.iter().cloned().collect()
    }
}

impl<const N: usize> From<[Scope; N]> for ScopeSet {
    fn from(scopes: [Scope; N]) -> Self {
        scopes.into_iter().collect()
    }
}

impl From<Scope> for ScopeSet {
    fn from(scope: Scope) -> Self {
        Self::one(scope)
    }
}

impl From<ScopeSet> for Vec<Scope> {
    fn from(set: ScopeSet) -> Self {
        set.scopes.to_vec()
    }
}

impl<'a> IntoIterator for &'a ScopeSet {
    type Item = &'a Scope;
    type IntoIter = std::slice::Iter<'a, Scope>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_space_delimited())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_sorted_and_deduplicated() {
        let set: ScopeSet = vec![Scope::WalletExport, Scope::UserDelete, Scope::WalletExport].into();
        assert_eq!(set.as_slice(), &[Scope::UserDelete, Scope::WalletExport]);
        assert_eq!(set, ScopeSet::from([Scope::WalletExport, Scope::UserDelete]));
        assert_eq!(set.to_space_delimited(), "user:delete wallet:export");
    }

    #[test]
    fn contains_covers_union() {
        let a = ScopeSet::from([Scope::WalletExport, Scope::UserDelete]);
        let b = ScopeSet::one(Scope::WalletExport);
        assert!(a.contains(&Scope::UserDelete));
        assert!(a.covers(&b));
        assert!(!b.covers(&a));
        assert!(a.covers(&ScopeSet::empty()));
        assert_eq!(b.union(&ScopeSet::one(Scope::UserDelete)), a);
    }

    #[test]
    fn hand_built_unknown_known_scopes_are_canonicalised() {
        let set = ScopeSet::from([Scope::Unknown("wallet:export".into()), Scope::Unknown("x:y".into())]);
        assert!(set.contains(&Scope::WalletExport));
        assert!(set.contains(&Scope::Unknown("wallet:export".into())));
        assert!(set.contains(&Scope::Unknown("x:y".into())));
        assert!(!set.contains(&Scope::Unknown("x:z".into())));
        assert!(set.covers(&ScopeSet::one(Scope::WalletExport)));
        assert!(!ScopeSet::one(Scope::WalletExport).covers(&set));
        assert_eq!(set, ScopeSet::from([Scope::WalletExport, Scope::Unknown("x:y".into())]));
    }

    #[test]
    fn space_delimited_parse_ignores_extra_whitespace_and_keeps_unknown_scopes() {
        let set = ScopeSet::from_space_delimited("  wallet:export\tnew:scope  wallet:export ");
        assert_eq!(set.as_slice(), &[Scope::Unknown("new:scope".into()), Scope::WalletExport]);
        assert!(ScopeSet::from_space_delimited("   ").is_empty());
    }

    #[test]
    fn serde_is_a_normalised_list() {
        let set: ScopeSet =
            serde_json::from_str(r#"["wallet:export","user:delete","wallet:export"]"#).unwrap();
        assert_eq!(serde_json::to_string(&set).unwrap(), r#"["user:delete","wallet:export"]"#);
    }
}
