//! External-auth elevation over real HTTP (`POST /externalAuth/verify`): the app's backend signs a short JWT
//! with RS256, ES256 or EdDSA (test keys in `tests/keys/`), the server checks it against configured keys or a
//! JWKS served on loopback, and answers an elevated token; every way a token can be wrong has its answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{Backend, ENV, TestServer, TestUser, assert_error, claims_of};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stepup_proto::VerifyResponse;
use stepup_server::config::{ExternalAuthConfig, ExternalAuthKey};

const RS256_PRIVATE: &str = include_str!("../keys/rs256-private.pem");
const RS256_PUBLIC: &str = include_str!("../keys/rs256-public.pem");
const ES256_PRIVATE: &str = include_str!("../keys/es256-private.pem");
const ES256_PUBLIC: &str = include_str!("../keys/es256-public.pem");
const EDDSA_PRIVATE: &str = include_str!("../keys/eddsa-private.pem");
const EDDSA_PUBLIC: &str = include_str!("../keys/eddsa-public.pem");

fn encoding_key(algorithm: Algorithm) -> EncodingKey {
    match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(RS256_PRIVATE.as_bytes()),
        Algorithm::ES256 => EncodingKey::from_ec_pem(ES256_PRIVATE.as_bytes()),
        _ => EncodingKey::from_ed_pem(EDDSA_PRIVATE.as_bytes()),
    }
    .unwrap()
}

/// A backend token for `claims`, signed with the test key of `algorithm`, with `kid` if given.
fn sign(algorithm: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &encoding_key(algorithm)).unwrap()
}

fn external(keys: Vec<ExternalAuthKey>, jwks_url: Option<String>) -> ExternalAuthConfig {
    ExternalAuthConfig {
        public_keys: keys,
        jwks_url,
        issuer: Some("https://backend.example.com".into()),
        max_lifetime_secs: 300,
        allow_mfa_users: false,
    }
}

fn key(algorithm: &str, pem: &str, kid: Option<&str>) -> ExternalAuthKey {
    ExternalAuthKey { algorithm: algorithm.into(), public_key_pem: pem.into(), kid: kid.map(str::to_owned) }
}

/// Claims a well-behaved backend sends for `user`, now.
fn claims(server: &TestServer, user: &str, jti: &str) -> Value {
    let now = server.now().as_secs();
    json!({"iss": "https://backend.example.com", "sub": user, "aud": ENV, "scope": "wallet:export credential:link",
           "jti": jti, "iat": now, "exp": now + 120})
}

async fn elevate(server: &TestServer, jwt: &str, token: &str) -> reqwest::Response {
    server.post("/externalAuth/verify", Some(jwt), &json!({"jwt": token})).await
}

async fn refused(server: &TestServer, jwt: &str, token: &str, message: &str) {
    let (body, _) = assert_error(
        elevate(server, jwt, token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_external_auth",
    )
    .await;
    assert!(body.error.contains(message), "expected `{message}` in `{}`", body.error);
}

async fn configured_keys_elevate_once(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.environments[0].external_auth = Some(external(
            vec![
                key("EdDSA", EDDSA_PUBLIC, None),
                key("ES256", ES256_PUBLIC, Some("es-1")),
                key("RS256", RS256_PUBLIC, None),
            ],
            None,
        ));
    })
    .await;
    let TestUser { user, jwt, .. } = server.user().await;
    // The check offers it.
    let check: stepup_proto::StepUpCheckResponse = server
        .post("/stepUp/check", Some(&jwt), &json!({"scope": "wallet:export"}))
        .await
        .json()
        .await
        .unwrap();
    assert!(check.credentials.iter().any(|c| c.format.as_str() == "externalUser" && c.id == "external-auth"));
    for (i, algorithm) in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256].into_iter().enumerate() {
        let kid = (algorithm == Algorithm::ES256).then_some("es-1");
        let token = sign(algorithm, kid, &claims(&server, &user.id, &format!("jti-{i}")));
        let response = elevate(&server, &jwt, &token).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{algorithm:?}: {text}");
        let answer: VerifyResponse = serde_json::from_str(&text).unwrap();
        let elevated = answer.elevated_access_token.unwrap();
        let token_claims = claims_of(elevated.expose_secret());
        assert_eq!(token_claims["scope"], "credential:link wallet:export");
        assert_eq!(token_claims["amr"], json!(["external"]));
        assert_eq!(token_claims["singleUse"], true, "wallet:export is single-use");
        // The answer carries the session, as every verify answer does.
        assert_eq!(answer.minified_jwt.unwrap().expose_secret(), jwt);
        // The token opens the resource.
        let response = server
            .call::<Value>(
                reqwest::Method::POST,
                "/protected/wallet:export",
                Some(&jwt),
                Some(elevated.expose_secret()),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        // Once: the jti is spent.
        refused(&server, &jwt, &token, "already used").await;
    }
    let settings: Value = server.get("/settings", None).await.json().await.unwrap();
    assert_eq!(settings["security"]["externalAuth"]["enabled"], true);
    assert_eq!(settings["security"]["externalAuth"]["aud"], ENV);
    server.shutdown().await;
}

