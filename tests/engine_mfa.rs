//! MFA management through the engine (`engine.mfa()`), against the real reference server: every call, on SQLite
//! and PostgreSQL; step-up on demand (a change that needs `credential:link`, `credential:unlink` or a recent MFA
//! makes the engine prompt through its front end, then goes through; a cancelled prompt changes nothing); the
//! flow following the account after an enrolment or a removal; the pre-selected method; the guided calls.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[macro_use]
mod common;

use std::time::Duration;

use common::{Backend, TestServer, TestUser, next_prompt, pending_code, totp_code, totp_engine, unix_now};
use stepup::engine::{PromptReply, PromptRequest};
use stepup::{CredentialId, MethodOptions, Route, Scope, StepUpError};

/// A code of `secret` that is wrong now (the current code, changed in its last digit).
fn wrong_code(secret: &str) -> String {
    let mut code = totp_code(secret, unix_now());
    let last = code.pop().unwrap();
    code.push(if last == '0' { '1' } else { '0' });
    code
}

/// Every management call against the server: add an authenticator app (the step-up `credential:link` takes,
/// by an email code), verify it, one app per user, the default device, a passkey, recovery codes and their
/// acknowledgement, then remove the passkey and the last MFA method.
async fn every_management_call(backend: &Backend) {
    let h = TestServer::live_on(backend).await;
    let user = h.user().await;
    let (engine, mut inbox, _passkey) = h.managing_engine(&user).await;
    let mfa = engine.mfa();
    let methods = mfa.methods().await.unwrap();
    assert!(methods.devices.is_empty() && methods.passkeys.is_empty() && !methods.has_verified_methods);

    // No token for credential:link yet: the server's challenge makes the engine prompt, then the call goes through.
    let adding = tokio::spawn({
        let mfa = mfa.clone();
        async move { mfa.add_totp_device().await }
    });
    let (request, reply) = next_prompt(&mut inbox).await;
    assert!(matches!(request, PromptRequest::EnterOtp { .. }), "{request:?}");
    let code = pending_code(&h, &engine, &user.email).await;
    assert!(reply.answer(PromptReply::Code(code.as_str().into())));
    let enrolment = adding.await.unwrap().unwrap();
    let secret = enrolment.secret.expose_secret().to_owned();
    assert!(!format!("{enrolment:?}").contains(&secret), "Debug leaves the secret out");
    assert!(enrolment.uri.expose_secret().starts_with("otpauth://totp/"));
    assert!(!mfa.methods().await.unwrap().has_verified_methods, "an unfinished device is no factor");

    let device = enrolment.device_id.clone();
    assert_eq!(
        mfa.verify_totp_device(&device, wrong_code(&secret).as_str()).await,
        Err(StepUpError::MfaInvalidCode)
    );
    mfa.verify_totp_device(&device, totp_code(&secret, unix_now()).as_str()).await.unwrap();
    let devices = mfa.devices().await.unwrap();
    assert_eq!(devices.len(), 1);
    assert!(devices[0].verified && !devices[0].default && devices[0].created_at.is_some());
    assert!(mfa.methods().await.unwrap().has_verified_methods);
    assert!(engine.session_info().unwrap().mfa_auth_time.is_some(), "the enrolment re-signed the session");
    assert_eq!(mfa.add_totp_device().await, Err(StepUpError::MfaDeviceAlreadyExists), "one app per user");

    mfa.set_default_device(&device).await.unwrap();
    assert!(mfa.devices().await.unwrap()[0].default);
    let unknown = mfa.set_default_device(&CredentialId::new("no-such-device")).await;
    assert!(matches!(unknown, Err(StepUpError::NotFound { .. })), "{unknown:?}");
    // An id that cannot be a device's reads as the server reads an unknown one, without a call.
    let malformed = mfa.set_default_device(&CredentialId::new("../users")).await;
    assert!(matches!(malformed, Err(StepUpError::NotFound { .. })), "{malformed:?}");

    // The enrolment's fresh MFA opens the next changes without a prompt.
    mfa.register_passkey().await.unwrap();
    let passkeys = mfa.passkeys().await.unwrap();
    assert_eq!(passkeys.len(), 1);
    assert_eq!(passkeys[0].origin.as_deref(), Some(common::ORIGIN));
    assert_eq!(mfa.methods().await.unwrap().passkeys, passkeys);

    let codes = mfa.recovery_codes().await.unwrap();
    assert_eq!((codes.codes.len(), codes.unused), (10, 10));
    assert!(mfa.recovery_codes_acknowledgement_pending().await.unwrap());
    mfa.acknowledge_recovery_codes().await.unwrap();
    assert!(!mfa.recovery_codes_acknowledgement_pending().await.unwrap());
    let again = mfa.recovery_codes().await.unwrap();
    assert_eq!((again.codes.len(), again.unused), (0, 10), "shown once; later reads count");
    let fresh = mfa.regenerate_recovery_codes().await.unwrap();
    assert_eq!(fresh.codes.len(), 10);
    assert!(fresh.codes.iter().all(|code| !codes.codes.contains(code)), "all new");
    assert!(mfa.recovery_codes_acknowledgement_pending().await.unwrap());

    mfa.delete_passkey(&passkeys[0].id).await.unwrap();
    assert!(mfa.passkeys().await.unwrap().is_empty());
    let gone = mfa.delete_passkey(&passkeys[0].id).await;
    assert!(matches!(gone, Err(StepUpError::NotFound { .. })), "{gone:?}");
    // The last MFA method may go: the user is back to re-authentication.
    mfa.delete_device(&device).await.unwrap();
    assert!(!mfa.methods().await.unwrap().has_verified_methods);
    assert!(inbox.try_next_prompt().is_none(), "one prompt so far: the credential:link step-up");
    // Without MFA, credential:unlink (single use) takes a re-authentication again: an email code.
    let removing = tokio::spawn({
        let (mfa, device) = (mfa.clone(), device.clone());
        async move { mfa.delete_device(&device).await }
    });
    let (request, reply) = next_prompt(&mut inbox).await;
    assert!(matches!(request, PromptRequest::EnterOtp { .. }), "{request:?}");
    assert!(reply.answer(PromptReply::Code(pending_code(&h, &engine, &user.email).await.as_str().into())));
    let gone = removing.await.unwrap();
    assert!(matches!(gone, Err(StepUpError::NotFound { .. })), "{gone:?}");
    h.shutdown().await;
}

