//! The attacks of the server's adversarial review (issue "Hardening the reference server"), each reproduced over
//! real HTTP on SQLite and PostgreSQL; each test failed before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::common;

use common::{Backend, TestServer, TestUser, assert_error, totp_code};
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
    let TestUser { jwt, email, .. } = server.user().await;
    let link = server.elevated_via_email(&jwt, &email, &["credential:link"]).await;
    let registration: TotpRegistration =
        register_totp(&server, &jwt, Some(&link)).await.json().await.unwrap();
    let secret = registration.secret.expose_secret().to_owned();
    let code = totp_code(&secret, server.now().as_secs());
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
    let next = json!({"code": totp_code(&secret, server.now().as_secs() + 30), "requestedScopes": ["wallet:export"]});
    assert_eq!(server.post("/users/mfa/auth/totp", Some(&jwt), &next).await.status(), StatusCode::OK);
    server.shutdown().await;
}

/// The policy guards `wallet:export` only and leaves `credential:link` open. A stolen session enrolled its own
/// authenticator app without any token; the capped completing code set a recent MFA, which opened the recovery
/// codes, and one of them asked for `wallet:export` (the adversarial review's H1). A first factor can earn every
/// guarded scope, so enrolling one now takes a re-authentication, whatever the policy says of
/// `credential:link` — or a token that grants every guarded scope already.
async fn a_first_factor_takes_a_reauthentication_whatever_the_policy(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.environments[0].policy.step_up_scopes = vec![stepup_proto::TokenScope::WalletExport];
    })
    .await;
    let TestUser { user, jwt, email } = server.user().await;
    assert_error(
        register_totp(&server, &jwt, None).await,
        StatusCode::FORBIDDEN,
        "elevated_access_token_required",
    )
    .await;
    // A credential:link token only the admin (or the app backend) vouched for is no re-authentication...
    let path = format!("/users/{}/sessions", user.id);
    let minted: Value =
        server.admin_post(&path, &json!({"elevatedScopes": ["credential:link"]})).await.json().await.unwrap();
    let (admin_jwt, admin_link) =
        (minted["jwt"].as_str().unwrap(), minted["elevatedAccessToken"].as_str().unwrap());
    let (body, _) = assert_error(
        register_totp(&server, admin_jwt, Some(admin_link)).await,
        StatusCode::FORBIDDEN,
        "elevated_access_token_required",
    )
    .await;
    assert!(body.error.contains("re-authentication"), "{}", body.error);
    // ...unless it grants every guarded scope already: then the factor adds nothing.
    let minted: Value = server
        .admin_post(&path, &json!({"elevatedScopes": ["credential:link", "wallet:export"]}))
        .await
        .json()
        .await
        .unwrap();
    let (all_jwt, all) = (minted["jwt"].as_str().unwrap(), minted["elevatedAccessToken"].as_str().unwrap());
    assert_eq!(register_totp(&server, all_jwt, Some(all)).await.status(), StatusCode::OK);
    // The user re-authenticating by email may enrol, and the completing code mints no more than that token.
    let link = server.elevated_via_email(&jwt, &email, &["credential:link"]).await;
    let registration: TotpRegistration =
        register_totp(&server, &jwt, Some(&link)).await.json().await.unwrap();
    let code = totp_code(registration.secret.expose_secret(), server.now().as_secs());
    let greedy = json!({"code": code, "id": registration.id, "requestedScopes": ["wallet:export"]});
    assert_error(
        server.post("/users/mfa/auth/totp", Some(&jwt), &greedy).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_scopes",
    )
    .await;
    let body = json!({"code": code, "id": registration.id});
    assert_eq!(server.post("/users/mfa/auth/totp", Some(&jwt), &body).await.status(), StatusCode::OK);
    server.shutdown().await;
}

