//! The guard's cost per request, against a baseline measured in the same run (docs/benchmarks.md): the same
//! axum handler called as a tower service, bare and behind `guard.require(scope)`.
//!
//! - `bare`: the handler alone (the baseline).
//! - `signature_only`: jsonwebtoken's EdDSA check of the same token and nothing else: the floor any verifier
//!   of these tokens pays.
//! - `multi_use`: behind the guard, a multi-use EdDSA token (signature, claims, scope; no store).
//! - `single_use_in_process`: a fresh single-use token per request, spent in the in-process store.
//! - `single_use_redis`: the same, spent in Redis (`SET NX PX` over loopback; `STEPUP_BENCH_REDIS_URL`, default
//!   `redis://127.0.0.1:6379`; skipped when Redis is out of reach).
//!
//! Called in process (no sockets for the request itself), so the numbers are the guard's own work.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::Request;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use stepup_guard::{Algorithm, Guard, InProcessStore, Key, RedisStore, SingleUseStore};
use stepup_proto::TokenScope;
use stepup_proto::headers::ELEVATED_ACCESS_TOKEN;
use tokio::runtime::Runtime;
use tower_service::Service;

const EDDSA_PRIVATE: &str = include_str!("../../../tests/keys/eddsa-private.pem");
const EDDSA_PUBLIC: &str = include_str!("../../../tests/keys/eddsa-public.pem");

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Signs tokens with unique ids.
struct Minter {
    key: EncodingKey,
    next: AtomicU64,
    run: u64,
}

impl Minter {
    fn new() -> Self {
        Self {
            key: EncodingKey::from_ed_pem(EDDSA_PRIVATE.as_bytes()).unwrap(),
            next: AtomicU64::new(0),
            run: now(),
        }
    }

    fn token(&self, single_use: bool) -> String {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let claims = json!({
            "iss": "stepup-reference-server", "sub": "u1", "aud": "dev", "scope": "wallet:export",
            "exp": now() + 300, "iat": now(), "jti": format!("bench-{}-{id}", self.run), "sid": "s1",
            "singleUse": single_use, "amr": ["totp"], "token_use": "elevated"
        });
        let mut header = Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

async fn export() -> &'static str {
    "exported"
}

fn guard(store: Arc<dyn SingleUseStore>) -> Guard {
    Guard::builder()
        .issuer("stepup-reference-server")
        .audience("dev")
        .key(Key::from_pem(Algorithm::EdDsa, EDDSA_PUBLIC.as_bytes(), Some("k1".into())).unwrap())
        .shared_single_use_store(store)
        .build()
        .unwrap()
}

fn guarded(store: Arc<dyn SingleUseStore>) -> Router {
    Router::new()
        .route("/wallet/export", post(export).route_layer(guard(store).require(TokenScope::WalletExport)))
}

fn request(token: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/wallet/export");
    if let Some(token) = token {
        request = request.header(ELEVATED_ACCESS_TOKEN, token);
    }
    request.body(Body::empty()).unwrap()
}

fn call(runtime: &Runtime, router: &Router, request: Request<Body>) {
    let response = runtime.block_on(router.clone().call(request)).unwrap();
    assert_eq!(response.status(), 200);
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let minter = Minter::new();
    let bare = Router::new().route("/wallet/export", post(export));
    let in_process = guarded(Arc::new(InProcessStore::new()));
    let multi = minter.token(false);

    let mut group = c.benchmark_group("guard");
    group.bench_function("bare", |b| {
        b.iter_batched(|| request(Some(&multi)), |r| call(&runtime, &bare, r), BatchSize::SmallInput);
    });
    let decoding = jsonwebtoken::DecodingKey::from_ed_pem(EDDSA_PUBLIC.as_bytes()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.validate_aud = false;
    group.bench_function("signature_only", |b| {
        b.iter(|| jsonwebtoken::decode::<serde_json::Value>(&multi, &decoding, &validation).unwrap());
    });
    group.bench_function("multi_use", |b| {
        b.iter_batched(|| request(Some(&multi)), |r| call(&runtime, &in_process, r), BatchSize::SmallInput);
    });
    group.bench_function("single_use_in_process", |b| {
        b.iter_batched(
            || request(Some(&minter.token(true))),
            |r| call(&runtime, &in_process, r),
            BatchSize::SmallInput,
        );
    });
    let redis_url =
        std::env::var("STEPUP_BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let redis = guarded(Arc::new(RedisStore::open(&redis_url).unwrap()));
    let reachable = runtime.block_on(redis.clone().call(request(Some(&minter.token(true))))).unwrap();
    if reachable.status() == 200 {
        group.bench_function("single_use_redis", |b| {
            b.iter_batched(
                || request(Some(&minter.token(true))),
                |r| call(&runtime, &redis, r),
                BatchSize::SmallInput,
            );
        });
    } else {
        println!("single_use_redis skipped: no Redis at {redis_url} (STEPUP_BENCH_REDIS_URL)");
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