on_both_databases!(
    every_management_call,
    deleting_a_device_without_a_token_prompts_once_elevates_and_deletes_and_a_cancel_keeps_it,
    recovery_codes_meet_the_recent_mfa_challenge_with_an_mfa_prompt,
    the_flow_follows_the_account_after_an_enrolment_and_a_removal,
    a_prompt_pre_selects_the_default_device_else_the_newest_method,
);

/// An engine for `user` on a session without a recent MFA (as an app resumes one the next day), with the
/// harness's front end and passkey.
async fn resumed(h: &TestServer, user: &TestUser) -> (stepup::engine::StepUpAuth, common::PromptInbox) {
    let resumed = TestUser { jwt: h.session(&user.user.id).await, ..user.clone() };
    let (engine, inbox, _) = h.managing_engine(&resumed).await;
    (engine, inbox)
}

async fn deleting_a_device_without_a_token_prompts_once_elevates_and_deletes_and_a_cancel_keeps_it(
    backend: &Backend,
) {
    let h = TestServer::live_on(backend).await;
    let (_, user, device, secret) = totp_engine(&h).await;
    let (engine, mut inbox) = resumed(&h, &user).await;
    let mfa = engine.mfa();
    let device = CredentialId::new(device);
    let remove = || {
        let (mfa, device) = (mfa.clone(), device.clone());
        tokio::spawn(async move { mfa.delete_device(&device).await })
    };

    // The person cancels the MFA prompt: the device stays, the call answers Cancelled.
    let removing = remove();
    let (request, reply) = next_prompt(&mut inbox).await;
    assert_eq!(request, PromptRequest::EnterTotp);
    assert!(reply.answer(PromptReply::Cancel));
    assert_eq!(removing.await.unwrap(), Err(StepUpError::Cancelled));
    assert_eq!(mfa.devices().await.unwrap().len(), 1, "the device stays");

    // Again: one prompt, a TOTP code elevates credential:unlink, the device is deleted.
    let removing = remove();
    let (request, reply) = next_prompt(&mut inbox).await;
    assert_eq!(request, PromptRequest::EnterTotp);
    assert!(reply.answer(PromptReply::Code(totp_code(&secret, unix_now()).as_str().into())));
    removing.await.unwrap().unwrap();
    assert!(mfa.devices().await.unwrap().is_empty());
    assert!(inbox.try_next_prompt().is_none(), "one prompt");
    h.shutdown().await;
}

