//! MFA over real HTTP: TOTP registration and step-up, replay and skew, lockout, recovery codes, deletion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::common;

use common::{Backend, TestServer, TestUser, assert_error, totp_code};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stepup_proto::{
    MfaMethodsResponse, RecoveryCodesResponse, StepUpCheckResponse, TotpRegistration, VerifyResponse,
};

/// A user with a registered, verified TOTP device: (jwt, device id, secret).
async fn totp_user(server: &TestServer) -> (String, String, String) {
    let TestUser { jwt, email, .. } = server.user().await;
    let response = server.get("/users/mfa/register/totp", Some(&jwt)).await;
    let (_, headers) = assert_error(response, StatusCode::FORBIDDEN, "elevated_access_token_required").await;
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("insufficient_user_authentication") && challenge.contains("credential:link"),
        "{challenge}"
    );
    let link = server.elevated_via_email(&jwt, &email, &["credential:link"]).await;
    let response =
        server.call::<Value>(Method::GET, "/users/mfa/register/totp", Some(&jwt), Some(&link), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let registration: TotpRegistration = response.json().await.unwrap();
    assert!(registration.uri.expose_secret().starts_with("otpauth://totp/"));
    let secret = registration.secret.expose_secret().to_owned();
    // The first code with the device id verifies the device.
    let now = server.now().as_secs();
    let response = server
        .post(
            "/users/mfa/auth/totp",
            Some(&jwt),
            &json!({"code": totp_code(&secret, now - 30), "id": registration.id}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    (jwt, registration.id, secret)
}

async fn totp_step_up_elevates(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let (jwt, device, secret) = totp_user(&server).await;
    let methods: MfaMethodsResponse =
        server.get("/users/mfa/methods", Some(&jwt)).await.json().await.unwrap();
    assert!(methods.user_has_verified_mfa_methods);
    assert_eq!(methods.devices[0].id.as_deref(), Some(device.as_str()));
    // MFA users are offered MFA only: no email re-authentication.
    let check: StepUpCheckResponse = server
        .post("/stepUp/check", Some(&jwt), &json!({"scope": "wallet:export"}))
        .await
        .json()
        .await
        .unwrap();
    assert!(check.is_required);
    assert_eq!(check.credentials.len(), 1);
    assert_eq!(check.credentials[0].format.as_str(), "totp");
    let now = server.now().as_secs();
    let response = server
        .post(
            "/users/mfa/auth/totp",
            Some(&jwt),
            &json!({"code": totp_code(&secret, now), "requestedScopes": ["wallet:export"]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: VerifyResponse = response.json().await.unwrap();
    let token = body.elevated_access_token.unwrap();
    let parsed = stepup_core::ElevatedToken::parse(token.clone(), server.now()).unwrap();
    assert!(parsed.is_single_use(), "wallet:export is single-use by default");
    assert_eq!(parsed.expires_at(), server.now().plus_secs(300));
    let open = |t: String| {
        let server = &server;
        let jwt = jwt.clone();
        async move {
            server.call::<Value>(Method::POST, "/protected/wallet:export", Some(&jwt), Some(&t), None).await
        }
    };
    assert_eq!(open(token.expose_secret().to_owned()).await.status(), StatusCode::OK);
    assert_error(
        open(token.expose_secret().to_owned()).await,
        StatusCode::FORBIDDEN,
        "elevated_access_token_required",
    )
    .await;
    server.shutdown().await;
}

async fn totp_replay_and_skew(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let (jwt, _, secret) = totp_user(&server).await;
    let now = server.now().as_secs();
    let totp = |code: String| {
        let body = json!({"code": code});
        let server = &server;
        let jwt = jwt.clone();
        async move { server.post("/users/mfa/auth/totp", Some(&jwt), &body).await }
    };
    // The registration used step now-30; the same step again is a replay.
    assert_error(
        totp(totp_code(&secret, now - 30)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "mfa_invalid_code",
    )
    .await;
    assert_eq!(totp(totp_code(&secret, now)).await.status(), StatusCode::OK);
    assert_error(totp(totp_code(&secret, now)).await, StatusCode::UNPROCESSABLE_ENTITY, "mfa_invalid_code")
        .await;
    assert_eq!(
        totp(totp_code(&secret, now + 30)).await.status(),
        StatusCode::OK,
        "one step ahead is accepted"
    );
    assert_error(
        totp(totp_code(&secret, now + 60)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "mfa_invalid_code",
    )
    .await;
    server.clock.advance(120);
    let later = server.now().as_secs();
    assert_error(
        totp(totp_code(&secret, later - 60)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "mfa_invalid_code",
    )
    .await;
    assert_eq!(
        totp(totp_code(&secret, later - 30)).await.status(),
        StatusCode::OK,
        "one step behind is accepted"
    );
    server.shutdown().await;
}

async fn unknown_device_is_refused(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let (jwt, _, secret) = totp_user(&server).await;
    let response = server
        .post(
            "/users/mfa/auth/totp",
            Some(&jwt),
            &json!({"code": totp_code(&secret, server.now().as_secs()), "id": "no-such-device"}),
        )
        .await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "mfa_device_not_found").await;
    let TestUser { jwt: fresh_jwt, .. } = server.user().await;
    let response = server.post("/users/mfa/auth/totp", Some(&fresh_jwt), &json!({"code": "123456"})).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "mfa_device_not_found").await;
    server.shutdown().await;
}

async fn five_failures_lock_mfa_for_fifteen_minutes(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let (jwt, _, secret) = totp_user(&server).await;
    let now = server.now().as_secs();
    let good = totp_code(&secret, now);
    let bad = if good == "000000" { "111111" } else { "000000" };
    for _ in 0..4 {
        let response = server.post("/users/mfa/auth/totp", Some(&jwt), &json!({"code": bad})).await;
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "mfa_invalid_code").await;
    }
    let response = server.post("/users/mfa/auth/totp", Some(&jwt), &json!({"code": bad})).await;
    let (_, headers) =
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "lock_too_many_attempts").await;
    assert_eq!(headers["retry-after"], "900");
    // Even the right code is refused while locked, and so are recovery codes.
    let response = server.post("/users/mfa/auth/totp", Some(&jwt), &json!({"code": good})).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "lock_too_many_attempts").await;
    let response = server.post("/users/mfa/auth/recovery", Some(&jwt), &json!({"code": "aaaaa-aaaaa"})).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "lock_too_many_attempts").await;
    server.clock.advance(14 * 60);
    let response = server.post("/users/mfa/auth/totp", Some(&jwt), &json!({"code": good})).await;
    let (_, headers) =
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "lock_too_many_attempts").await;
    assert_eq!(headers["retry-after"], "60");
    server.clock.advance(60);
    let later = server.now().as_secs();
    let response =
        server.post("/users/mfa/auth/totp", Some(&jwt), &json!({"code": totp_code(&secret, later)})).await;
    assert_eq!(response.status(), StatusCode::OK);
    server.shutdown().await;
}

async fn recovery_codes_work_once_and_regenerate_replaces_all(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let (jwt, _, secret) = totp_user(&server).await;
    // Recovery codes take a recent MFA verification of the session (Dynamic's client calls them with the session
    // alone); this session's enrolment answer was not kept, so it has none.
    let response = server.get("/users/mfa/recovery", Some(&jwt)).await;
    let (_, headers) =
        assert_error(response, StatusCode::FORBIDDEN, "insufficient_user_authentication").await;
    assert!(headers["www-authenticate"].to_str().unwrap().contains("max_age=300"));
    let now = server.now().as_secs();
    let verified: VerifyResponse = server
        .post("/users/mfa/auth/totp", Some(&jwt), &json!({"code": totp_code(&secret, now)}))
        .await
        .json()
        .await
        .unwrap();
    // The answer's session has the MFA in it.
    let jwt = verified.minified_jwt.unwrap().expose_secret().to_owned();
    let get = |method: Method| server.call::<Value>(method, "/users/mfa/recovery", Some(&jwt), None, None);
    let first: RecoveryCodesResponse = get(Method::GET).await.json().await.unwrap();
    assert_eq!(first.count, 10);
    assert_eq!(first.recovery_codes.len(), 10);
    let check: StepUpCheckResponse = server
        .post("/stepUp/check", Some(&jwt), &json!({"scope": "user:delete"}))
        .await
        .json()
        .await
        .unwrap();
    assert!(check.credentials.iter().any(|c| c.format.as_str() == "recoveryCode"));
    let code = first.recovery_codes[0].expose_secret().to_owned();
    let response = server
        .post(
            "/users/mfa/auth/recovery",
            Some(&jwt),
            &json!({"code": code, "requestedScopes": ["user:delete"]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: VerifyResponse = response.json().await.unwrap();
    assert!(body.elevated_access_token.is_some());
    let response = server.post("/users/mfa/auth/recovery", Some(&jwt), &json!({"code": code})).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "mfa_invalid_code").await;
    let again: RecoveryCodesResponse = get(Method::GET).await.json().await.unwrap();
    assert_eq!((again.count, again.recovery_codes.len()), (9, 0), "codes are shown once");
    let regenerated: RecoveryCodesResponse = get(Method::POST).await.json().await.unwrap();
    assert_eq!(regenerated.recovery_codes.len(), 10);
    let old = first.recovery_codes[1].expose_secret().to_owned();
    let response = server.post("/users/mfa/auth/recovery", Some(&jwt), &json!({"code": old})).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "mfa_invalid_code").await;
    let new = regenerated.recovery_codes[1].expose_secret().to_uppercase();
    let response =
        server.post("/users/mfa/auth/recovery", Some(&jwt), &json!({"code": format!("  {new} ")})).await;
    assert_eq!(response.status(), StatusCode::OK, "codes are case-insensitive and trimmed");
    server.shutdown().await;
}

async fn deleting_a_device_needs_a_fresh_unlink_token(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let (jwt, device, secret) = totp_user(&server).await;
    let path = format!("/users/mfa/{device}");
    assert_error(
        server.call::<Value>(Method::DELETE, &path, Some(&jwt), None, None).await,
        StatusCode::FORBIDDEN,
        "elevated_access_token_required",
    )
    .await;
    let now = server.now().as_secs();
    let response = server
        .post(
            "/users/mfa/auth/totp",
            Some(&jwt),
            &json!({"code": totp_code(&secret, now), "requestedScopes": ["credential:unlink"]}),
        )
        .await;
    let body: VerifyResponse = response.json().await.unwrap();
    let unlink = body.elevated_access_token.unwrap().expose_secret().to_owned();
    let response = server
        .call::<Value>(Method::DELETE, "/users/mfa/no-such-device", Some(&jwt), Some(&unlink), None)
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    // The single-use token was spent by the call above, even though the device did not exist.
    let response = server.call::<Value>(Method::DELETE, &path, Some(&jwt), Some(&unlink), None).await;
    assert_error(response, StatusCode::FORBIDDEN, "elevated_access_token_required").await;
    server.shutdown().await;
}

async fn mfa_users_cannot_step_up_by_email_and_bad_scopes_cost_nothing(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { jwt, email, .. } = server.user().await;
    // Before MFA, email works; the registration below gives the user MFA.
    let link = server.elevated_via_email(&jwt, &email, &["credential:link"]).await;
    let registration: TotpRegistration = server
        .call::<Value>(Method::GET, "/users/mfa/register/totp", Some(&jwt), Some(&link), None)
        .await
        .json()
        .await
        .unwrap();
    let secret = registration.secret.expose_secret().to_owned();
    let now = server.now().as_secs();
    let body = json!({"code": totp_code(&secret, now), "id": registration.id});
    assert_eq!(server.post("/users/mfa/auth/totp", Some(&jwt), &body).await.status(), StatusCode::OK);
    // Now email re-authentication grants no scope.
    let created: Value = server
        .post("/emailVerifications/create", Some(&jwt), &json!({"email": email}))
        .await
        .json()
        .await
        .unwrap();
    let verification = created["verificationUUID"].as_str().unwrap().to_owned();
    let code =
        server.outbox(&email).await.into_iter().find(|m| m.verification_uuid == verification).unwrap().code;
    let body = json!({"verificationUUID": verification, "verificationToken": code, "requestedScopes": ["wallet:export"]});
    let response = server.post("/emailVerifications/verify", Some(&jwt), &body).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "mfa_required").await;
    // An unknown scope is refused before the TOTP step is spent: the same code then works.
    let code = totp_code(&secret, now + 30);
    let response = server
        .post(
            "/users/mfa/auth/totp",
            Some(&jwt),
            &json!({"code": code, "requestedScopes": ["wallet:teleport"]}),
        )
        .await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_scopes").await;
    let response = server
        .post("/users/mfa/auth/totp", Some(&jwt), &json!({"code": code, "requestedScopes": ["wallet:sign"]}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // Recovery codes without MFA are no factor.
    let TestUser { jwt: plain_jwt, .. } = server.user().await;
    let response =
        server.post("/users/mfa/auth/recovery", Some(&plain_jwt), &json!({"code": "aaaaa-aaaaa"})).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "mfa_device_not_found").await;
    server.shutdown().await;
}

async fn parallel_guesses_get_five_tries_in_all(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let (jwt, _, secret) = totp_user(&server).await;
    let good = totp_code(&secret, server.now().as_secs());
    let bad = if good == "000000" { "111111" } else { "000000" };
    let mut guesses = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let request = server
            .http
            .post(server.url("/users/mfa/auth/totp"))
            .bearer_auth(&jwt)
            .json(&json!({"code": bad}));
        guesses.spawn(async move {
            let response = request.send().await.unwrap();
            let body: Value = response.json().await.unwrap();
            body["code"].as_str().unwrap().to_owned()
        });
    }
    let codes = guesses.join_all().await;
    let tried = codes.iter().filter(|c| *c == "mfa_invalid_code").count();
    assert!(tried <= 4, "at most 4 plain refusals before the 5th failure locks: {codes:?}");
    assert!(codes.iter().all(|c| c == "mfa_invalid_code" || c == "lock_too_many_attempts"), "{codes:?}");
    let response = server.post("/users/mfa/auth/totp", Some(&jwt), &json!({"code": good})).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "lock_too_many_attempts").await;
    server.shutdown().await;
}

on_both_databases!(
    mfa_users_cannot_step_up_by_email_and_bad_scopes_cost_nothing,
    parallel_guesses_get_five_tries_in_all,
    totp_step_up_elevates,
    totp_replay_and_skew,
    unknown_device_is_refused,
    five_failures_lock_mfa_for_fifteen_minutes,
    recovery_codes_work_once_and_regenerate_replaces_all,
    deleting_a_device_needs_a_fresh_unlink_token,
);
