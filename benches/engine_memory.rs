//! Memory of many idle engines in one process (docs/design.md §10: 100,000 engines <= 1 GiB RSS, built in under
//! 5 s; issue 18).
//!
//! Part 1 builds engines (API client on the runtime's shared connection pool, coordinator actor, token cell; no
//! verifier runs until a flow needs one) in steps up to 100,000, reading the process's resident set size and the
//! time spent building after each step. The baseline in the same run is the process before any engine.
//!
//! Part 2, in a fresh process (freed memory stays in the allocator, and would hide what the pieces cost), writes
//! one idle engine down piece by piece: 10,000 of each piece on its own, kept alive, the RSS growth per piece (an API client on the shared pool; on a pool of its own, as every engine had before; a token cell;
//! the state channel; a bare `ractor` actor, the runtime cost of the coordinator without its state; an engine
//! that was asked once, so its coordinator runs).
//!
//! Building an engine contacts no server, so no server runs here. Linux only (`/proc/self/status`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use stepup::engine::{ApiClient, ApiConfig, ConnectionPool, StepUpAuth};

const STEPS: [usize; 5] = [100, 1_000, 10_000, 50_000, 100_000];
const PIECES: usize = 10_000;

/// Resident set size in KiB, from `/proc/self/status`.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// An actor with no state that does nothing: what `ractor` itself costs per actor.
struct Idle;

impl Actor for Idle {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _me: ActorRef<()>, (): ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

/// Builds `PIECES` of something with `make`, keeps them, and prints the RSS growth per piece.
fn piece<T>(
    runtime: &tokio::runtime::Runtime,
    name: &str,
    kept: &mut Vec<Box<dyn std::any::Any>>,
    make: impl AsyncFn(usize) -> T,
) where
    T: 'static,
{
    let before = rss_kib().unwrap();
    let started = Instant::now();
    let items: Vec<T> = runtime.block_on(async {
        let mut items = Vec::with_capacity(PIECES);
        for i in 0..PIECES {
            items.push(make(i).await);
        }
        items
    });
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let added = rss_kib().unwrap().saturating_sub(before);
    println!(
        "  {name:<44} {:>7.2} KiB each ({:>6.1} MiB for {PIECES}; built in {:>6.1} ms)",
        added as f64 / PIECES as f64,
        added as f64 / 1024.0,
        took.as_secs_f64() * 1000.0
    );
    kept.push(Box::new(items));
}

fn main() {
    if std::env::var_os(PIECES_PART).is_some() {
        pieces();
        return;
    }
    let Some(baseline) = rss_kib() else {
        println!("engine_memory: no /proc/self/status here (not Linux); skipped");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    stepup::engine::install_default_crypto_provider();
    // One engine first: the shared client and the TLS setup are per process, not per engine.
    let first = runtime.block_on(StepUpAuth::builder("http://127.0.0.1:9", "bench").build()).unwrap();
    let baseline = rss_kib().unwrap_or(baseline);
    println!("baseline (runtime and one engine's per-process parts): {:.1} MiB", baseline as f64 / 1024.0);
    let mut engines: Vec<StepUpAuth> = vec![first];
    let mut building = Duration::ZERO;
    for target in STEPS {
        let started = Instant::now();
        runtime.block_on(async {
            while engines.len() < target {
                let engine = StepUpAuth::builder("http://127.0.0.1:9", "bench")
                    .session(format!("session-{}", engines.len()).as_str())
                    .build()
                    .await
                    .unwrap();
                engines.push(engine);
            }
        });
        building += started.elapsed();
        // Let the actors settle (their start-up messages are handled) before reading.
        std::thread::sleep(Duration::from_millis(300));
        let rss = rss_kib().unwrap();
        let added = rss.saturating_sub(baseline);
        println!(
            "{target:>7} engines: RSS {:>8.1} MiB, {:>7.1} MiB over the baseline, {:>5.1} KiB per engine, built in {:>6.2} s",
            rss as f64 / 1024.0,
            added as f64 / 1024.0,
            added as f64 / target as f64,
            building.as_secs_f64()
        );
    }
    drop(engines);
    // Part 2 in a process of its own.
    let pieces =
        std::process::Command::new(std::env::current_exe().unwrap()).env(PIECES_PART, "1").status().unwrap();
    assert!(pieces.success());
}

/// Set in the child process that measures the pieces.
const PIECES_PART: &str = "ENGINE_MEMORY_PIECES";

fn pieces() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    stepup::engine::install_default_crypto_provider();
    let first = runtime.block_on(StepUpAuth::builder("http://127.0.0.1:9", "bench").build()).unwrap();
    println!("one idle engine, piece by piece ({PIECES} of each, kept alive; RSS growth):");
    let mut kept: Vec<Box<dyn std::any::Any>> = vec![Box::new(first)];
    piece(&runtime, "whole engine (shared pool)", &mut kept, async |i| {
        StepUpAuth::builder("http://127.0.0.1:9", "bench")
            .session(format!("session-{i}").as_str())
            .build()
            .await
            .unwrap()
    });
    piece(&runtime, "API client, shared pool (as built now)", &mut kept, async |i| {
        ApiClient::new(
            "http://127.0.0.1:9",
            "bench",
            Some(format!("session-{i}").as_str().into()),
            ApiConfig::default(),
        )
        .unwrap()
    });
    piece(&runtime, "API client, a pool of its own (as before)", &mut kept, async |i| {
        let session = Some(format!("session-{i}").as_str().into());
        ApiClient::with_pool(
            "http://127.0.0.1:9",
            "bench",
            session,
            ApiConfig::default(),
            ConnectionPool::Own,
        )
        .unwrap()
    });
    piece(&runtime, "token cell", &mut kept, async |_| stepup::TokenCell::new());
    piece(&runtime, "state channel (watch)", &mut kept, async |_| {
        tokio::sync::watch::channel(stepup::engine::StepUpState::Idle {})
    });
    piece(&runtime, "bare ractor actor (no state)", &mut kept, async |_| {
        Actor::spawn(None, Idle, ()).await.unwrap().0
    });
    piece(&runtime, "engine asked once (its coordinator running)", &mut kept, async |i| {
        let engine = StepUpAuth::builder("http://127.0.0.1:9", "bench")
            .session(format!("session-{i}").as_str())
            .build()
            .await
            .unwrap();
        engine.snapshot().await.unwrap();
        engine
    });
    drop(kept);
}