async fn recovery_codes_meet_the_recent_mfa_challenge_with_an_mfa_prompt(backend: &Backend) {
    let h = TestServer::live_on(backend).await;
    let (_, user, _, secret) = totp_engine(&h).await;
    let (engine, mut inbox) = resumed(&h, &user).await;
    assert_eq!(engine.session_info().unwrap().mfa_auth_time, None);
    let reading = tokio::spawn({
        let mfa = engine.mfa();
        async move { mfa.recovery_codes().await }
    });
    // The server answers 403 with `max_age`: the engine runs an MFA verification, then reads the codes.
    let (request, reply) = next_prompt(&mut inbox).await;
    assert_eq!(request, PromptRequest::EnterTotp);
    assert!(reply.answer(PromptReply::Code(totp_code(&secret, unix_now()).as_str().into())));
    let codes = reading.await.unwrap().unwrap();
    assert_eq!(codes.codes.len(), 10);
    assert!(
        engine.session_info().unwrap().mfa_auth_time.is_some(),
        "the engine adopted the re-signed session"
    );
    h.shutdown().await;
}

async fn the_flow_follows_the_account_after_an_enrolment_and_a_removal(backend: &Backend) {
    let h = TestServer::live_on(backend).await;
    let user = h.user().await;
    let (engine, mut inbox, _) = h.managing_engine(&user).await;
    let mfa = engine.mfa();
    // credential:link first (reusable), by an email code; then a flow for wallet:export that knows the options.
    let waiting = common::spawn_prompt(&engine, &[Scope::CredentialLink], false);
    let (request, reply) = next_prompt(&mut inbox).await;
    assert!(matches!(request, PromptRequest::EnterOtp { .. }), "{request:?}");
    reply.answer(PromptReply::Code(pending_code(&h, &engine, &user.email).await.as_str().into()));
    waiting.await.unwrap().unwrap();
    assert!(engine.is_step_up_required(Scope::WalletExport).await.unwrap());
    assert_eq!(engine.state().options().and_then(MethodOptions::route), Some(Route::Reauthenticate));

    // Enrolment, guided: the held credential:link token opens it; the app's QR code, then its first code.
    let enrolling = tokio::spawn({
        let mfa = mfa.clone();
        async move { mfa.enrol_totp().await }
    });
    let (request, reply) = next_prompt(&mut inbox).await;
    let PromptRequest::EnrolTotp { enrolment } = request else {
        panic!("expected EnrolTotp, got {request:?}")
    };
    let secret = enrolment.secret.expose_secret().to_owned();
    reply.answer(PromptReply::Code(totp_code(&secret, unix_now()).as_str().into()));
    let device = enrolling.await.unwrap().unwrap();
    assert_eq!(device, enrolment.device_id);

    // The flow that knew the user's options was told: MFA now, and re-authentication is refused before a code
    // goes out.
    assert_eq!(engine.state().name(), "required");
    assert_eq!(engine.state().options().and_then(MethodOptions::route), Some(Route::Mfa));
    assert_eq!(engine.send_otp(None).await, Err(StepUpError::ReauthenticationNotAllowed));
    assert_eq!(
        engine.prompt_reauthenticate(&[Scope::WalletExport]).await,
        Err(StepUpError::ReauthenticationNotAllowed)
    );
    let waiting = common::spawn_prompt(&engine, &[Scope::WalletExport], false);
    let (request, reply) = next_prompt(&mut inbox).await;
    assert_eq!(request, PromptRequest::EnterTotp, "a prompt routes to MFA");
    reply.answer(PromptReply::Code(totp_code(&secret, unix_now() + 30).as_str().into()));
    waiting.await.unwrap().unwrap();

    // The last MFA method goes (the enrolment's MFA is recent: no prompt), and re-authentication is back.
    assert!(engine.is_step_up_required(Scope::UserDelete).await.unwrap());
    assert_eq!(engine.state().options().and_then(MethodOptions::route), Some(Route::Mfa));
    mfa.delete_device(&device).await.unwrap();
    assert_eq!(engine.state().options().and_then(MethodOptions::route), Some(Route::Reauthenticate));
    let waiting = common::spawn_prompt(&engine, &[Scope::UserDelete], false);
    let (request, reply) = next_prompt(&mut inbox).await;
    assert!(matches!(request, PromptRequest::EnterOtp { .. }), "re-authentication again: {request:?}");
    reply.answer(PromptReply::Code(pending_code(&h, &engine, &user.email).await.as_str().into()));
    waiting.await.unwrap().unwrap();
    h.shutdown().await;
}

