//! Every way a step-up can fail, against the real reference server: each gives its typed error and leaves the
//! engine usable (the next flow elevates).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    EmbeddedSigner, PanicOnceSigner, SlowProxy, TestServer, TestUser, elevate_by_email, local_wallet,
    next_prompt, totp_code, totp_engine, unix_now,
};
use stepup::engine::{ApiConfig, PromptReply, PromptRequest, SoftwarePasskey, StepUpAuth, StepUpState};
use stepup::{Method, OtpChannel, Scope, StepUpError};

const EXPORT: Scope = Scope::WalletExport;

fn export() -> [Scope; 1] {
    [EXPORT]
}

/// The engine still works: a fresh email code elevates.
async fn still_usable(h: &TestServer, engine: &StepUpAuth, user: &TestUser) {
    elevate_by_email(h, engine, user, &export()).await;
    assert!(matches!(engine.state(), StepUpState::Elevated { .. }), "{:?}", engine.state());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_email_code_then_right_code() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let engine = h.engine(&user).await;

    // No code sent yet: nothing to check against, and no call is made.
    let error = engine.verify_otp("123456", &export()).await.unwrap_err();
    assert_eq!(error, StepUpError::OtpNotSent);
    assert_eq!(engine.state(), StepUpState::Idle {}, "a refused call leaves the flow as it was");

    engine.send_otp(None).await.unwrap();
    let code = h.last_code(&user.email).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let error = engine.verify_otp(wrong, &export()).await.unwrap_err();
    assert_eq!(error, StepUpError::WrongVerificationToken { channel: OtpChannel::Email });
    assert!(error.is_retryable());
    // The same code is still good after one wrong try.
    engine.verify_otp(code.as_str(), &export()).await.unwrap();
    assert!(engine.token_for(&EXPORT).is_some());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_wrong_codes_use_the_code_up_and_too_many_sends_are_refused() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let engine = h.engine(&user).await;

    engine.send_otp(None).await.unwrap();
    let code = h.last_code(&user.email).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..3 {
        let error = engine.verify_otp(wrong, &export()).await.unwrap_err();
        assert_eq!(error, StepUpError::WrongVerificationToken { channel: OtpChannel::Email });
    }
    // Three wrong tries use the code up: even the right one is refused now.
    let error = engine.verify_otp(code.as_str(), &export()).await.unwrap_err();
    assert!(matches!(error, StepUpError::InvalidVerification { .. }), "{error:?}");

    // Two more sends are allowed in the window (three in all), then the server refuses.
    engine.send_otp(None).await.unwrap();
    let last = engine.send_otp(None).await.unwrap();
    let error = engine.send_otp(None).await.unwrap_err();
    assert!(matches!(error, StepUpError::TooManyVerificationAttempts { .. }), "{error:?}");
    // The last code sent is still good.
    let code = h.code_of(&user.email, &last).await;
    engine.verify_otp(code.as_str(), &export()).await.unwrap();
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_totp_codes_lock_the_user_out() {
    let h = TestServer::live().await;
    let (engine, _user, _device, secret) = totp_engine(&h).await;
    let right = totp_code(&secret, unix_now());
    let wrong = if right == "000000" { "111111" } else { "000000" };

    for attempt in 1..=5 {
        let error = engine.verify_totp_mfa(wrong, None, &export()).await.unwrap_err();
        match attempt {
            1..=4 => assert_eq!(error, StepUpError::MfaInvalidCode, "attempt {attempt}"),
            _ => assert!(matches!(error, StepUpError::Locked { .. }), "attempt {attempt}: {error:?}"),
        }
    }
    // Locked: the right code is refused too.
    let error = engine.verify_totp_mfa(right.as_str(), None, &export()).await.unwrap_err();
    assert!(matches!(error, StepUpError::Locked { .. }), "{error:?}");
    assert!(!error.is_retryable());
    // The engine itself is fine: it answers, and its state is not stuck in a verification.
    assert!(engine.is_step_up_required(EXPORT).await.unwrap());
    assert!(matches!(engine.state(), StepUpState::Required { .. }), "{:?}", engine.state());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_gives_up_after_three_wrong_codes() {
    let h = TestServer::live().await;
    let (_registering, user, _device, secret) = totp_engine(&h).await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;
    let right = totp_code(&secret, unix_now());
    let wrong = if right == "000000" { "111111" } else { "000000" };

    let waiting = common::spawn_prompt(&engine, &export(), true);
    for attempt in 1..=3u8 {
        let (request, reply) = next_prompt(&mut inbox).await;
        assert_eq!(request, PromptRequest::EnterTotp, "attempt {attempt}");
        assert!(reply.answer(PromptReply::Code(wrong.into())));
        if attempt < 3 {
            let (request, reply) = next_prompt(&mut inbox).await;
            assert_eq!(
                request,
                PromptRequest::Failed { error: StepUpError::MfaInvalidCode, attempts_left: 3 - attempt }
            );
            assert!(reply.answer(PromptReply::Confirm));
        }
    }
    assert_eq!(waiting.await.unwrap().unwrap_err(), StepUpError::MfaInvalidCode);
    assert!(engine.tokens().snapshot().is_empty());
    // Usable: the right code elevates (two failures left before the lock).
    engine.verify_totp_mfa(right.as_str(), None, &export()).await.unwrap();
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_and_unlinked_wallets_are_refused() {
    let h = TestServer::live().await;
    let user = h.user().await;
    // An embedded wallet is refused before it is asked to sign (its signer panics if asked).
    let embedded = Arc::new(EmbeddedSigner(local_wallet()));
    h.link_wallet(&user, embedded.as_ref(), true).await;
    let engine = h.engine_for(&user).wallet_signer(embedded).build().await.unwrap();
    let error = engine.verify_wallet(None, &export()).await.unwrap_err();
    assert_eq!(error, StepUpError::EmbeddedWalletNotAllowed);
    still_usable(&h, &engine, &user).await;

    // A wallet that is not the user's: the server checks the signature and refuses it.
    let stranger = h.engine_for(&user).wallet_signer(local_wallet()).build().await.unwrap();
    let error = stranger.verify_wallet(None, &export()).await.unwrap_err();
    assert_eq!(error, StepUpError::WalletNotLinked);
    // Without a signer the engine says what is missing.
    let bare = h.engine(&user).await;
    let error = bare.verify_wallet(None, &export()).await.unwrap_err();
    assert!(matches!(error, StepUpError::NotConfigured { .. }), "{error:?}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_passkey_gives_no_passkey_credentials() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let authenticator = Arc::new(SoftwarePasskey::new(common::ORIGIN).unwrap());
    let engine = h.engine_for(&user).passkey_authenticator(authenticator).build().await.unwrap();
    let error = engine.verify_passkey_mfa(&export()).await.unwrap_err();
    assert_eq!(error, StepUpError::NoPasskeyCredentials);
    still_usable(&h, &engine, &user).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_prompt_fails_its_callers_and_the_next_prompt_works() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;

    // The person cancels.
    let waiting = common::spawn_prompt(&engine, &export(), false);
    let (request, reply) = next_prompt(&mut inbox).await;
    assert!(matches!(request, PromptRequest::EnterOtp { .. }), "{request:?}");
    assert!(reply.answer(PromptReply::Cancel));
    assert_eq!(waiting.await.unwrap().unwrap_err(), StepUpError::Cancelled);

    // The app cancels while two callers wait on the same flow.
    let first = common::spawn_prompt(&engine, &export(), false);
    let (_request, _reply) = next_prompt(&mut inbox).await;
    let second = common::spawn_prompt(&engine, &export(), false);
    tokio::time::sleep(Duration::from_millis(50)).await;
    engine.cancel().unwrap();
    assert_eq!(first.await.unwrap().unwrap_err(), StepUpError::Cancelled);
    assert_eq!(second.await.unwrap().unwrap_err(), StepUpError::Cancelled);

    // The next prompt runs to the end.
    let waiting = common::spawn_prompt(&engine, &export(), false);
    let (request, reply) = next_prompt(&mut inbox).await;
    assert!(matches!(request, PromptRequest::EnterOtp { .. }), "{request:?}");
    let code = common::pending_code(&h, &engine, &user.email).await;
    assert!(reply.answer(PromptReply::Code(code.as_str().into())));
    waiting.await.unwrap().unwrap();
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_verifier_fails_its_flow_only_and_is_restarted() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let wallet = local_wallet();
    h.link_wallet(&user, wallet.as_ref(), false).await;
    let crashing = Arc::new(PanicOnceSigner { inner: wallet, panicked: Default::default() });
    let engine = h.engine_for(&user).wallet_signer(crashing).build().await.unwrap();

    let error = engine.verify_wallet(None, &export()).await.unwrap_err();
    assert_eq!(error, StepUpError::VerifierFailed { method: Method::ExternalWallet });
    assert!(!matches!(engine.state(), StepUpState::Verifying { .. }), "{:?}", engine.state());
    // The restarted wallet verifier serves the next flow; the other verifiers never noticed.
    engine.verify_wallet(None, &export()).await.unwrap();
    still_usable(&h, &engine, &user).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_down_is_a_transport_error_and_the_engine_recovers() {
    let dir = std::env::temp_dir().join(format!("stepup-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let database = format!("sqlite://{}/down.db", dir.display());
    let url = database.clone();
    let h = TestServer::live_with(move |config| config.database_url = url).await;
    let addr = h.server.addr();
    let user = h.user().await;
    let engine = h.engine(&user).await;
    assert!(engine.is_step_up_required(EXPORT).await.unwrap());

    h.shutdown().await;
    let error = engine.is_step_up_required(EXPORT).await.unwrap_err();
    assert!(matches!(error, StepUpError::Transport { what: "connection failed", .. }), "{error:?}");
    // The HTTP client's error is the source, its chain intact (down to the refused connection), without a URL.
    let mut chain = Vec::new();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        chain.push(cause.to_string());
        source = cause.source();
    }
    assert!(chain.len() >= 2, "the cause and its own causes: {chain:?}");
    assert!(!chain.iter().any(|c| c.contains("http://") || c.contains("/sdk/")), "no URL: {chain:?}");
    let error = engine.send_otp(None).await.unwrap_err();
    assert!(matches!(error, StepUpError::Transport { .. }), "{error:?}");

    // The same server comes back on the same address and database: the same engine carries on.
    let h = TestServer::live_with(move |config| {
        config.listen = addr;
        config.database_url = database;
    })
    .await;
    assert!(engine.is_step_up_required(EXPORT).await.unwrap());
    still_usable(&h, &engine, &user).await;
    h.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_server_is_a_timeout_and_the_engine_recovers() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let proxy = SlowProxy::start(h.server.addr(), Duration::from_secs(2)).await;
    let config = ApiConfig { request_timeout: Duration::from_millis(300), ..ApiConfig::default() };
    let slow = StepUpAuth::builder(proxy.base_url(), common::ENV)
        .session(user.jwt.as_str())
        .api_config(config)
        .build()
        .await
        .unwrap();
    let error = slow.is_step_up_required(EXPORT).await.unwrap_err();
    assert_eq!(error, StepUpError::Timeout);
    let error = slow.send_otp(None).await.unwrap_err();
    assert_eq!(error, StepUpError::Timeout);
    assert!(error.is_retryable());

    // The proxy gets fast again: the same engine works.
    proxy.set_delay(Duration::ZERO);
    assert!(slow.is_step_up_required(EXPORT).await.unwrap());
    still_usable(&h, &slow, &user).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_nobody_answers_times_out_and_the_next_prompt_works() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let (frontend, mut inbox) = common::frontend();
    let engine = h
        .engine_for(&user)
        .frontend(frontend)
        .prompt_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap();

    let waiting = common::spawn_prompt(&engine, &export(), false);
    // The person walks away: the request is never answered.
    let (_request, _unanswered) = next_prompt(&mut inbox).await;
    assert_eq!(waiting.await.unwrap().unwrap_err(), StepUpError::Timeout);
    assert!(!engine.state().is_in_flow(), "{:?}", engine.state());

    // The next prompt runs (the code sent by the first one still counts towards the send limit, and works).
    let waiting = common::spawn_prompt(&engine, &export(), false);
    let (request, reply) = next_prompt(&mut inbox).await;
    assert!(matches!(request, PromptRequest::EnterOtp { .. }), "{request:?}");
    let code = common::pending_code(&h, &engine, &user.email).await;
    assert!(reply.answer(PromptReply::Code(code.as_str().into())));
    waiting.await.unwrap().unwrap();
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_for_a_user_with_mfa_is_not_sent_once_a_check_knows_it() {
    let h = TestServer::live().await;
    let (_registering, user, _device, _secret) = common::totp_engine(&h).await;
    let engine = h.engine(&user).await;
    let sent_before = h.outbox_len(&user.email).await;

    assert!(engine.is_step_up_required(Scope::WalletExport).await.unwrap());
    let error = engine.send_otp(None).await.unwrap_err();
    assert_eq!(error, StepUpError::ReauthenticationNotAllowed);
    assert_eq!(h.outbox_len(&user.email).await, sent_before, "no code went out");
    h.shutdown().await;
}
