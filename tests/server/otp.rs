//! Email and SMS one-time codes over real HTTP: step-up, sign-in, and every limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::common;

use common::{Backend, TestServer, TestUser, assert_error};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stepup_proto::{NextView, UpdateSelfResponse, VerifyResponse};

async fn send_email(server: &TestServer, session: Option<&str>, email: &str) -> String {
    let response = server.post("/emailVerifications/create", session, &json!({"email": email})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], email);
    body["verificationUUID"].as_str().unwrap().to_owned()
}

async fn code_for(server: &TestServer, to: &str, verification: &str) -> String {
    let messages = server.outbox(to).await;
    messages
        .into_iter()
        .find(|m| m.verification_uuid == verification)
        .expect("code delivered to the outbox")
        .code
}

async fn email_otp_step_up_elevates_and_opens_the_resource(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { user, jwt, email } = server.user().await;
    let verification = send_email(&server, Some(&jwt), &email).await;
    let code = code_for(&server, &email, &verification).await;
    assert_eq!(code.len(), 6);
    let response = server
        .post(
            "/emailVerifications/verify",
            Some(&jwt),
            &json!({"verificationUUID": verification, "verificationToken": code, "requestedScopes": ["wallet:sign"]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: UpdateSelfResponse = response.json().await.unwrap();
    assert_eq!(body.next_view, NextView::Done);
    assert_eq!(body.verify.user.id, user.id);
    let token = body.verify.elevated_access_token.expect("elevated token");
    let parsed = stepup_core::ElevatedToken::parse(token.clone(), server.now()).unwrap();
    assert_eq!(parsed.scopes().to_space_delimited(), "wallet:sign");
    assert!(!parsed.is_single_use());
    assert_eq!(parsed.amr(), &["email".to_owned()]);
    for _ in 0..2 {
        let response = server
            .call::<Value>(
                reqwest::Method::POST,
                "/protected/wallet:sign",
                Some(&jwt),
                Some(token.expose_secret()),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["jti"], parsed.id().as_str());
    }
    // The same code cannot be used twice.
    let again = server
        .post(
            "/emailVerifications/verify",
            Some(&jwt),
            &json!({"verificationUUID": verification, "verificationToken": code}),
        )
        .await;
    assert_error(again, StatusCode::UNPROCESSABLE_ENTITY, "invalid_verification").await;
    server.shutdown().await;
}

async fn three_wrong_codes_kill_the_verification(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { jwt, email, .. } = server.user().await;
    let verification = send_email(&server, Some(&jwt), &email).await;
    let code = code_for(&server, &email, &verification).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..3 {
        let response = server
            .post(
                "/emailVerifications/verify",
                Some(&jwt),
                &json!({"verificationUUID": verification, "verificationToken": wrong}),
            )
            .await;
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "wrong_email_verification_token").await;
    }
    let response = server
        .post(
            "/emailVerifications/verify",
            Some(&jwt),
            &json!({"verificationUUID": verification, "verificationToken": code}),
        )
        .await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_verification").await;
    server.shutdown().await;
}

async fn fourth_send_in_ten_minutes_is_refused_with_retry_after(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { jwt, email, .. } = server.user().await;
    for _ in 0..3 {
        send_email(&server, Some(&jwt), &email).await;
        server.clock.advance(60);
    }
    let response = server.post("/emailVerifications/create", Some(&jwt), &json!({"email": email})).await;
    let (_, headers) =
        assert_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_verification_attempts").await;
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((400..=420).contains(&retry_after), "retry-after {retry_after}");
    server.clock.advance(retry_after);
    send_email(&server, Some(&jwt), &email).await;
    server.shutdown().await;
}

async fn expired_code_is_refused(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { jwt, email, .. } = server.user().await;
    let verification = send_email(&server, Some(&jwt), &email).await;
    let code = code_for(&server, &email, &verification).await;
    server.clock.advance(10 * 60);
    let response = server
        .post(
            "/emailVerifications/verify",
            Some(&jwt),
            &json!({"verificationUUID": verification, "verificationToken": code}),
        )
        .await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_verification").await;
    server.shutdown().await;
}

async fn a_code_sent_to_another_address_does_not_step_up(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { jwt, .. } = server.user().await;
    let TestUser { email: other_email, .. } = server.user().await;
    let verification = send_email(&server, Some(&jwt), &other_email).await;
    let code = code_for(&server, &other_email, &verification).await;
    let response = server
        .post(
            "/emailVerifications/verify",
            Some(&jwt),
            &json!({"verificationUUID": verification, "verificationToken": code, "requestedScopes": ["wallet:export"]}),
        )
        .await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_verification").await;
    server.shutdown().await;
}

async fn unknown_scopes_and_verifications_are_refused(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { jwt, email, .. } = server.user().await;
    let verification = send_email(&server, Some(&jwt), &email).await;
    let code = code_for(&server, &email, &verification).await;
    let response = server
        .post(
            "/emailVerifications/verify",
            Some(&jwt),
            &json!({"verificationUUID": verification, "verificationToken": code, "requestedScopes": ["wallet:teleport"]}),
        )
        .await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_scopes").await;
    let response = server
        .post(
            "/emailVerifications/verify",
            Some(&jwt),
            &json!({"verificationUUID": "nope", "verificationToken": "123456"}),
        )
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    server.shutdown().await;
}

async fn email_sign_in_starts_a_session_and_revoke_ends_it(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let email = "new-user@example.com";
    let verification = send_email(&server, None, email).await;
    let code = code_for(&server, email, &verification).await;
    let response = server
        .post(
            "/emailVerifications/signin",
            None,
            &json!({"verificationUUID": verification, "verificationToken": code}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: VerifyResponse = response.json().await.unwrap();
    let jwt = body.minified_jwt.expect("session jwt").expose_secret().to_owned();
    assert_eq!(body.jwt.unwrap().expose_secret(), jwt);
    assert!(body.expires_at > server.now().as_secs());
    assert_eq!(body.user.email.as_deref(), Some(email));
    let me = server.get("/users", Some(&jwt)).await;
    assert_eq!(me.status(), StatusCode::OK);
    let revoke = server.post("/revoke", Some(&jwt), &json!({})).await;
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    assert_error(server.get("/users", Some(&jwt)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    server.shutdown().await;
}

async fn sms_step_up(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let response = server
        .admin_post(
            "/users",
            &json!({"phoneNumber": "5551234567", "phoneCountryCode": "1", "isoCountryCode": "US"}),
        )
        .await;
    let user: stepup_proto::SdkUser = response.json().await.unwrap();
    let jwt = server.session(&user.id).await;
    let response = server
        .post(
            "/smsVerifications/create",
            Some(&jwt),
            &json!({"phoneNumber": "5551234567", "phoneCountryCode": "1", "isoCountryCode": "US"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let verification = body["verificationUUID"].as_str().unwrap().to_owned();
    let code = code_for(&server, "+15551234567", &verification).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let response = server
        .post(
            "/smsVerifications/verify",
            Some(&jwt),
            &json!({"verificationUUID": verification, "verificationToken": wrong}),
        )
        .await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "wrong_sms_verification_token").await;
    let response = server
        .post(
            "/smsVerifications/verify",
            Some(&jwt),
            &json!({"verificationUUID": verification, "verificationToken": code, "requestedScopes": ["user:update"]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: UpdateSelfResponse = response.json().await.unwrap();
    assert!(body.verify.elevated_access_token.is_some());
    server.shutdown().await;
}

async fn bad_input_is_a_400_never_a_500(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { jwt, .. } = server.user().await;
    let raw = |body: String, content_type: &'static str| {
        server
            .http
            .post(server.url("/emailVerifications/create"))
            .bearer_auth(&jwt)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_error(
        raw("{not json".into(), "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert_error(
        raw(r#"{"email": 42}"#.into(), "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert_error(
        raw(r#"{"email": "a@b.co"}"#.into(), "text/plain").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    let huge = format!(r#"{{"email": "{}@example.com"}}"#, "a".repeat(200_000));
    // Too large is its own answer: 413 `payload_too_large`, refused before any handler reads it.
    assert_error(
        raw(huge, "application/json").await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    assert_error(
        raw(r#"{"email": "not-an-email"}"#.into(), "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    let response = server
        .post(
            "/smsVerifications/create",
            Some(&jwt),
            &json!({"phoneNumber": "12ab", "phoneCountryCode": "1", "isoCountryCode": "US"}),
        )
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    server.shutdown().await;
}

async fn parallel_sends_never_exceed_the_limit(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { jwt, email, .. } = server.user().await;
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let request = server
            .http
            .post(server.url("/emailVerifications/create"))
            .bearer_auth(&jwt)
            .json(&json!({"email": email}));
        sends.spawn(async move { request.send().await.unwrap().status() });
    }
    let statuses = sends.join_all().await;
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(), 7, "{statuses:?}");
    assert_eq!(server.outbox(&email).await.len(), 3);
    server.shutdown().await;
}

on_both_databases!(
    parallel_sends_never_exceed_the_limit,
    email_otp_step_up_elevates_and_opens_the_resource,
    three_wrong_codes_kill_the_verification,
    fourth_send_in_ten_minutes_is_refused_with_retry_after,
    expired_code_is_refused,
    a_code_sent_to_another_address_does_not_step_up,
    unknown_scopes_and_verifications_are_refused,
    email_sign_in_starts_a_session_and_revoke_ends_it,
    sms_step_up,
    bad_input_is_a_400_never_a_500,
);
