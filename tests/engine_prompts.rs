//! Prompt flows against the real reference server: single flight, exact scopes, the front end hearing how each
//! flow ended, and a verifier whose signer hangs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestServer, local_wallet, next_prompt, pending_code};
use stepup::engine::{PromptReply, PromptRequest, SignerError, StepUpState, WalletSigner};
use stepup::{Scope, ScopeSet, StepUpError};
use tokio::sync::Semaphore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_prompts_for_the_same_scope_share_one_flow() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let (frontend, mut inbox) = common::frontend();
    let engine = h.engine_for(&user).frontend(frontend.clone()).build().await.unwrap();

    let callers: Vec<_> =
        (0..8).map(|_| common::spawn_prompt(&engine, &[Scope::WalletExport], false)).collect();
    let (request, reply) = next_prompt(&mut inbox).await;
    assert!(matches!(request, PromptRequest::EnterOtp { .. }), "{request:?}");
    let code = pending_code(&h, &engine, &user.email).await;
    assert!(reply.answer(PromptReply::Code(code.as_str().into())));

    let mut ids = Vec::new();
    for caller in callers {
        ids.push(caller.await.unwrap().unwrap().id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one verification, one token for all eight callers");
    assert!(inbox.try_next_prompt().is_none(), "the person was asked once");
    let outcomes = inbox.outcomes_after(1).await;
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].as_ref().unwrap().id, ids[0]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_asks_for_exactly_its_scopes_whatever_was_checked_before() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;

    // Checks gather scopes into the flow (wallet:export is single-use by the server's policy)...
    assert!(engine.is_step_up_required(Scope::WalletExport).await.unwrap());
    assert!(engine.is_step_up_required(Scope::CredentialLink).await.unwrap());
    // ...but the prompt's token is for what the prompt asked, and so stays multi-use.
    let waiting = common::spawn_prompt(&engine, &[Scope::CredentialLink], false);
    let (_request, reply) = next_prompt(&mut inbox).await;
    let code = pending_code(&h, &engine, &user.email).await;
    assert!(reply.answer(PromptReply::Code(code.as_str().into())));
    let info = waiting.await.unwrap().unwrap();
    assert_eq!(info.scopes, ScopeSet::one(Scope::CredentialLink));
    assert!(!info.single_use);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_end_hears_of_cancelled_and_reset_flows() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let (frontend, mut inbox) = common::frontend();
    let engine = h.engine_for(&user).frontend(frontend.clone()).build().await.unwrap();

    let waiting = common::spawn_prompt(&engine, &[Scope::WalletExport], false);
    let (_request, _unanswered) = next_prompt(&mut inbox).await;
    engine.cancel().unwrap();
    assert_eq!(waiting.await.unwrap().unwrap_err(), StepUpError::Cancelled);
    assert_eq!(inbox.outcomes_after(1).await[0], Err(StepUpError::Cancelled));

    let waiting = common::spawn_prompt(&engine, &[Scope::WalletExport], false);
    let (_request, _unanswered) = next_prompt(&mut inbox).await;
    engine.reset_state().await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap_err(), StepUpError::Cancelled);
    assert_eq!(inbox.outcomes_after(2).await[1], Err(StepUpError::Cancelled));
    h.shutdown().await;
}

/// A wallet whose first signature never comes (a wallet app that froze); later ones sign at once.
struct FreezesOnce {
    inner: Arc<stepup::engine::LocalWalletSigner>,
    first: Semaphore,
}

#[async_trait::async_trait]
impl WalletSigner for FreezesOnce {
    fn address(&self) -> String {
        self.inner.address()
    }

    fn wallet_name(&self) -> String {
        self.inner.wallet_name()
    }