/// One unfinished TOTP enrolment at a time (a new one replaces it), and one authenticator app per user.
async fn one_pending_and_one_verified_totp_device(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { jwt, email, .. } = server.user().await;
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
    let body = json!({"code": totp_code(old.secret.expose_secret(), server.now().as_secs()), "id": old.id});
    assert_error(
        server.post("/users/mfa/auth/totp", Some(&jwt), &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "mfa_device_not_found",
    )
    .await;
    let last = &registrations[4];
    let body = json!({"code": totp_code(last.secret.expose_secret(), server.now().as_secs()), "id": last.id});
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
    let TestUser { jwt, .. } = server.user().await;
    let mut challenges = Vec::new();
    for _ in 0..20 {
        let options: Value = server.get("/users/passkeys/register", Some(&jwt)).await.json().await.unwrap();
        challenges.push(options["challenge"].as_str().unwrap().to_owned());
    }
    // The server is fresh: every open ceremony is this user's.
    let counts = server.server.state().store().row_counts().await.unwrap();
    let open = counts.iter().find(|(table, _)| *table == "webauthn_challenges").unwrap().1;
    assert_eq!(open, stepup_server::store::MAX_OPEN_CEREMONIES);
    server.shutdown().await;
}

/// 32 parallel regenerations drove the server to 3.3 GiB (argon2 on up to 512 blocking threads); now at most
/// `hash_workers` argon2 jobs run at once.
async fn argon2_work_never_exceeds_its_workers(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| config.hash_workers = Some(2)).await;
    let mut people = Vec::new();
    for _ in 0..6 {
        people.push(server.totp_user().await);
    }
    let mut calls = tokio::task::JoinSet::new();
    for person in &people {
        for _ in 0..2 {
            let request = server.http.post(server.url("/users/mfa/recovery")).bearer_auth(&person.mfa_jwt);
            calls.spawn(async move { request.send().await.unwrap().status() });
        }
    }
    let statuses = calls.join_all().await;
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    let work = server.server.state().hash_work();
    assert_eq!(work.workers(), 2);
    assert!((1..=2).contains(&work.peak()), "peak {}", work.peak());
    server.shutdown().await;
}

/// Regenerations per user are limited (each is ten argon2 hashes).
async fn recovery_code_generations_per_user_are_limited(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.environments[0].limits.recovery_code_generations_per_hour = 3;
        // Long enough a recent MFA for the hour this test moves through.
        config.environments[0].policy.recent_mfa_max_age_secs = 7200;
    })
    .await;
    let person = server.totp_user().await;
    let regenerate =
        || server.call::<Value>(Method::POST, "/users/mfa/recovery", Some(&person.mfa_jwt), None, None);
    assert_eq!(server.get("/users/mfa/recovery", Some(&person.mfa_jwt)).await.status(), StatusCode::OK);
    assert_eq!(regenerate().await.status(), StatusCode::OK);
    assert_eq!(regenerate().await.status(), StatusCode::OK);
    let (_, headers) =
        assert_error(regenerate().await, StatusCode::TOO_MANY_REQUESTS, "recovery_codes_rate_limited").await;
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    server.clock.advance(3601);
    assert_eq!(regenerate().await.status(), StatusCode::OK);
    server.shutdown().await;
}

/// Concurrent first reads showed several sets of codes, of which only the last stored one worked.
async fn concurrent_first_reads_create_one_set_of_codes(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let person = server.totp_user().await;
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let request = server.http.get(server.url("/users/mfa/recovery")).bearer_auth(&person.mfa_jwt);
        reads.spawn(async move {
            request.send().await.unwrap().json::<stepup_proto::RecoveryCodesResponse>().await.unwrap()
        });
    }
    let answers = reads.join_all().await;
    let shown: Vec<_> = answers.iter().filter(|a| !a.recovery_codes.is_empty()).collect();
    assert_eq!(shown.len(), 1, "one read shows the codes");
    // And they are the codes that work.
    let code = shown[0].recovery_codes[0].expose_secret();
    let body = json!({"code": code, "requestedScopes": ["wallet:sign"]});
    assert_eq!(
        server.post("/users/mfa/auth/recovery", Some(&person.jwt), &body).await.status(),
        StatusCode::OK
    );
    server.shutdown().await;
}

async fn send_anonymously(server: &TestServer, email: &str, client: Option<&str>) -> reqwest::Response {
    let mut request =
        server.http.post(server.url("/emailVerifications/create")).json(&json!({ "email": email }));
    if let Some(address) = client {
        request = request.header("x-forwarded-for", format!("198.51.100.99, {address}"));
    }
    request.send().await.unwrap()
}

