//! The app's own backend checks the elevated token itself: `stepup-guard` in an axum service.
//!
//! ```text
//! cargo run --example backend        # needs Redis: STEPUP_REDIS_URL, default redis://127.0.0.1:6379
//! ```
//!
//! The backend protects `POST /wallet/export` with the guard: keys from the reference server's JWKS, single-use
//! tokens spent in Redis, so that any number of replicas accept a token once between them. It runs twice here
//! (replicas A and B, each with its own guard, JWKS cache and Redis connection), next to the reference server on
//! loopback. The app calls A through the engine's middleware: A answers the RFC 9470 challenge, the engine steps
//! up (the person types an email code), the middleware retries, A answers 200. Then an attacker who copied the
//! token off the wire replays it to B: B refuses it, already used.
#![allow(clippy::print_stdout)] // A demo that reports what it does.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use stepup::engine::{
    ChannelFrontend, ElevatedRequestExt, FrontendEvent, FrontendInbox, PromptReply, PromptRequest,
};
use stepup::{Method, Scope};
use stepup_demo::{DEMO_ENVIRONMENT, DemoServer, ReauthPerson};
use stepup_guard::{Elevated, GuardBuilder, RedisStore};
use stepup_proto::TokenScope;
use stepup_proto::headers::ELEVATED_ACCESS_TOKEN;
use tokio::sync::Mutex;

/// The backend's one sensitive call: runs only for a request the guard let through.
async fn export_wallet(Elevated(token): Elevated) -> Json<Value> {
    Json(json!({ "exported": "0x4c08…(the key)", "for": token.subject }))
}

/// One replica of the backend: its own guard (keys from the reference server's JWKS, single use in Redis) on
/// `POST /wallet/export`, listening on a loopback port; `wire` (replica A's) records what crosses the wire.
/// Returns its base URL.
async fn start_backend(
    server_url: &str,
    redis_url: &str,
    wire: Option<Wire>,
) -> Result<String, Box<dyn std::error::Error>> {
    let guard = GuardBuilder::reference_server(server_url, DEMO_ENVIRONMENT)
        .single_use_store(RedisStore::open(redis_url)?)
        .build()?;
    let mut app = Router::new()
        .route("/wallet/export", post(export_wallet).route_layer(guard.require(TokenScope::WalletExport)));
    if let Some(wire) = wire {
        app = app.layer(from_fn_with_state(wire, record));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// What crossed the wire to replica A: its answers, and the last token it was sent (the attacker's copy).
#[derive(Clone, Default)]
struct Wire {
    answers: Arc<Mutex<Vec<u16>>>,
    last_token: Arc<Mutex<Option<String>>>,
}

async fn record(State(wire): State<Wire>, request: Request, next: Next) -> Response {
    if let Some(token) = request.headers().get(ELEVATED_ACCESS_TOKEN).and_then(|v| v.to_str().ok()) {
        *wire.last_token.lock().await = Some(token.to_owned());
    }
    let response = next.run(request).await;
    wire.answers.lock().await.push(response.status().as_u16());
    response
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let redis_url = std::env::var("STEPUP_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let demo = Arc::new(DemoServer::start().await?);
    let bob = demo.seed_reauth_person("bob@example.com").await?;
    let wire = Wire::default();
    let replica_a = start_backend(&demo.base_url(), &redis_url, Some(wire.clone())).await?;
    let replica_b = start_backend(&demo.base_url(), &redis_url, None).await?;
    println!("Backend replicas A and B guard POST /wallet/export, single use in the Redis at {redis_url}.");

    let (frontend, inbox) = ChannelFrontend::new();
    let engine = demo.engine_for(&bob.session).frontend(frontend).build().await?;
    let prompts = Arc::new(AtomicUsize::new(0));
    tokio::spawn(person(inbox, demo.clone(), bob.clone(), prompts.clone()));

    println!("1. The app exports a wallet key through replica A, holding no token.");
    let client = engine.http_client();
    let response =
        client.post(format!("{replica_a}/wallet/export")).elevated(Scope::WalletExport).send().await?;
    let status = response.status().as_u16();
    let body: Value = response.json().await?;
    let answers = wire.answers.lock().await.clone();
    println!(
        "   A answered {answers:?}; the app saw HTTP {status} after {} prompt(s).",
        prompts.load(Ordering::SeqCst)
    );
    println!("   Exported for {}.", body["for"]);

    println!("2. An attacker replays the single-use token copied off the wire to replica B.");
    let stolen = wire.last_token.lock().await.clone().ok_or("replica A saw no token")?;
    stepup::engine::install_default_crypto_provider();
    let replay = reqwest::Client::new()
        .post(format!("{replica_b}/wallet/export"))
        .header(ELEVATED_ACCESS_TOKEN, stolen)
        .send()
        .await?;
    let replay_status = replay.status().as_u16();
    let refusal: Value = replay.json().await?;
    println!("   B answered HTTP {replay_status} {}: {}", refusal["code"], refusal["error"]);

    if answers != [403, 200] || status != 200 || replay_status != 403 {
        return Err("expected A to challenge then accept, and B to refuse the replay".into());
    }
    Ok(())
}

/// The scripted person: picks the email code, reads it from the demo outbox, types it.
async fn person(
    mut inbox: FrontendInbox,
    demo: Arc<DemoServer>,
    bob: ReauthPerson,
    prompts: Arc<AtomicUsize>,
) {
    while let Some(event) = inbox.next().await {
        let FrontendEvent::Prompt(prompt) = event else { continue };
        let reply = match prompt.request() {
            PromptRequest::ChooseMethod { options, .. } => {
                prompts.fetch_add(1, Ordering::SeqCst);
                let email = options.credentials().iter().find(|c| c.method == Method::EmailOtp).cloned();
                email.map_or(PromptReply::Cancel, PromptReply::Choose)
            }
            PromptRequest::EnterOtp { .. } => match demo.latest_code(&bob.session.email).await {
                Ok(code) => PromptReply::Code(code.as_str().into()),
                Err(_) => PromptReply::Cancel,
            },
            _ => PromptReply::Cancel,
        };
        prompt.answer(reply);
    }
}