    async fn sign_message(&self, message: &str) -> Result<String, SignerError> {
        if let Ok(permit) = self.first.try_acquire() {
            permit.forget();
            std::future::pending::<()>().await;
        }
        self.inner.sign_message(message).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_signer_times_out_and_does_not_block_its_verifier() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let wallet = local_wallet();
    h.link_wallet(&user, wallet.as_ref(), false).await;
    let signer = Arc::new(FreezesOnce { inner: wallet, first: Semaphore::new(1) });
    let engine = h
        .engine_for(&user)
        .wallet_signer(signer)
        .verify_timeout(Duration::from_millis(400))
        .build()
        .await
        .unwrap();

    let error = engine.verify_wallet(None, &[Scope::WalletExport]).await.unwrap_err();
    assert_eq!(error, StepUpError::Timeout);
    // The wallet verifier dropped the frozen job at its own time limit: the next signature goes through.
    engine.verify_wallet(None, &[Scope::WalletExport]).await.unwrap();
    h.shutdown().await;
}

/// The person gives up a prompt while the app's own verification for the prompt's scopes runs (here a wallet
/// that never answers): that caller hears `Cancelled` when the prompt ends, not at the verify timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giving_up_a_prompt_answers_a_verification_running_inside_it() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let wallet = local_wallet();
    h.link_wallet(&user, wallet.as_ref(), false).await;
    let signer = Arc::new(FreezesOnce { inner: wallet, first: Semaphore::new(1) });
    let (frontend, mut inbox) = common::frontend();
    let engine = h
        .engine_for(&user)
        .wallet_signer(signer)
        .frontend(frontend)
        .verify_timeout(Duration::from_secs(30))
        .build()
        .await
        .unwrap();

    let waiting = common::spawn_prompt(&engine, &[Scope::WalletExport], false);
    let (request, reply) = next_prompt(&mut inbox).await;
    assert!(matches!(request, PromptRequest::ChooseMethod { .. }), "{request:?}");
    let app = engine.clone();
    let verifying = tokio::spawn(async move { app.verify_wallet(None, &[Scope::WalletExport]).await });
    engine.subscribe().wait_for(|state| state.name() == "verifying").await.unwrap();

    assert!(reply.answer(PromptReply::Cancel));
    let answer = tokio::time::timeout(Duration::from_secs(10), verifying)
        .await
        .expect("answered when the prompt ended, not at the 30 s verify timeout")
        .unwrap();
    assert_eq!(answer.unwrap_err(), StepUpError::Cancelled);
    assert_eq!(waiting.await.unwrap().unwrap_err(), StepUpError::Cancelled);
    assert!(!engine.state().is_in_flow(), "{:?}", engine.state());
    h.shutdown().await;
}

