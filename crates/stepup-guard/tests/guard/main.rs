//! The guard against tokens signed here with test keys, in both claim shapes (the reference server's and
//! Dynamic's), a JWKS served on loopback, the single-use stores on a real Redis and PostgreSQL, and the tower
//! layer and axum extractors over real HTTP.
//!
//! Redis tests read `STEPUP_TEST_REDIS_URL`, PostgreSQL tests `STEPUP_TEST_DATABASE_URL` (`.ci/run` sets both
//! and checks the services are up); without them they say they were skipped.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod http;
mod jwks;
mod stores;
mod vectors;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use stepup_guard::{Guard, InProcessStore, Key};

pub const EDDSA_PRIVATE: &str = include_str!("../../../../tests/keys/eddsa-private.pem");
pub const EDDSA_PUBLIC: &str = include_str!("../../../../tests/keys/eddsa-public.pem");
pub const RS256_PRIVATE: &str = include_str!("../../../../tests/keys/rs256-private.pem");
pub const RS256_PUBLIC: &str = include_str!("../../../../tests/keys/rs256-public.pem");
pub const ES256_PRIVATE: &str = include_str!("../../../../tests/keys/es256-private.pem");

pub const ISSUER: &str = "stepup-reference-server";
pub const ENVIRONMENT: &str = "dev";
pub const NOW: u64 = 1_800_000_000;

/// Signs `claims` with the EdDSA test key under `kid`.
pub fn eddsa(kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_pem(EDDSA_PRIVATE.as_bytes()).unwrap())
        .unwrap()
}

/// Signs `claims` with the RS256 test key under `kid`.
pub fn rs256(kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(RS256_PRIVATE.as_bytes()).unwrap())
        .unwrap()
}

/// A reference-server token's claims: multi-use `wallet:export`, user `u1`, session `s1`, issued at [`NOW`].
pub fn ours() -> Value {
    json!({
        "iss": ISSUER, "sub": "u1", "aud": ENVIRONMENT, "scope": "wallet:export credential:link",
        "exp": NOW + 300, "iat": NOW, "jti": "t-1", "sid": "s1", "singleUse": false, "amr": ["totp"],
        "token_use": "elevated"
    })
}

/// The reference server's key as a guard key.
pub fn our_key() -> Key {
    Key::from_pem(stepup_guard::Algorithm::EdDsa, EDDSA_PUBLIC.as_bytes(), Some("k1".to_owned())).unwrap()
}

/// A builder for the reference server's tokens (issuer, audience): the tests add keys, a store and the rest.
pub fn for_reference_server() -> stepup_guard::GuardBuilder {
    Guard::builder().issuer(ISSUER).audience(ENVIRONMENT)
}

/// A guard for the reference server's tokens with static keys and an in-process store.
pub fn our_guard() -> Guard {
    for_reference_server()
        .key(our_key())
        .single_use_store(InProcessStore::new())
        .leeway(std::time::Duration::ZERO)
        .build()
        .unwrap()
}

/// Whether an optional service's tests run: `Some(url)` from `var`, or `None` after saying they were skipped.
/// Under `CI=true` a missing variable fails instead.
pub fn service(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{var} must be set in CI ({what} tests)");
            eprintln!("skipped: {var} is not set ({what} tests run in CI)");
            None
        }
    }
}

/// A unique suffix, so runs sharing a Redis or database never see each other's tokens.
pub fn unique() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{nanos}-{}", std::process::id())
}

/// Serves `app` on a loopback port of its own; its base URL.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

/// A loopback address nothing listens on (bound, then let go): a service out of reach.
pub async fn closed_port() -> std::net::SocketAddr {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap()
}