/// Three anonymous sends to a victim's address blocked the victim's own step-up code for ten minutes. Signed-in
/// sends now have their own bucket.
async fn anonymous_sends_cannot_block_a_users_step_up_code(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { jwt, email, .. } = server.user().await;
    for _ in 0..3 {
        assert_eq!(send_anonymously(&server, &email, None).await.status(), StatusCode::OK);
    }
    assert_error(
        send_anonymously(&server, &email, None).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_verification_attempts",
    )
    .await;
    let step_up = server.post("/emailVerifications/create", Some(&jwt), &json!({ "email": email })).await;
    assert_eq!(step_up.status(), StatusCode::OK, "the user's own code still goes out");
    // The user's bucket is the same three per address, and ten in all.
    for _ in 0..2 {
        let response =
            server.post("/emailVerifications/create", Some(&jwt), &json!({ "email": email })).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let fourth = server.post("/emailVerifications/create", Some(&jwt), &json!({ "email": email })).await;
    assert_error(fourth, StatusCode::TOO_MANY_REQUESTS, "too_many_verification_attempts").await;
    server.shutdown().await;
}

/// One client made 15,451 anonymous sends to random addresses in 20 s. Each client address now has an hourly
/// budget, behind a trusted proxy too, and a budget spent does not spend anyone else's.
async fn anonymous_sends_are_limited_per_client(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.trusted_proxy_header = Some("X-Forwarded-For".into());
        config.environments[0].limits.anonymous_sends_per_client_per_hour = 5;
    })
    .await;
    let mut sends = tokio::task::JoinSet::new();
    for n in 0..20 {
        let request = server
            .http
            .post(server.url("/emailVerifications/create"))
            .header("x-forwarded-for", "203.0.113.7")
            .json(&json!({ "email": format!("random{n}@example.com") }));
        sends.spawn(async move { request.send().await.unwrap().status() });
    }
    let statuses = sends.join_all().await;
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 5, "{statuses:?}");
    let (body, headers) = assert_error(
        send_anonymously(&server, "one-more@example.com", Some("203.0.113.7")).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_verification_attempts",
    )
    .await;
    assert!(body.error.contains("from this address"), "{}", body.error);
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3000..=3600).contains(&retry_after), "{retry_after}");
    // Another client (the proxy's last entry; the forged first entry counts for nothing), another budget.
    assert_eq!(
        send_anonymously(&server, "other@example.com", Some("203.0.113.8")).await.status(),
        StatusCode::OK
    );
    // A new hour, a new budget.
    server.clock.advance(3601);
    assert_eq!(
        send_anonymously(&server, "later@example.com", Some("203.0.113.7")).await.status(),
        StatusCode::OK
    );
    server.shutdown().await;
}

/// However many client addresses an attacker has, the environment sends at most its hourly ceiling of
/// anonymous codes; signed-in users' codes still go out.
async fn anonymous_sends_have_a_global_ceiling(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.trusted_proxy_header = Some("x-forwarded-for".into());
        config.environments[0].limits.anonymous_sends_per_hour = 4;
    })
    .await;
    let TestUser { jwt, email, .. } = server.user().await;
    for n in 0..4 {
        let response =
            send_anonymously(&server, &format!("a{n}@example.com"), Some(&format!("192.0.2.{n}"))).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let (body, _) = assert_error(
        send_anonymously(&server, "a9@example.com", Some("192.0.2.9")).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_verification_attempts",
    )
    .await;
    assert!(body.error.contains("sign-in codes"), "{}", body.error);
    let step_up = server.post("/emailVerifications/create", Some(&jwt), &json!({ "email": email })).await;
    assert_eq!(step_up.status(), StatusCode::OK);
    server.shutdown().await;
}

async fn protected(server: &TestServer, scope: &str, jwt: &str, token: &str) -> reqwest::Response {
    server.call::<Value>(Method::POST, &format!("/protected/{scope}"), Some(jwt), Some(token), None).await
}

