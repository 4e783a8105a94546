//! Passkeys over real HTTP against webauthn-rs, with 1Password's software authenticator (real CTAP2 and
//! WebAuthn cryptography) as the user's device.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::common;

use common::{Backend, TestServer, TestUser, assert_error};
use passkey::authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
use passkey::client::{Client, DefaultClientData};
use passkey::crypto::rust_crypto::RustCryptoBackend;
use passkey::types::Passkey;
use passkey::types::ctap2::{Aaguid, Ctap2Error};
use passkey::types::webauthn::{CredentialCreationOptions, CredentialRequestOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stepup_proto::{MfaMethodsResponse, VerifyResponse};
use url::Url;

/// The user at the authenticator: present, and verified (PIN/biometrics) unless told otherwise.
struct User {
    verified: bool,
}

#[async_trait::async_trait]
impl UserValidationMethod for User {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        presence: bool,
        _verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck { presence, verification: self.verified })
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }
}

type Device = Client<Option<Passkey>, User, RustCryptoBackend, public_suffix::PublicSuffixList, ()>;

fn device(store: Option<Passkey>, verified: bool) -> Device {
    let mut authenticator =
        Authenticator::new(Aaguid::new_empty(), store, User { verified }, RustCryptoBackend);
    // Signature counters on, as on most hardware keys, so a cloned credential can be caught.
    authenticator.set_make_credentials_with_signature_counter(true);
    Client::new(authenticator).allows_insecure_localhost(true)
}

/// The dev environment's passkey origin (`rp_origins`), whatever port the server listens on: the page, not
/// the API, is the origin.
fn origin(_server: &TestServer) -> Url {
    Url::parse("http://localhost").unwrap()
}

/// Registers a passkey on `device`; returns the user's session.
async fn register(server: &TestServer, device: &mut Device) -> String {
    let TestUser { jwt, email, .. } = server.user().await;
    let options: Value = server.get("/users/passkeys/register", Some(&jwt)).await.json().await.unwrap();
    assert_eq!(options["authenticatorSelection"]["userVerification"], "required");
    let request: CredentialCreationOptions = serde_json::from_value(json!({"publicKey": options})).unwrap();
    let created = device.register(&origin(server), request, DefaultClientData).await.unwrap();
    let attestation = serde_json::to_value(&created).unwrap();
    let response =
        server.call(Method::POST, "/users/passkeys/register", Some(&jwt), None, Some(&attestation)).await;
    assert_error(response, StatusCode::FORBIDDEN, "elevated_access_token_required").await;
    // The guard refused before the challenge was looked at, so the same attestation still works with the token.
    let link = server.elevated_via_email(&jwt, &email, &["credential:link"]).await;
    let response = server
        .call(Method::POST, "/users/passkeys/register", Some(&jwt), Some(&link), Some(&attestation))
        .await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    jwt
}

/// Runs an assertion on `device` and returns the request body (with scopes).
async fn assertion(server: &TestServer, jwt: &str, device: &mut Device, at: &Url) -> Value {
    let options: Value = server.get("/users/passkeys/authenticate", Some(jwt)).await.json().await.unwrap();
    let request: CredentialRequestOptions = serde_json::from_value(json!({"publicKey": options})).unwrap();
    let authenticated = device.authenticate(at, request, DefaultClientData).await.unwrap();
    let mut body = serde_json::to_value(&authenticated).unwrap();
    body["requestedScopes"] = json!(["wallet:export"]);
    body
}

async fn passkey_step_up_elevates(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let mut device = device(None, true);
    let jwt = register(&server, &mut device).await;
    let methods: MfaMethodsResponse =
        server.get("/users/mfa/methods", Some(&jwt)).await.json().await.unwrap();
    assert_eq!(methods.passkeys.len(), 1);
    assert!(methods.user_has_verified_mfa_methods);
    let body = assertion(&server, &jwt, &mut device, &origin(&server)).await;
    let response = server.post("/users/mfa/auth/passkey", Some(&jwt), &body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    let verified: VerifyResponse = serde_json::from_str(&text).unwrap();
    let token =
        stepup_core::ElevatedToken::parse(verified.elevated_access_token.unwrap(), server.now()).unwrap();
    assert_eq!(token.amr(), &["passkey".to_owned()]);
    // The same assertion again: its challenge was used.
    let response = server.post("/users/mfa/auth/passkey", Some(&jwt), &body).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "passkey_challenge_invalid").await;
    server.shutdown().await;
}

async fn wrong_origin_is_refused(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let mut device = device(None, true);
    let jwt = register(&server, &mut device).await;
    let evil = Url::parse("http://evil.localhost").unwrap();
    let body = assertion(&server, &jwt, &mut device, &evil).await;
    let response = server.post("/users/mfa/auth/passkey", Some(&jwt), &body).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "passkey_origin_mismatch").await;
    server.shutdown().await;
}

