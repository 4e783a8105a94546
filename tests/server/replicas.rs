//! Two replicas on one PostgreSQL: every single-use rule and counter holds across them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::common;

use common::{Backend, TestServer, TestUser, assert_error, postgres_schema};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stepup_proto::UpdateSelfResponse;

/// Two servers sharing one fresh schema.
async fn replicas() -> Option<(TestServer, TestServer)> {
    replicas_with(|_| {}).await
}

/// Two servers sharing one fresh schema, both configured by `configure`.
async fn replicas_with(
    configure: impl Fn(&mut stepup_server::ServerConfig),
) -> Option<(TestServer, TestServer)> {
    let Backend::Postgres(base) = Backend::postgres()? else { return None };
    let (url, schema) = postgres_schema(&base).await;
    let a = TestServer::start_on(url.clone(), Some((base, schema)), &configure).await;
    let b = TestServer::start_on(url, None, &configure).await;
    b.clock.set(a.now());
    Some((a, b))
}

/// One backend token sent to both replicas, eight times each at once: exactly one elevation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_auth_token_elevates_once_across_replicas() {
    let Some((a, b)) = replicas_with(|config| {
        config.environments[0].external_auth = Some(stepup_server::config::ExternalAuthConfig {
            public_keys: vec![stepup_server::config::ExternalAuthKey {
                algorithm: "EdDSA".into(),
                public_key_pem: include_str!("../keys/eddsa-public.pem").into(),
                kid: None,
            }],
            jwks_url: None,
            issuer: None,
            max_lifetime_secs: 300,
            allow_mfa_users: false,
        });
    })
    .await
    else {
        return;
    };
    let TestUser { user, jwt, .. } = a.user().await;
    let now = a.now().as_secs();
    let claims =
        json!({"sub": user.id, "aud": common::ENV, "scope": "wallet:sign", "jti": "once", "exp": now + 60});
    let key = jsonwebtoken::EncodingKey::from_ed_pem(include_bytes!("../keys/eddsa-private.pem")).unwrap();
    let token =
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA), &claims, &key)
            .unwrap();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..16 {
        let server = if i % 2 == 0 { &a } else { &b };
        let request = server
            .http
            .post(server.url("/externalAuth/verify"))
            .bearer_auth(&jwt)
            .json(&json!({"jwt": token}));
        calls.spawn(async move { request.send().await.unwrap().status() });
    }
    let statuses: Vec<StatusCode> = calls.join_all().await;
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::UNPROCESSABLE_ENTITY));
    b.shutdown().await;
    a.shutdown().await;
}

