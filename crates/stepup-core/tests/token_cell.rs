//! Token cell: unit behaviour, a property test against a plain model, and the exactly-once race.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use proptest::prelude::*;
use stepup_core::testkit::strategy::{arb_scope, arb_scope_set};
use stepup_core::testkit::token;
use stepup_core::{ElevatedToken, ManualClock, Scope, ScopeSet, TokenCell, TokenId, UnixTime};

const NOW: UnixTime = UnixTime(10_000);

fn cell() -> (TokenCell, ManualClock) {
    let clock = ManualClock::new(NOW);
    (TokenCell::with_clock(Arc::new(clock.clone())), clock)
}

fn tok(scopes: &[Scope], ttl: u64, single_use: bool, id: &str) -> ElevatedToken {
    (*token(&ScopeSet::from(scopes), NOW.plus_secs(ttl), single_use, id)).clone()
}

#[test]
fn get_finds_a_covering_unexpired_token_and_skips_expired_ones() {
    let (cell, clock) = cell();
    assert!(cell.get(&Scope::WalletExport).is_none());
    cell.insert(tok(&[Scope::WalletExport, Scope::UserDelete], 10, false, "a"));
    assert_eq!(cell.get(&Scope::UserDelete).unwrap().id().as_str(), "a");
    assert!(cell.get(&Scope::WalletSign).is_none());
    assert!(cell.get_covering(&ScopeSet::from([Scope::WalletExport, Scope::UserDelete])).is_some());
    assert!(cell.get_covering(&ScopeSet::from([Scope::WalletExport, Scope::WalletSign])).is_none());
    clock.advance(10);
    assert!(cell.get(&Scope::UserDelete).is_none(), "exp <= now is expired");
    assert_eq!(cell.snapshot().len(), 1, "reads do not prune");
    assert_eq!(cell.prune(), 1);
    assert!(cell.snapshot().is_empty());
}

#[test]
fn one_token_per_scope_set_newest_first() {
    let (cell, _) = cell();
    cell.insert(tok(&[Scope::WalletExport], 10, false, "old"));
    cell.insert(tok(&[Scope::WalletExport, Scope::UserDelete], 10, false, "wide"));
    cell.insert(tok(&[Scope::WalletExport], 20, false, "new"));
    let ids: Vec<_> = cell.snapshot().tokens().iter().map(|t| t.id().as_str().to_owned()).collect();
    assert_eq!(ids, ["new", "wide"]);
    assert_eq!(cell.get(&Scope::WalletExport).unwrap().id().as_str(), "new");
    assert_eq!(cell.next_expiry(), Some(NOW.plus_secs(10)));
}

#[test]
fn insert_prunes_expired_tokens() {
    let (cell, clock) = cell();
    cell.insert(tok(&[Scope::WalletSign], 5, false, "short"));
    clock.advance(6);
    cell.insert(tok(&[Scope::WalletExport], 60, false, "fresh"));
    assert_eq!(cell.snapshot().len(), 1);
}

#[test]
fn take_spends_single_use_tokens_once_and_leaves_multi_use_ones() {
    let (cell, _) = cell();
    cell.insert(tok(&[Scope::WalletExport], 10, true, "once"));
    cell.insert(tok(&[Scope::WalletSign], 10, false, "many"));
    assert_eq!(cell.get(&Scope::WalletExport).unwrap().id().as_str(), "once", "get does not spend");
    assert_eq!(cell.claim(&Scope::WalletExport).unwrap().id().as_str(), "once");
    assert!(cell.claim(&Scope::WalletExport).is_none());
    for _ in 0..3 {
        assert_eq!(cell.claim(&Scope::WalletSign).unwrap().id().as_str(), "many");
    }
}

#[test]
fn remove_and_clear() {
    let (cell, _) = cell();
    cell.insert(tok(&[Scope::WalletExport], 10, false, "a"));
    cell.insert(tok(&[Scope::WalletSign], 10, false, "b"));
    assert!(cell.remove(&TokenId::new("a")));
    assert!(!cell.remove(&TokenId::new("a")));
    assert_eq!(cell.snapshot().len(), 1);
    cell.clear();
    assert!(cell.snapshot().is_empty());
    assert_eq!(cell.next_expiry(), None);
}

#[test]
fn clones_share_tokens() {
    let (cell, _) = cell();
    let reader = cell.clone();
    cell.insert(tok(&[Scope::WalletExport], 10, false, "a"));
    assert!(reader.get(&Scope::WalletExport).is_some());
}

// --- Property test against a plain model ---

#[derive(Debug, Clone)]
enum Op {
    Insert { scopes: ScopeSet, ttl: u64, single_use: bool, id: u8 },
    Get(Scope),
    Take(Scope),
    Remove(u8),
    Prune,
    Advance(u64),
    Clear,
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (arb_scope_set(), 1..30u64, any::<bool>(), 0..6u8)
            .prop_map(|(scopes, ttl, single_use, id)| Op::Insert { scopes, ttl, single_use, id }),
        3 => arb_scope().prop_map(Op::Get),
        3 => arb_scope().prop_map(Op::Take),
        1 => (0..6u8).prop_map(Op::Remove),
        1 => Just(Op::Prune),
        2 => (0..15u64).prop_map(Op::Advance),
        1 => Just(Op::Clear),
    ]
}