/// The origin used to match on host alone (`allow_any_port`): a page of another app on another port of the
/// same host (`http://localhost:8081`) could run this app's ceremonies. The port must match now, and an
/// environment lists every origin it serves.
async fn another_port_is_another_origin(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let mut device = device(None, true);
    let jwt = register(&server, &mut device).await;
    let other_port = Url::parse("http://localhost:8081").unwrap();
    let body = assertion(&server, &jwt, &mut device, &other_port).await;
    let response = server.post("/users/mfa/auth/passkey", Some(&jwt), &body).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "passkey_origin_mismatch").await;
    server.shutdown().await;
    // Listed, it is accepted.
    let server = TestServer::start_with(backend, |config| {
        config.environments[0].rp_origins = vec!["http://localhost".into(), "http://localhost:8081".into()];
    })
    .await;
    let jwt = register(&server, &mut device).await;
    let body = assertion(&server, &jwt, &mut device, &other_port).await;
    assert_eq!(server.post("/users/mfa/auth/passkey", Some(&jwt), &body).await.status(), StatusCode::OK);
    // The origin the passkey was registered from is kept with it.
    let user_id = common::claims_of(&jwt)["sub"].as_str().unwrap().to_owned();
    let rows = server.server.state().store().passkeys(&user_id).await.unwrap();
    assert_eq!(rows.iter().map(|row| row.origin.as_deref()).collect::<Vec<_>>(), [Some("http://localhost")]);
    server.shutdown().await;
}

async fn counter_going_backwards_is_refused(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let mut device = device(None, true);
    let jwt = register(&server, &mut device).await;
    // A clone of the authenticator as it is now: after the original signs again, the clone's counter is behind.
    let mut clone = self::device(device.authenticator().store().clone(), true);
    let body = assertion(&server, &jwt, &mut device, &origin(&server)).await;
    assert_eq!(server.post("/users/mfa/auth/passkey", Some(&jwt), &body).await.status(), StatusCode::OK);
    let body = assertion(&server, &jwt, &mut clone, &origin(&server)).await;
    let response = server.post("/users/mfa/auth/passkey", Some(&jwt), &body).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "passkey_counter_regression").await;
    server.shutdown().await;
}

async fn missing_user_verification_is_refused(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let mut device = device(None, true);
    let jwt = register(&server, &mut device).await;
    // A client that drops the server's "userVerification: required" (buggy or hostile), on an authenticator
    // that does not verify the user: the assertion is signed with UV = 0, and the server must refuse it.
    let mut unverified = self::device(device.authenticator().store().clone(), false);
    let mut options: Value =
        server.get("/users/passkeys/authenticate", Some(&jwt)).await.json().await.unwrap();
    options["userVerification"] = json!("discouraged");
    let request: CredentialRequestOptions = serde_json::from_value(json!({"publicKey": options})).unwrap();
    let authenticated = unverified.authenticate(&origin(&server), request, DefaultClientData).await.unwrap();
    let body = serde_json::to_value(&authenticated).unwrap();
    let response = server.post("/users/mfa/auth/passkey", Some(&jwt), &body).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "passkey_user_not_verified").await;
    server.shutdown().await;
}