// `requests_from_an_ended_prompt_are_refused` is a unit test of the engine now (`requests.rs`): the message it
// sends is the engine's own, which apps can no longer send.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_person_chooses_among_several_methods_and_only_offered_ones_count() {
    let h = TestServer::live().await;
    let user = h.user_with(Some("5557654321")).await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;

    let waiting = common::spawn_prompt(&engine, &[Scope::WalletExport], false);
    let (request, reply) = next_prompt(&mut inbox).await;
    let PromptRequest::ChooseMethod { route, options, preselected, .. } = request else {
        panic!("expected ChooseMethod, got {request:?}");
    };
    assert_eq!(route, stepup::Route::Reauthenticate);
    let methods: Vec<_> = options.credentials().iter().map(|c| c.method).collect();
    assert_eq!(methods, vec![stepup::Method::EmailOtp, stepup::Method::SmsOtp]);
    // Without MFA the server suggests the first credential: the email address.
    assert_eq!(preselected.as_ref(), Some(&options.credentials()[0].id));
    // A credential that was not offered does not count: the question comes again.
    let forged = stepup::Credential::new("not-offered", stepup::Method::SmsOtp, None);
    assert!(reply.answer(PromptReply::Choose(forged)));
    let (request, reply) = next_prompt(&mut inbox).await;
    assert!(matches!(request, PromptRequest::ChooseMethod { .. }), "{request:?}");
    let phone = options.credentials().iter().find(|c| c.method == stepup::Method::SmsOtp).unwrap().clone();
    assert!(reply.answer(PromptReply::Choose(phone)));

    let (request, reply) = next_prompt(&mut inbox).await;
    let PromptRequest::EnterOtp { destination_masked, .. } = request else {
        panic!("expected EnterOtp, got {request:?}");
    };
    assert!(destination_masked.ends_with("4321"), "{destination_masked}");
    let code = pending_code(&h, &engine, "+15557654321").await;
    assert!(reply.answer(PromptReply::Code(code.as_str().into())));
    waiting.await.unwrap().unwrap();
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_end_that_goes_away_cancels_the_flow_and_later_prompts() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;

    let waiting = common::spawn_prompt(&engine, &[Scope::WalletExport], false);
    let (_request, pending) = next_prompt(&mut inbox).await;
    // The UI closes: the request it held and its inbox are dropped.
    drop(pending);
    drop(inbox);
    assert_eq!(waiting.await.unwrap().unwrap_err(), StepUpError::Cancelled);
    // With nobody to ask, a new prompt ends at once instead of hanging.
    let again =
        tokio::time::timeout(Duration::from_secs(10), engine.prompt_step_up_auth(&[Scope::WalletExport]));
    assert_eq!(again.await.expect("no hang").unwrap_err(), StepUpError::Cancelled);
    assert!(matches!(engine.state(), StepUpState::Idle { .. }), "a cancelled flow leaves the engine idle");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resend_in_a_prompt_sends_a_new_code_that_elevates() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;

    let waiting = common::spawn_prompt(&engine, &[Scope::CredentialLink], false);
    let (request, reply) = next_prompt(&mut inbox).await;
    assert_eq!(
        request,
        PromptRequest::EnterOtp {
            destination_masked: stepup::otp::mask_email(&user.email),
            can_resend: true
        }
    );
    let first = pending_otp(&engine).await;
    assert!(reply.answer(PromptReply::Resend));
    let (request, reply) = next_prompt(&mut inbox).await;
    assert!(matches!(request, PromptRequest::EnterOtp { can_resend: true, .. }), "{request:?}");
    assert_ne!(pending_otp(&engine).await.id, first.id, "the resend sent a new code");
    let second = pending_code(&h, &engine, &user.email).await;
    assert!(reply.answer(PromptReply::Code(second.as_str().into())));
    let info = waiting.await.unwrap().unwrap();
    assert!(info.scopes.contains(&Scope::CredentialLink));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_step_up_auth_routes_a_user_with_mfa_to_mfa_without_a_choice() {
    let h = TestServer::live().await;
    let (_registering, user, _device, secret) = common::totp_engine(&h).await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;

    let waiting = common::spawn_prompt(&engine, &[Scope::WalletExport], false);
    // The user's one MFA credential is TOTP: asked for at once, no method choice, no email code.
    let (request, reply) = next_prompt(&mut inbox).await;
    assert_eq!(request, PromptRequest::EnterTotp);
    assert!(reply.answer(PromptReply::Code(common::totp_code(&secret, common::unix_now()).as_str().into())));
    let info = waiting.await.unwrap().unwrap();
    assert!(info.scopes.contains(&Scope::WalletExport));
    h.shutdown().await;
}

/// The one-time code the engine's flow waits for.
async fn pending_otp(engine: &stepup::engine::StepUpAuth) -> stepup::OtpVerification {
    let snapshot = engine.snapshot().await.expect("the engine answers");
    assert!(snapshot.state.is_in_flow(), "no flow in {:?}", snapshot.state);
    snapshot.pending_otp.expect("a code was sent")
}

/// Where in a prompt flow the person (or the app) gives up.
#[derive(Debug, Clone, Copy)]
enum Step {
    ChooseMethod,
    EnterOtp,
    FailedNotice,
    ConfirmWallet,
}

