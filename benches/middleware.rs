//! The middleware's cost, against baselines measured in the same run on the same loopback reference server
//! (docs/design.md §10):
//!
//! - `elevated_request`: one tagged request through `StepUpMiddleware` (token read from the cell and applied)
//!   vs the same request from bare reqwest with the header set by hand. Same endpoint, same server work (the
//!   protected resource verifies the token either way). Target: overhead <= 3 %.
//! - `challenge_storm`: 1,000 concurrent tagged requests with no token yet, which would all meet the challenge:
//!   the first goes out and meets it, the others wait for its step-up (a software passkey, confirmed by a scripted
//!   person) and go out with its token; vs one step-up followed by 1,000 concurrent plain requests carrying its
//!   token. Target (issue 18): <= 1.1x.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use stepup::Scope;
use stepup::engine::{
    ChannelFrontend, ElevatedRequestExt, FrontendEvent, PromptReply, StepUpAuth, StepUpMiddleware,
};
use stepup_demo::{AnswerCounter, DemoServer, MfaPerson};
use tokio::runtime::Runtime;

const STORM: usize = 1_000;

struct World {
    runtime: Runtime,
    _demo: DemoServer,
    alice: MfaPerson,
    engine: StepUpAuth,
    url: String,
}

/// The server, a person with a passkey, and an engine whose front end confirms every passkey prompt at once.
fn world() -> World {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (demo, alice, engine) = runtime.block_on(async {
        // The server's abuse limits protect a server; this benchmark measures the middleware, so two are raised.
        // The storm opens 1,000 connections at once while keep-alive connections of earlier samples still hold
        // theirs (above the default cap of 1,024, new ones wait in the listen backlog past the client's request
        // timeout), and every storm sample runs a passkey step-up (a ceremony: 60 per user per hour by default).
        let demo = DemoServer::start_with(|config| {
            config.connections.max_connections = 8_192;
            for environment in &mut config.environments {
                environment.limits.ceremonies_per_user_per_hour = 1_000_000;
            }
        })
        .await
        .unwrap();
        let alice = demo.seed_mfa_person("alice@example.com").await.unwrap();
        let (frontend, mut inbox) = ChannelFrontend::new();
        let engine = demo
            .engine_for(&alice.session)
            .passkey_authenticator(alice.passkey.clone())
            .frontend(frontend)
            .build()
            .await
            .unwrap();
        tokio::spawn(async move {
            while let Some(event) = inbox.next().await {
                if let FrontendEvent::Prompt(prompt) = event {
                    // Alice has three MFA credentials: take the passkey, then confirm it.
                    let reply = match prompt.request() {
                        stepup::engine::PromptRequest::ChooseMethod { options, .. } => options
                            .credentials()
                            .iter()
                            .find(|c| c.method == stepup::Method::Passkey)
                            .cloned()
                            .map_or(PromptReply::Cancel, PromptReply::Choose),
                        _ => PromptReply::Confirm,
                    };
                    prompt.answer(reply);
                }
            }
        });
        (demo, alice, engine)
    });
    let url = format!("{}/protected/{}", engine.api().sdk_base(), Scope::CredentialLink.as_str());
    World { runtime, _demo: demo, alice, engine, url }
}