/// An elevated token opened the user's resources from any session of theirs, even after the session that
/// earned it was revoked. It is now bound to that session (`sid`).
async fn elevated_tokens_are_bound_to_their_session(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { user, jwt: first, email } = server.user().await;
    let token = server.elevated_via_email(&first, &email, &["wallet:sign"]).await;
    assert_eq!(common::claims_of(&token)["sid"], common::claims_of(&first)["sid"]);
    assert_eq!(protected(&server, "wallet:sign", &first, &token).await.status(), StatusCode::OK);
    let second = server.session(&user.id).await;
    let (body, _) = assert_error(
        protected(&server, "wallet:sign", &second, &token).await,
        StatusCode::FORBIDDEN,
        "elevated_access_token_required",
    )
    .await;
    assert!(body.error.contains("another session"), "{}", body.error);
    assert_eq!(server.post("/revoke", Some(&first), &json!({})).await.status(), StatusCode::NO_CONTENT);
    assert_error(
        protected(&server, "wallet:sign", &first, &token).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let third = server.session(&user.id).await;
    assert_error(
        protected(&server, "wallet:sign", &third, &token).await,
        StatusCode::FORBIDDEN,
        "elevated_access_token_required",
    )
    .await;
    server.shutdown().await;
}

/// serde reads a struct from a JSON array, so `["wallet:export"]` passed for `{scope}`. Every body must now be a
/// JSON object.
async fn bodies_that_are_not_json_objects_are_refused(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { jwt, .. } = server.user().await;
    for (path, body) in [
        ("/stepUp/check", json!(["wallet:export"])),
        ("/emailVerifications/create", json!(["someone@example.com"])),
        ("/users/mfa/auth/totp", json!(["123456", null, ["wallet:export"]])),
        ("/stepUp/check", json!("wallet:export")),
        ("/stepUp/check", json!(7)),
    ] {
        let response = server.post(path, Some(&jwt), &body).await;
        let (error, _) = assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
        assert_eq!(error.error, "The request body must be a JSON object", "{path} {body}");
    }
    // The object form still works.
    let response = server.post("/stepUp/check", Some(&jwt), &json!({"scope": "wallet:export"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    server.shutdown().await;
}

/// `stepUp/check` answered "not required" for a scope it does not know, while verify refused the same scope:
/// a typo read as "no step-up needed". It is 422 `invalid_scopes` now, with step-up on or off.
async fn step_up_check_refuses_unknown_scopes(backend: &Backend) {
    for enabled in [true, false] {
        let server =
            TestServer::start_with(backend, |config| config.environments[0].policy.step_up_enabled = enabled)
                .await;
        let TestUser { jwt, .. } = server.user().await;
        let response = server.post("/stepUp/check", Some(&jwt), &json!({"scope": "wallet:exprot"})).await;
        let (error, _) = assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_scopes").await;
        assert!(error.error.contains("wallet:exprot"), "{}", error.error);
        server.shutdown().await;
    }
}

async fn nonces(server: &TestServer, client: &str) -> reqwest::Response {
    server.http.get(server.url("/nonces?count=5")).header("x-forwarded-for", client).send().await.unwrap()
}

/// `/nonces` needs no session and made 77,240 rows in 20 s for one client. Calls are now counted per client
/// address and for the environment.
async fn nonce_requests_are_limited_per_client_and_in_all(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.trusted_proxy_header = Some("x-forwarded-for".into());
        config.environments[0].limits.nonce_requests_per_client_per_hour = 10;
        config.environments[0].limits.nonce_requests_per_hour = 12;
    })
    .await;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let request = server.http.get(server.url("/nonces?count=5")).header("x-forwarded-for", "203.0.113.1");
        calls.spawn(async move { request.send().await.unwrap().status() });
    }
    let statuses = calls.join_all().await;
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 10, "{statuses:?}");
    let (body, _) =
        assert_error(nonces(&server, "203.0.113.1").await, StatusCode::TOO_MANY_REQUESTS, "rate_limited")
            .await;
    assert!(body.error.contains("from this address"), "{}", body.error);
    let rows = row_count(&server, "nonces").await;
    assert_eq!(rows, 50, "ten calls of five nonces");
    // Other clients have their own budgets, up to the environment's ceiling (12 calls).
    assert_eq!(nonces(&server, "203.0.113.2").await.status(), StatusCode::OK);
    assert_eq!(nonces(&server, "203.0.113.3").await.status(), StatusCode::OK);
    let (body, _) =
        assert_error(nonces(&server, "203.0.113.4").await, StatusCode::TOO_MANY_REQUESTS, "rate_limited")
            .await;
    assert!(body.error.contains("being requested"), "{}", body.error);
    server.shutdown().await;
}

