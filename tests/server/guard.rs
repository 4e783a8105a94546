//! The resource guard, sessions, environment calls and the admin API over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{ADMIN, Backend, ENV, TestServer, TestUser, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stepup_proto::{
    JwksResponse, ProjectSettings, StepUpCheckResponse, UpdateSelfResponse, VerifiedCredential,
};
use stepup_server::EnvironmentConfig;

async fn open(server: &TestServer, jwt: &str, scope: &str, token: Option<&str>) -> reqwest::Response {
    server.call::<Value>(Method::GET, &format!("/protected/{scope}"), Some(jwt), token, None).await
}

async fn every_bad_token_gets_the_challenge(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.environments.push(EnvironmentConfig::dev("other"));
    })
    .await;
    let TestUser { jwt, email, .. } = server.user().await;
    let token = server.elevated_via_email(&jwt, &email, &["wallet:sign"]).await;
    assert_eq!(open(&server, &jwt, "wallet:sign", Some(&token)).await.status(), StatusCode::OK);

    // Missing.
    let (_, headers) = assert_error(
        open(&server, &jwt, "wallet:sign", None).await,
        StatusCode::FORBIDDEN,
        "elevated_access_token_required",
    )
    .await;
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer error=\"insufficient_user_authentication\""), "{challenge}");
    assert!(challenge.contains("scope=\"wallet:sign\""), "{challenge}");
    // Wrong scope.
    assert_error(
        open(&server, &jwt, "wallet:export", Some(&token)).await,
        StatusCode::FORBIDDEN,
        "elevated_access_token_required",
    )
    .await;
    // Bad signature: the claims changed to add a scope.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    claims["scope"] = json!("wallet:sign wallet:export");
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    assert_error(
        open(&server, &jwt, "wallet:export", Some(&parts.join("."))).await,
        StatusCode::FORBIDDEN,
        "elevated_access_token_required",
    )
    .await;
    // Garbage.
    assert_error(
        open(&server, &jwt, "wallet:sign", Some("not-a-jwt")).await,
        StatusCode::FORBIDDEN,
        "elevated_access_token_required",
    )
    .await;
    // Another user's token.
    let TestUser { jwt: other_jwt, .. } = server.user().await;
    assert_error(
        open(&server, &other_jwt, "wallet:sign", Some(&token)).await,
        StatusCode::FORBIDDEN,
        "elevated_access_token_required",
    )
    .await;
    // Another environment's token, presented with that environment's own session: refused here.
    let other_user: stepup_proto::SdkUser = server
        .http
        .post(format!("{}/admin/environments/other/users", server.server.base_url()))
        .bearer_auth(ADMIN)
        .json(&json!({"email": "x@other.example"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other_session: Value = server
        .http
        .post(format!(
            "{}/admin/environments/other/users/{}/sessions",
            server.server.base_url(),
            other_user.id
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other_session = other_session["jwt"].as_str().unwrap();
    // A session of "other" is not a session of "dev".
    assert_error(server.get("/users", Some(other_session)).await, StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
    // An elevated token of "other" (a real one, from its own email step-up) does not open "dev"'s resource.
    let other = |path: &str| format!("{}/sdk/other{path}", server.server.base_url());
    let created: Value = server
        .http
        .post(other("/emailVerifications/create"))
        .bearer_auth(other_session)
        .json(&json!({"email": "x@other.example"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let outbox: Vec<Value> = server
        .http
        .get(format!("{}/admin/environments/other/outbox", server.server.base_url()))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let verified: UpdateSelfResponse = server
        .http
        .post(other("/emailVerifications/verify"))
        .bearer_auth(other_session)
        .json(
            &json!({"verificationUUID": created["verificationUUID"], "verificationToken": outbox[0]["code"],
                      "requestedScopes": ["wallet:sign"]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other_token = verified.verify.elevated_access_token.unwrap().expose_secret().to_owned();
    let at_other = server
        .http
        .get(other("/protected/wallet:sign"))
        .bearer_auth(other_session)
        .header("x-dyn-elevated-access-token", &other_token)
        .send()
        .await
        .unwrap();
    assert_eq!(at_other.status(), StatusCode::OK, "the token works where it was issued");
    let at_dev = open(&server, &jwt, "wallet:sign", Some(&other_token)).await;
    assert_error(at_dev, StatusCode::FORBIDDEN, "elevated_access_token_required").await;
    // Expired.
    server.clock.advance(600);
    assert_error(
        open(&server, &jwt, "wallet:sign", Some(&token)).await,
        StatusCode::FORBIDDEN,
        "elevated_access_token_required",
    )
    .await;
    // Unknown scope in the path.
    assert_error(
        open(&server, &jwt, "wallet:teleport", Some(&token)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    server.shutdown().await;
}

async fn single_use_tokens_open_once(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { jwt, email, .. } = server.user().await;
    let token = server.elevated_via_email(&jwt, &email, &["user:delete", "wallet:sign"]).await;
    let parsed = stepup_core::ElevatedToken::parse(stepup_core::Jwt::new(&token), server.now()).unwrap();
    assert!(parsed.is_single_use(), "a set with a single-use scope is single-use");
    assert_eq!(open(&server, &jwt, "wallet:sign", Some(&token)).await.status(), StatusCode::OK);
    assert_error(
        open(&server, &jwt, "user:delete", Some(&token)).await,
        StatusCode::FORBIDDEN,
        "elevated_access_token_required",
    )
    .await;
    server.shutdown().await;
}

async fn sessions_are_checked(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { jwt, .. } = server.user().await;
    assert_error(server.get("/users", None).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_error(server.get("/users", Some("a.b.c")).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(server.get("/users", Some(&jwt)).await.status(), StatusCode::OK);
    server.clock.advance(24 * 3600);
    assert_error(server.get("/users", Some(&jwt)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let response = server
        .http
        .get(format!("{}/sdk/nope/users", server.server.base_url()))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    server.shutdown().await;
}

async fn step_up_check_follows_the_policy(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.environments[0].policy.step_up_scopes = vec![stepup_proto::TokenScope::WalletExport];
    })
    .await;
    let TestUser { user, jwt, .. } = server.user().await;
    let wallet = json!({"address": "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23", "chain": "EVM", "walletName": "metamask", "walletProvider": "browserExtension"});
    let response = server.admin_post(&format!("/users/{}/wallets", user.id), &wallet).await;
    assert_eq!(response.status(), StatusCode::OK);
    let embedded = json!({"address": "0x00000000000000000000000000000000000000aa", "chain": "EVM", "walletName": "dynamicwaas", "walletProvider": "embeddedWallet", "embedded": true});
    let credential: VerifiedCredential =
        server.admin_post(&format!("/users/{}/wallets", user.id), &embedded).await.json().await.unwrap();
    assert!(credential.is_embedded_wallet());
    let check: StepUpCheckResponse = server
        .post("/stepUp/check", Some(&jwt), &json!({"scope": "wallet:export"}))
        .await
        .json()
        .await
        .unwrap();
    assert!(check.is_required);
    let formats: Vec<&str> = check.credentials.iter().map(|c| c.format.as_str()).collect();
    assert_eq!(formats, ["email", "blockchain"], "the embedded wallet is never offered");
    assert_eq!(check.credentials[1].kind.as_deref(), Some("browserExtension"));
    assert_eq!(check.default_credential_id.as_deref(), Some(check.credentials[0].id.as_str()));
    let check: StepUpCheckResponse = server
        .post("/stepUp/check", Some(&jwt), &json!({"scope": "wallet:sign"}))
        .await
        .json()
        .await
        .unwrap();
    assert!(!check.is_required);
    assert!(check.credentials.is_empty());
    let response = server.post("/stepUp/check", Some(&jwt), &json!({"scope": 7})).await;
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    server.shutdown().await;
}

async fn environment_calls(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let jwks: JwksResponse = server.get("/.well-known/jwks", None).await.json().await.unwrap();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!((jwks.keys[0].kty.as_str(), jwks.keys[0].crv.as_str()), ("OKP", "Ed25519"));
    let TestUser { jwt, .. } = server.user().await;
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["kid"], jwks.keys[0].kid.as_str());
    let settings: ProjectSettings = server.get("/settings", None).await.json().await.unwrap();
    assert_eq!(settings.general["appName"], "Stepup Demo");
    let health = server.http.get(format!("{}/health", server.server.base_url())).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let nonces: Value = server.get("/nonces?count=5", None).await.json().await.unwrap();
    assert_eq!(nonces["nonces"].as_array().unwrap().len(), 5);
    assert_error(server.get("/nonces?count=6", None).await, StatusCode::BAD_REQUEST, "bad_request").await;
    assert_error(server.get("/nonces?count=x", None).await, StatusCode::BAD_REQUEST, "bad_request").await;
    assert_error(server.get("/no/such/route", None).await, StatusCode::NOT_FOUND, "not_found").await;
    server.shutdown().await;
}

async fn admin_api_needs_its_token(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let url = format!("{}/admin/environments/{ENV}/users", server.server.base_url());
    let response = server.http.post(&url).json(&json!({"email": "a@example.com"})).send().await.unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let response = server
        .http
        .post(&url)
        .bearer_auth("wrong")
        .json(&json!({"email": "a@example.com"}))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let response = server.admin_post("/users", &json!({"email": "not an email"})).await;
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    let response = server.admin_post("/users/nobody/sessions", &json!({})).await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let TestUser { user, .. } = server.user().await;
    let response = server.admin_post(&format!("/users/{}/wallets", user.id), &json!({"address": "0x12", "chain": "EVM", "walletName": "m", "walletProvider": "browserExtension"})).await;
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    server.shutdown().await;

    // Without an admin token the whole tree is off.
    let server = TestServer::start_with(backend, |config| config.admin_token = None).await;
    let response = server
        .http
        .post(format!("{}/admin/environments/{ENV}/users", server.server.base_url()))
        .bearer_auth(ADMIN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    server.shutdown().await;
}

/// Another axum server guards its own route with the `Elevated` extractor and a `RequiredScope`.
async fn the_extractor_guards_another_servers_route(backend: &Backend) {
    use stepup_server::guard::{Elevated, RequiredScope};
    let server = TestServer::start(backend).await;
    let app = axum::Router::new()
        .route(
            "/sdk/{environment_id}/wallet/export",
            axum::routing::post(|elevated: Elevated| async move {
                elevated.claims.map(|c| c.token_id).unwrap_or_default()
            }),
        )
        .route_layer(axum::Extension(RequiredScope(stepup_proto::TokenScope::WalletExport)))
        .with_state(server.server.state().clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sdk/{ENV}/wallet/export", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let TestUser { jwt, email, .. } = server.user().await;
    let response = server.http.post(&url).bearer_auth(&jwt).send().await.unwrap();
    let (_, headers) = assert_error(response, StatusCode::FORBIDDEN, "elevated_access_token_required").await;
    assert!(headers["www-authenticate"].to_str().unwrap().contains("wallet:export"));
    let token = server.elevated_via_email(&jwt, &email, &["wallet:export"]).await;
    let send =
        || server.http.post(&url).bearer_auth(&jwt).header("x-dyn-elevated-access-token", &token).send();
    let response = send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response.text().await.unwrap().is_empty());
    assert_error(send().await.unwrap(), StatusCode::FORBIDDEN, "elevated_access_token_required").await;
    let response = server.http.post(&url).send().await.unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    server.shutdown().await;
}

async fn expired_rows_are_purged(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let nonces: Value = server.get("/nonces", None).await.json().await.unwrap();
    let nonce = nonces["nonces"][0].as_str().unwrap().to_owned();
    let store = server.server.state().store().clone();
    assert_eq!(store.nonce_used(&nonce, ENV).await.unwrap(), Some(false));
    store.purge_expired(stepup_server::store::secs(server.now())).await.unwrap();
    assert_eq!(store.nonce_used(&nonce, ENV).await.unwrap(), Some(false), "a live nonce stays");
    server.clock.advance(11 * 60);
    store.purge_expired(stepup_server::store::secs(server.now())).await.unwrap();
    assert_eq!(store.nonce_used(&nonce, ENV).await.unwrap(), None, "an expired nonce is gone");
    server.shutdown().await;
}

on_both_databases!(
    expired_rows_are_purged,
    the_extractor_guards_another_servers_route,
    every_bad_token_gets_the_challenge,
    single_use_tokens_open_once,
    sessions_are_checked,
    step_up_check_follows_the_policy,
    environment_calls,
    admin_api_needs_its_token,
);