async fn a_prompt_pre_selects_the_default_device_else_the_newest_method(backend: &Backend) {
    let h = TestServer::live_on(backend).await;
    let (_, user, device, secret) = totp_engine(&h).await;
    // A second later, a passkey: the newest method. The resumed session has no recent MFA, so registering it
    // asks for one (the TOTP device), as Dynamic's rule has it for a user with MFA.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (engine, mut inbox) = resumed(&h, &user).await;
    let mfa = engine.mfa();
    let registering = tokio::spawn({
        let mfa = mfa.clone();
        async move { mfa.register_passkey().await }
    });
    let (request, reply) = next_prompt(&mut inbox).await;
    assert_eq!(request, PromptRequest::EnterTotp);
    reply.answer(PromptReply::Code(totp_code(&secret, unix_now()).as_str().into()));
    registering.await.unwrap().unwrap();
    let passkey = mfa.passkeys().await.unwrap().remove(0);

    let preselected = |request: PromptRequest| match request {
        PromptRequest::ChooseMethod { preselected, .. } => preselected,
        other => panic!("expected ChooseMethod, got {other:?}"),
    };
    let waiting = common::spawn_prompt(&engine, &[Scope::UserDelete], false);
    let (request, reply) = next_prompt(&mut inbox).await;
    assert_eq!(preselected(request), Some(passkey.id.clone()), "the newest method");
    reply.answer(PromptReply::Cancel);
    assert_eq!(waiting.await.unwrap(), Err(StepUpError::Cancelled));

    let device = CredentialId::new(device);
    mfa.set_default_device(&device).await.unwrap();
    let waiting = common::spawn_prompt(&engine, &[Scope::UserDelete], false);
    let (request, reply) = next_prompt(&mut inbox).await;
    assert_eq!(preselected(request), Some(device), "the default device");
    reply.answer(PromptReply::Cancel);
    assert_eq!(waiting.await.unwrap(), Err(StepUpError::Cancelled));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guided_calls_walk_the_person_through_enrolment_recovery_codes_and_removal() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let (engine, mut inbox, _) = h.managing_engine(&user).await;
    let mfa = engine.mfa();
    let enrolling = tokio::spawn({
        let mfa = mfa.clone();
        async move { mfa.enrol_totp().await }
    });
    let (_, reply) = next_prompt(&mut inbox).await;
    reply.answer(PromptReply::Code(pending_code(&h, &engine, &user.email).await.as_str().into()));
    // A wrong first code is shown as a failure with the tries left, and the app is shown again.
    let (request, reply) = next_prompt(&mut inbox).await;
    let PromptRequest::EnrolTotp { enrolment } = request else {
        panic!("expected EnrolTotp, got {request:?}")
    };
    let secret = enrolment.secret.expose_secret().to_owned();
    reply.answer(PromptReply::Code(wrong_code(&secret).as_str().into()));
    let (request, reply) = next_prompt(&mut inbox).await;
    assert_eq!(request, PromptRequest::Failed { error: StepUpError::MfaInvalidCode, attempts_left: 2 });
    reply.answer(PromptReply::Confirm);
    let (request, reply) = next_prompt(&mut inbox).await;
    assert!(matches!(request, PromptRequest::EnrolTotp { .. }), "{request:?}");
    reply.answer(PromptReply::Code(totp_code(&secret, unix_now()).as_str().into()));
    let device = enrolling.await.unwrap().unwrap();

    // New recovery codes are shown until the person says they are saved; then they are acknowledged.
    let showing = tokio::spawn({
        let mfa = mfa.clone();
        async move { mfa.show_recovery_codes().await }
    });
    let (request, reply) = next_prompt(&mut inbox).await;
    let PromptRequest::ShowRecoveryCodes { codes } = request else {
        panic!("expected codes, got {request:?}")
    };
    assert_eq!(codes.len(), 10);
    reply.answer(PromptReply::Confirm);
    let shown = showing.await.unwrap().unwrap();
    assert_eq!((shown.codes.codes, shown.acknowledged), (codes, true));
    assert!(!mfa.recovery_codes_acknowledgement_pending().await.unwrap());
    // Shown before: nothing to show, the count.
    let again = mfa.show_recovery_codes().await.unwrap();
    assert_eq!((again.codes.unused, again.codes.codes.len(), again.acknowledged), (10, 0, false));
    // New ones, and the person cancels: no error — the new codes exist, unacknowledged, and the app has them to
    // show again (the old ones are gone, so losing these would lock the person out of their last resort).
    let showing = tokio::spawn({
        let mfa = mfa.clone();
        async move { mfa.show_new_recovery_codes().await }
    });
    let (request, reply) = next_prompt(&mut inbox).await;
    let PromptRequest::ShowRecoveryCodes { codes } = request else {
        panic!("expected codes, got {request:?}")
    };
    reply.answer(PromptReply::Cancel);
    let shown = showing.await.unwrap().unwrap();
    assert_eq!((shown.codes.codes, shown.acknowledged), (codes, false));
    assert!(mfa.recovery_codes_acknowledgement_pending().await.unwrap());

    // A removal is confirmed first: kept on Cancel, removed on Confirm.
    let info = mfa.devices().await.unwrap().remove(0);
    assert_eq!(info.id, device);
    let removing = |mfa: stepup::engine::MfaManager, info: stepup::engine::MfaDeviceInfo| {
        tokio::spawn(async move { mfa.remove_device_confirmed(&info).await })
    };
    let task = removing(mfa.clone(), info.clone());
    let (request, reply) = next_prompt(&mut inbox).await;
    let PromptRequest::ConfirmRemoval { what } = request else {
        panic!("expected ConfirmRemoval, got {request:?}")
    };
    assert!(what.starts_with("Authenticator app added 20"), "{what}");
    reply.answer(PromptReply::Cancel);
    assert_eq!(task.await.unwrap(), Err(StepUpError::Cancelled));
    assert_eq!(mfa.devices().await.unwrap().len(), 1);
    let task = removing(mfa.clone(), info);
    let (_, reply) = next_prompt(&mut inbox).await;
    reply.answer(PromptReply::Confirm);
    task.await.unwrap().unwrap();
    assert!(mfa.devices().await.unwrap().is_empty());
    h.shutdown().await;
}

