//! The tower layer and the axum extractors over real HTTP: the 403 carries the RFC 9470 challenge the engine's
//! middleware reads, a let-through request reaches the handler with the verified token, a replay is refused, a
//! store out of reach answers 503, and a route set up wrong answers 500.

use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::response::Response;
use axum::routing::post;
use axum::{Extension, Router};
use serde_json::json;
use stepup_guard::{
    ChallengeOptions, Elevated, InProcessStore, RequireElevated, RequiredScope, SessionBinding,
    SingleUseStore,
};
use stepup_proto::headers::{ELEVATED_ACCESS_TOKEN, parse_step_up_challenge};
use stepup_proto::{ErrorBody, ErrorCode, TokenScope};

use super::*;

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn token(single_use: bool, sid: &str) -> String {
    let mut claims = ours();
    claims["singleUse"] = json!(single_use);
    claims["jti"] = json!(format!("http-{}", unique()));
    claims["sid"] = json!(sid);
    claims["iat"] = json!(now());
    claims["exp"] = json!(now() + 300);
    eddsa("k1", &claims)
}

/// The backend's own authentication, stood in for by a header naming the session.
async fn authenticate(mut request: Request, next: Next) -> Response {
    if let Some(session) = request.headers().get("x-test-session").and_then(|v| v.to_str().ok()) {
        let binding = SessionBinding::new("u1", session);
        request.extensions_mut().insert(binding);
    }
    next.run(request).await
}

async fn backend(store: Arc<dyn SingleUseStore>, challenge: ChallengeOptions) -> String {
    let guard = for_reference_server()
        .key(our_key())
        .shared_single_use_store(store)
        .challenge(challenge)
        .build()
        .unwrap();
    async fn by_layer(Elevated(token): Elevated) -> String {
        format!("layer {}", token.subject)
    }
    async fn by_extractor(RequireElevated(token): RequireElevated) -> String {
        format!("extractor {}", token.subject)
    }
    let app = Router::new()
        .route("/layer", post(by_layer).route_layer(guard.require(TokenScope::WalletExport)))
        .route(
            "/extractor",
            post(by_extractor).route_layer(Extension(RequiredScope(TokenScope::WalletExport))),
        )
        .route("/unguarded", post(by_layer))
        .route("/no-scope", post(by_extractor))
        .layer(from_fn(authenticate))
        .with_state(guard);
    serve(app).await
}

async fn call(
    url: &str,
    token: Option<&str>,
    session: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, String) {
    // Cargo unifies reqwest's `rustls-no-provider` across the workspace: install the provider first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut request = reqwest::Client::new().post(url);
    if let Some(token) = token {
        request = request.header(ELEVATED_ACCESS_TOKEN, token);
    }
    if let Some(session) = session {
        request = request.header("x-test-session", session);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.text().await.unwrap())
}

#[tokio::test]
async fn the_layer_and_the_extractor_let_good_tokens_through_and_challenge_the_rest() {
    let base = backend(Arc::new(InProcessStore::new()), ChallengeOptions::new().max_age(600)).await;
    for (path, handler) in [("layer", "layer"), ("extractor", "extractor")] {
        let url = format!("{base}/{path}");
        // No token: the challenge the engine's middleware steps up on.
        let (status, headers, body) = call(&url, None, None).await;
        assert_eq!(status, 403, "{path}");
        let body: ErrorBody = serde_json::from_str(&body).unwrap();
        assert_eq!(body.code, ErrorCode::ElevatedAccessTokenRequired);
        let challenge = headers.get("www-authenticate").unwrap().to_str().unwrap();
        let parsed = parse_step_up_challenge(challenge).unwrap();
        assert_eq!(
            (parsed.scopes, parsed.max_age),
            (vec![TokenScope::WalletExport], Some(600)),
            "{challenge}"
        );

        // A good multi-use token passes twice; a single-use one once.
        let multi = token(false, "s1");
        for _ in 0..2 {
            let (status, _, body) = call(&url, Some(&multi), None).await;
            assert_eq!((status, body.as_str()), (200, format!("{handler} u1").as_str()));
        }
        let single = token(true, "s1");
        assert_eq!(call(&url, Some(&single), None).await.0, 200);
        let (status, _, body) = call(&url, Some(&single), None).await;
        assert_eq!(status, 403);
        assert!(body.contains("already used"), "{body}");

        // Bound to the session the backend's authentication found: another session's token is refused.
        assert_eq!(call(&url, Some(&token(false, "s1")), Some("s1")).await.0, 200);
        let (status, _, body) = call(&url, Some(&token(false, "s1")), Some("s2")).await;
        assert_eq!(status, 403);
        assert!(body.contains("another session"), "{body}");
    }
}

#[tokio::test]
async fn routes_set_up_wrong_answer_500_not_200() {
    let base = backend(Arc::new(InProcessStore::new()), ChallengeOptions::new()).await;
    assert_eq!(call(&format!("{base}/unguarded"), Some(&token(false, "s1")), None).await.0, 500);
    assert_eq!(call(&format!("{base}/no-scope"), Some(&token(false, "s1")), None).await.0, 500);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_store_out_of_reach_answers_503_and_never_reaches_the_handler() {
    let store = stepup_guard::RedisStore::open(&format!("redis://{}", closed_port().await)).unwrap();
    let base = backend(Arc::new(store), ChallengeOptions::new()).await;
    let (status, headers, body) = call(&format!("{base}/layer"), Some(&token(true, "s1")), None).await;
    assert_eq!(status, 503);
    assert_eq!(serde_json::from_str::<ErrorBody>(&body).unwrap().code, ErrorCode::ElevatedCheckUnavailable);
    assert!(headers.get("www-authenticate").is_none() && headers.get("retry-after").is_some());
}

/// Review finding: the extractor took any token a layer had let through, whatever scope the layer required. A
/// router-wide `user:update` layer in front of a `wallet:export` extractor let a `user:update` token export.
#[tokio::test]
async fn an_extractor_behind_a_layer_for_another_scope_still_requires_its_own() {
    let guard =
        for_reference_server().key(our_key()).single_use_store(InProcessStore::new()).build().unwrap();
    async fn export(RequireElevated(token): RequireElevated) -> String {
        format!("exported for {}", token.subject)
    }
    let app = Router::new()
        .route("/export", post(export).route_layer(Extension(RequiredScope(TokenScope::WalletExport))))
        .layer(guard.require(TokenScope::UserUpdate))
        .with_state(guard);
    let base = serve(app).await;
    let with_scope = |scope: &str, single_use: bool| {
        let mut claims = ours();
        claims["scope"] = json!(scope);
        claims["singleUse"] = json!(single_use);
        claims["jti"] = json!(format!("scoped-{}", unique()));
        claims["iat"] = json!(now());
        claims["exp"] = json!(now() + 300);
        eddsa("k1", &claims)
    };
    let url = format!("{base}/export");
    let (status, _, body) = call(&url, Some(&with_scope("user:update", false)), None).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("does not grant `wallet:export`"), "{body}");
    // A token granting both passes both, and a single-use one is spent once (by the layer), not twice.
    assert_eq!(call(&url, Some(&with_scope("user:update wallet:export", false)), None).await.0, 200);
    let single = with_scope("user:update wallet:export", true);
    assert_eq!(call(&url, Some(&single), None).await.0, 200);
    assert_eq!(call(&url, Some(&single), None).await.0, 403);
}
