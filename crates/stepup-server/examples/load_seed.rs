//! Seeds users with a verified authenticator app through the admin API and the SDK API of a running server,
//! for the TOTP step-up load run (`scripts/load/totp-step-ups.sh`, docs/benchmarks.md), and writes the
//! requests the load sends: each user's codes for the previous, current and next 30 s step, one line each
//! (`<session jwt> <code>`), all users' previous codes first, then the current ones, then the next — so every
//! (user, code) pair is sent once and a user's codes arrive in step order, far apart.
//!
//! ```text
//! cargo run --release -p stepup-server --example load_seed -- BASE_URL ADMIN_TOKEN ENVIRONMENT USERS OUT_FILE
//! ```
//!
//! A code's step is accepted once, and the enrolment used one: the codes are for the first step at least two
//! after every enrolment, and the seeder returns just as that step begins, so the run has its 30 s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr, missing_docs)]

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use stepup_proto::TokenScope;
use stepup_proto::headers::ELEVATED_ACCESS_TOKEN;

const STEP_SECS: u64 = 30;
const CONCURRENCY: usize = 32;

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn code(secret: &str, step: u64) -> String {
    stepup_server::methods::totp::totp(secret, "load", "load").unwrap().generate(step * STEP_SECS).to_string()
}

struct Seeded {
    jwt: String,
    secret: String,
    enrolled_step: u64,
}

async fn seed(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    env: &str,
    i: usize,
) -> Result<Seeded, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("user {i}: {what}: {e}");
    let json = |response: reqwest::Response| async move {
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if status.is_success() { Ok(body) } else { Err(format!("HTTP {status}: {body}")) }
    };
    let admin_url = format!("{base}/admin/environments/{env}");
    let user = client
        .post(format!("{admin_url}/users"))
        .bearer_auth(admin)
        .json(&json!({"email": format!("load{i}-{}@example.com", now_secs())}))
        .send()
        .await
        .map_err(|e| fail("create user", &e))?;
    let user = json(user).await.map_err(|e| fail("create user", &e))?;
    let user_id = user["id"].as_str().ok_or_else(|| fail("create user", &"no id"))?;
    let all: Vec<&str> = TokenScope::KNOWN.iter().map(TokenScope::as_str).collect();
    let session = client
        .post(format!("{admin_url}/users/{user_id}/sessions"))
        .bearer_auth(admin)
        .json(&json!({"elevatedScopes": all}))
        .send()
        .await
        .map_err(|e| fail("session", &e))?;
    let session = json(session).await.map_err(|e| fail("session", &e))?;
    let jwt = session["jwt"].as_str().unwrap_or_default().to_owned();
    let elevated = session["elevatedAccessToken"].as_str().unwrap_or_default().to_owned();
    let sdk = format!("{base}/sdk/{env}");
    let registration = client
        .get(format!("{sdk}/users/mfa/register/totp"))
        .bearer_auth(&jwt)
        .header(ELEVATED_ACCESS_TOKEN, elevated)
        .send()
        .await
        .map_err(|e| fail("register totp", &e))?;
    let registration = json(registration).await.map_err(|e| fail("register totp", &e))?;
    let secret = registration["secret"].as_str().unwrap_or_default().to_owned();
    let device = registration["id"].as_str().unwrap_or_default().to_owned();
    let step = now_secs() / STEP_SECS;
    let verified = client
        .post(format!("{sdk}/users/mfa/auth/totp"))
        .bearer_auth(&jwt)
        .json(&json!({"code": code(&secret, step), "id": device}))
        .send()
        .await
        .map_err(|e| fail("verify totp", &e))?;
    json(verified).await.map_err(|e| fail("verify totp", &e))?;
    Ok(Seeded { jwt, secret, enrolled_step: step })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, admin, env, users, out] = args.as_slice() else {
        eprintln!("usage: load_seed BASE_URL ADMIN_TOKEN ENVIRONMENT USERS OUT_FILE");
        std::process::exit(2);
    };
    let users: usize = users.parse().expect("USERS is a number");
    // reqwest here has no TLS feature of its own (the server hands it a rustls config): plain HTTP needs a provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().unwrap();
    let (base, admin, env) = (Arc::new(base.clone()), Arc::new(admin.clone()), Arc::new(env.clone()));
    let started = std::time::Instant::now();
    let mut seeded = Vec::with_capacity(users);
    let mut next = 0;
    while next < users {
        let batch: Vec<_> = (next..users.min(next + CONCURRENCY * 8))
            .map(|i| {
                let (client, base, admin, env) = (client.clone(), base.clone(), admin.clone(), env.clone());
                tokio::spawn(async move { seed(&client, &base, &admin, &env, i).await })
            })
            .collect();
        next += batch.len();
        for task in batch {
            match task.await.unwrap() {
                Ok(user) => seeded.push(user),
                Err(why) => {
                    eprintln!("seeding failed: {why}");
                    std::process::exit(1);
                }
            }
        }
    }
    eprintln!("seeded {} users in {:.1} s", seeded.len(), started.elapsed().as_secs_f64());

    // The first step whose previous step is after every enrolment.
    let last_enrolled = seeded.iter().map(|s| s.enrolled_step).max().unwrap_or(0);
    let current = (last_enrolled + 2).max(now_secs() / STEP_SECS + 1);
    let mut file = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    for step in [current - 1, current, current + 1] {
        for user in &seeded {
            writeln!(file, "{} {}", user.jwt, code(&user.secret, step)).unwrap();
        }
    }
    file.flush().unwrap();
    let begins = current * STEP_SECS;
    let wait = begins.saturating_sub(now_secs());
    eprintln!("{} requests written; waiting {wait} s for step {current} to begin", seeded.len() * 3);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    // A moment into the step, so a clock a little behind does not read the previous one.
    tokio::time::sleep(Duration::from_millis(300)).await;
}