async fn row_count(server: &TestServer, table: &str) -> i64 {
    let counts = server.server.state().store().row_counts().await.unwrap();
    counts.into_iter().find(|(name, _)| *name == table).unwrap().1
}

/// One session made 11,624 passkey registration ceremonies in 10 s. A flood of every creating call from one
/// session and one client now leaves each table bounded, and the purge empties every table with an expiry.
async fn a_flood_leaves_every_table_bounded_and_the_purge_empties_them(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        let limits = &mut config.environments[0].limits;
        limits.ceremonies_per_user_per_hour = 20;
        limits.anonymous_sends_per_client_per_hour = 15;
        limits.nonce_requests_per_client_per_hour = 10;
    })
    .await;
    let TestUser { jwt, email, .. } = server.user().await;
    let link = server.elevated_via_email(&jwt, &email, &["credential:link"]).await;
    let mut statuses = Vec::new();
    for n in 0..40 {
        statuses.push(server.get("/users/passkeys/register", Some(&jwt)).await.status());
        statuses.push(register_totp(&server, &jwt, Some(&link)).await.status());
        statuses.push(send_anonymously(&server, &format!("flood{n}@example.com"), None).await.status());
        statuses.push(server.get("/nonces?count=5", None).await.status());
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(ok + limited, statuses.len(), "only answers and refusals: {statuses:?}");
    assert_eq!(ok, 20 + 15 + 10, "20 ceremonies, 15 anonymous sends, 10 nonce calls");
    let bounded = [
        ("webauthn_challenges", 5),
        ("mfa_devices", 1),
        ("otp_verifications", 16),
        ("outbox", 16),
        ("nonces", 50),
    ];
    for (table, most) in bounded {
        let rows = row_count(&server, table).await;
        assert!(rows <= most, "{table}: {rows} rows, at most {most} expected");
    }
    // Two days later every row with an end is gone, and the unconfirmed enrolment with them.
    server.clock.advance(2 * 24 * 3600);
    let store = server.server.state().store().clone();
    store.purge_expired(stepup_server::store::secs(server.now())).await.unwrap();
    for table in [
        "sessions",
        "otp_verifications",
        "outbox",
        "mfa_devices",
        "consumed_tokens",
        "nonces",
        "webauthn_challenges",
        "rate_slots",
        "rate_counters",
    ] {
        assert_eq!(row_count(&server, table).await, 0, "{table} after the purge");
    }
    server.shutdown().await;
}

/// Tokens signed with the environment's key but dated ahead (`iat`, `nbf`) or from another issuer were taken.
/// They open nothing now: a session is a 401, an elevated token the 403 challenge.
async fn future_dated_and_foreign_issuer_tokens_are_refused(backend: &Backend) {
    use stepup_server::tokens::{ElevatedClaims, SessionClaims};
    let server = TestServer::start(backend).await;
    let TestUser { jwt, email, .. } = server.user().await;
    let token = server.elevated_via_email(&jwt, &email, &["wallet:sign"]).await;
    let env = server.server.state().environment(common::ENV).unwrap().clone();
    let now = server.now().as_secs();
    let session: SessionClaims = serde_json::from_value(common::claims_of(&jwt)).unwrap();
    let elevated: ElevatedClaims = serde_json::from_value(common::claims_of(&token)).unwrap();
    for bad in [
        SessionClaims { iat: now + 3600, ..session.clone() },
        SessionClaims { nbf: Some(now + 3600), ..session.clone() },
        SessionClaims { iss: "https://elsewhere.example".into(), ..session.clone() },
    ] {
        let forged = env.keys.ring().current().sign(&bad).unwrap().expose_secret().to_owned();
        assert_error(server.get("/users", Some(&forged)).await, StatusCode::UNAUTHORIZED, "unauthorized")
            .await;
    }
    for bad in [
        ElevatedClaims { iat: now + 3600, ..elevated.clone() },
        ElevatedClaims { nbf: Some(now + 3600), ..elevated.clone() },
        ElevatedClaims { iss: "https://elsewhere.example".into(), ..elevated.clone() },
    ] {
        let forged = env.keys.ring().current().sign(&bad).unwrap().expose_secret().to_owned();
        assert_error(
            protected(&server, "wallet:sign", &jwt, &forged).await,
            StatusCode::FORBIDDEN,
            "elevated_access_token_required",
        )
        .await;
    }
    // The genuine ones still work.
    assert_eq!(protected(&server, "wallet:sign", &jwt, &token).await.status(), StatusCode::OK);
    server.shutdown().await;
}

