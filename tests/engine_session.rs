//! The session end to end: the engine adopts the session a verify answer re-issues (and tells the app), an app
//! that refreshes the session itself sets it, and a call that needs a recent MFA is answered by the middleware
//! with a fresh MFA step-up and one retry with the re-issued session (RFC 9470 `max_age`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{TestServer, TestUser, elevate_by_email, next_prompt, totp_code, totp_engine, unix_now};
use reqwest::StatusCode;
use stepup::engine::{ElevatedRequestExt, MiddlewareError, PromptReply, PromptRequest, StepUpAuth};
use stepup::proto::RecoveryCodesResponse;
use stepup::{Jwt, Scope, SessionInfo, StepUpError};

fn info(jwt: &Jwt) -> SessionInfo {
    SessionInfo::parse(jwt).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_adopts_the_session_an_mfa_answer_reissues_and_says_so() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let engine = h.engine(&user).await;
    let minted = engine.session().unwrap();
    assert_eq!(minted.expose_secret(), user.jwt);
    assert_eq!(engine.session_info().unwrap().mfa_auth_time, None);
    let mut changes = engine.subscribe_session();

    // An email step-up: the answer carries the same session, unchanged.
    elevate_by_email(&h, &engine, &user, &[Scope::CredentialLink]).await;
    assert_eq!(engine.session().unwrap(), minted);
    assert!(!changes.has_changed().unwrap());

    // Enrolling TOTP: the device's first code is an MFA verification, and its answer's session says when.
    let link = engine.token_for(&Scope::CredentialLink).unwrap();
    let registration = engine.api().register_totp(Some(link.raw())).await.unwrap();
    let secret = registration.secret.expose_secret().to_owned();
    let device = stepup::CredentialId::new(registration.id.as_str());
    let before = unix_now();
    engine
        .verify_totp_mfa(totp_code(&secret, unix_now() - 30).as_str(), Some(device), &[Scope::CredentialLink])
        .await
        .unwrap();
    let adopted = engine.session().unwrap();
    assert_ne!(adopted, minted);
    let (was, now) = (info(&minted), info(&adopted));
    assert_eq!(
        (now.subject.as_str(), now.session_id.as_deref()),
        (was.subject.as_str(), was.session_id.as_deref())
    );
    assert_eq!(now.expires_at, was.expires_at, "the same session: the same expiry");
    assert!(now.mfa_auth_time.unwrap().as_secs() >= before);
    // The app heard of it, and can persist it.
    assert!(changes.has_changed().unwrap());
    assert_eq!(changes.borrow_and_update().as_ref(), Some(&adopted));
    // The adopted session is the one the engine sends: it may read recovery codes now.
    let codes = engine.api().recovery_codes().await.unwrap();
    assert_eq!(codes.recovery_codes.len(), 10);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_sets_the_session_and_another_session_resets_the_engine() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let engine = h.engine(&user).await;
    elevate_by_email(&h, &engine, &user, &[Scope::WalletSign]).await;
    assert!(engine.tokens().get(&Scope::WalletSign).is_some());

    // The same session handed back (the app persisted it): the tokens stay, and the server still takes them.
    let held = engine.session().unwrap();
    engine.set_session(Some(held.clone())).await.unwrap();
    assert!(engine.tokens().get(&Scope::WalletSign).is_some());
    assert!(!engine.is_step_up_required(Scope::WalletSign).await.unwrap());
    let token = engine.tokens().get(&Scope::WalletSign).unwrap();
    let protected = |session: String, token: String| {
        let url = format!("{}/sdk/{}/protected/wallet:sign", h.base_url(), common::ENV);
        reqwest::Client::new()
            .post(url)
            .bearer_auth(session)
            .header("x-dyn-elevated-access-token", token)
            .send()
    };
    let opened =
        protected(held.expose_secret().to_owned(), token.raw().expose_secret().to_owned()).await.unwrap();
    assert_eq!(opened.status(), StatusCode::OK);

    // A new session of the same user (the app signed in again): the server binds tokens to the session that
    // earned them and would refuse these, so the engine drops them and asks again.
    let fresh = h.session(&user.user.id).await;
    let refused = protected(fresh.clone(), token.raw().expose_secret().to_owned()).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    engine.set_session(Some(Jwt::new(fresh.as_str()))).await.unwrap();
    assert_eq!(engine.session().unwrap().expose_secret(), fresh);
    assert!(engine.tokens().get(&Scope::WalletSign).is_none());
    assert!(engine.is_step_up_required(Scope::WalletSign).await.unwrap());

    // Another user signs in on this engine: the first user's tokens must not follow them.
    let other = h.user().await;
    engine.set_session(Some(Jwt::new(other.jwt.as_str()))).await.unwrap();
    assert!(engine.tokens().get(&Scope::WalletSign).is_none());
    assert_eq!(engine.state().name(), "idle");
    assert!(engine.is_step_up_required(Scope::WalletSign).await.unwrap());
    // Signing out forgets everything too.
    elevate_by_email(&h, &engine, &other, &[Scope::WalletSign]).await;
    engine.set_session(None).await.unwrap();
    assert!(engine.session().is_none());
    assert!(engine.tokens().get(&Scope::WalletSign).is_none());
    assert_eq!(engine.is_step_up_required(Scope::WalletSign).await, Err(StepUpError::Unauthorized));
    h.shutdown().await;
}