async fn no_passkey_and_bad_assertions(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { jwt, .. } = server.user().await;
    assert_error(
        server.get("/users/passkeys/authenticate", Some(&jwt)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let response = server.post("/users/mfa/auth/passkey", Some(&jwt), &json!({"id": "x"})).await;
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    server.shutdown().await;
}

/// As Dynamic's client registers a passkey: the attestation with `response.clientDataJson` (its serializer's
/// spelling) and `createMfaToken`; the answer is a VerifyResponse with the session, re-signed with the MFA time.
async fn dynamic_spelling_registers_and_answers_the_session(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let mut device = device(None, true);
    let TestUser { jwt, email, .. } = server.user().await;
    let options: Value = server.get("/users/passkeys/register", Some(&jwt)).await.json().await.unwrap();
    // What Dynamic's client reads as required.
    for field in ["excludeCredentials", "pubKeyCredParams"] {
        assert!(options[field].is_array(), "{field}: {options}");
    }
    for field in ["attestation", "authenticatorSelection", "challenge", "rp", "user", "timeout"] {
        assert!(!options[field].is_null(), "{field}: {options}");
    }
    let request: CredentialCreationOptions = serde_json::from_value(json!({"publicKey": options})).unwrap();
    let created = device.register(&origin(&server), request, DefaultClientData).await.unwrap();
    let mut attestation = serde_json::to_value(&created).unwrap();
    let client_data = attestation["response"].as_object_mut().unwrap().remove("clientDataJSON").unwrap();
    attestation["response"]["clientDataJson"] = client_data;
    attestation["createMfaToken"] = json!({"singleUse": true});
    let link = server.elevated_via_email(&jwt, &email, &["credential:link"]).await;
    let response = server
        .call(Method::POST, "/users/passkeys/register", Some(&jwt), Some(&link), Some(&attestation))
        .await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    let answer: VerifyResponse = serde_json::from_str(&text).unwrap();
    let session = answer.minified_jwt.unwrap().expose_secret().to_owned();
    assert_eq!(answer.jwt.unwrap().expose_secret(), session);
    let (before, after) = (common::claims_of(&jwt), common::claims_of(&session));
    assert_eq!(after["jti"], before["jti"]);
    assert_eq!(after["exp"], before["exp"]);
    assert_eq!(after["mfa_auth_time"], json!(server.now().as_secs()));
    let passkeys: stepup_proto::UserPasskeysResponse =
        server.get("/users/passkeys", Some(&session)).await.json().await.unwrap();
    assert_eq!(passkeys.count, 1);
    // The new passkey is an MFA method: the session may read recovery codes now.
    let response = server.get("/users/mfa/recovery", Some(&session)).await;
    assert_eq!(response.status(), StatusCode::OK);
    // Neither spelling: a 400. (The user has MFA now, so the session that just passed it registers.)
    let mut broken = attestation.clone();
    broken["response"].as_object_mut().unwrap().remove("clientDataJson");
    let response = server
        .call(Method::POST, "/users/passkeys/register", Some(&session), Some(&link), Some(&broken))
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    server.shutdown().await;
}

/// The check's `defaultCredentialId` follows Dynamic's routing rule: the default device when one is set, else the
/// most recently created MFA method (here a passkey added a minute after the authenticator app).
async fn the_default_credential_is_the_default_device_else_the_newest_method(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let person = server.totp_user().await;
    server.clock.advance(60);
    // The enrolment's fresh MFA opens the registration without a token.
    let options: Value =
        server.get("/users/passkeys/register", Some(&person.mfa_jwt)).await.json().await.unwrap();
    let request: CredentialCreationOptions = serde_json::from_value(json!({"publicKey": options})).unwrap();
    let created = device(None, true).register(&origin(&server), request, DefaultClientData).await.unwrap();
    let attestation = serde_json::to_value(&created).unwrap();
    let response = server.post("/users/passkeys/register", Some(&person.mfa_jwt), &attestation).await;
    assert_eq!(response.status(), StatusCode::OK);
    let check = |jwt: String| {
        let server = &server;
        async move {
            let body = json!({"scope": "wallet:export"});
            let check: stepup_proto::StepUpCheckResponse =
                server.post("/stepUp/check", Some(&jwt), &body).await.json().await.unwrap();
            check
        }
    };
    let offered = check(person.jwt.clone()).await;
    let formats: Vec<&str> = offered.credentials.iter().map(|c| c.format.as_str()).collect();
    assert_eq!(formats, ["totp", "passkey"]);
    assert_eq!(
        offered.default_credential_id.as_ref(),
        Some(&offered.credentials[1].id),
        "the newest: the passkey"
    );
    let path = format!("/users/mfa/{}", person.device);
    let response = server.call::<Value>(Method::PUT, &path, Some(&person.jwt), None, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let offered = check(person.jwt.clone()).await;
    assert_eq!(offered.default_credential_id.as_deref(), Some(person.device.as_str()), "the default device");
    server.shutdown().await;
}

/// An authenticator app is a method from its verification on: added first but finished after a passkey was
/// registered, it is the newest method, and the one pre-selected.
async fn an_app_finished_after_a_passkey_is_the_newest_method(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { jwt, email, .. } = server.user().await;
    let link = server.elevated_via_email(&jwt, &email, &["credential:link"]).await;
    let response =
        server.call::<Value>(Method::GET, "/users/mfa/register/totp", Some(&jwt), Some(&link), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let app: stepup_proto::TotpRegistration = response.json().await.unwrap();
    server.clock.advance(60);
    let options: Value = server.get("/users/passkeys/register", Some(&jwt)).await.json().await.unwrap();
    let request: CredentialCreationOptions = serde_json::from_value(json!({"publicKey": options})).unwrap();
    let created = device(None, true).register(&origin(&server), request, DefaultClientData).await.unwrap();
    let attestation = serde_json::to_value(&created).unwrap();
    let response = server
        .call(Method::POST, "/users/passkeys/register", Some(&jwt), Some(&link), Some(&attestation))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    server.clock.advance(60);
    let code = common::totp_code(app.secret.expose_secret(), server.now().as_secs());
    let response =
        server.post("/users/mfa/auth/totp", Some(&jwt), &json!({"code": code, "id": app.id})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let check: stepup_proto::StepUpCheckResponse = server
        .post("/stepUp/check", Some(&jwt), &json!({"scope": "wallet:export"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(check.credentials.len(), 2, "{:?}", check.credentials);
    assert_eq!(check.default_credential_id.as_deref(), Some(app.id.as_str()), "verified last: the app");
    server.shutdown().await;
}

on_both_databases!(
    an_app_finished_after_a_passkey_is_the_newest_method,
    the_default_credential_is_the_default_device_else_the_newest_method,
    passkey_step_up_elevates,
    dynamic_spelling_registers_and_answers_the_session,
    wrong_origin_is_refused,
    another_port_is_another_origin,
    counter_going_backwards_is_refused,
    missing_user_verification_is_refused,
    no_passkey_and_bad_assertions,
);