/// The model: a list, newest first, of (id, scopes, expiry, single-use).
#[derive(Debug, Default)]
struct Model {
    now: u64,
    tokens: Vec<(String, ScopeSet, u64, bool)>,
}

impl Model {
    fn live(&self) -> Vec<String> {
        self.tokens.iter().filter(|t| t.2 > self.now).map(|t| t.0.clone()).collect()
    }
    fn find(&self, scope: &Scope) -> Option<(String, bool)> {
        self.tokens.iter().find(|t| t.2 > self.now && t.1.contains(scope)).map(|t| (t.0.clone(), t.3))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn cell_matches_the_model(ops in prop::collection::vec(arb_op(), 1..60)) {
        let clock = ManualClock::new(UnixTime(0));
        let cell = TokenCell::with_clock(Arc::new(clock.clone()));
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Insert { scopes, ttl, single_use, id } => {
                    // Ids repeat across inserts on purpose: a token with a known id replaces the old one.
                    let id = format!("t{id}");
                    let exp = model.now + ttl;
                    cell.insert((*token(&scopes, UnixTime(exp), single_use, &id)).clone());
                    let now = model.now;
                    model.tokens.retain(|t| t.1 != scopes && t.0 != id && t.2 > now);
                    model.tokens.insert(0, (id, scopes, exp, single_use));
                }
                Op::Get(scope) => {
                    let got = cell.get(&scope).map(|t| t.id().as_str().to_owned());
                    prop_assert_eq!(got, model.find(&scope).map(|f| f.0));
                }
                Op::Take(scope) => {
                    let got = cell.claim(&scope).map(|t| t.id().as_str().to_owned());
                    let expected = model.find(&scope);
                    prop_assert_eq!(got, expected.as_ref().map(|f| f.0.clone()));
                    if let Some((id, true)) = expected {
                        let now = model.now;
                        model.tokens.retain(|t| t.0 != id && t.2 > now);
                    }
                }
                Op::Remove(id) => {
                    let id = format!("t{id}");
                    let was_there = model.tokens.iter().any(|t| t.0 == id);
                    prop_assert_eq!(cell.remove(&TokenId::new(&id)), was_there);
                    // Removing an absent token writes nothing, so it prunes nothing either.
                    if was_there {
                        let now = model.now;
                        model.tokens.retain(|t| t.0 != id && t.2 > now);
                    }
                }
                Op::Prune => {
                    let now = model.now;
                    let before = model.tokens.len();
                    model.tokens.retain(|t| t.2 > now);
                    prop_assert_eq!(cell.prune(), before - model.tokens.len());
                }
                Op::Advance(secs) => {
                    clock.advance(secs);
                    model.now += secs;
                }
                Op::Clear => {
                    cell.clear();
                    model.tokens.clear();
                }
            }
            let now = cell.now();
            let live: Vec<String> = cell.snapshot().tokens().iter()
                .filter(|t| !t.is_expired_at(now)).map(|t| t.id().as_str().to_owned()).collect();
            prop_assert_eq!(live, model.live());
        }
    }
}

// --- The race: exactly one taker wins a single-use token ---

fn race(threads: usize, rounds: usize, with_writer: bool) {
    let (cell, _) = cell();
    let start = Barrier::new(threads + 1 + usize::from(with_writer));
    let done = Barrier::new(threads + 1 + usize::from(with_writer));
    let wins = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..rounds {
                    start.wait();
                    if cell.claim(&Scope::WalletExport).is_some() {
                        wins.fetch_add(1, Ordering::SeqCst);
                    }
                    done.wait();
                }
            });
        }
        if with_writer {
            // A writer that keeps swapping in unrelated tokens, so takers' compare-and-swap often fails and must
            // retry.
            s.spawn(|| {
                for round in 0..rounds {
                    start.wait();
                    for i in 0..4 {
                        cell.insert(tok(&[Scope::WalletSign], 100, false, &format!("noise-{round}-{i}")));
                    }
                    done.wait();
                }
            });
        }
        for round in 0..rounds {
            cell.insert(tok(&[Scope::WalletExport], 100, true, &format!("once-{round}")));
            let before = wins.load(Ordering::SeqCst);
            start.wait();
            done.wait();
            assert_eq!(wins.load(Ordering::SeqCst), before + 1, "round {round} with {threads} takers");
            assert!(cell.get(&Scope::WalletExport).is_none());
        }
    });
}

#[test]
fn exactly_one_of_2_to_8_racing_takers_gets_a_single_use_token() {
    for threads in 2..=8 {
        race(threads, 400, false);
    }
}

#[test]
fn exactly_once_holds_while_a_writer_swaps_the_set() {
    for threads in [2, 4, 8] {
        race(threads, 400, true);
    }
}

#[test]
fn everyone_gets_a_multi_use_token() {
    let (cell, _) = cell();
    cell.insert(tok(&[Scope::WalletSign], 100, false, "many"));
    let got = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..100 {
                    if cell.claim(&Scope::WalletSign).is_some() {
                        got.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    assert_eq!(got.load(Ordering::SeqCst), 800);
}