fn elevated_request(c: &mut Criterion) {
    let w = world();
    let jwt = w.alice.session.jwt.expose_secret().to_owned();
    w.runtime.block_on(w.engine.prompt_step_up_auth(&[Scope::CredentialLink])).unwrap();
    let bare = w.engine.api().http().clone();
    let token = w.engine.tokens().get(&Scope::CredentialLink).unwrap().to_arc();
    let client = w.engine.http_client();

    let mut group = c.benchmark_group("elevated_request");
    group.bench_function("bare reqwest, header by hand (baseline)", |b| {
        b.iter(|| {
            w.runtime.block_on(async {
                let response = bare
                    .post(&w.url)
                    .bearer_auth(&jwt)
                    .header("x-dyn-elevated-access-token", token.raw().expose_secret())
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success());
            });
        });
    });
    group.bench_function("StepUpMiddleware, .elevated(scope)", |b| {
        b.iter(|| {
            w.runtime.block_on(async {
                let response = client
                    .post(&w.url)
                    .bearer_auth(&jwt)
                    .elevated(Scope::CredentialLink)
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success());
            });
        });
    });
    group.finish();

    // Criterion measures the two one after the other, and on this VM two such measurements drift apart by up to
    // 10 % between runs, more than the 3 % target. So also measure them interleaved (ABBA order, so neither goes
    // first more often), request by request, and compare medians and totals.
    let (mut plain, mut tagged) = (Vec::new(), Vec::new());
    w.runtime.block_on(async {
        let send_plain = || async {
            let started = Instant::now();
            let request = bare.post(&w.url).bearer_auth(&jwt);
            let response = request
                .header("x-dyn-elevated-access-token", token.raw().expose_secret())
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success());
            started.elapsed()
        };
        let send_tagged = || async {
            let started = Instant::now();
            let response =
                client.post(&w.url).bearer_auth(&jwt).elevated(Scope::CredentialLink).send().await.unwrap();
            assert!(response.status().is_success());
            started.elapsed()
        };
        for round in 0..PAIRS {
            if round % 2 == 0 {
                plain.push(send_plain().await);
                tagged.push(send_tagged().await);
            } else {
                tagged.push(send_tagged().await);
                plain.push(send_plain().await);
            }
        }
    });
    plain.sort();
    tagged.sort();
    let median = |v: &[Duration]| v[v.len() / 2].as_secs_f64() * 1e6;
    let total = |v: &[Duration]| v.iter().sum::<Duration>().as_secs_f64();
    println!(
        "elevated_request interleaved, {PAIRS} pairs: median {:.1} us (middleware) vs {:.1} us (bare), ratio {:.3}; \
         totals ratio {:.3}",
        median(&tagged),
        median(&plain),
        median(&tagged) / median(&plain),
        total(&tagged) / total(&plain)
    );
}

/// Interleaved request pairs for the overhead comparison.
const PAIRS: usize = 4_000;

/// Wall time of `STORM` concurrent requests, each awaited to success.
async fn concurrently<F>(make: impl Fn() -> F) -> Duration
where
    F: std::future::Future<Output = bool> + Send + 'static,
{
    let started = Instant::now();
    let calls: Vec<_> = (0..STORM).map(|_| tokio::spawn(make())).collect();
    for call in calls {
        assert!(call.await.unwrap());
    }
    started.elapsed()
}

fn challenge_storm(c: &mut Criterion) {
    let w = Arc::new(world());
    let jwt = w.alice.session.jwt.expose_secret().to_owned();
    let mut group = c.benchmark_group("challenge_storm_1000");
    group.sample_size(10).measurement_time(Duration::from_secs(20));

    group.bench_function("one step-up, then 1,000 plain requests (baseline)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                w.runtime.block_on(w.engine.reset_state()).unwrap();
                total += w.runtime.block_on(async {
                    let started = Instant::now();
                    w.engine.prompt_step_up_auth(&[Scope::CredentialLink]).await.unwrap();
                    let token = w.engine.tokens().get(&Scope::CredentialLink).unwrap().to_arc();
                    let bare = w.engine.api().http().clone();
                    let (url, jwt) = (w.url.clone(), jwt.clone());
                    let requests = concurrently(move || {
                        let request = bare
                            .post(&url)
                            .bearer_auth(&jwt)
                            .header("x-dyn-elevated-access-token", token.raw().expose_secret());
                        async move { request.send().await.is_ok_and(|r| r.status().is_success()) }
                    });
                    requests.await;
                    started.elapsed()
                });
            }
            total
        });
    });
    group.bench_function("1,000 challenged requests through the middleware", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                w.runtime.block_on(w.engine.reset_state()).unwrap();
                // Counts the 403s below the middleware: the first request meets the challenge, the others wait
                // for its step-up instead of going out to be refused (issue 18: at most 100 refusals).
                let answers = Arc::new(AnswerCounter::default());
                let client = reqwest_middleware::ClientBuilder::new(w.engine.api().http().clone())
                    .with(StepUpMiddleware::new(w.engine.clone()))
                    .with_arc(answers.clone())
                    .build();
                let (url, jwt) = (w.url.clone(), jwt.clone());
                total += w.runtime.block_on(concurrently(move || {
                    let request = client.post(&url).bearer_auth(&jwt).elevated(Scope::CredentialLink);
                    async move { request.send().await.is_ok_and(|r| r.status().is_success()) }
                }));
                let challenged = answers.forbidden();
                assert!(
                    (1..=STORM / 10).contains(&challenged),
                    "{challenged} of {STORM} requests met the challenge"
                );
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, elevated_request, challenge_storm);
criterion_main!(benches);
