//! The engine's API client and builder against the real reference server: typed errors for bad input, the
//! elevated-token header, and retries of GETs (only) on connection errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::Duration;

use common::{ENV, TestServer, elevate_by_email};
use stepup::engine::{ApiClientError, ApiConfig, BuildError, StepUpAuth};
use stepup::{CredentialId, Scope, StepUpError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builder_refuses_malformed_settings() {
    // Missing settings cannot be written: the server and the environment are the builder's arguments (the
    // builder's `compile_fail` doctest shows it).
    for url in ["127.0.0.1:8080", "ftp://example.com", "http://", "http://exa mple.com"] {
        let error = StepUpAuth::builder(url, ENV).build().await.unwrap_err();
        assert!(
            matches!(&error, BuildError::Api(ApiClientError::InvalidBaseUrl { url: got }) if got == url),
            "{url}: {error:?}"
        );
    }
    for id in ["", "a/b", "dev?x=1", "../admin"] {
        let error = StepUpAuth::builder("http://127.0.0.1:1", id).build().await.unwrap_err();
        assert!(
            matches!(&error, BuildError::Api(ApiClientError::InvalidEnvironmentId { id: got }) if got == id),
            "{id:?}: {error:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_their_typed_errors() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let engine = h.engine(&user).await;

    // No scopes: refused before any call.
    let error = engine.verify_totp_mfa("123456", None, &[]).await.unwrap_err();
    assert_eq!(error, StepUpError::NoScopes);
    // A call that needs an elevated token, without one: the server's challenge.
    let error = engine.api().register_totp(None).await.unwrap_err();
    assert_eq!(error, StepUpError::ElevatedAccessTokenRequired);
    // A device id that is not a path segment never reaches the server; it reads as an unknown device does.
    let error = engine.api().delete_mfa_device("../users", None).await.unwrap_err();
    assert_eq!(error, StepUpError::NotFound { message: "No such MFA device".into() });
    // A user without MFA asking for a TOTP step-up.
    let device = Some(CredentialId::new("no-such-device"));
    let error = engine.verify_totp_mfa("123456", device, &[Scope::WalletExport]).await.unwrap_err();
    assert_eq!(error, StepUpError::MfaDeviceNotFound);
    // Recovery codes need a recent MFA verification of the session, which a user without MFA cannot have (an
    // elevated token does not stand in for it); and they verify only for a user with an MFA method.
    elevate_by_email(&h, &engine, &user, &[Scope::CredentialLink]).await;
    let error = engine.api().recovery_codes().await.unwrap_err();
    assert_eq!(error, StepUpError::RecentMfaRequired);
    let error = engine.verify_recovery_code("abcd-efgh", &[Scope::WalletExport]).await.unwrap_err();
    assert_eq!(error, StepUpError::MfaDeviceNotFound);

    // A session the server does not know.
    let stranger = StepUpAuth::builder(h.base_url(), ENV)
        .session("eyJhbGciOiJFZERTQSJ9.e30.c2ln")
        .build()
        .await
        .unwrap();
    let error = stranger.is_step_up_required(Scope::WalletExport).await.unwrap_err();
    assert_eq!(error, StepUpError::Unauthorized);
    // No session at all.
    let anonymous = StepUpAuth::builder(h.base_url(), ENV).build().await.unwrap();
    let error = anonymous.is_step_up_required(Scope::WalletExport).await.unwrap_err();
    assert_eq!(error, StepUpError::Unauthorized);
    // An environment the server does not serve.
    let elsewhere = StepUpAuth::builder(h.base_url(), "nowhere").build().await.unwrap();
    let error = elsewhere.api().settings().await.unwrap_err();
    assert!(matches!(error, StepUpError::NotFound { .. }), "{error:?}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gets_are_retried_on_connection_errors_and_posts_are_not() {
    // A free port, and the reference server started on it a moment after the first attempts.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config =
        ApiConfig { get_retries: 6, retry_backoff: Duration::from_millis(40), ..ApiConfig::default() };
    let engine = StepUpAuth::builder(format!("http://{addr}"), ENV).api_config(config).build().await.unwrap();

    // A POST is not idempotent: one attempt, the connection error comes back at once.
    let error = engine.is_step_up_required(Scope::WalletExport).await.unwrap_err();
    assert!(matches!(error, StepUpError::Transport { .. }), "{error:?}");

    // A GET is retried (40, 80, 160, ... ms apart, 2.5 s in all) until the server is up.
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        TestServer::live_with(move |config| config.listen = addr).await
    });
    let settings = engine.api().settings().await;
    let h = late.await.unwrap();
    assert!(settings.is_ok(), "the GET got through once the server was up: {settings:?}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_environment_is_not_mistaken_for_no_passkey() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let passkey = std::sync::Arc::new(stepup::engine::SoftwarePasskey::new(common::ORIGIN).unwrap());
    let engine = StepUpAuth::builder(h.base_url(), "nowhere")
        .session(user.jwt.as_str())
        .passkey_authenticator(passkey)
        .build()
        .await
        .unwrap();
    let error = engine.verify_passkey_mfa(&[Scope::WalletExport]).await.unwrap_err();
    assert!(matches!(error, StepUpError::NotFound { .. }), "{error:?}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_output_never_shows_a_secret() {
    use stepup::engine::{PromptReply, VerifyRequest};
    let h = TestServer::live().await;
    let user = h.user().await;
    let engine = h.engine(&user).await;
    let sent = engine.send_otp(None).await.unwrap();
    let code = h.code_of(&user.email, &sent).await;
    engine.verify_otp(code.as_str(), &[Scope::CredentialLink]).await.unwrap();
    let token = engine.token_for(&Scope::CredentialLink).unwrap();
    let raw = token.raw().expose_secret().to_owned();

    let printed = [
        format!("{engine:?}"),
        format!("{:?}", engine.api()),
        format!("{:?}", engine.snapshot().await.unwrap()),
        format!("{token:?}"),
        format!("{:?}", VerifyRequest::Otp(stepup::engine::OtpRequest { code: code.as_str().into() })),
        format!("{:?}", PromptReply::Code(code.as_str().into())),
        format!("{:?}", common::local_wallet()),
    ];
    for text in &printed {
        assert!(!text.contains(&user.jwt), "the session JWT leaks: {text}");
        assert!(!text.contains(&raw), "the elevated token leaks: {text}");
        assert!(!text.contains(code.as_str()), "the one-time code leaks: {text}");
    }
    h.shutdown().await;
}