async fn every_bad_token_has_its_answer(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.environments[0].external_auth = Some(external(
            vec![key("ES256", ES256_PUBLIC, Some("es-1")), key("EdDSA", EDDSA_PUBLIC, None)],
            None,
        ));
    })
    .await;
    let TestUser { user, jwt, .. } = server.user().await;
    let TestUser { user: other, .. } = server.user().await;
    let now = server.now().as_secs();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims(&server, &user.id, &format!("jti-{}", rand_suffix()));
        change(&mut c);
        sign(Algorithm::EdDSA, None, &c)
    };
    refused(&server, &jwt, "not-a-jwt", "not a JWT").await;
    // A key configured with a kid takes only tokens that name it.
    refused(&server, &jwt, &sign(Algorithm::ES256, None, &claims(&server, &user.id, "x")), "no trusted key")
        .await;
    // Critical header parameters are not implemented, so such a token is refused (RFC 7515 §4.1.11).
    let mut header = Header::new(Algorithm::EdDSA);
    header.crit = Some(vec!["exp".into()]);
    let critical =
        jsonwebtoken::encode(&header, &claims(&server, &user.id, "crit"), &encoding_key(Algorithm::EdDSA))
            .unwrap();
    refused(&server, &jwt, &critical, "critical parameters").await;
    // Algorithms no key is pinned to: none, and HS256 keyed with the public key (the classic confusion).
    let body = base64_url(&claims(&server, &user.id, "x").to_string());
    refused(&server, &jwt, &format!("{}.{body}.", base64_url(r#"{"alg":"none"}"#)), "algorithm `none`").await;
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(&server, &user.id, "x"),
        &EncodingKey::from_secret(EDDSA_PUBLIC.as_bytes()),
    )
    .unwrap();
    refused(&server, &jwt, &hs, "algorithm `HS256`").await;
    // RS256 is not configured here; an ES256 token with another kid matches no key.
    refused(&server, &jwt, &sign(Algorithm::RS256, None, &claims(&server, &user.id, "x")), "no trusted key")
        .await;
    refused(
        &server,
        &jwt,
        &sign(Algorithm::ES256, Some("es-2"), &claims(&server, &user.id, "x")),
        "no trusted key",
    )
    .await;
    // A signature that belongs to other claims.
    let mut tampered = with(&|_| {});
    let forged = sign(Algorithm::EdDSA, None, &claims(&server, &other.id, "x"));
    tampered.truncate(tampered.rfind('.').unwrap());
    tampered.push_str(&forged[forged.rfind('.').unwrap()..]);
    refused(&server, &jwt, &tampered, "signature does not verify").await;
    // Time.
    refused(&server, &jwt, &with(&|c| c["exp"] = json!(now - 1)), "expired").await;
    refused(&server, &jwt, &with(&|c| c["exp"] = json!(now + 3600)), "longer than the allowed 300").await;
    refused(
        &server,
        &jwt,
        &with(&|c| {
            c["iat"] = json!(now - 600);
            c["exp"] = json!(now + 60)
        }),
        "longer than",
    )
    .await;
    refused(&server, &jwt, &with(&|c| c["iat"] = json!(now + 120)), "not valid yet").await;
    refused(&server, &jwt, &with(&|c| c["nbf"] = json!(now + 10)), "not valid yet").await;
    refused(
        &server,
        &jwt,
        &with(&|c| {
            c.as_object_mut().unwrap().remove("exp");
        }),
        "`exp`",
    )
    .await;
    refused(&server, &jwt, &with(&|c| c["exp"] = json!("soon")), "`exp`").await;
    // Who it is for.
    refused(&server, &jwt, &with(&|c| c["aud"] = json!("another-env")), "another audience").await;
    assert_eq!(
        elevate(&server, &jwt, &with(&|c| c["aud"] = json!(["x", ENV]))).await.status(),
        StatusCode::OK
    );
    refused(
        &server,
        &jwt,
        &with(&|c| {
            c.as_object_mut().unwrap().remove("aud");
        }),
        "`aud`",
    )
    .await;
    refused(&server, &jwt, &with(&|c| c["iss"] = json!("https://evil.example.com")), "another issuer").await;
    refused(&server, &jwt, &with(&|c| c["sub"] = json!(other.id)), "another user").await;
    refused(
        &server,
        &jwt,
        &with(&|c| {
            c.as_object_mut().unwrap().remove("jti");
        }),
        "`jti`",
    )
    .await;
    refused(&server, &jwt, &with(&|c| c["jti"] = json!("x".repeat(300))), "`jti`").await;
    refused(&server, &jwt, &with(&|c| c["scope"] = json!("  ")), "`scope`").await;
    refused(&server, &jwt, &with(&|c| c["scope"] = json!(["wallet:export"])), "`scope`").await;
    // An unknown scope is the usual 422, and costs nothing: the same jti works once the backend fixes it.
    let typo = sign(
        Algorithm::EdDSA,
        None,
        &json!({"sub": user.id, "aud": ENV, "iss": "https://backend.example.com",
        "scope": "wallet:exprot", "jti": "fixed-later", "exp": now + 60}),
    );
    assert_error(elevate(&server, &jwt, &typo).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_scopes")
        .await;
    let fixed = sign(
        Algorithm::EdDSA,
        None,
        &json!({"sub": user.id, "aud": ENV, "iss": "https://backend.example.com",
        "scope": "wallet:export", "jti": "fixed-later", "exp": now + 60}),
    );
    assert_eq!(elevate(&server, &jwt, &fixed).await.status(), StatusCode::OK);
    // A body without a jwt.
    let response = server.post("/externalAuth/verify", Some(&jwt), &json!({})).await;
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    server.shutdown().await;
}

async fn policy_decides_for_mfa_users_and_unconfigured_environments(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { user, jwt, .. } = server.user().await;
    refused(&server, &jwt, &sign(Algorithm::EdDSA, None, &claims(&server, &user.id, "a")), "not configured")
        .await;
    server.shutdown().await;

    for allow in [false, true] {
        let server = TestServer::start_with(backend, |config| {
            let mut settings = external(vec![key("EdDSA", EDDSA_PUBLIC, None)], None);
            settings.allow_mfa_users = allow;
            config.environments[0].external_auth = Some(settings);
        })
        .await;
        let person = server.totp_user().await;
        let check: stepup_proto::StepUpCheckResponse = server
            .post("/stepUp/check", Some(&person.jwt), &json!({"scope": "wallet:export"}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(check.credentials.iter().any(|c| c.format.as_str() == "externalUser"), allow);
        let token = sign(Algorithm::EdDSA, None, &claims(&server, &person.user.id, "mfa"));
        let response = elevate(&server, &person.jwt, &token).await;
        if allow {
            assert_eq!(response.status(), StatusCode::OK);
            // The backend's credential:link is no MFA: it adds no factor to this user (a new factor would in
            // turn unlock the recovery codes).
            let answer: VerifyResponse = response.json().await.unwrap();
            let link = answer.elevated_access_token.unwrap().expose_secret().to_owned();
            // (A passkey: the user's one authenticator app slot is taken. The guard answers before the body.)
            let probe = json!({"id": "probe"});
            let response = server
                .call(
                    reqwest::Method::POST,
                    "/users/passkeys/register",
                    Some(&person.jwt),
                    Some(&link),
                    Some(&probe),
                )
                .await;
            assert_error(response, StatusCode::FORBIDDEN, "elevated_access_token_required").await;
        } else {
            assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "mfa_required").await;
            // Refused before the jti was spent.
            let token = sign(Algorithm::EdDSA, None, &claims(&server, &person.user.id, "mfa"));
            assert_error(
                elevate(&server, &person.jwt, &token).await,
                StatusCode::UNPROCESSABLE_ENTITY,
                "mfa_required",
            )
            .await;
        }
        server.shutdown().await;
    }
}

/// A JWKS on loopback that counts its requests.
struct Jwks {
    url: String,
    document: Arc<Mutex<Value>>,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Jwks {
    async fn serve(document: Value) -> Self {
        let document = Arc::new(Mutex::new(document));
        let hits = Arc::new(AtomicUsize::new(0));
        let (doc, count) = (document.clone(), hits.clone());
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                count.fetch_add(1, Ordering::SeqCst);
                let body = doc.lock().unwrap().clone();
                async move { axum::Json(body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, document, hits, task }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn jwk(algorithm: Algorithm, kid: &str) -> Value {
    let mut jwk = serde_json::to_value(
        jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding_key(algorithm), algorithm).unwrap(),
    )
    .unwrap();
    jwk["kid"] = json!(kid);
    jwk
}

async fn jwks_keys_are_cached_and_refreshed_at_most_once_a_minute(backend: &Backend) {
    let jwks = Jwks::serve(json!({"keys": [jwk(Algorithm::RS256, "rsa-1")]})).await;
    let url = jwks.url.clone();
    let server = TestServer::start_with(backend, |config| {
        config.environments[0].external_auth = Some(external(vec![], Some(url)));
    })
    .await;
    let TestUser { user, jwt, .. } = server.user().await;
    let token = |algorithm, kid: &str, jti: &str| sign(algorithm, Some(kid), &claims(&server, &user.id, jti));
    assert_eq!(elevate(&server, &jwt, &token(Algorithm::RS256, "rsa-1", "1")).await.status(), StatusCode::OK);
    assert_eq!(jwks.hits(), 1, "fetched on first use");
    assert_eq!(elevate(&server, &jwt, &token(Algorithm::RS256, "rsa-1", "2")).await.status(), StatusCode::OK);
    assert_eq!(jwks.hits(), 1, "then cached");
    // The backend rotates to an ES256 key: the unknown kid is fetched, but only once a minute.
    *jwks.document.lock().unwrap() =
        json!({"keys": [jwk(Algorithm::RS256, "rsa-1"), jwk(Algorithm::ES256, "ec-2")]});
    refused(&server, &jwt, &token(Algorithm::ES256, "ec-2", "3"), "no trusted key").await;
    assert_eq!(jwks.hits(), 1, "the cache is less than a minute old");
    server.clock.advance(61);
    assert_eq!(elevate(&server, &jwt, &token(Algorithm::ES256, "ec-2", "4")).await.status(), StatusCode::OK);
    assert_eq!(jwks.hits(), 2);
    // Made-up kids cannot make the server hammer the backend.
    for i in 0..5 {
        let (kid, jti) = (format!("made-up-{i}"), format!("m{i}"));
        refused(&server, &jwt, &token(Algorithm::ES256, &kid, &jti), "no trusted key").await;
    }
    assert_eq!(jwks.hits(), 2);
    // A key the JWKS pins to another algorithm is not used for this one.
    *jwks.document.lock().unwrap() = json!({"keys": [{"alg": "RS512", "kid": "rsa-1", "kty": "RSA",
        "n": jwk(Algorithm::RS256, "x")["n"], "e": "AQAB"}]});
    server.clock.advance(11 * 60);
    refused(&server, &jwt, &token(Algorithm::RS256, "rsa-1", "5"), "no trusted key").await;
    assert_eq!(jwks.hits(), 3, "a stale cache is fetched again");
    // The backend's JWKS goes away: a token it cannot check is a 503, not a refusal of the token.
    jwks.task.abort();
    let _ = jwks.task.await;
    server.clock.advance(11 * 60);
    let response = elevate(&server, &jwt, &token(Algorithm::ES256, "ec-3", "6")).await;
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "external_auth_unavailable").await;
    server.shutdown().await;
}

/// A JWKS endpoint that streams a chunked body without end (a misbehaving backend, a proxy error loop): the
/// server must stop reading at its limit. Counts the bytes it managed to send.
fn endless_jwks() -> (String, Arc<AtomicUsize>) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
            if stream.write_all(head.as_bytes()).is_err() {
                continue;
            }
            let chunk = format!("4000\r\n{}\r\n", "A".repeat(0x4000));
            // Up to 256 MiB, or until the server hangs up.
            for _ in 0..16_384 {
                if stream.write_all(chunk.as_bytes()).is_err() {
                    break;
                }
                counter.fetch_add(0x4000, Ordering::SeqCst);
            }
        }
    });
    (url, sent)
}

async fn an_endless_jwks_is_not_read_past_its_limit(backend: &Backend) {
    let (url, sent) = endless_jwks();
    let server = TestServer::start_with(backend, |config| {
        config.environments[0].external_auth = Some(external(vec![], Some(url)));
    })
    .await;
    let TestUser { user, jwt, .. } = server.user().await;
    let token = sign(Algorithm::RS256, Some("rsa-1"), &claims(&server, &user.id, "endless"));
    let response = elevate(&server, &jwt, &token).await;
    let (body, _) =
        assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "external_auth_unavailable").await;
    assert!(!body.error.contains("http://"), "the fetch's details stay in the log: {}", body.error);
    // The server read 64 KiB and hung up; what the kernel buffers on the way is a few MiB at most.
    let streamed = sent.load(Ordering::SeqCst);
    assert!(streamed < 16 * 1024 * 1024, "the server kept reading: {streamed} bytes");
    server.shutdown().await;
}

/// A short random suffix for unique `jti`s.
fn rand_suffix() -> String {
    stepup_server::random::hex(&stepup_server::random::bytes::<6>().unwrap())
}

fn base64_url(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

on_both_databases!(
    configured_keys_elevate_once,
    every_bad_token_has_its_answer,
    policy_decides_for_mfa_users_and_unconfigured_environments,
    jwks_keys_are_cached_and_refreshed_at_most_once_a_minute,
    an_endless_jwks_is_not_read_past_its_limit,
);