/// An enrolment is three tries: the third wrong code ends it with `MfaInvalidCode` (the unfinished device is no
/// factor); an answer that is no code ends it as cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolment_ends_at_the_third_wrong_code_or_at_an_answer_that_is_no_code() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let (engine, mut inbox, _) = h.managing_engine(&user).await;
    let mfa = engine.mfa();
    let enrol = || {
        let mfa = mfa.clone();
        tokio::spawn(async move { mfa.enrol_totp().await })
    };
    let enrolling = enrol();
    let (_, reply) = next_prompt(&mut inbox).await;
    reply.answer(PromptReply::Code(pending_code(&h, &engine, &user.email).await.as_str().into()));
    for attempts_left in [2, 1] {
        let (request, reply) = next_prompt(&mut inbox).await;
        let PromptRequest::EnrolTotp { enrolment } = request else {
            panic!("expected EnrolTotp, got {request:?}")
        };
        reply.answer(PromptReply::Code(wrong_code(enrolment.secret.expose_secret()).as_str().into()));
        let (request, reply) = next_prompt(&mut inbox).await;
        assert_eq!(request, PromptRequest::Failed { error: StepUpError::MfaInvalidCode, attempts_left });
        reply.answer(PromptReply::Confirm);
    }
    let (request, reply) = next_prompt(&mut inbox).await;
    let PromptRequest::EnrolTotp { enrolment } = request else {
        panic!("expected EnrolTotp, got {request:?}")
    };
    reply.answer(PromptReply::Code(wrong_code(enrolment.secret.expose_secret()).as_str().into()));
    assert_eq!(enrolling.await.unwrap(), Err(StepUpError::MfaInvalidCode));
    assert!(!mfa.methods().await.unwrap().has_verified_methods);

    // A front end that answers the QR code with a method choice (it did not understand the step): cancelled.
    let enrolling = enrol();
    let (request, reply) = next_prompt(&mut inbox).await;
    assert!(
        matches!(request, PromptRequest::EnrolTotp { .. }),
        "the held credential:link opens it: {request:?}"
    );
    reply.answer(PromptReply::Confirm);
    assert_eq!(enrolling.await.unwrap(), Err(StepUpError::Cancelled));
    assert!(inbox.try_next_prompt().is_none());
    h.shutdown().await;
}

