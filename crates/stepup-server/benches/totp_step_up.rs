//! TOTP step-up throughput and latency over loopback HTTP, SQLite (docs/design.md §10: >= 2,000 step-ups/s on 2 cores,
//! p50 <= 2 ms), beside a baseline measured in the same run: `GET /.well-known/jwks` on the same server with
//! the same concurrency.
//!
//! Each step-up is a full `POST /users/mfa/auth/totp` with `requestedScopes`: session check, lockout check,
//! device lookup, TOTP check, the replay-guarding step update, user and credentials read, token signing. A TOTP
//! step is accepted once per device, so the run uses one device per concurrent client and moves the server's
//! clock one step between rounds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use stepup_core::{Clock, ManualClock, SystemClock};
use stepup_server::store::{UserRow, secs};
use stepup_server::{Server, ServerConfig};
use totp_rs::{Algorithm, Builder, Secret};

const CLIENTS: usize = 32;
const ROUNDS: usize = 60;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn report(name: &str, mut latencies: Vec<Duration>, wall: Duration) -> f64 {
    latencies.sort();
    let rate = latencies.len() as f64 / wall.as_secs_f64();
    println!(
        "{name:<28} {:>6} requests  {:>8.0} /s  p50 {:>6.2} ms  p99 {:>6.2} ms",
        latencies.len(),
        rate,
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    rate
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // Latency with no queueing (one client), then throughput (many).
    run(1, 200).await;
    run(CLIENTS, ROUNDS).await;
}

async fn run(clients_n: usize, rounds: usize) {
    let dir = std::env::temp_dir().join(format!("stepup-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = ServerConfig::dev("dev");
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.database_url = format!("sqlite://{}", dir.join("bench.db").display());
    let start = SystemClock.now();
    let clock = ManualClock::new(start);
    let server = Server::start_with_clock(config, Arc::new(clock.clone())).await.unwrap();
    let state = server.state().clone();
    let env = state.environment("dev").unwrap().clone();

    // One user, session and TOTP device per client.
    let mut clients = Vec::new();
    for i in 0..clients_n {
        let user_id = format!("bench-user-{i}");
        let row = UserRow {
            id: user_id.clone(),
            environment_id: "dev".into(),
            email: Some(format!("b{i}@example.com")),
            phone_number: None,
            mfa_backup_code_acknowledgement: None,
        };
        state.store().insert_user(&row, secs(start)).await.unwrap();
        let secret = Secret::from([i as u8 + 1; 20]).to_base32();
        let device = format!("bench-device-{i}");
        // As if enrolled under a `wallet:sign` token: the warm-up round's codes complete the enrolments.
        state
            .store()
            .insert_totp_device(
                &device,
                &user_id,
                &stepup_server::services::secrets::seal_totp_secret(
                    state.key_encryption_key(),
                    &device,
                    &secret,
                )
                .unwrap(),
                "wallet:sign",
                secs(start),
            )
            .await
            .unwrap();
        let (jwt, _) = stepup_server::services::issuance::session(&state, &env, &user_id).await.unwrap();
        let totp = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_step_duration(30)
            .with_secret(Secret::try_from_base32(&secret).unwrap())
            .build()
            .unwrap();
        clients.push((jwt.expose_secret().to_owned(), device, totp));
    }
    // In a workspace build reqwest carries the engine's `rustls-no-provider` feature: install a provider first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let totp_url = format!("{}/users/mfa/auth/totp", server.sdk_url("dev"));
    let jwks_url = format!("{}/.well-known/jwks", server.sdk_url("dev"));

    // Warm-up round (connections, caches), not measured.
    let mut round_time = start;
    let mut latencies = Vec::new();
    let mut baseline = Vec::new();
    let mut wall = Duration::ZERO;
    let mut baseline_wall = Duration::ZERO;
    for round in 0..=rounds {
        clock.set(round_time);
        let began = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (jwt, device, totp) in &clients {
            let code = totp.generate(round_time.as_secs()).to_string();
            let body = serde_json::json!({"code": code, "id": device, "requestedScopes": ["wallet:sign"]});
            let request = http.post(&totp_url).bearer_auth(jwt).json(&body);
            tasks.spawn(async move {
                let sent = Instant::now();
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
                let _ = response.bytes().await;
                sent.elapsed()
            });
        }
        let round_latencies = tasks.join_all().await;
        if round > 0 {
            wall += began.elapsed();
            latencies.extend(round_latencies);
        }

        let began = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..clients_n {
            let request = http.get(&jwks_url);
            tasks.spawn(async move {
                let sent = Instant::now();
                let response = request.send().await.unwrap();
                let _ = response.bytes().await;
                sent.elapsed()
            });
        }
        let round_latencies = tasks.join_all().await;
        if round > 0 {
            baseline_wall += began.elapsed();
            baseline.extend(round_latencies);
        }
        round_time = round_time.plus_secs(30);
    }
    println!(
        "TOTP step-up over loopback, SQLite (file, WAL), {clients_n} concurrent clients, {rounds} rounds"
    );
    let step_ups = report("totp step-up", latencies, wall);
    let trivial = report("baseline GET jwks", baseline, baseline_wall);
    println!("step-up throughput = {:.2}x the baseline's", step_ups / trivial);
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
