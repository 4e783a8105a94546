//! What Dynamic's JS client needs from the server, over real HTTP on SQLite and PostgreSQL: every verify answer
//! carries the session, recovery codes need a recent MFA (RFC 9470 `max_age`), the MFA routes the client calls,
//! settings read from the policy, step-up switched off and methods disabled, JSON for every error, and CORS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::common;

use common::{Backend, TestServer, TestUser, assert_error, claims_of, totp_code};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stepup_proto::{
    MfaDevicesResponse, RecoveryCodesResponse, SdkUser, StepUpCheckResponse, UpdateSelfResponse,
    UserPasskeysResponse, VerifyResponse,
};

/// The session JWT of a verify answer: the same in `jwt` and `minifiedJwt`, for the same session as `before`
/// (user, id, expiry), and `expiresAt` is its `exp`.
fn same_session(answer: &VerifyResponse, before: &str) -> String {
    let jwt = answer.jwt.as_ref().expect("jwt").expose_secret().to_owned();
    assert_eq!(answer.minified_jwt.as_ref().expect("minifiedJwt").expose_secret(), jwt);
    let (now, was) = (claims_of(&jwt), claims_of(before));
    for claim in ["sub", "jti", "sid", "exp", "iat", "aud"] {
        assert_eq!(now[claim], was[claim], "claim {claim}");
    }
    assert_eq!(now["sid"], now["jti"]);
    assert_eq!(Value::from(answer.expires_at), now["exp"]);
    jwt
}