/// Registering a passkey steps up first (before the authenticator makes one), and the registration is an MFA of
/// its own: the session's MFA time moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_a_passkey_steps_up_first_and_renews_the_sessions_mfa_time() {
    let h = TestServer::live().await;
    let (_, user, _, secret) = totp_engine(&h).await;
    let resumed = TestUser { jwt: h.session(&user.user.id).await, ..user.clone() };
    let (engine, mut inbox, authenticator) = h.managing_engine(&resumed).await;
    let mfa = engine.mfa();
    let registering = tokio::spawn({
        let mfa = mfa.clone();
        async move { mfa.register_passkey().await }
    });
    let (request, reply) = next_prompt(&mut inbox).await;
    assert_eq!(request, PromptRequest::EnterTotp);
    assert_eq!(authenticator.passkey_count().await, 0, "the authenticator is not asked before the step-up");
    reply.answer(PromptReply::Code(totp_code(&secret, unix_now()).as_str().into()));
    registering.await.unwrap().unwrap();
    let first = engine.session_info().unwrap().mfa_auth_time.unwrap();
    // A second later, another (credential:link is reusable: no prompt), and the MFA time follows it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    mfa.register_passkey().await.unwrap();
    assert!(inbox.try_next_prompt().is_none());
    let second = engine.session_info().unwrap().mfa_auth_time.unwrap();
    assert!(second > first, "{second:?} after {first:?}");
    assert_eq!(mfa.passkeys().await.unwrap().len(), 2);
    h.shutdown().await;
}