/// A TOTP user whose engine has a channel front end and holds the session as it was minted (no MFA in it).
async fn stale_mfa_engine(h: &TestServer) -> (StepUpAuth, common::PromptInbox, TestUser, String) {
    let (enrolled, user, _device, secret) = totp_engine(h).await;
    drop(enrolled);
    let (engine, inbox) = h.prompted_engine(&user).await;
    assert_eq!(engine.session_info().unwrap().mfa_auth_time, None);
    (engine, inbox, user, secret)
}

fn recovery_codes_call(h: &TestServer, engine: &StepUpAuth) -> reqwest_middleware::RequestBuilder {
    let session = engine.session().unwrap();
    engine
        .http_client()
        .get(format!("{}/sdk/{}/users/mfa/recovery", h.base_url(), common::ENV))
        .bearer_auth(session.expose_secret())
        .elevated(Scope::CredentialLink)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recent_mfa_challenge_is_answered_by_a_fresh_mfa_and_one_retry() {
    let h = TestServer::live().await;
    let (engine, mut inbox, _user, secret) = stale_mfa_engine(&h).await;
    let stale = engine.session().unwrap();
    // Without the middleware: the typed error.
    assert_eq!(engine.api().recovery_codes().await.unwrap_err(), StepUpError::RecentMfaRequired);

    // Through the middleware: the challenge (403, max_age) prompts for MFA, even though a credential:link
    // token is not what the server asked for, and the retry carries the re-issued session.
    let call = tokio::spawn(recovery_codes_call(&h, &engine).send());
    let (request, reply) = next_prompt(&mut inbox).await;
    assert_eq!(request, PromptRequest::EnterTotp);
    assert!(reply.answer(PromptReply::Code(totp_code(&secret, unix_now()).as_str().into())));
    let response = call.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let codes: RecoveryCodesResponse = response.json().await.unwrap();
    assert_eq!(codes.recovery_codes.len(), 10);
    let renewed = engine.session().unwrap();
    assert_ne!(renewed, stale);
    assert!(info(&renewed).mfa_auth_time.is_some());

    // Now the session is recent: the same call needs no prompt.
    let response = recovery_codes_call(&h, &engine).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(inbox.try_next_prompt().is_none());

    // A held token does not answer a max_age challenge: the session goes stale again (the app hands the minted
    // one back), and the engine asks for MFA although its credential:link token is still good.
    assert!(engine.tokens().get(&Scope::CredentialLink).is_some());
    engine.set_session(Some(stale.clone())).await.unwrap();
    let call = tokio::spawn(recovery_codes_call(&h, &engine).send());
    let (request, reply) = next_prompt(&mut inbox).await;
    // The user has recovery codes now, so the MFA prompt offers them beside the app.
    assert!(matches!(request, PromptRequest::ChooseMethod { route: stepup::Route::Mfa, .. }), "{request:?}");
    // The person gives up: the caller hears it, typed.
    assert!(reply.answer(PromptReply::Cancel));
    let error = call.await.unwrap().unwrap_err();
    let source = MiddlewareError::from_error(&error).and_then(MiddlewareError::step_up_error);
    assert_eq!(source, Some(&StepUpError::Cancelled));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_calls_meeting_one_recent_mfa_challenge_cause_one_prompt() {
    let h = TestServer::live().await;
    let (engine, mut inbox, _user, secret) = stale_mfa_engine(&h).await;
    let prompts = Arc::new(AtomicUsize::new(0));
    let calls: Vec<_> = (0..20).map(|_| tokio::spawn(recovery_codes_call(&h, &engine).send())).collect();
    let (request, reply) = next_prompt(&mut inbox).await;
    prompts.fetch_add(1, Ordering::SeqCst);
    assert_eq!(request, PromptRequest::EnterTotp);
    assert!(reply.answer(PromptReply::Code(totp_code(&secret, unix_now()).as_str().into())));
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    assert!(inbox.try_next_prompt().is_none(), "one prompt for all twenty");
    assert_eq!(prompts.load(Ordering::SeqCst), 1);
    h.shutdown().await;
}

/// Engines share an HTTP client per runtime, not per process: pooled connections belong to the runtime that
/// opened them and die with it, so an engine of a later runtime must not be handed one (an app that runs a
/// runtime per job, say).
#[test]
fn engines_of_a_later_runtime_do_not_inherit_a_dead_runtimes_connections() {
    let server_runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let h = server_runtime.block_on(TestServer::live());
    let user = server_runtime.block_on(h.user());
    for round in 0..3 {
        let job = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let answer = job.block_on(async {
            let engine = h.engine(&user).await;
            engine.is_step_up_required(Scope::WalletExport).await
        });
        assert_eq!(answer, Ok(true), "round {round}");
        drop(job);
    }
    server_runtime.block_on(h.shutdown());
}