/// `/health` said 200 as long as the database answered a `SELECT 1`, even when no write could get through. It
/// writes now, and answers 503 `database_unavailable` when the write does not go through in two seconds (here:
/// another connection holds the write lock); `/health/live` stays 200. A burst of checks writes once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_while_the_database_takes_no_writes() {
    use sqlx::Connection as _;
    use sqlx::Executor as _;
    // SQLite: a file, locked by a second connection's exclusive transaction.
    let dir = std::env::temp_dir().join(format!(
        "stepup-health-{}",
        stepup_server::random::hex(&stepup_server::random::bytes::<6>().unwrap())
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("health.db").display());
    let server = TestServer::start_on(url.clone(), None, |_| {}).await;
    let mut locker = sqlx::SqliteConnection::connect(&url).await.unwrap();
    assert_health(&server, StatusCode::OK).await;
    locker.execute("BEGIN EXCLUSIVE").await.unwrap();
    assert_health(&server, StatusCode::SERVICE_UNAVAILABLE).await;
    locker.execute("ROLLBACK").await.unwrap();
    assert_health(&server, StatusCode::OK).await;
    // However many ask at once, one write a second: the checks answer from the last one while the lock is held.
    locker.execute("BEGIN EXCLUSIVE").await.unwrap();
    let started = std::time::Instant::now();
    let mut checks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let request = server.http.get(format!("{}/health", server.server.base_url()));
        checks.spawn(async move { request.send().await.unwrap().status() });
    }
    let statuses = checks.join_all().await;
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "answered from the cache, no write waited on"
    );
    locker.execute("ROLLBACK").await.unwrap();
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    // PostgreSQL: the health table locked by another transaction.
    let Some(Backend::Postgres(base)) = Backend::postgres() else { return };
    let (url, schema) = common::postgres_schema(&base).await;
    let server = TestServer::start_on(url.clone(), Some((base, schema)), |_| {}).await;
    let mut locker = sqlx::PgConnection::connect(&url).await.unwrap();
    assert_health(&server, StatusCode::OK).await;
    locker.execute("BEGIN").await.unwrap();
    locker.execute("LOCK TABLE health_checks IN ACCESS EXCLUSIVE MODE").await.unwrap();
    assert_health(&server, StatusCode::SERVICE_UNAVAILABLE).await;
    locker.execute("ROLLBACK").await.unwrap();
    assert_health(&server, StatusCode::OK).await;
    server.shutdown().await;
}

async fn assert_health(server: &TestServer, status: StatusCode) {
    // An outcome is kept for a second: the check before this one must not answer for it.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let base = server.server.base_url();
    let health = server.http.get(format!("{base}/health")).send().await.unwrap();
    if status == StatusCode::OK {
        assert_eq!(health.status(), StatusCode::OK);
    } else {
        assert_error(health, status, "database_unavailable").await;
    }
    let live = server.http.get(format!("{base}/health/live")).send().await.unwrap();
    assert_eq!(live.status(), StatusCode::OK, "liveness does not depend on the database");
}

