//! The environment's step-up settings reach the engine through the server: with step-up off nothing needs it,
//! a disabled method is never offered (so prompts offer only what the server offers) and its verify is refused
//! with a typed error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::{TestServer, next_prompt};
use reqwest::StatusCode;
use stepup::engine::{PromptReply, PromptRequest};
use stepup::{Method, Scope, StepUpError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_step_up_off_nothing_needs_it() {
    let h = TestServer::live_with(|config| config.environments[0].policy.step_up_enabled = false).await;
    let user = h.user().await;
    let engine = h.engine(&user).await;
    assert!(!engine.is_step_up_required(Scope::WalletExport).await.unwrap());
    // The guard opens without a token.
    let response = h
        .http
        .post(format!("{}/sdk/{}/protected/wallet:export", h.base_url(), common::ENV))
        .bearer_auth(&user.jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A verify that asks for a token is refused, typed.
    let sent = engine.send_otp(None).await.unwrap();
    let code = h.code_of(&user.email, &sent).await;
    let error = engine.verify_otp(code.as_str(), &[Scope::WalletExport]).await.unwrap_err();
    assert_eq!(error, StepUpError::StepUpDisabled);
    let settings = engine.api().settings().await.unwrap();
    assert_eq!(settings.security["stepUp"]["enabled"], false);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_offer_only_the_methods_the_server_enables() {
    let h = TestServer::live_with(|config| {
        config.environments[0].policy.enabled_methods = vec![stepup::Method::SmsOtp]
    })
    .await;
    // Email and phone: only the phone is offered, so the prompt sends the SMS code without asking.
    let user = h.user_with(Some("5557654321")).await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;
    let check = engine.check(Scope::WalletExport).await.unwrap();
    assert_eq!(check.options.methods(), vec![Method::SmsOtp]);
    let waiting = common::spawn_prompt(&engine, &[Scope::WalletExport], false);
    let (request, reply) = next_prompt(&mut inbox).await;
    let PromptRequest::EnterOtp { destination_masked, .. } = &request else { panic!("{request:?}") };
    assert!(destination_masked.contains("4321"), "the SMS code: {destination_masked}");
    let code = h.last_code("+15557654321").await;
    assert!(reply.answer(PromptReply::Code(code.as_str().into())));
    assert!(waiting.await.unwrap().unwrap().scopes.contains(&Scope::WalletExport));

    // An email code is refused for step-up here, typed; the engine does not get to prompt for it.
    let other = h.user().await;
    let engine = h.engine(&other).await;
    let check = engine.check(Scope::WalletExport).await.unwrap();
    assert!(check.required);
    assert!(check.options.methods().is_empty());
    let error = engine.prompt_reauthenticate(&[Scope::WalletExport]).await.unwrap_err();
    assert_eq!(error, StepUpError::NotConfigured { what: "front end" });
    // Once a check has said nothing is offered, the engine refuses before asking the server...
    let sent = engine.send_otp(None).await.unwrap();
    let code = h.code_of(&other.email, &sent).await;
    let error = engine.verify_otp(code.as_str(), &[Scope::WalletExport]).await.unwrap_err();
    assert_eq!(error, StepUpError::NoMethodsAvailable { route: Some(stepup::Route::Reauthenticate) });
    // ...and without a check, the server refuses the disabled method.
    let engine = h.engine(&other).await;
    let sent = engine.send_otp(None).await.unwrap();
    let code = h.code_of(&other.email, &sent).await;
    let error = engine.verify_otp(code.as_str(), &[Scope::WalletExport]).await.unwrap_err();
    assert!(
        matches!(&error, StepUpError::MethodDisabled { message } if message.contains("email")),
        "{error:?}"
    );
    h.shutdown().await;
}
