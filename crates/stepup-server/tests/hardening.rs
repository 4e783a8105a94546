//! The attacks of the server's adversarial review (issue "Hardening the reference server"), each reproduced over
//! real HTTP on SQLite and PostgreSQL; each test failed before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::{Backend, TestServer, assert_error, code_at};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stepup_proto::{MfaDevicesResponse, TotpRegistration, VerifyResponse};

async fn register_totp(server: &TestServer, jwt: &str, token: Option<&str>) -> reqwest::Response {
    server.call::<Value>(Method::GET, "/users/mfa/register/totp", Some(jwt), token, None).await
}

/// A `credential:link` token enrols a device; the code that completes the enrolment asked for every scope and
/// got them all in one token. Now it may ask for no more than `credential:link`.
async fn enrolment_completes_with_no_more_scopes_than_it_started_with(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let (_, jwt, email) = server.signed_in().await;
    let link = server.elevated_via_email(&jwt, &email, &["credential:link"]).await;
    let registration: TotpRegistration =
        register_totp(&server, &jwt, Some(&link)).await.json().await.unwrap();
    let secret = registration.secret.expose_secret().to_owned();
    let code = code_at(&secret, server.now().as_secs());
    let greedy = json!({"code": code, "id": registration.id,
                        "requestedScopes": ["wallet:export", "user:delete", "credential:unlink"]});
    let response = server.post("/users/mfa/auth/totp", Some(&jwt), &greedy).await;
    let (body, _) = assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_scopes").await;
    assert!(body.error.contains("enrolment"), "{}", body.error);
    // Refused before the code was looked at: the same code completes it within the enrolling token's scopes.
    let modest = json!({"code": code, "id": registration.id, "requestedScopes": ["credential:link"]});
    let answer: VerifyResponse =
        server.post("/users/mfa/auth/totp", Some(&jwt), &modest).await.json().await.unwrap();
    let token = common::claims_of(answer.elevated_access_token.unwrap().expose_secret());
    assert_eq!(token["scope"], "credential:link");
    // Once verified, the device is a factor like any other.
    let next =
        json!({"code": code_at(&secret, server.now().as_secs() + 30), "requestedScopes": ["wallet:export"]});
    assert_eq!(server.post("/users/mfa/auth/totp", Some(&jwt), &next).await.status(), StatusCode::OK);
    server.shutdown().await;
}

/// Enrolled without a token (the policy leaves credential:link out): the completing code elevates nothing.
async fn an_enrolment_without_a_token_mints_nothing(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.environments[0].policy.step_up_scopes = vec![stepup_proto::TokenScope::WalletExport];
    })
    .await;
    let (_, jwt, _) = server.signed_in().await;
    let registration: TotpRegistration = register_totp(&server, &jwt, None).await.json().await.unwrap();
    let code = code_at(registration.secret.expose_secret(), server.now().as_secs());
    let body = json!({"code": code, "id": registration.id, "requestedScopes": ["wallet:export"]});
    let response = server.post("/users/mfa/auth/totp", Some(&jwt), &body).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_scopes").await;
    let body = json!({"code": code, "id": registration.id});
    assert_eq!(server.post("/users/mfa/auth/totp", Some(&jwt), &body).await.status(), StatusCode::OK);
    server.shutdown().await;
}

/// One unfinished TOTP enrolment at a time (a new one replaces it), and one authenticator app per user.
async fn one_pending_and_one_verified_totp_device(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let (_, jwt, email) = server.signed_in().await;
    let link = server.elevated_via_email(&jwt, &email, &["credential:link"]).await;
    let mut registrations = Vec::new();
    for _ in 0..5 {
        let registration: TotpRegistration =
            register_totp(&server, &jwt, Some(&link)).await.json().await.unwrap();
        registrations.push(registration);
    }
    let devices: MfaDevicesResponse = server.get("/users/mfa", Some(&jwt)).await.json().await.unwrap();
    assert_eq!(devices.count, 1, "the last enrolment replaced the others");
    assert_eq!(devices.devices[0].id.as_deref(), Some(registrations[4].id.as_str()));
    // A replaced enrolment cannot be completed.
    let old = &registrations[0];
    let body = json!({"code": code_at(old.secret.expose_secret(), server.now().as_secs()), "id": old.id});
    assert_error(
        server.post("/users/mfa/auth/totp", Some(&jwt), &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "mfa_device_not_found",
    )
    .await;
    let last = &registrations[4];
    let body = json!({"code": code_at(last.secret.expose_secret(), server.now().as_secs()), "id": last.id});
    let answer: VerifyResponse =
        server.post("/users/mfa/auth/totp", Some(&jwt), &body).await.json().await.unwrap();
    let mfa_jwt = answer.minified_jwt.unwrap().expose_secret().to_owned();
    // A second authenticator app is refused, even with a fresh MFA.
    let response = register_totp(&server, &mfa_jwt, None).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "mfa_device_already_exists").await;
    server.shutdown().await;
}

/// Passkey registration ceremonies: 11,624 rows in 10 s from one session before; now a handful per user.
async fn open_passkey_ceremonies_are_bounded(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let (user, jwt, _) = server.signed_in().await;
    let mut challenges = Vec::new();
    for _ in 0..20 {
        let options: Value = server.get("/users/passkeys/register", Some(&jwt)).await.json().await.unwrap();
        challenges.push(options["challenge"].as_str().unwrap().to_owned());
    }
    let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webauthn_challenges WHERE user_id = $1")
        .bind(&user.id)
        .fetch_one(server.server.state().store().pool())
        .await
        .unwrap();
    assert_eq!(open, stepup_server::store::MAX_OPEN_CEREMONIES);
    server.shutdown().await;
}

on_both_databases!(
    enrolment_completes_with_no_more_scopes_than_it_started_with,
    an_enrolment_without_a_token_mints_nothing,
    one_pending_and_one_verified_totp_device,
    open_passkey_ceremonies_are_bounded,
);
