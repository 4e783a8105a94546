//! Operator tools of the admin API: unlock a user locked out of MFA, reset a user's MFA, list users a page at
//! a time, end all of a user's sessions, delete a user. Each answers 404 for an unknown user.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::common;

use common::{ADMIN, Backend, ENV, TestServer, assert_error, totp_code};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn admin(server: &TestServer, method: Method, path: &str) -> reqwest::Response {
    server
        .http
        .request(method, format!("{}/admin/environments/{ENV}{path}", server.server.base_url()))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
}

async fn unlock_and_reset(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let person = server.totp_user().await;
    let now = server.now().as_secs();
    let wrong = format!("{:06}", (totp_code(&person.secret, now).parse::<u32>().unwrap() + 1) % 1_000_000);
    for _ in 0..6 {
        let _ = server.post("/users/mfa/auth/totp", Some(&person.jwt), &json!({"code": wrong})).await;
    }
    server.clock.advance(60);
    let right = || totp_code(&person.secret, server.now().as_secs());
    let response = server.post("/users/mfa/auth/totp", Some(&person.jwt), &json!({"code": right()})).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "lock_too_many_attempts").await;
    let response = admin(&server, Method::POST, &format!("/users/{}/unlock", person.user.id)).await;
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"unlocked": true}));
    let response = server.post("/users/mfa/auth/totp", Some(&person.jwt), &json!({"code": right()})).await;
    assert_eq!(response.status(), StatusCode::OK, "unlocked");
    let response = admin(&server, Method::POST, &format!("/users/{}/unlock", person.user.id)).await;
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"unlocked": false}));

    // Reset: the device and the recovery codes go; the user is back to re-authentication by email.
    let response = server.get("/users/mfa/recovery", Some(&person.mfa_jwt)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body =
        json!({"verificationUUID": "x", "verificationToken": "000000", "requestedScopes": ["wallet:sign"]});
    let response = server.post("/emailVerifications/verify", Some(&person.jwt), &body).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "mfa_required").await;
    let response = admin(&server, Method::POST, &format!("/users/{}/mfa/reset", person.user.id)).await;
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"devices": 1, "passkeys": 0, "recoveryCodes": 10, "revokedSessions": 1})
    );
    // The user's sessions ended with it (the one with a recent MFA could have enrolled a new factor at once).
    for jwt in [&person.jwt, &person.mfa_jwt] {
        assert_error(server.get("/users", Some(jwt)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let jwt = server.session(&person.user.id).await;
    let methods: Value = server.get("/users/mfa/methods", Some(&jwt)).await.json().await.unwrap();
    assert_eq!(methods["userHasVerifiedMfaMethods"], false);
    assert_eq!(methods["devices"], json!([]));
    server.elevated_via_email(&jwt, &person.email, &["wallet:sign"]).await;
    for path in ["/unlock", "/mfa/reset", "/sessions/revoke"] {
        let response = admin(&server, Method::POST, &format!("/users/nobody{path}")).await;
        assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    server.shutdown().await;
}

async fn list_revoke_and_delete(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(server.create_user(&format!("list{n}@example.com"), None).await.id);
    }
    ids.sort();
    let page: Value = admin(&server, Method::GET, "/users?limit=2").await.json().await.unwrap();
    let first: Vec<&str> =
        page["users"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(first, [ids[0].as_str(), ids[1].as_str()]);
    let next = page["next"].as_str().unwrap().to_owned();
    let page: Value =
        admin(&server, Method::GET, &format!("/users?limit=10&after={next}")).await.json().await.unwrap();
    assert_eq!(page["users"].as_array().unwrap().len(), 3);
    assert!(page.get("next").is_none(), "{page}");
    let rest: Vec<&str> =
        page["users"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(rest, ids[2..].iter().map(String::as_str).collect::<Vec<_>>());
    let response = admin(&server, Method::GET, "/users?limit=0").await;
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;

    // Revoke: every live session of the user ends, and the elevated tokens bound to them with it.
    let user = &ids[0];
    let one = server.session(user).await;
    let two = server.session(user).await;
    let response = admin(&server, Method::POST, &format!("/users/{user}/sessions/revoke")).await;
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"revoked": 2}));
    for jwt in [&one, &two] {
        assert_error(server.get("/users", Some(jwt)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    // Delete: the user's session ends with them; a second delete is a 404.
    let victim = &ids[1];
    let session = server.session(victim).await;
    let response = admin(&server, Method::DELETE, &format!("/users/{victim}")).await;
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"deleted": true}));
    assert_error(server.get("/users", Some(&session)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let response = admin(&server, Method::DELETE, &format!("/users/{victim}")).await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let page: Value = admin(&server, Method::GET, "/users").await.json().await.unwrap();
    assert_eq!(page["users"].as_array().unwrap().len(), 4);
    server.shutdown().await;
}

on_both_databases!(unlock_and_reset, list_revoke_and_delete);
