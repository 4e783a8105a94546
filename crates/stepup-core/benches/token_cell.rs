//! `TokenCell::get` against an `RwLock<Vec<Arc<_>>>` baseline, single-threaded and with a concurrent writer
//! (docs/design.md §10: <= 25 ns single-threaded; >= 2x the baseline's reads/s with a writer storing every 100 µs).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stepup_core::testkit::token;
use stepup_core::{CoarseClock, ElevatedToken, Scope, ScopeSet, SystemClock, TokenCell, UnixTime};

/// Tokens in the cell: a realistic handful (one per scope set in use).
const TOKENS: [Scope; 4] = [Scope::WalletSign, Scope::CredentialLink, Scope::UserUpdate, Scope::WalletExport];
/// What a request looks up: the last token, so both sides scan the whole list.
const WANTED: Scope = Scope::WalletExport;
/// Reader threads in the concurrent case: one per core of the 2-core reference machine.
const READERS: usize = 2;
/// The writer stores a new token this often.
const WRITE_EVERY: Duration = Duration::from_micros(100);

fn far_future() -> UnixTime {
    UnixTime(4_000_000_000)
}

fn tokens() -> Vec<Arc<ElevatedToken>> {
    TOKENS.iter().map(|s| token(&ScopeSet::one(s.clone()), far_future(), false, s.as_str())).collect()
}

/// The baseline: the obvious locked list.
struct LockedList(RwLock<Vec<Arc<ElevatedToken>>>);

impl LockedList {
    fn get(&self, scope: &Scope, now: UnixTime) -> Option<Arc<ElevatedToken>> {
        self.0.read().unwrap().iter().find(|t| !t.is_expired_at(now) && t.covers(scope)).cloned()
    }
    fn insert(&self, token: Arc<ElevatedToken>) {
        let mut list = self.0.write().unwrap();
        list.retain(|t| t.scopes() != token.scopes());
        list.insert(0, token);
    }
}

/// The cell as the engine builds it: on a coarse clock that its coordinator refreshes.
fn cell() -> TokenCell {
    fill(TokenCell::with_clock(Arc::new(CoarseClock::new())))
}

fn fill(cell: TokenCell) -> TokenCell {
    for t in tokens().into_iter().rev() {
        cell.insert_at(t, UnixTime(0));
    }
    cell
}

fn single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("token_get_single_thread");
    group.throughput(Throughput::Elements(1));
    let cell = cell();
    group.bench_function("token_cell_get", |b| b.iter(|| black_box(cell.get(black_box(&WANTED)))));
    let precise = fill(TokenCell::with_clock(Arc::new(SystemClock)));
    group.bench_function("token_cell_get_system_clock", |b| {
        b.iter(|| black_box(precise.get(black_box(&WANTED))))
    });
    let now = cell.now();
    group.bench_function("token_cell_get_at", |b| b.iter(|| black_box(cell.get_at(black_box(&WANTED), now))));
    let locked = LockedList(RwLock::new(tokens()));
    group.bench_function("rwlock_vec_get_baseline", |b| {
        b.iter(|| black_box(locked.get(black_box(&WANTED), now)))
    });
    // The floor: arc-swap's own load of a set of the same size, with no lookup at all.
    let bare = arc_swap::ArcSwap::from_pointee(tokens());
    group.bench_function("arc_swap_load_floor", |b| b.iter(|| black_box(bare.load().len())));
    group.finish();
}

/// Runs `iters` reads split over [`READERS`] threads while a writer stores a token every [`WRITE_EVERY`];
/// returns the wall time of the reads.
fn with_writer<R, W>(iters: u64, read: R, write: W) -> Duration
where
    R: Fn() + Sync,
    W: Fn(u64) + Sync,
{
    let stop = AtomicBool::new(false);
    let per_reader = iters.div_ceil(READERS as u64);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                write(n);
                n += 1;
                std::thread::sleep(WRITE_EVERY);
            }
        });
        let start = Instant::now();
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..per_reader {
                        read();
                    }
                })
            })
            .collect();
        for reader in readers {
            reader.join().unwrap();
        }
        let elapsed = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        elapsed
    })
}

fn concurrent_writer(c: &mut Criterion) {
    let mut group = c.benchmark_group("token_get_with_writer_every_100us");
    group.throughput(Throughput::Elements(1));
    let fresh: Vec<Arc<ElevatedToken>> = (0..64)
        .map(|i| token(&ScopeSet::one(Scope::WalletSign), far_future(), false, &format!("w{i}")))
        .collect();

    let cell = cell();
    group.bench_function("token_cell_get", |b| {
        b.iter_custom(|iters| {
            with_writer(
                iters,
                || {
                    black_box(cell.get(black_box(&WANTED)));
                },
                |n| {
                    cell.insert_at(Arc::clone(&fresh[(n % 64) as usize]), UnixTime(0));
                },
            )
        });
    });

    // What the middleware calls per request (`StepUpAuth::token_for`): `claim`, which for a reusable token is a
    // lookup plus an `Arc` clone, like the baseline's `get`.
    let taken = fill(TokenCell::with_clock(Arc::new(CoarseClock::new())));
    group.bench_function("token_cell_take_multi_use", |b| {
        b.iter_custom(|iters| {
            with_writer(
                iters,
                || {
                    black_box(taken.claim(black_box(&WANTED)));
                },
                |n| {
                    taken.insert_at(Arc::clone(&fresh[(n % 64) as usize]), UnixTime(0));
                },
            )
        });
    });

    let locked = LockedList(RwLock::new(tokens()));
    let now = cell.now();
    group.bench_function("rwlock_vec_get_baseline", |b| {
        b.iter_custom(|iters| {
            with_writer(
                iters,
                || {
                    black_box(locked.get(black_box(&WANTED), now));
                },
                |n| locked.insert(Arc::clone(&fresh[(n % 64) as usize])),
            )
        });
    });
    group.finish();
}

criterion_group!(benches, single_thread, concurrent_writer);
criterion_main!(benches);
