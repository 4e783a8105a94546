//! Keys from a JWKS served on loopback: fetched once and cached, refetched for an unknown `kid` at most once a
//! minute (a rotation is picked up), and a JWKS out of reach refuses with a 503-kind error, never lets through.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use stepup_guard::{GuardError, InProcessStore, Refusal, Requirement, Unavailable};
use stepup_proto::TokenScope;
use tokio::sync::Mutex;

use super::*;

const ES256_PUBLIC: &str = include_str!("../../../../tests/keys/es256-public.pem");

/// The DER inside a PEM.
fn der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

/// The EdDSA test key as an OKP JWK (the key is the last 32 bytes of its SPKI).
fn okp_jwk(kid: &str) -> Value {
    let der = der(EDDSA_PUBLIC);
    json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(&der[der.len() - 32..]), "kid": kid,
           "alg": "EdDSA", "use": "sig"})
}

/// The ES256 test key as an EC JWK (the SPKI ends with the uncompressed point 04 || x || y).
fn ec_jwk(kid: &str) -> Value {
    let der = der(ES256_PUBLIC);
    let point = &der[der.len() - 64..];
    json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&point[..32]),
           "y": URL_SAFE_NO_PAD.encode(&point[32..]), "kid": kid, "alg": "ES256"})
}

fn es256(kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_pem(ES256_PRIVATE.as_bytes()).unwrap())
        .unwrap()
}

#[derive(Clone, Default)]
struct Served {
    document: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

async fn serve_jwks(served: Served) -> String {
    async fn jwks(State(served): State<Served>) -> axum::Json<Value> {
        served.fetches.fetch_add(1, Ordering::SeqCst);
        axum::Json(served.document.lock().await.clone())
    }
    let app = Router::new().route("/jwks", get(jwks)).with_state(served);
    format!("{}/jwks", serve(app).await)
}

/// A guard whose keys come from the JWKS at `url`.
fn jwks_guard(url: &str) -> Result<Guard, stepup_guard::BuildError> {
    for_reference_server().jwks_url(url).single_use_store(InProcessStore::new()).build()
}

fn guard_for(url: &str) -> Guard {
    jwks_guard(url).unwrap()
}

#[tokio::test]
async fn keys_are_fetched_once_cached_and_a_rotation_is_picked_up_at_most_once_a_minute() {
    let served = Served::default();
    *served.document.lock().await = json!({"keys": [okp_jwk("k1")]});
    let guard = guard_for(&serve_jwks(served.clone()).await);
    let requirement = Requirement::scope(TokenScope::WalletExport);
    let at = |token: String, now: u64| {
        let (guard, requirement) = (guard.clone(), requirement.clone());
        async move { guard.check_at(Some(&token), &requirement, now).await.map(|_| ()) }
    };

    at(eddsa("k1", &ours()), NOW).await.unwrap();
    at(eddsa("k1", &ours()), NOW + 1).await.unwrap();
    assert_eq!(served.fetches.load(Ordering::SeqCst), 1, "cached");

    // The issuer rotates to an ES256 key `k2`. A token under it right after the last fetch: no new fetch yet
    // (a stream of made-up kids must not become a stream of fetches).
    *served.document.lock().await = json!({"keys": [okp_jwk("k1"), ec_jwk("k2")]});
    let rotated = es256("k2", &ours());
    assert_eq!(
        at(rotated.clone(), NOW + 30).await,
        Err(GuardError::Refused(Refusal::UnknownKey { kid: Some("k2".into()) }))
    );
    assert_eq!(served.fetches.load(Ordering::SeqCst), 1);
    // A minute on, the unknown kid fetches once and passes.
    at(rotated.clone(), NOW + 60).await.unwrap();
    at(rotated, NOW + 61).await.unwrap();
    assert_eq!(served.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_jwks_out_of_reach_refuses_every_token_as_unavailable() {
    // A port nothing listens on: bound, then dropped.
    let guard = guard_for(&format!("http://{}/jwks", closed_port().await));
    let (token, requirement) = (eddsa("k1", &ours()), Requirement::scope(TokenScope::WalletExport));
    let result = guard.check_at(Some(&token), &requirement, NOW).await;
    assert!(matches!(result, Err(GuardError::Unavailable(Unavailable::Keys { .. }))), "{result:?}");
}

/// Review finding: the cache's lock was held across the fetch, so one token with a made-up `kid` (anyone can send
/// one, once a minute) stalled every check for as long as the JWKS took to answer. Checks whose key is cached
/// now go on while the fetch hangs.
#[tokio::test]
async fn a_fetch_for_an_unknown_kid_does_not_hold_up_checks_with_a_cached_key() {
    use std::sync::atomic::AtomicBool;
    use tokio::sync::Notify;
    #[derive(Clone)]
    struct Held {
        fetches: Arc<AtomicUsize>,
        hold: Arc<AtomicBool>,
        release: Arc<Notify>,
        arrived: Arc<Notify>,
    }
    async fn jwks(State(held): State<Held>) -> axum::Json<Value> {
        held.fetches.fetch_add(1, Ordering::SeqCst);
        if held.hold.load(Ordering::SeqCst) {
            held.arrived.notify_one();
            held.release.notified().await;
        }
        axum::Json(json!({"keys": [okp_jwk("k1")]}))
    }
    let held = Held {
        fetches: Arc::default(),
        hold: Arc::default(),
        release: Arc::new(Notify::new()),
        arrived: Arc::new(Notify::new()),
    };
    let app = Router::new().route("/jwks", get(jwks)).with_state(held.clone());
    let guard = guard_for(&format!("{}/jwks", serve(app).await));
    let requirement = Requirement::scope(TokenScope::WalletExport);
    guard.check_at(Some(&eddsa("k1", &ours())), &requirement, NOW).await.unwrap();

    // A minute on, a made-up kid makes the guard fetch, and the JWKS hangs.
    held.hold.store(true, Ordering::SeqCst);
    let (stalled_guard, stalled_requirement) = (guard.clone(), requirement.clone());
    let made_up = tokio::spawn(async move {
        stalled_guard.check_at(Some(&eddsa("made-up", &ours())), &stalled_requirement, NOW + 61).await
    });
    held.arrived.notified().await;
    // The cached key still answers while that fetch hangs (the fetch's own timeout is 5 s; this waits 1 s).
    let known = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        guard.check_at(Some(&eddsa("k1", &ours())), &requirement, NOW + 62),
    )
    .await;
    assert!(matches!(known, Ok(Ok(_))), "{known:?}");
    held.release.notify_one();
    assert!(matches!(made_up.await.unwrap(), Err(GuardError::Refused(Refusal::UnknownKey { .. }))));
    assert_eq!(held.fetches.load(Ordering::SeqCst), 2);
}

#[test]
fn a_jwks_over_plain_http_is_refused_unless_on_this_machine() {
    use stepup_guard::{BuildError, KeyError};
    let build = jwks_guard;
    assert!(matches!(build("http://keys.example.com/jwks"), Err(BuildError::Key(KeyError::Url(_)))));
    for fine in [
        "https://keys.example.com/jwks",
        "http://127.0.0.1:9/jwks",
        "http://[::1]:9/jwks",
        "http://localhost/jwks",
    ] {
        assert!(build(fine).is_ok(), "{fine}");
    }
    // A key source replaces the others: giving both is a mistake, said at build time.
    let both = for_reference_server()
        .key(our_key())
        .key_source(stepup_guard::StaticKeys::new([our_key()]))
        .single_use_store(InProcessStore::new())
        .build();
    assert_eq!(both.err(), Some(BuildError::ConflictingKeys));
}
