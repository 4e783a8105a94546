//! Memory of many engines in one process (docs/design.md §10: 10,000 engines <= 1 GiB RSS).
//!
//! Builds engines (API client, coordinator and five verifier actors, token cell) in steps up to 10,000 and
//! reads the process's resident set size after each step. The baseline in the same run is the process before
//! any engine. Building an engine contacts no server, so no server runs here. Linux only (`/proc/self/status`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use stepup::engine::StepUpAuth;

const STEPS: [usize; 4] = [100, 1_000, 5_000, 10_000];

/// Resident set size in KiB, from `/proc/self/status`.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let Some(baseline) = rss_kib() else {
        println!("engine_memory: no /proc/self/status here (not Linux); skipped");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    stepup::engine::install_default_crypto_provider();
    let baseline = rss_kib().unwrap_or(baseline);
    println!("baseline (runtime, no engine): {:.1} MiB", baseline as f64 / 1024.0);
    let mut engines: Vec<StepUpAuth> = Vec::new();
    for target in STEPS {
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
        // Let the actors settle (their start-up messages are handled) before reading.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let rss = rss_kib().unwrap();
        let added = rss.saturating_sub(baseline);
        println!(
            "{target:>6} engines: RSS {:>8.1} MiB, {:>7.1} MiB over the baseline, {:>6.1} KiB per engine",
            rss as f64 / 1024.0,
            added as f64 / 1024.0,
            added as f64 / target as f64
        );
    }
    drop(engines);
}