async fn code_for(server: &TestServer, jwt: &str, email: &str) -> (String, String) {
    let response = server.post("/emailVerifications/create", Some(jwt), &json!({"email": email})).await;
    let body: Value = response.json().await.unwrap();
    let verification = body["verificationUUID"].as_str().unwrap().to_owned();
    let code =
        server.outbox(email).await.into_iter().find(|m| m.verification_uuid == verification).unwrap().code;
    (verification, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_keys_are_shared() {
    let Some((a, b)) = replicas().await else { return };
    let TestUser { jwt, .. } = a.user().await;
    assert_eq!(b.get("/users", Some(&jwt)).await.status(), StatusCode::OK);
    assert_eq!(a.post("/revoke", Some(&jwt), &json!({})).await.status(), StatusCode::NO_CONTENT);
    assert_error(b.get("/users", Some(&jwt)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    b.shutdown().await;
    a.shutdown().await;
}

/// A token earned in a session revoked at one replica opens nothing at the other, not even with a new session
/// of the same user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_a_revoked_session_opens_nothing_at_either_replica() {
    let Some((a, b)) = replicas().await else { return };
    let TestUser { user, jwt, email } = a.user().await;
    let token = a.elevated_via_email(&jwt, &email, &["wallet:sign"]).await;
    let at_b = b.call::<Value>(Method::POST, "/protected/wallet:sign", Some(&jwt), Some(&token), None).await;
    assert_eq!(at_b.status(), StatusCode::OK);
    assert_eq!(a.post("/revoke", Some(&jwt), &json!({})).await.status(), StatusCode::NO_CONTENT);
    for (server, fresh) in [(&a, a.session(&user.id).await), (&b, b.session(&user.id).await)] {
        let with_old =
            server.call::<Value>(Method::POST, "/protected/wallet:sign", Some(&jwt), Some(&token), None);
        assert_error(with_old.await, StatusCode::UNAUTHORIZED, "unauthorized").await;
        let with_new =
            server.call::<Value>(Method::POST, "/protected/wallet:sign", Some(&fresh), Some(&token), None);
        assert_error(with_new.await, StatusCode::FORBIDDEN, "elevated_access_token_required").await;
    }
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_use_token_spent_at_one_is_refused_at_the_other() {
    let Some((a, b)) = replicas().await else { return };
    let TestUser { jwt, email, .. } = a.user().await;
    let (verification, code) = code_for(&a, &jwt, &email).await;
    let response = b
        .post(
            "/emailVerifications/verify",
            Some(&jwt),
            &json!({"verificationUUID": verification, "verificationToken": code, "requestedScopes": ["wallet:export"]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "a code sent by one replica verifies at the other");
    let body: UpdateSelfResponse = response.json().await.unwrap();
    let token = body.verify.elevated_access_token.unwrap().expose_secret().to_owned();
    let at_a =
        a.call::<Value>(Method::POST, "/protected/wallet:export", Some(&jwt), Some(&token), None).await;
    assert_eq!(at_a.status(), StatusCode::OK);
    let at_b =
        b.call::<Value>(Method::POST, "/protected/wallet:export", Some(&jwt), Some(&token), None).await;
    assert_error(at_b, StatusCode::FORBIDDEN, "elevated_access_token_required").await;
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otp_attempt_limits_hold_across_replicas() {
    let Some((a, b)) = replicas().await else { return };
    let TestUser { jwt, email, .. } = a.user().await;
    let (verification, code) = code_for(&a, &jwt, &email).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for server in [&a, &b, &a] {
        let response = server
            .post(
                "/emailVerifications/verify",
                Some(&jwt),
                &json!({"verificationUUID": verification, "verificationToken": wrong}),
            )
            .await;
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "wrong_email_verification_token").await;
    }
    for server in [&b, &a] {
        let response = server
            .post(
                "/emailVerifications/verify",
                Some(&jwt),
                &json!({"verificationUUID": verification, "verificationToken": code}),
            )
            .await;
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_verification").await;
    }
    // The send limit counts sends made through either replica.
    for server in [&b, &a] {
        assert_eq!(
            server.post("/emailVerifications/create", Some(&jwt), &json!({"email": email})).await.status(),
            StatusCode::OK
        );
    }
    let response = b.post("/emailVerifications/create", Some(&jwt), &json!({"email": email})).await;
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_verification_attempts").await;
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_spends_of_one_single_use_token_admit_exactly_one() {
    let Some((a, b)) = replicas().await else { return };
    let TestUser { jwt, email, .. } = a.user().await;
    let (verification, code) = code_for(&a, &jwt, &email).await;
    let body: UpdateSelfResponse = a
        .post(
            "/emailVerifications/verify",
            Some(&jwt),
            &json!({"verificationUUID": verification, "verificationToken": code, "requestedScopes": ["user:delete"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let token = body.verify.elevated_access_token.unwrap().expose_secret().to_owned();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..16 {
        let server = if i % 2 == 0 { &a } else { &b };
        let request = server
            .http
            .delete(server.url("/protected/user:delete"))
            .bearer_auth(&jwt)
            .header("x-dyn-elevated-access-token", &token);
        calls.spawn(async move { request.send().await.unwrap().status() });
    }
    let statuses: Vec<StatusCode> = calls.join_all().await;
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::FORBIDDEN).count(), 15);
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_issued_by_one_replica_verifies_once_on_the_other() {
    use alloy_primitives::{Address, Signature, eip191_hash_message};
    let Some((a, b)) = replicas().await else { return };
    let TestUser { user, jwt, .. } = a.user().await;
    let key = k256::ecdsa::SigningKey::from_bytes(&[5u8; 32].into()).unwrap();
    let address = Address::from_private_key(&key).to_checksum(None);
    let link = json!({"address": address, "chain": "EVM", "walletName": "metamask", "walletProvider": "browserExtension"});
    assert_eq!(a.admin_post(&format!("/users/{}/wallets", user.id), &link).await.status(), StatusCode::OK);
    let body: Value = a.get("/nonces", None).await.json().await.unwrap();
    let message = stepup_proto::WalletMessage {
        domain: "localhost".into(),
        address: address.clone(),
        statement: stepup_proto::WalletMessage::statement_for("Stepup Demo"),
        uri: "http://localhost".into(),
        version: "1".into(),
        chain_id: "1".into(),
        nonce: body["nonces"][0].as_str().unwrap().into(),
        issued_at: a.now().to_rfc3339(),
        request_id: common::ENV.into(),
    }
    .to_string();
    let (signature, recovery) =
        key.sign_prehash_recoverable(eip191_hash_message(&message).as_slice()).unwrap();
    let signature =
        format!("0x{}", stepup_server::random::hex(&Signature::from((signature, recovery)).as_bytes()));
    let request = json!({"signedMessage": signature, "messageToSign": message, "publicWalletAddress": address, "chain": "EVM",
                         "walletName": "metamask", "walletProvider": "browserExtension", "requestedScopes": ["wallet:sign"]});
    assert_eq!(b.post("/wallets/verify", Some(&jwt), &request).await.status(), StatusCode::OK);
    assert_error(
        a.post("/wallets/verify", Some(&jwt), &request).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "nonce_already_used",
    )
    .await;
    b.shutdown().await;
    a.shutdown().await;
}