async fn every_verify_answer_carries_the_session(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { jwt, email, .. } = server.user().await;
    assert_eq!(claims_of(&jwt)["mfa_auth_time"], Value::Null);

    // Email step-up: the claims do not change, so the answer is the very JWT the request came with.
    let (uuid, code) = server.email_code(&jwt, &email).await;
    let body =
        json!({"verificationUUID": uuid, "verificationToken": code, "requestedScopes": ["credential:link"]});
    let answer: UpdateSelfResponse =
        server.post("/emailVerifications/verify", Some(&jwt), &body).await.json().await.unwrap();
    assert_eq!(same_session(&answer.verify, &jwt), jwt);
    let link = answer.verify.elevated_access_token.unwrap().expose_secret().to_owned();

    // Enrolling TOTP: the first code is an MFA verification, and the session says when.
    let response =
        server.call::<Value>(Method::GET, "/users/mfa/register/totp", Some(&jwt), Some(&link), None).await;
    let registration: stepup_proto::TotpRegistration = response.json().await.unwrap();
    let secret = registration.secret.expose_secret().to_owned();
    let now = server.now().as_secs();
    let body = json!({"code": totp_code(&secret, now), "id": registration.id, "requestedScopes": ["credential:link"]});
    let answer: VerifyResponse =
        server.post("/users/mfa/auth/totp", Some(&jwt), &body).await.json().await.unwrap();
    let after_totp = same_session(&answer, &jwt);
    assert_eq!(claims_of(&after_totp)["mfa_auth_time"], json!(now));
    assert!(answer.elevated_access_token.is_some());
    // Both JWTs are the same session: the old one still works, and revoking one ends both (below).
    assert_eq!(server.get("/users", Some(&jwt)).await.status(), StatusCode::OK);

    // Recovery codes (with the recent MFA), then a recovery-code step-up: a later MFA time.
    server.clock.advance(40);
    let codes: RecoveryCodesResponse =
        server.get("/users/mfa/recovery", Some(&after_totp)).await.json().await.unwrap();
    let body = json!({"code": codes.recovery_codes[0].expose_secret(), "requestedScopes": ["user:delete"]});
    let answer: VerifyResponse =
        server.post("/users/mfa/auth/recovery", Some(&after_totp), &body).await.json().await.unwrap();
    let after_recovery = same_session(&answer, &jwt);
    assert_eq!(claims_of(&after_recovery)["mfa_auth_time"], json!(server.now().as_secs()));
    assert_eq!(answer.user.mfa_backup_code_acknowledgement.as_ref().map(|a| a.as_str()), Some("pending"));

    // PUT /users acknowledges the codes and answers the session, unchanged.
    let response = server
        .call(
            Method::PUT,
            "/users",
            Some(&after_recovery),
            None,
            Some(&json!({"mfaBackupCodeAcknowledgement": "complete"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: UpdateSelfResponse = response.json().await.unwrap();
    assert_eq!(same_session(&answer.verify, &jwt), after_recovery);
    assert_eq!(
        answer.verify.user.mfa_backup_code_acknowledgement.as_ref().map(|a| a.as_str()),
        Some("complete")
    );

    // One session: revoking it by any of its JWTs ends all of them.
    assert_eq!(server.post("/revoke", Some(&after_totp), &json!({})).await.status(), StatusCode::NO_CONTENT);
    for token in [&jwt, &after_totp, &after_recovery] {
        assert_error(server.get("/users", Some(token)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    server.shutdown().await;
}

async fn recovery_codes_need_a_recent_mfa(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.environments[0].policy.recent_mfa_max_age_secs = 60;
    })
    .await;
    // No MFA at all: the challenge, with the environment's max_age.
    let TestUser { jwt: plain, .. } = server.user().await;
    let response = server.get("/users/mfa/recovery", Some(&plain)).await;
    let (body, headers) =
        assert_error(response, StatusCode::FORBIDDEN, "insufficient_user_authentication").await;
    assert!(body.error.contains("60 seconds"), "{}", body.error);
    let challenge = headers["www-authenticate"].to_str().unwrap();
    let parsed = stepup_proto::headers::parse_step_up_challenge(challenge).unwrap();
    assert_eq!(parsed.max_age, Some(60), "{challenge}");

    let person = server.totp_user().await;
    // The session as minted has no MFA; an elevated token does not stand in for one.
    let response = server.get("/users/mfa/recovery", Some(&person.jwt)).await;
    assert_error(response, StatusCode::FORBIDDEN, "insufficient_user_authentication").await;
    let body = json!({"code": totp_code(&person.secret, server.now().as_secs()), "requestedScopes": ["credential:link"]});
    let answer: VerifyResponse =
        server.post("/users/mfa/auth/totp", Some(&person.jwt), &body).await.json().await.unwrap();
    let link = answer.elevated_access_token.unwrap().expose_secret().to_owned();
    let response =
        server.call::<Value>(Method::POST, "/users/mfa/recovery", Some(&person.jwt), Some(&link), None).await;
    assert_error(response, StatusCode::FORBIDDEN, "insufficient_user_authentication").await;

    // The enrolment answer's session has it: codes are shown once, and the user must acknowledge them.
    let first: RecoveryCodesResponse =
        server.get("/users/mfa/recovery", Some(&person.mfa_jwt)).await.json().await.unwrap();
    assert_eq!((first.count, first.recovery_codes.len()), (10, 10));
    let user: SdkUser = server.get("/users", Some(&person.mfa_jwt)).await.json().await.unwrap();
    assert_eq!(user.mfa_backup_code_acknowledgement.as_ref().map(|a| a.as_str()), Some("pending"));
    // Dynamic's client regenerates with an empty body and `Content-Type: application/json`.
    let response = server
        .http
        .post(server.url("/users/mfa/recovery"))
        .bearer_auth(&person.mfa_jwt)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let regenerated: RecoveryCodesResponse = response.json().await.unwrap();
    assert_eq!(regenerated.recovery_codes.len(), 10);
    assert_ne!(regenerated.recovery_codes[0], first.recovery_codes[0]);

    // A minute later the MFA is too old.
    server.clock.advance(61);
    let response = server.get("/users/mfa/recovery", Some(&person.mfa_jwt)).await;
    assert_error(response, StatusCode::FORBIDDEN, "insufficient_user_authentication").await;
    let code = totp_code(&person.secret, server.now().as_secs());
    let answer: VerifyResponse = server
        .post("/users/mfa/auth/totp", Some(&person.mfa_jwt), &json!({"code": code}))
        .await
        .json()
        .await
        .unwrap();
    let fresh = answer.minified_jwt.unwrap().expose_secret().to_owned();
    let again: RecoveryCodesResponse =
        server.get("/users/mfa/recovery", Some(&fresh)).await.json().await.unwrap();
    assert_eq!((again.count, again.recovery_codes.len()), (10, 0));

    // Bad acknowledgements.
    let put = |body: Value| {
        let (server, fresh) = (&server, fresh.clone());
        async move { server.call(Method::PUT, "/users", Some(&fresh), None, Some(&body)).await }
    };
    assert_error(
        put(json!({"mfaBackupCodeAcknowledgement": "pending"})).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert_error(
        put(json!({"mfaBackupCodeAcknowledgement": 1})).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert_error(put(json!({"email": "new@example.com"})).await, StatusCode::BAD_REQUEST, "bad_request")
        .await;
    assert_eq!(put(json!({"email": null})).await.status(), StatusCode::OK, "null fields change nothing");
    server.shutdown().await;
}

async fn mfa_devices_and_the_default_device(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { jwt, email, .. } = server.user().await;
    let link = server.elevated_via_email(&jwt, &email, &["credential:link"]).await;
    let registration: stepup_proto::TotpRegistration = server
        .call::<Value>(Method::GET, "/users/mfa/register/totp", Some(&jwt), Some(&link), None)
        .await
        .json()
        .await
        .unwrap();
    let secret = registration.secret.expose_secret().to_owned();
    let device = registration.id.clone();

    // A pending enrolment is listed, unverified, and is no one's default.
    let listed: MfaDevicesResponse = server.get("/users/mfa", Some(&jwt)).await.json().await.unwrap();
    assert_eq!(listed.count, 1);
    assert_eq!((listed.devices[0].verified, listed.devices[0].default), (Some(false), Some(false)));
    let methods: Value =
        server.get("/users/mfa/methods?verifiedOnly=true", Some(&jwt)).await.json().await.unwrap();
    assert_eq!(methods["devices"].as_array().unwrap().len(), 0, "verifiedOnly leaves the pending device out");

    // Only a verified device can be the default.
    let put = |id: String, body: Option<Value>| {
        let server = &server;
        let jwt = jwt.clone();
        async move {
            let mut request = server.http.put(server.url(&format!("/users/mfa/{id}"))).bearer_auth(jwt);
            request = match body {
                Some(body) => request.json(&body),
                // As Dynamic's client sends it: no body, JSON content type.
                None => request.header("content-type", "application/json"),
            };
            request.send().await.unwrap()
        }
    };
    assert_error(put(device.clone(), None).await, StatusCode::NOT_FOUND, "not_found").await;
    assert_error(put("no-such-device".into(), None).await, StatusCode::NOT_FOUND, "not_found").await;
    let now = server.now().as_secs();
    let body = json!({"code": totp_code(&secret, now), "id": device});
    assert_eq!(server.post("/users/mfa/auth/totp", Some(&jwt), &body).await.status(), StatusCode::OK);
    assert_error(
        put(device.clone(), Some(json!({"default": false}))).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert_eq!(put(device.clone(), None).await.status(), StatusCode::NO_CONTENT);
    let listed: MfaDevicesResponse = server.get("/users/mfa", Some(&jwt)).await.json().await.unwrap();
    assert_eq!((listed.devices[0].verified, listed.devices[0].default), (Some(true), Some(true)));
    let check: StepUpCheckResponse = server
        .post("/stepUp/check", Some(&jwt), &json!({"scope": "wallet:export"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(check.default_credential_id.as_deref(), Some(device.as_str()));
    // A code without a device id is for the default device.
    server.clock.advance(30);
    let body =
        json!({"code": totp_code(&secret, server.now().as_secs()), "requestedScopes": ["wallet:export"]});
    assert_eq!(server.post("/users/mfa/auth/totp", Some(&jwt), &body).await.status(), StatusCode::OK);
    // `{"default": true}` means the same as no body.
    assert_eq!(put(device.clone(), Some(json!({"default": true}))).await.status(), StatusCode::NO_CONTENT);

    let passkeys: UserPasskeysResponse =
        server.get("/users/passkeys", Some(&jwt)).await.json().await.unwrap();
    assert_eq!((passkeys.count, passkeys.passkeys.len()), (0, 0));
    server.shutdown().await;
}

async fn settings_follow_the_policy(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        let policy = &mut config.environments[0].policy;
        policy.enabled_methods = vec![stepup_core::Method::EmailOtp, stepup_core::Method::Totp];
        policy.step_up_scopes = vec![stepup_proto::TokenScope::WalletExport];
    })
    .await;
    let settings: Value =
        server.get("/settings?sdkVersion=ClientSDK%2F1.27.1", None).await.json().await.unwrap();
    for section in ["chains", "kyc"] {
        assert!(settings[section].is_array(), "{section}");
    }
    for section in ["design", "general", "privacy", "sdk", "security"] {
        assert!(settings[section].is_object(), "{section}");
    }
    let mfa = &settings["security"]["mfa"];
    assert_eq!(mfa["enabled"], true);
    assert_eq!(mfa["required"], false);
    assert_eq!(mfa["availableMethods"], json!(["totp"]));
    assert_eq!(
        mfa["methods"],
        json!([
            {"type": "totp", "enabled": true, "allowBackupCodes": false},
            {"type": "passkey", "enabled": false, "allowBackupCodes": false},
        ])
    );
    let required = |action: &str| {
        mfa["actions"].as_array().unwrap().iter().find(|a| a["action"] == action).unwrap()["required"].clone()
    };
    assert_eq!(required("wallet.waas.export"), true);
    assert_eq!(required("wallet.waas.sign"), false);
    assert_eq!(required("user.update"), false);
    assert_eq!(settings["chains"], json!([{"name": "EVM", "enabled": false}]));
    let step_up = &settings["security"]["stepUp"];
    assert_eq!(step_up["enabled"], true);
    assert_eq!(
        step_up["methods"],
        json!({"email": true, "sms": false, "wallet": false, "passkey": false, "totp": true, "recovery_code": false})
    );
    assert_eq!(step_up["scopes"], json!(["wallet:export"]));
    assert_eq!(settings["security"]["externalAuth"]["enabled"], false);
    // Nothing that would put Dynamic's client in cookie mode.
    assert!(settings["security"].get("auth").is_none());
    server.shutdown().await;
}

async fn step_up_switched_off_opens_everything(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.environments[0].policy.step_up_enabled = false;
    })
    .await;
    let TestUser { jwt, email, .. } = server.user().await;
    let check: StepUpCheckResponse = server
        .post("/stepUp/check", Some(&jwt), &json!({"scope": "wallet:export"}))
        .await
        .json()
        .await
        .unwrap();
    assert!(!check.is_required);
    assert!(check.credentials.is_empty());
    let response =
        server.call::<Value>(Method::POST, "/protected/wallet:export", Some(&jwt), None, None).await;
    assert_eq!(response.status(), StatusCode::OK, "the guard opens");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["jti"], Value::Null);
    // No token is issued: a verify that asks for scopes is refused before the code is spent.
    let (uuid, code) = server.email_code(&jwt, &email).await;
    let with_scopes =
        json!({"verificationUUID": uuid, "verificationToken": code, "requestedScopes": ["wallet:export"]});
    let response = server.post("/emailVerifications/verify", Some(&jwt), &with_scopes).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "step_up_disabled").await;
    let without = json!({"verificationUUID": uuid, "verificationToken": code});
    assert_eq!(
        server.post("/emailVerifications/verify", Some(&jwt), &without).await.status(),
        StatusCode::OK
    );
    let settings: Value = server.get("/settings", None).await.json().await.unwrap();
    assert_eq!(settings["security"]["stepUp"]["enabled"], false);
    assert_eq!(settings["security"]["mfa"]["enabled"], false);
    server.shutdown().await;
}

async fn disabled_methods_are_neither_offered_nor_accepted(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.environments[0].policy.enabled_methods =
            vec![stepup_core::Method::Totp, stepup_core::Method::SmsOtp];
    })
    .await;
    // Email is off: an email-only user is offered nothing, and an email code elevates nothing.
    let TestUser { jwt, email, .. } = server.user().await;
    let check: StepUpCheckResponse = server
        .post("/stepUp/check", Some(&jwt), &json!({"scope": "wallet:export"}))
        .await
        .json()
        .await
        .unwrap();
    assert!(check.is_required);
    assert!(check.credentials.is_empty(), "{:?}", check.credentials);
    let (uuid, code) = server.email_code(&jwt, &email).await;
    let body =
        json!({"verificationUUID": uuid, "verificationToken": code, "requestedScopes": ["wallet:export"]});
    let (error, _) = assert_error(
        server.post("/emailVerifications/verify", Some(&jwt), &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "method_disabled",
    )
    .await;
    assert!(error.error.contains("email"), "{}", error.error);
    server.shutdown().await;

    // Recovery codes off: not offered to a TOTP user, and not handed out.
    let server = TestServer::start_with(backend, |config| {
        config.environments[0].policy.enabled_methods =
            vec![stepup_core::Method::Totp, stepup_core::Method::EmailOtp];
    })
    .await;
    let person = server.totp_user().await;
    let response = server.get("/users/mfa/recovery", Some(&person.mfa_jwt)).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "method_disabled").await;
    let check: StepUpCheckResponse = server
        .post("/stepUp/check", Some(&person.jwt), &json!({"scope": "wallet:export"}))
        .await
        .json()
        .await
        .unwrap();
    let formats: Vec<&str> = check.credentials.iter().map(|c| c.format.as_str()).collect();
    assert_eq!(formats, ["totp"]);
    let body = json!({"code": "aaaa-bbbb", "requestedScopes": ["wallet:export"]});
    let response = server.post("/users/mfa/auth/recovery", Some(&person.jwt), &body).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "method_disabled").await;
    server.shutdown().await;
}

async fn every_error_is_json(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { jwt, .. } = server.user().await;
    // A path whose method does not exist.
    let response = server.get("/stepUp/check", Some(&jwt)).await;
    let (_, headers) = assert_error(response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    assert!(headers.contains_key("allow"));
    let response = server.call::<Value>(Method::PATCH, "/users/mfa/recovery", Some(&jwt), None, None).await;
    assert_error(response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let response = server.call::<Value>(Method::DELETE, "/settings", None, None, None).await;
    assert_error(response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    // Query strings that do not parse.
    let response = server.get("/nonces?count=1&count=2", None).await;
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    let response = server.get("/users/mfa/methods?verifiedOnly=perhaps", Some(&jwt)).await;
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    let response = server
        .http
        .get(format!("{}/admin/environments/dev/outbox?to=a&to=b", server.server.base_url()))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    // A body of the wrong media type, an unknown path.
    let response =
        server.http.post(server.url("/stepUp/check")).bearer_auth(&jwt).body("scope=x").send().await.unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    assert_error(server.get("/no/such/path", None).await, StatusCode::NOT_FOUND, "not_found").await;
    let response = server.http.get(format!("{}/nowhere", server.server.base_url())).send().await.unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    server.shutdown().await;
}

async fn cors_follows_each_environment(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.environments[0].allowed_origins = vec!["https://app.example.com".into()];
        let mut closed = stepup_server::EnvironmentConfig::dev("closed");
        closed.allowed_origins = vec![];
        config.environments.push(closed);
    })
    .await;
    let preflight = |environment: &str, origin: &str| {
        server
            .http
            .request(Method::OPTIONS, format!("{}/sdk/{environment}/stepUp/check", server.server.base_url()))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type,x-dyn-elevated-access-token,x-dyn-api-version,x-dyn-session-public-key")
            .send()
    };
    let response = preflight("dev", "https://app.example.com").await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "https://app.example.com");
    let allowed = headers["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    for header in
        ["authorization", "x-dyn-elevated-access-token", "x-dyn-api-version", "x-dyn-session-public-key"]
    {
        assert!(allowed.contains(header), "{allowed}");
    }
    assert!(headers["access-control-allow-methods"].to_str().unwrap().contains("PUT"));
    // Another origin, or an environment that allows none: no CORS grant.
    let response = preflight("dev", "https://evil.example.com").await.unwrap();
    assert!(!response.headers().contains_key("access-control-allow-origin"));
    let response = preflight("closed", "https://app.example.com").await.unwrap();
    assert!(!response.headers().contains_key("access-control-allow-origin"));
    // Real answers carry the grant too, errors included (a browser must be able to read why a call failed).
    let response = server
        .http
        .get(server.url("/users"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["access-control-allow-origin"], "https://app.example.com");
    // Browser code may read the challenge (its scopes and max_age) and when to retry.
    let exposed = response.headers()["access-control-expose-headers"].to_str().unwrap().to_ascii_lowercase();
    for header in ["www-authenticate", "retry-after"] {
        assert!(exposed.contains(header), "{exposed}");
    }
    // The admin API is never cross-origin.
    let response = server
        .http
        .request(Method::OPTIONS, format!("{}/admin/environments/dev/users", server.server.base_url()))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(!response.headers().contains_key("access-control-allow-origin"));
    server.shutdown().await;

    // `--dev` allows any origin.
    let server = TestServer::start(backend).await;
    let response = server
        .http
        .get(server.url("/settings"))
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "http://localhost:5173");
    server.shutdown().await;
}

on_both_databases!(
    every_verify_answer_carries_the_session,
    recovery_codes_need_a_recent_mfa,
    mfa_devices_and_the_default_device,
    settings_follow_the_policy,
    step_up_switched_off_opens_everything,
    disabled_methods_are_neither_offered_nor_accepted,
    every_error_is_json,
    cors_follows_each_environment,
);
