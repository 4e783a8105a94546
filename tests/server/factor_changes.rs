//! Adding or removing an MFA factor (TOTP and passkey registration, device and passkey deletion) of a user who
//! has MFA takes MFA: a recent MFA in the session, or a token an MFA proof earned. Each test is an attack from the
//! adversarial review of the Dynamic-fidelity change, which succeeded before the fix: a stolen session (no email,
//! no authenticator) adding its own factor when the policy leaves `credential:*` out or step-up is off, and a
//! `credential:link` token earned by email before the user had MFA still adding factors afterwards.
//!
//! The probe for "add a factor" is the passkey registration POST, whose guard answers before the attestation is
//! read: a refusal is the guard's 403, a pass is the 400 of the probe's empty attestation. (TOTP registration is
//! refused for these users anyway: one authenticator app per user.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::common;

use common::{Backend, TestServer, TestUser, totp_code};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stepup_proto::{TokenScope, VerifyResponse};

/// What a session tries, with `token` in the elevated-token header if given: add a passkey, delete `device`.
async fn change_factors(
    server: &TestServer,
    jwt: &str,
    device: &str,
    token: Option<&str>,
) -> (StatusCode, StatusCode) {
    let probe = json!({"id": "probe"});
    let add = server.call(Method::POST, "/users/passkeys/register", Some(jwt), token, Some(&probe)).await;
    let delete =
        server.call::<Value>(Method::DELETE, &format!("/users/mfa/{device}"), Some(jwt), token, None).await;
    (add.status(), delete.status())
}

const REFUSED: (StatusCode, StatusCode) = (StatusCode::FORBIDDEN, StatusCode::FORBIDDEN);
/// Past the guard: the probe's attestation is a 400, the device is deleted.
const ALLOWED: (StatusCode, StatusCode) = (StatusCode::BAD_REQUEST, StatusCode::NO_CONTENT);

async fn a_policy_without_credential_scopes_does_not_open_factor_changes(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.environments[0].policy.step_up_scopes = vec![TokenScope::WalletExport, TokenScope::WalletSign];
    })
    .await;
    let victim = server.totp_user().await;
    // The session as it was stolen: no recent MFA in it, no token.
    assert_eq!(change_factors(&server, &victim.jwt, &victim.device, None).await, REFUSED);
    // The user who just passed MFA (the session the answer re-issued) may.
    assert_eq!(change_factors(&server, &victim.mfa_jwt, &victim.device, None).await, ALLOWED);
    server.shutdown().await;
}

async fn with_step_up_off_a_stolen_session_cannot_change_the_factors_of_an_mfa_user(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.environments[0].policy.step_up_enabled = false;
    })
    .await;
    let TestUser { jwt, .. } = server.user().await;
    // No MFA yet: the first factor is enrolled as the policy says (off: the session alone).
    let response =
        server.call::<Value>(Method::GET, "/users/mfa/register/totp", Some(&jwt), None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let registration: stepup_proto::TotpRegistration = response.json().await.unwrap();
    let secret = registration.secret.expose_secret().to_owned();
    let body = json!({"code": totp_code(&secret, server.now().as_secs()), "id": registration.id});
    let verified: VerifyResponse =
        server.post("/users/mfa/auth/totp", Some(&jwt), &body).await.json().await.unwrap();
    let mfa_jwt = verified.minified_jwt.unwrap().expose_secret().to_owned();
    // Now the user has MFA: the stolen (pre-MFA) session can neither add nor remove a factor.
    assert_eq!(change_factors(&server, &jwt, &registration.id, None).await, REFUSED);
    // A recent MFA can: the person at the device, right after an MFA.
    assert_eq!(change_factors(&server, &mfa_jwt, &registration.id, None).await, ALLOWED);
    server.shutdown().await;
}

async fn a_link_token_from_before_mfa_does_not_add_factors_after(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { jwt, email, .. } = server.user().await;
    // credential:link and credential:unlink by email, while the user has no MFA; the link token is multi-use.
    let link = server.elevated_via_email(&jwt, &email, &["credential:link"]).await;
    let registration: stepup_proto::TotpRegistration = server
        .call::<Value>(Method::GET, "/users/mfa/register/totp", Some(&jwt), Some(&link), None)
        .await
        .json()
        .await
        .unwrap();
    let secret = registration.secret.expose_secret().to_owned();
    let unlink = server.elevated_via_email(&jwt, &email, &["credential:unlink"]).await;
    let now = server.now().as_secs();
    let body = json!({"code": totp_code(&secret, now - 30), "id": registration.id});
    assert_eq!(server.post("/users/mfa/auth/totp", Some(&jwt), &body).await.status(), StatusCode::OK);
    // The user has MFA now: the email-earned tokens, still unexpired, add nothing and remove nothing.
    let probe = json!({"id": "probe"});
    let add =
        server.call(Method::POST, "/users/passkeys/register", Some(&jwt), Some(&link), Some(&probe)).await;
    let (body, _) = common::assert_error(add, StatusCode::FORBIDDEN, "elevated_access_token_required").await;
    assert!(body.error.contains("earned by MFA"), "{}", body.error);
    let path = format!("/users/mfa/{}", registration.id);
    let delete = server.call::<Value>(Method::DELETE, &path, Some(&jwt), Some(&unlink), None).await;
    assert_eq!(delete.status(), StatusCode::FORBIDDEN);
    // Tokens earned by TOTP do.
    let by_totp = |scope: &str, at: u64| {
        let body = json!({"code": totp_code(&secret, at), "requestedScopes": [scope]});
        let server = &server;
        let jwt = jwt.clone();
        async move {
            let answer: VerifyResponse =
                server.post("/users/mfa/auth/totp", Some(&jwt), &body).await.json().await.unwrap();
            answer.elevated_access_token.unwrap().expose_secret().to_owned()
        }
    };
    let link = by_totp("credential:link", now).await;
    let add =
        server.call(Method::POST, "/users/passkeys/register", Some(&jwt), Some(&link), Some(&probe)).await;
    assert_eq!(add.status(), StatusCode::BAD_REQUEST, "past the guard");
    let unlink = by_totp("credential:unlink", now + 30).await;
    let delete = server.call::<Value>(Method::DELETE, &path, Some(&jwt), Some(&unlink), None).await;
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    server.shutdown().await;
}

async fn disabled_methods_cannot_be_enrolled(backend: &Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.environments[0].policy.enabled_methods = vec![stepup_core::Method::EmailOtp];
    })
    .await;
    let TestUser { jwt, email, .. } = server.user().await;
    let link = server.elevated_via_email(&jwt, &email, &["credential:link"]).await;
    let response =
        server.call::<Value>(Method::GET, "/users/mfa/register/totp", Some(&jwt), Some(&link), None).await;
    common::assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "method_disabled").await;
    let response = server.get("/users/passkeys/register", Some(&jwt)).await;
    common::assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "method_disabled").await;
    server.shutdown().await;
}

on_both_databases!(
    a_policy_without_credential_scopes_does_not_open_factor_changes,
    with_step_up_off_a_stolen_session_cannot_change_the_factors_of_an_mfa_user,
    a_link_token_from_before_mfa_does_not_add_factors_after,
    disabled_methods_cannot_be_enrolled,
);