/// How the flow is given up.
#[derive(Debug, Clone, Copy)]
enum GiveUp {
    /// The person answers `Cancel` (Esc in the terminal UI).
    Reply,
    /// The app calls `cancel()`.
    Cancel,
    /// The app calls `reset_state()`.
    Reset,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giving_up_at_any_step_answers_every_waiting_caller_with_cancelled() {
    let h = TestServer::live().await;
    for step in [Step::ChooseMethod, Step::EnterOtp, Step::FailedNotice, Step::ConfirmWallet] {
        for give_up in [GiveUp::Reply, GiveUp::Cancel, GiveUp::Reset] {
            let case = format!("{give_up:?} at {step:?}");
            // A person of their own per case: the server allows three codes per address per window.
            let user = h.user().await;
            let wallet = local_wallet();
            h.link_wallet(&user, wallet.as_ref(), false).await;
            let (frontend, mut inbox) = common::frontend();
            let engine = h.engine_for(&user).frontend(frontend).wallet_signer(wallet).build().await.unwrap();
            let callers: Vec<_> =
                (0..3).map(|_| common::spawn_prompt(&engine, &[Scope::CredentialLink], false)).collect();
            // Walk to the step: email or wallet (a choice), a wrong code for the failure notice.
            let (request, mut pending) = next_prompt(&mut inbox).await;
            assert!(matches!(request, PromptRequest::ChooseMethod { .. }), "{case}: {request:?}");
            let PromptRequest::ChooseMethod { options, .. } = request else { unreachable!() };
            let pick = |method| options.credentials().iter().find(|c| c.method == method).unwrap().clone();
            if matches!(step, Step::EnterOtp | Step::FailedNotice) {
                assert!(pending.answer(PromptReply::Choose(pick(stepup::Method::EmailOtp))));
                let (request, next) = next_prompt(&mut inbox).await;
                assert!(matches!(request, PromptRequest::EnterOtp { .. }), "{case}: {request:?}");
                pending = next;
            }
            if matches!(step, Step::FailedNotice) {
                assert!(pending.answer(PromptReply::Code("000000".into())));
                let (request, next) = next_prompt(&mut inbox).await;
                assert!(
                    matches!(request, PromptRequest::Failed { attempts_left: 2, .. }),
                    "{case}: {request:?}"
                );
                pending = next;
            }
            if matches!(step, Step::ConfirmWallet) {
                assert!(pending.answer(PromptReply::Choose(pick(stepup::Method::ExternalWallet))));
                let (request, next) = next_prompt(&mut inbox).await;
                assert!(matches!(request, PromptRequest::ConfirmWallet { .. }), "{case}: {request:?}");
                pending = next;
            }
            // The app-side ways leave the request unanswered, as a front end that is busy elsewhere would.
            let unanswered = match give_up {
                GiveUp::Reply => {
                    assert!(pending.answer(PromptReply::Cancel), "{case}");
                    None
                }
                GiveUp::Cancel => {
                    engine.cancel().unwrap();
                    Some(pending)
                }
                GiveUp::Reset => {
                    engine.reset_state().await.unwrap();
                    Some(pending)
                }
            };
            for caller in callers {
                let outcome = tokio::time::timeout(Duration::from_secs(10), caller).await;
                let outcome = outcome.unwrap_or_else(|_| panic!("{case}: a caller hangs")).unwrap();
                assert_eq!(outcome.unwrap_err(), StepUpError::Cancelled, "{case}");
            }
            assert!(matches!(engine.state(), StepUpState::Idle { .. }), "{case}: {:?}", engine.state());
            // The prompt's task is aborted as the callers are answered; the request closes as the runtime drops it.
            if let Some(request) = unanswered {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                while request.is_open() && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                assert!(!request.is_open(), "{case}: the request is withdrawn");
            }
        }
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_resend_is_a_notice_and_the_code_already_sent_still_elevates() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;

    let waiting = common::spawn_prompt(&engine, &[Scope::CredentialLink], false);
    // The server sends three codes per address per window: the first send and two resends.
    let (_request, mut reply) = next_prompt(&mut inbox).await;
    for _ in 0..2 {
        assert!(reply.answer(PromptReply::Resend));
        let (request, next) = next_prompt(&mut inbox).await;
        assert!(matches!(request, PromptRequest::EnterOtp { .. }), "{request:?}");
        reply = next;
    }
    let last_sent = pending_otp(&engine).await;
    assert!(reply.answer(PromptReply::Resend));
    let (request, reply) = next_prompt(&mut inbox).await;
    let PromptRequest::Failed { error, attempts_left } = request else { panic!("a notice, got {request:?}") };
    assert!(matches!(error, StepUpError::TooManyVerificationAttempts { .. }), "{error:?}");
    assert_eq!(attempts_left, 3, "a refused send costs no try");
    assert!(reply.answer(PromptReply::Confirm));
    let (request, reply) = next_prompt(&mut inbox).await;
    assert!(matches!(request, PromptRequest::EnterOtp { .. }), "{request:?}");
    assert_eq!(pending_otp(&engine).await.id, last_sent.id, "the code sent last is still the one awaited");
    let code = h.code_of(&user.email, &last_sent).await;
    assert!(reply.answer(PromptReply::Code(code.as_str().into())));
    assert!(waiting.await.unwrap().unwrap().scopes.contains(&Scope::CredentialLink));
    h.shutdown().await;
}

/// A code that is not `code` (one digit off).
fn wrong(code: &str) -> String {
    let mut digits: Vec<char> = code.chars().collect();
    digits[0] = if digits[0] == '9' { '0' } else { char::from(digits[0] as u8 + 1) };
    digits.into_iter().collect()
}

/// The flow machine counts a prompt's tries, across the methods the person tries in it: two wrong email codes,
/// then a wrong SMS code, and the prompt is over (the driver counts nothing, so choosing another method does not
/// start the count again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompts_tries_are_counted_across_methods() {
    let h = TestServer::live().await;
    let user = h.user_with(Some("5557654321")).await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;
    let waiting = common::spawn_prompt(&engine, &[Scope::WalletExport], false);

    let (request, reply) = next_prompt(&mut inbox).await;
    let PromptRequest::ChooseMethod { options, .. } = request else { panic!("a choice, got {request:?}") };
    let pick = |method| options.credentials().iter().find(|c| c.method == method).unwrap().clone();
    assert!(reply.answer(PromptReply::Choose(pick(stepup::Method::EmailOtp))));
    for left in [2, 1] {
        let (request, reply) = next_prompt(&mut inbox).await;
        assert!(matches!(request, PromptRequest::EnterOtp { .. }), "{request:?}");
        let code = pending_code(&h, &engine, &user.email).await;
        assert!(reply.answer(PromptReply::Code(wrong(&code).as_str().into())));
        let (request, reply) = next_prompt(&mut inbox).await;
        let PromptRequest::Failed { attempts_left, .. } = request else {
            panic!("a notice, got {request:?}")
        };
        assert_eq!(attempts_left, left);
        assert!(reply.answer(PromptReply::Confirm));
    }
    // Another method: back to the choice, then the phone.
    let (request, reply) = next_prompt(&mut inbox).await;
    assert!(matches!(request, PromptRequest::EnterOtp { .. }), "{request:?}");
    assert!(reply.answer(PromptReply::Choose(pick(stepup::Method::SmsOtp))));
    let (request, reply) = next_prompt(&mut inbox).await;
    assert!(matches!(request, PromptRequest::ChooseMethod { .. }), "{request:?}");
    assert!(reply.answer(PromptReply::Choose(pick(stepup::Method::SmsOtp))));
    let (request, reply) = next_prompt(&mut inbox).await;
    assert!(matches!(request, PromptRequest::EnterOtp { .. }), "{request:?}");
    let code = pending_code(&h, &engine, "+15557654321").await;
    assert!(reply.answer(PromptReply::Code(wrong(&code).as_str().into())));

    let error = waiting.await.unwrap().unwrap_err();
    assert!(
        matches!(error, StepUpError::WrongVerificationToken { .. }),
        "the third try was the last: {error:?}"
    );
    h.shutdown().await;
}
