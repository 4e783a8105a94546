//! External auth end to end: the app's backend signs a JWT for the user (Ed25519, a test key the server's
//! environment trusts), and `verify_external_auth` elevates through the flow machine on its own route, with the
//! server's policy deciding who may (docs/design.md §1: not users with MFA, by default).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::{TestServer, next_prompt, totp_engine};
use reqwest::StatusCode;
use stepup::{Method, Route, Scope, StepUpError};
use stepup_server::config::{ExternalAuthConfig, ExternalAuthKey};

const PUBLIC_KEY: &str = include_str!("keys/eddsa-public.pem");
const PRIVATE_KEY: &[u8] = include_bytes!("keys/eddsa-private.pem");
const ISSUER: &str = "https://backend.example.com";

async fn start() -> TestServer {
    TestServer::live_with(|config| {
        config.environments[0].external_auth = Some(ExternalAuthConfig {
            public_keys: vec![ExternalAuthKey {
                algorithm: "EdDSA".into(),
                public_key_pem: PUBLIC_KEY.into(),
                kid: None,
            }],
            jwks_url: None,
            issuer: Some(ISSUER.into()),
            max_lifetime_secs: 120,
            allow_mfa_users: false,
        });
    })
    .await
}

/// The app backend's JWT for `user` and `scope`.
fn vouch(user: &str, scope: &str) -> String {
    let now = common::unix_now();
    let jti = stepup_server::random::hex(&stepup_server::random::bytes::<8>().unwrap());
    let claims = serde_json::json!({"iss": ISSUER, "sub": user, "aud": common::ENV, "scope": scope, "jti": jti,
                                    "iat": now, "exp": now + 60});
    let key = jsonwebtoken::EncodingKey::from_ed_pem(PRIVATE_KEY).unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA), &claims, &key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_backend_elevates_through_the_flow_machine() {
    let h = start().await;
    let user = h.user().await;
    let engine = h.engine(&user).await;
    let scope = Scope::WalletDelegate;
    let check = engine.check(scope.clone()).await.unwrap();
    assert!(check.required);
    assert!(check.options.allows(Method::ExternalAuth), "the server offers it: {:?}", check.options);
    assert_eq!(check.options.route(), Some(Route::Reauthenticate), "a person would still re-authenticate");

    let jwt = vouch(&user.user.id, "wallet:delegate");
    let info = engine.verify_external_auth(jwt.as_str(), std::slice::from_ref(&scope)).await.unwrap();
    assert!(info.scopes.contains(&scope));
    assert_eq!(engine.state().name(), "elevated");
    let token = engine.token_for(&scope).unwrap();
    assert_eq!(token.amr(), &["external".to_owned()]);
    assert_eq!(h.open_protected(&user, &scope, &token).await, StatusCode::OK);
    // The same JWT again: its jti is spent.
    let error = engine.verify_external_auth(jwt.as_str(), std::slice::from_ref(&scope)).await.unwrap_err();
    assert!(
        matches!(&error, StepUpError::InvalidExternalAuth { message } if message.contains("already used")),
        "{error:?}"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_backend_tokens_have_their_errors() {
    let h = start().await;
    let user = h.user().await;
    let other = h.user().await;
    let engine = h.engine(&user).await;
    // For another user: the server says why.
    let error = engine
        .verify_external_auth(vouch(&other.user.id, "wallet:sign").as_str(), &[Scope::WalletSign])
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StepUpError::InvalidExternalAuth { message } if message.contains("another user")),
        "{error:?}"
    );
    // Scopes that do not cover the request.
    let error = engine
        .verify_external_auth(vouch(&user.user.id, "wallet:sign").as_str(), &[Scope::WalletExport])
        .await
        .unwrap_err();
    assert!(matches!(error, StepUpError::ScopesNotGranted { .. }), "{error:?}");
    // Not a JWT at all; no scopes asked for.
    let error = engine.verify_external_auth("nonsense", &[Scope::WalletSign]).await.unwrap_err();
    assert!(
        matches!(&error, StepUpError::InvalidExternalAuth { message } if message.contains("not a JWT")),
        "{error:?}"
    );
    let error =
        engine.verify_external_auth(vouch(&user.user.id, "wallet:sign").as_str(), &[]).await.unwrap_err();
    assert_eq!(error, StepUpError::NoScopes);
    // The engine goes on.
    let info = engine
        .verify_external_auth(vouch(&user.user.id, "wallet:sign").as_str(), &[Scope::WalletSign])
        .await
        .unwrap();
    assert!(info.scopes.contains(&Scope::WalletSign));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_policy_decides_and_the_engine_follows_it() {
    // Not configured: once a check has said so, the engine refuses before asking; without one, the server does.
    let h = TestServer::live().await;
    let user = h.user().await;
    let engine = h.engine(&user).await;
    let error = engine
        .verify_external_auth(vouch(&user.user.id, "wallet:sign").as_str(), &[Scope::WalletSign])
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StepUpError::InvalidExternalAuth { message } if message.contains("not configured")),
        "{error:?}"
    );
    assert!(engine.is_step_up_required(Scope::WalletSign).await.unwrap());
    let error = engine
        .verify_external_auth(vouch(&user.user.id, "wallet:sign").as_str(), &[Scope::WalletSign])
        .await
        .unwrap_err();
    assert_eq!(error, StepUpError::NoMethodsAvailable { route: Some(Route::External) });
    h.shutdown().await;

    // A user with MFA, where the environment does not let the backend elevate them.
    let h = start().await;
    let (engine, user, _device, _secret) = totp_engine(&h).await;
    let error = engine
        .verify_external_auth(vouch(&user.user.id, "wallet:sign").as_str(), &[Scope::WalletSign])
        .await
        .unwrap_err();
    assert_eq!(error, StepUpError::ReauthenticationNotAllowed, "the server's mfa_required");
    let check = engine.check(Scope::WalletSign).await.unwrap();
    assert!(!check.options.allows(Method::ExternalAuth));
    let error = engine
        .verify_external_auth(vouch(&user.user.id, "wallet:sign").as_str(), &[Scope::WalletSign])
        .await
        .unwrap_err();
    assert_eq!(error, StepUpError::NoMethodsAvailable { route: Some(Route::External) });
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_prompt_in_progress_is_not_taken_over_by_the_backend() {
    let h = start().await;
    let user = h.user().await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;
    let waiting = common::spawn_prompt(&engine, &[Scope::WalletSign], false);
    // The prompt offers the person's methods only: email here, so the code goes out at once.
    let (request, reply) = next_prompt(&mut inbox).await;
    assert!(matches!(request, stepup::engine::PromptRequest::EnterOtp { .. }), "{request:?}");
    let error = engine
        .verify_external_auth(vouch(&user.user.id, "wallet:sign").as_str(), &[Scope::WalletSign])
        .await
        .unwrap_err();
    assert_eq!(error, StepUpError::Busy);
    assert!(reply.answer(stepup::engine::PromptReply::Cancel));
    assert_eq!(waiting.await.unwrap(), Err(StepUpError::Cancelled));
    // Afterwards it works.
    engine
        .verify_external_auth(vouch(&user.user.id, "wallet:sign").as_str(), &[Scope::WalletSign])
        .await
        .unwrap();
    h.shutdown().await;
}