/// A fresh verification (the answer to a `max_age` challenge, as for the recovery codes) never joins a running
/// prompt that is not one — that prompt's token would be no recent MFA — so a direct caller hears `Busy` (the
/// middleware waits its turn); a second fresh one joins the first and shares its token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_mfa_prompt_joins_only_a_fresh_one() {
    let h = TestServer::live().await;
    let (_, user, _, secret) = totp_engine(&h).await;
    let (engine, mut inbox) = resumed(&h, &user).await;
    let fresh = |engine: &stepup::engine::StepUpAuth| {
        let handle = engine.handle().unwrap();
        tokio::spawn(async move {
            stepup::engine::ractor::call!(handle, |reply| stepup::engine::EngineRequest::Prompt {
                scopes: stepup::ScopeSet::one(Scope::CredentialLink),
                route: Some(Route::Mfa),
                fresh: true,
                reply,
            })
            .unwrap()
        })
    };
    let plain = common::spawn_prompt(&engine, &[Scope::CredentialLink], true);
    let (request, reply) = next_prompt(&mut inbox).await;
    assert_eq!(request, PromptRequest::EnterTotp);
    // Joined, it would wait for the person's answer to the plain prompt: bounded, so that fails rather than hangs.
    let answer = tokio::time::timeout(Duration::from_secs(5), fresh(&engine)).await;
    assert_eq!(
        answer.expect("answered at once").unwrap(),
        Err(StepUpError::Busy),
        "not joined to a plain prompt"
    );
    reply.answer(PromptReply::Cancel);
    assert_eq!(plain.await.unwrap(), Err(StepUpError::Cancelled));

    let first = fresh(&engine);
    let (request, reply) = next_prompt(&mut inbox).await;
    assert_eq!(request, PromptRequest::EnterTotp);
    let second = fresh(&engine);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(inbox.try_next_prompt().is_none() && !second.is_finished(), "the second waits on the first");
    reply.answer(PromptReply::Code(totp_code(&secret, unix_now()).as_str().into()));
    let (first, second) = (first.await.unwrap().unwrap(), second.await.unwrap().unwrap());
    assert_eq!(first.id, second.id, "one verification, one token");
    h.shutdown().await;
}

/// A step-up a management call needs waits behind a prompt that is running, instead of failing `Busy`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_up_for_a_management_call_waits_its_turn_behind_a_running_prompt() {
    let h = TestServer::live().await;
    let (_, user, device, secret) = totp_engine(&h).await;
    let (engine, mut inbox) = resumed(&h, &user).await;
    let first = common::spawn_prompt(&engine, &[Scope::WalletExport], false);
    let (request, first_reply) = next_prompt(&mut inbox).await;
    assert_eq!(request, PromptRequest::EnterTotp);
    let removing = tokio::spawn({
        let (mfa, device) = (engine.mfa(), CredentialId::new(device));
        async move { mfa.delete_device(&device).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(inbox.try_next_prompt().is_none() && !removing.is_finished(), "the removal waits");
    first_reply.answer(PromptReply::Code(totp_code(&secret, unix_now()).as_str().into()));
    first.await.unwrap().unwrap();
    // Its turn: the removal's own prompt (credential:unlink is not what the first flow earned).
    let (request, reply) = next_prompt(&mut inbox).await;
    assert_eq!(request, PromptRequest::EnterTotp);
    reply.answer(PromptReply::Code(totp_code(&secret, unix_now() + 30).as_str().into()));
    removing.await.unwrap().unwrap();
    assert!(engine.mfa().devices().await.unwrap().is_empty());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_call_needs_and_the_engine_lacks_is_a_typed_error() {
    let h = TestServer::live().await;
    let user = h.user().await;
    // No front end: a change that needs a step-up cannot prompt; the guided calls cannot ask.
    let bare = h.engine(&user).await;
    assert_eq!(bare.mfa().add_totp_device().await, Err(StepUpError::NotConfigured { what: "front end" }));
    assert_eq!(bare.mfa().enrol_totp().await, Err(StepUpError::NotConfigured { what: "front end" }));
    assert_eq!(bare.mfa().show_recovery_codes().await, Err(StepUpError::NotConfigured { what: "front end" }));
    // No passkey authenticator: nothing to register with (and no call is made).
    assert_eq!(
        bare.mfa().register_passkey().await,
        Err(StepUpError::NotConfigured { what: "passkey authenticator" })
    );
    // An id that cannot be a device's: refused before any call (and before any step-up).
    let malformed = bare.mfa().delete_device(&CredentialId::new("a/b")).await;
    assert!(matches!(malformed, Err(StepUpError::NotFound { .. })), "{malformed:?}");
    h.shutdown().await;
}
