//! Resident memory under a recovery-code regeneration storm: 32 clients regenerating in a loop for 10 s (each
//! regeneration is ten argon2id hashes of 8 MiB), against a server whose argon2 work is bounded to one job per
//! core (`hash_workers`, the default) and, as the baseline in the same run, one that lets 512 run at once (what
//! `spawn_blocking` alone did before the bound). Each runs in a child process of its own, so one's memory does
//! not stay in the other's numbers. Linux only (`/proc/self/status`).
//!
//! `cargo bench -p stepup-server --bench argon2_memory` (argon2 is optimised in every profile: `--profile dev`
//! gives the same memory picture, faster to build).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stepup_core::SystemClock;
use stepup_server::store::{UserRow, secs};
use stepup_server::tokens::SessionClaims;
use stepup_server::{Server, ServerConfig};

const CLIENTS: usize = 32;
fn clients() -> usize {
    std::env::var("ARGON2_MEMORY_CLIENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(CLIENTS)
}
const LOAD: Duration = Duration::from_secs(10);

/// `VmRSS` and `VmHWM` (peak) in KiB.
fn memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        status.lines().find(|line| line.starts_with(name))?.split_whitespace().nth(1)?.parse().ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// One run: a server with `workers` argon2 workers under the storm. Prints one line.
fn run(workers: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let mut config = ServerConfig::dev("bench");
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.hash_workers = Some(workers);
        config.environments[0].limits.recovery_code_generations_per_hour = u32::MAX;
        let server = Server::start_with_clock(config, Arc::new(SystemClock)).await.unwrap();
        let state = server.state().clone();
        let env = state.environment("bench").unwrap().clone();
        let now = secs(state.now());
        // One user per client, each with a session that has just passed MFA.
        let mut sessions = Vec::new();
        for i in 0..clients() {
            let id = format!("storm-{i}");
            let row = UserRow {
                id: id.clone(),
                environment_id: "bench".into(),
                email: Some(format!("s{i}@example.com")),
                phone_number: None,
                mfa_backup_code_acknowledgement: None,
            };
            state.store().insert_user(&row, now).await.unwrap();
            let (jwt, _) = stepup_server::services::issuance::session(&state, &env, &id).await.unwrap();
            let claims: SessionClaims = env.keys.verify(jwt.expose_secret(), u64::MAX / 2).unwrap();
            sessions.push(stepup_server::services::issuance::reissue_session(&state, &env, &claims, true).unwrap().expose_secret().to_owned());
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let url = format!("{}/users/mfa/recovery", server.sdk_url("bench"));
        let (before, _) = memory().unwrap();
        let done = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut clients = tokio::task::JoinSet::new();
        for jwt in sessions {
            let (http, url, done) = (http.clone(), url.clone(), done.clone());
            clients.spawn(async move {
                while started.elapsed() < LOAD {
                    let response = http.post(&url).bearer_auth(&jwt).send().await.unwrap();
                    assert_eq!(response.status(), 200);
                    let _ = response.bytes().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        clients.join_all().await;
        let (after, peak) = memory().unwrap();
        println!(
            "workers {workers:>3}: {:>4} regenerations in {} s; RSS {:>6.1} MiB before, peak {:>6.1} MiB, {:>6.1} MiB after",
            done.load(Ordering::Relaxed),
            LOAD.as_secs(),
            before as f64 / 1024.0,
            peak as f64 / 1024.0,
            after as f64 / 1024.0
        );
        server.shutdown().await;
    });
}

fn main() {
    if memory().is_none() {
        println!("argon2_memory: no /proc/self/status here (not Linux); skipped");
        return;
    }
    if let Ok(workers) = std::env::var("ARGON2_MEMORY_WORKERS") {
        run(workers.parse().unwrap());
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    println!("{CLIENTS} clients regenerating recovery codes for {} s ({cores} cores)", LOAD.as_secs());
    let me = std::env::current_exe().unwrap();
    for workers in [cores, 512] {
        let status = std::process::Command::new(&me)
            .env("ARGON2_MEMORY_WORKERS", workers.to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}