/// Each signed-in account had its own three sends per address, to any address: N cheap accounts sent 3N codes
/// an hour to one victim (each a sign-in code for the victim's account: 9N guesses at it), and none of them
/// counted against the per-client or environment limits (the review's H2 and H3). A session's sends to
/// addresses that are not its user's are anonymous sends now: the shared three per address, the client's and
/// the environment's budgets.
async fn sessions_cannot_multiply_sends_to_someone_elses_address(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.environments[0].limits.anonymous_sends_per_client_per_hour = 5;
    })
    .await;
    let victim = server.create_user("victim@example.com", None).await;
    let mut attackers = Vec::new();
    for _ in 0..4 {
        attackers.push(server.user().await.jwt);
    }
    let statuses: Vec<StatusCode> = {
        let mut statuses = Vec::new();
        for jwt in &attackers {
            let body = json!({"email": "victim@example.com"});
            statuses.push(server.post("/emailVerifications/create", Some(jwt), &body).await.status());
        }
        statuses
    };
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 3, "{statuses:?}");
    // The codes are bound to no attacker's account and counted as the client's anonymous sends.
    for message in server.outbox("victim@example.com").await {
        let otp = server
            .server
            .state()
            .store()
            .otp(common::ENV, &message.verification_uuid)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(otp.user_id, None);
    }
    let body = json!({"email": "someone-else@example.com"});
    assert_eq!(
        server.post("/emailVerifications/create", Some(&attackers[0]), &body).await.status(),
        StatusCode::OK
    );
    let more = json!({"email": "a-third@example.com"});
    assert_error(
        server.post("/emailVerifications/create", Some(&attackers[1]), &more).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_verification_attempts",
    )
    .await;
    // The victim's own step-up code still goes out, in their bucket.
    let session = server.session(&victim.id).await;
    let own = json!({"email": "victim@example.com"});
    assert_eq!(
        server.post("/emailVerifications/create", Some(&session), &own).await.status(),
        StatusCode::OK
    );
    server.shutdown().await;
}

/// Signed-in sends to the users' own addresses have a per-client budget of their own.
async fn signed_in_sends_have_a_per_client_budget(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.environments[0].limits.signed_in_sends_per_client_per_hour = 4;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let TestUser { jwt, email, .. } = server.user().await;
        for _ in 0..2 {
            let body = json!({"email": email});
            statuses.push(server.post("/emailVerifications/create", Some(&jwt), &body).await.status());
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 4, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(), 2, "{statuses:?}");
    server.shutdown().await;
}

/// The first read marked the codes as made before they were: a read cancelled or failed between the two left
/// the user with no codes, for good (the review's M3). A mark with no codes behind it is taken again once it is
/// older than any request can be.
async fn an_abandoned_first_read_does_not_lose_the_codes(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let person = server.totp_user().await;
    let store = server.server.state().store().clone();
    // What a cancelled first read leaves behind: the mark, no codes.
    assert!(
        store
            .claim_first_recovery_codes(&person.user.id, stepup_server::store::secs(server.now()))
            .await
            .unwrap()
    );
    let read = || async {
        server
            .get("/users/mfa/recovery", Some(&person.mfa_jwt))
            .await
            .json::<stepup_proto::RecoveryCodesResponse>()
            .await
            .unwrap()
    };
    assert!(read().await.recovery_codes.is_empty(), "a first read may still be at work");
    server.clock.advance(121);
    let codes = read().await;
    assert_eq!(codes.recovery_codes.len(), 10, "the abandoned read's codes are made now");
    assert!(read().await.recovery_codes.is_empty(), "and shown once");
    server.shutdown().await;
}

/// A spent single-use token's row went at `exp`; a replica whose clock runs behind (within the allowed minute)
/// then took the token again (the review's L1). The row stays a minute past `exp`.
async fn a_spent_token_is_remembered_past_its_expiry_by_the_clock_skew(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { jwt, email, .. } = server.user().await;
    let token = server.elevated_via_email(&jwt, &email, &["wallet:export"]).await;
    assert_eq!(protected(&server, "wallet:export", &jwt, &token).await.status(), StatusCode::OK);
    let exp = common::claims_of(&token)["exp"].as_u64().unwrap();
    let store = server.server.state().store().clone();
    let purge_at = |secs: u64| store.purge_expired(i64::try_from(secs).unwrap());
    purge_at(exp + 30).await.unwrap();
    assert_eq!(row_count(&server, "consumed_tokens").await, 1, "a lagging replica may still see it valid");
    purge_at(exp + 61).await.unwrap();
    assert_eq!(row_count(&server, "consumed_tokens").await, 0);
    server.shutdown().await;
}

/// "One authenticator app per user" was the route's check only; an enrolment started while another one
/// completed got past it and became a second verified device (the review's L2). The database holds the rule
/// now: the second completion is 422 `mfa_device_already_exists`. The race's end state is set up directly.
async fn a_second_verified_totp_device_is_refused_by_the_database(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let person = server.totp_user().await;
    let store = server.server.state().store().clone();
    let now = stepup_server::store::secs(server.now());
    // What the raced enrolment left: a pending device beside the verified one.
    let secret = stepup_server::methods::totp::new_secret().unwrap();
    // Stored as the server stores secrets: sealed under its key-encryption key.
    let kek = server.server.state().key_encryption_key();
    let sealed = stepup_server::services::secrets::seal_totp_secret(kek, "raced-device", &secret).unwrap();
    store.insert_totp_device("raced-device", &person.user.id, &sealed, "credential:link", now).await.unwrap();
    let code = totp_code(&secret, server.now().as_secs());
    let body = json!({"code": code, "id": "raced-device"});
    assert_error(
        server.post("/users/mfa/auth/totp", Some(&person.jwt), &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "mfa_device_already_exists",
    )
    .await;
    let devices: stepup_proto::MfaDevicesResponse =
        server.get("/users/mfa", Some(&person.jwt)).await.json().await.unwrap();
    assert_eq!(devices.devices.iter().filter(|d| d.verified == Some(true)).count(), 1);
    server.shutdown().await;
}

/// `admin_token = ""` in a configuration file turned the admin API on for any request without
/// `Authorization` (SHA-256 of nothing matched SHA-256 of nothing). An empty token is refused at start, and a
/// request without a bearer never matches.
#[tokio::test]
async fn an_empty_admin_token_is_refused() {
    let mut config = stepup_server::ServerConfig::dev(common::ENV);
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.admin_token = Some(stepup_core::SecretString::new(""));
    let refused = stepup_server::Server::start(config).await;
    assert!(matches!(refused, Err(stepup_server::StartError::Config(_))), "{refused:?}");
    let server = TestServer::start(&Backend::Sqlite).await;
    let response = server
        .http
        .post(format!("{}/admin/environments/{}/users", server.server.base_url(), common::ENV))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    server.shutdown().await;
}

/// Lockout rows were never purged. A row that says nothing (no failures, no lock in force) goes with the minute
/// purge; a lock in force stays until it ends.
async fn lockout_rows_that_say_nothing_are_purged(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let person = server.totp_user().await; // its TOTP proofs left a row with no failures
    let store = server.server.state().store().clone();
    let purge = || store.purge_expired(stepup_server::store::secs(server.now()));
    assert!(row_count(&server, "mfa_lockouts").await >= 1);
    purge().await.unwrap();
    assert_eq!(row_count(&server, "mfa_lockouts").await, 0);
    for _ in 0..5 {
        let wrong = json!({"code": "000000", "requestedScopes": ["wallet:sign"]});
        server.post("/users/mfa/auth/totp", Some(&person.jwt), &wrong).await;
    }
    purge().await.unwrap();
    assert_eq!(row_count(&server, "mfa_lockouts").await, 1, "the lock is in force");
    server.clock.advance(16 * 60);
    purge().await.unwrap();
    assert_eq!(row_count(&server, "mfa_lockouts").await, 0, "and goes when it ends");
    server.shutdown().await;
}

on_both_databases!(
    lockout_rows_that_say_nothing_are_purged,
    a_second_verified_totp_device_is_refused_by_the_database,
    a_spent_token_is_remembered_past_its_expiry_by_the_clock_skew,
    an_abandoned_first_read_does_not_lose_the_codes,
    sessions_cannot_multiply_sends_to_someone_elses_address,
    signed_in_sends_have_a_per_client_budget,
    future_dated_and_foreign_issuer_tokens_are_refused,
    nonce_requests_are_limited_per_client_and_in_all,
    a_flood_leaves_every_table_bounded_and_the_purge_empties_them,
    bodies_that_are_not_json_objects_are_refused,
    step_up_check_refuses_unknown_scopes,
    elevated_tokens_are_bound_to_their_session,
    anonymous_sends_cannot_block_a_users_step_up_code,
    anonymous_sends_are_limited_per_client,
    anonymous_sends_have_a_global_ceiling,
    argon2_work_never_exceeds_its_workers,
    recovery_code_generations_per_user_are_limited,
    concurrent_first_reads_create_one_set_of_codes,
    enrolment_completes_with_no_more_scopes_than_it_started_with,
    a_first_factor_takes_a_reauthentication_whatever_the_policy,
    one_pending_and_one_verified_totp_device,
    open_passkey_ceremonies_are_bounded,
);
