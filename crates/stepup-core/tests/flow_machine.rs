//! Scenario tests of the flow machine: one test per path of `docs/state-machine.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use stepup_core::testkit::token;
use stepup_core::{
    AttemptId, Credential, Effect, Flow, FlowEvent, FlowState, ManualClock, Method, MethodOptions,
    OtpChannel, OtpVerification, Route, Scope, ScopeSet, StepUpError, TokenCell, TokenError, UnixTime,
    VerificationId,
};

const NOW: UnixTime = UnixTime(1_000);

fn flow() -> (Flow, ManualClock) {
    let clock = ManualClock::new(NOW);
    (Flow::new(TokenCell::with_clock(Arc::new(clock.clone()))), clock)
}

fn mfa_options() -> MethodOptions {
    MethodOptions::known([
        Credential::new("totp-1", Method::Totp, None),
        Credential::new("pk-1", Method::Passkey, None),
    ])
}

fn reauth_options() -> MethodOptions {
    MethodOptions::known([Credential::new("email-1", Method::EmailOtp, None)])
}

fn export() -> ScopeSet {
    ScopeSet::one(Scope::WalletExport)
}

fn checked(options: MethodOptions) -> FlowEvent {
    FlowEvent::RequirementChecked { scope: Scope::WalletExport, required: true, options }
}

fn opened(route: Route) -> FlowEvent {
    FlowEvent::PromptOpened { route, options: MethodOptions::unknown() }
}

fn started(method: Method) -> FlowEvent {
    FlowEvent::VerificationStarted { method }
}

fn verified(attempt: u64, jti: &str, ttl: u64, single_use: bool) -> FlowEvent {
    FlowEvent::Verified {
        attempt: AttemptId(attempt),
        token: token(&export(), NOW.plus_secs(ttl), single_use, jti),
    }
}

fn email_sent() -> FlowEvent {
    FlowEvent::OtpSent {
        verification: OtpVerification {
            id: VerificationId::new("v-1"),
            channel: OtpChannel::Email,
            destination_masked: "a***@example.com".into(),
        },
    }
}

fn drive(flow: &mut Flow, events: &[FlowEvent]) {
    for event in events {
        flow.handle(event);
    }
}

#[test]
fn starts_idle() {
    let (flow, _) = flow();
    assert_eq!(flow.state(), &FlowState::Idle {});
    assert_eq!(flow.state().name(), "idle");
}

#[test]
fn totp_happy_path_elevates_and_stores_the_token() {
    let (mut flow, _) = flow();
    flow.handle(&checked(mfa_options()));
    assert_eq!(
        flow.state(),
        &FlowState::Required { scopes: export(), options: mfa_options(), last_error: None }
    );
    assert!(flow.state().is_in_flow());
    drive(&mut flow, &[opened(Route::Mfa), started(Method::Totp)]);
    assert_eq!(flow.state().name(), "verifying");
    flow.handle(&verified(1, "t1", 300, false));
    assert_eq!(
        flow.state(),
        &FlowState::Elevated {
            scopes: export(),
            token_id: stepup_core::TokenId::new("t1"),
            expires_at: NOW.plus_secs(300)
        }
    );
    assert_eq!(flow.tokens().get(&Scope::WalletExport).unwrap().id().as_str(), "t1");
}

#[test]
fn not_required_check_stays_idle() {
    let (mut flow, _) = flow();
    flow.handle(&FlowEvent::RequirementChecked {
        scope: Scope::WalletSign,
        required: false,
        options: mfa_options(),
    });
    assert_eq!(flow.state(), &FlowState::Idle {});
}

#[test]
fn challenge_without_scopes_is_ignored_and_with_scopes_requires() {
    let (mut flow, _) = flow();
    flow.handle(&FlowEvent::Challenged { scopes: ScopeSet::empty() });
    assert_eq!(flow.state(), &FlowState::Idle {});
    flow.handle(&FlowEvent::Challenged { scopes: export() });
    assert_eq!(
        flow.state(),
        &FlowState::Required { scopes: export(), options: MethodOptions::unknown(), last_error: None }
    );
    // A second challenge joins the flow's scopes.
    flow.handle(&FlowEvent::Challenged { scopes: ScopeSet::one(Scope::UserDelete) });
    assert_eq!(flow.state().scopes(), ScopeSet::from([Scope::WalletExport, Scope::UserDelete]));
}

#[test]
fn mfa_route_refuses_reauthentication_methods_and_methods_not_offered() {
    let (mut flow, _) = flow();
    drive(&mut flow, &[checked(mfa_options()), opened(Route::Mfa)]);
    let refused = flow.handle(&started(Method::EmailOtp));
    assert_eq!(refused, Effect::Refused(StepUpError::MethodNotAvailable { method: Method::EmailOtp }));
    assert_eq!(flow.state().name(), "prompting", "email is not an MFA method");
    let only_totp = MethodOptions::known([Credential::new("totp-1", Method::Totp, None)]);
    flow.handle(&FlowEvent::PromptOpened { route: Route::Mfa, options: only_totp });
    flow.handle(&started(Method::Passkey));
    assert_eq!(flow.state().name(), "prompting", "no passkey offered");
    let effect = flow.handle(&started(Method::RecoveryCode));
    assert_eq!(flow.state().name(), "verifying", "recovery codes back up any MFA method");
    assert_eq!(
        effect,
        Effect::Verify { attempt: AttemptId(1), method: Method::RecoveryCode, scopes: export(), otp: None },
        "the machine numbers the verification"
    );
}

#[test]
fn otp_verification_needs_a_sent_code_on_its_channel() {
    let (mut flow, _) = flow();
    drive(&mut flow, &[checked(reauth_options()), opened(Route::Reauthenticate)]);
    assert_eq!(flow.handle(&started(Method::EmailOtp)), Effect::Refused(StepUpError::OtpNotSent));
    assert_eq!(flow.state().name(), "prompting", "no code sent yet");
    flow.handle(&email_sent());
    assert_eq!(flow.pending_otp().unwrap().id.as_str(), "v-1");
    flow.handle(&started(Method::SmsOtp));
    assert_eq!(flow.state().name(), "prompting", "SMS not offered and no SMS sent");
    let Effect::Verify { otp, .. } = flow.handle(&started(Method::EmailOtp)) else { panic!() };
    assert_eq!(flow.state().name(), "verifying");
    assert_eq!(otp.unwrap().id.as_str(), "v-1", "the job carries the code it answers");
}

#[test]
fn a_code_sent_outside_a_flow_is_kept_for_the_flow_that_follows_and_survives_cancel() {
    let (mut flow, _) = flow();
    flow.handle(&email_sent());
    assert_eq!(flow.state(), &FlowState::Idle {});
    assert!(flow.pending_otp().is_some(), "an app sends a code before it knows the scopes");
    drive(&mut flow, &[FlowEvent::FlowRequested { scopes: export() }, opened(Route::Reauthenticate)]);
    flow.handle(&FlowEvent::Cancel);
    assert!(flow.pending_otp().is_some(), "the server still holds the code");
    drive(&mut flow, &[FlowEvent::FlowRequested { scopes: export() }, opened(Route::Reauthenticate)]);
    assert!(matches!(flow.handle(&started(Method::EmailOtp)), Effect::Verify { .. }));
    flow.handle(&verified(1, "t1", 60, false));
    assert_eq!(flow.pending_otp(), None, "a used code is gone");
    flow.handle(&email_sent());
    flow.handle(&FlowEvent::Reset);
    assert_eq!(flow.pending_otp(), None, "reset forgets it");
}

#[test]
fn a_flow_request_keeps_a_flow_for_the_same_scopes_and_restarts_one_for_others() {
    let (mut flow, _) = flow();
    assert_eq!(
        flow.handle(&FlowEvent::FlowRequested { scopes: ScopeSet::empty() }),
        Effect::Refused(StepUpError::NoScopes)
    );
    drive(&mut flow, &[checked(mfa_options()), opened(Route::Mfa)]);
    flow.handle(&FlowEvent::FlowRequested { scopes: export() });
    assert_eq!(flow.state().name(), "prompting", "the same scopes: the prompt goes on");
    let both = export().union(&ScopeSet::one(Scope::WalletSign));
    flow.handle(&FlowEvent::FlowRequested { scopes: both.clone() });
    assert_eq!(
        flow.state(),
        &FlowState::Required { scopes: both, options: MethodOptions::unknown(), last_error: None },
        "other scopes: exactly those, from the start"
    );
}

#[test]
fn wrong_code_retries_with_one_attempt_fewer_until_none_are_left() {
    let (mut flow, _) = flow();
    drive(&mut flow, &[checked(mfa_options()), opened(Route::Mfa)]);
    for (try_no, left) in [(1, 2), (2, 1)] {
        flow.handle(&started(Method::Totp));
        let effect = flow.handle(&FlowEvent::VerificationFailed {
            attempt: AttemptId(try_no),
            error: StepUpError::MfaInvalidCode,
        });
        assert_eq!(effect, Effect::Retry { error: StepUpError::MfaInvalidCode, attempts_left: left });
        let FlowState::Prompting { progress, .. } = flow.state() else { panic!("{:?}", flow.state()) };
        assert_eq!(progress.attempts_left, left);
        assert_eq!(progress.last_error, Some(StepUpError::MfaInvalidCode));
    }
    flow.handle(&started(Method::Totp));
    let effect = flow
        .handle(&FlowEvent::VerificationFailed { attempt: AttemptId(3), error: StepUpError::MfaInvalidCode });
    assert_eq!(effect, Effect::Failed(StepUpError::MfaInvalidCode), "no tries left");
    assert_eq!(
        flow.state(),
        &FlowState::Required {
            scopes: export(),
            options: mfa_options(),
            last_error: Some(StepUpError::MfaInvalidCode)
        }
    );
}

#[test]
fn fatal_error_goes_back_to_required_with_the_error() {
    let (mut flow, _) = flow();
    drive(&mut flow, &[checked(mfa_options()), opened(Route::Mfa), started(Method::Totp)]);
    let locked = StepUpError::Locked { retry_after: None };
    flow.handle(&FlowEvent::VerificationFailed { attempt: AttemptId(1), error: locked.clone() });
    assert_eq!(
        flow.state(),
        &FlowState::Required { scopes: export(), options: mfa_options(), last_error: Some(locked) }
    );
}

#[test]
fn stale_results_after_cancel_or_reset_never_elevate() {
    for stop in [FlowEvent::Cancel, FlowEvent::Reset] {
        let (mut flow, _) = flow();
        drive(&mut flow, &[checked(mfa_options()), opened(Route::Mfa), started(Method::Totp), stop]);
        assert_eq!(flow.state(), &FlowState::Idle {});
        assert_eq!(flow.handle(&verified(1, "late", 300, false)), Effect::None);
        assert_eq!(flow.state(), &FlowState::Idle {});
        assert!(flow.tokens().snapshot().is_empty());
    }
}

#[test]
fn result_of_an_older_verification_is_dropped() {
    let (mut flow, _) = flow();
    drive(&mut flow, &[checked(mfa_options()), opened(Route::Mfa), started(Method::Totp)]);
    flow.handle(&FlowEvent::VerificationFailed { attempt: AttemptId(1), error: StepUpError::MfaInvalidCode });
    flow.handle(&started(Method::Totp));
    flow.handle(&verified(1, "old", 300, false));
    assert_eq!(flow.state().name(), "verifying");
    flow.handle(&verified(2, "new", 300, false));
    assert_eq!(flow.state().name(), "elevated");
}

#[test]
fn token_that_does_not_cover_the_scopes_or_is_expired_is_refused() {
    let (mut flow, clock) = flow();
    drive(&mut flow, &[checked(mfa_options()), opened(Route::Mfa), started(Method::Totp)]);
    let narrow = token(&ScopeSet::one(Scope::WalletSign), NOW.plus_secs(300), false, "narrow");
    flow.handle(&FlowEvent::Verified { attempt: AttemptId(1), token: narrow });
    let FlowState::Required { last_error, .. } = flow.state() else { panic!() };
    assert_eq!(
        last_error,
        &Some(StepUpError::ScopesNotGranted {
            requested: export(),
            granted: ScopeSet::one(Scope::WalletSign)
        })
    );
    drive(&mut flow, &[opened(Route::Mfa), started(Method::Totp)]);
    clock.advance(301);
    flow.handle(&verified(2, "late", 300, false));
    let FlowState::Required { last_error, .. } = flow.state() else { panic!() };
    assert_eq!(
        last_error,
        &Some(StepUpError::InvalidToken(TokenError::Expired {
            expires_at: NOW.plus_secs(300),
            now: NOW.plus_secs(301)
        }))
    );
    assert!(flow.tokens().snapshot().is_empty());
}

#[test]
fn expiry_moves_elevated_to_expired_and_the_next_check_to_required() {
    let (mut flow, _) = flow();
    drive(
        &mut flow,
        &[checked(mfa_options()), opened(Route::Mfa), started(Method::Totp), verified(1, "t1", 60, false)],
    );
    flow.handle(&FlowEvent::TokenExpired { token_id: stepup_core::TokenId::new("someone-else") });
    assert_eq!(flow.state().name(), "elevated");
    flow.handle(&FlowEvent::TokenExpired { token_id: stepup_core::TokenId::new("t1") });
    assert_eq!(flow.state(), &FlowState::Expired { scopes: export() });
    assert!(flow.tokens().snapshot().is_empty());
    flow.handle(&checked(mfa_options()));
    assert_eq!(flow.state().name(), "required");
}

#[test]
fn expired_with_a_not_required_check_goes_idle() {
    let (mut flow, _) = flow();
    drive(
        &mut flow,
        &[checked(mfa_options()), opened(Route::Mfa), started(Method::Totp), verified(1, "t1", 60, false)],
    );
    flow.handle(&FlowEvent::TokenExpired { token_id: stepup_core::TokenId::new("t1") });
    flow.handle(&FlowEvent::RequirementChecked {
        scope: Scope::WalletExport,
        required: false,
        options: mfa_options(),
    });
    assert_eq!(flow.state(), &FlowState::Idle {});
}

#[test]
fn consumed_single_use_token_goes_idle() {
    let (mut flow, _) = flow();
    drive(
        &mut flow,
        &[checked(mfa_options()), opened(Route::Mfa), started(Method::Totp), verified(1, "once", 60, true)],
    );
    let taken = flow.tokens().claim(&Scope::WalletExport).unwrap();
    assert!(flow.tokens().claim(&Scope::WalletExport).is_none());
    flow.handle(&FlowEvent::TokenConsumed { token_id: taken.id().clone() });
    assert_eq!(flow.state(), &FlowState::Idle {});
}

#[test]
fn reset_from_any_state_empties_the_cell() {
    let (mut flow, _) = flow();
    drive(
        &mut flow,
        &[checked(mfa_options()), opened(Route::Mfa), started(Method::Totp), verified(1, "t1", 60, false)],
    );
    assert!(!flow.tokens().snapshot().is_empty());
    flow.handle(&FlowEvent::Reset);
    assert_eq!(flow.state(), &FlowState::Idle {});
    assert!(flow.tokens().snapshot().is_empty());
}

#[test]
fn cancel_outside_a_flow_is_ignored() {
    let (mut flow, _) = flow();
    drive(
        &mut flow,
        &[checked(mfa_options()), opened(Route::Mfa), started(Method::Totp), verified(1, "t1", 60, false)],
    );
    let before = flow.state().clone();
    flow.handle(&FlowEvent::Cancel);
    assert_eq!(flow.state(), &before);
}

#[test]
fn prompt_can_switch_route_and_starts_fresh() {
    let (mut flow, _) = flow();
    // After a server challenge the options are unknown, so either route may be tried.
    drive(
        &mut flow,
        &[FlowEvent::Challenged { scopes: export() }, opened(Route::Mfa), started(Method::Totp)],
    );
    flow.handle(&FlowEvent::VerificationFailed { attempt: AttemptId(1), error: StepUpError::MfaInvalidCode });
    flow.handle(&opened(Route::Reauthenticate));
    let FlowState::Prompting { route, progress, .. } = flow.state() else { panic!() };
    assert_eq!(*route, Route::Reauthenticate);
    assert_eq!(progress.attempts_left, stepup_core::MAX_ATTEMPTS);
    assert_eq!(progress.last_error, None);
}

#[test]
fn users_with_mfa_cannot_reauthenticate() {
    let (mut flow, _) = flow();
    let both = MethodOptions::known([
        Credential::new("totp-1", Method::Totp, None),
        Credential::new("email-1", Method::EmailOtp, None),
    ]);
    flow.handle(&checked(both.clone()));
    flow.handle(&opened(Route::Reauthenticate));
    assert_eq!(
        flow.state(),
        &FlowState::Required {
            scopes: export(),
            options: both,
            last_error: Some(StepUpError::ReauthenticationNotAllowed)
        }
    );
    flow.handle(&opened(Route::Mfa));
    assert_eq!(flow.state().name(), "prompting");
    flow.handle(&opened(Route::Reauthenticate));
    let FlowState::Prompting { route, .. } = flow.state() else { panic!() };
    assert_eq!(*route, Route::Mfa, "an open MFA prompt is not switched to re-authentication");
}

#[test]
fn a_route_without_methods_is_refused() {
    let (mut flow, _) = flow();
    flow.handle(&checked(reauth_options()));
    flow.handle(&opened(Route::Mfa));
    let FlowState::Required { last_error, .. } = flow.state() else { panic!() };
    assert_eq!(last_error, &Some(StepUpError::NoMethodsAvailable { route: Some(Route::Mfa) }));
}

#[test]
fn verification_numbers_never_repeat_so_a_late_result_never_matches_a_new_verification() {
    let (mut flow, _) = flow();
    drive(&mut flow, &[checked(mfa_options()), opened(Route::Mfa), started(Method::Totp), FlowEvent::Cancel]);
    drive(&mut flow, &[checked(mfa_options()), opened(Route::Mfa)]);
    let Effect::Verify { attempt: number, .. } = flow.handle(&started(Method::Totp)) else { panic!() };
    assert_eq!(number, AttemptId(2), "flow 1 was used: the next verification is 2");
    flow.handle(&verified(1, "late", 300, false));
    assert_eq!(flow.state().name(), "verifying", "the late result of flow 1 is dropped");
    let Effect::Elevated(info) = flow.handle(&verified(2, "new", 300, false)) else { panic!() };
    assert_eq!(info.scopes, export());
    assert_eq!(flow.state().name(), "elevated");
}

#[test]
fn a_dead_one_time_code_must_be_sent_again() {
    let (mut flow, _) = flow();
    drive(
        &mut flow,
        &[checked(reauth_options()), opened(Route::Reauthenticate), email_sent(), started(Method::EmailOtp)],
    );
    flow.handle(&FlowEvent::VerificationFailed {
        attempt: AttemptId(1),
        error: StepUpError::InvalidVerification { message: "expired".into() },
    });
    assert_eq!(flow.state().name(), "prompting");
    assert_eq!(flow.pending_otp(), None);
    assert_eq!(flow.handle(&started(Method::EmailOtp)), Effect::Refused(StepUpError::OtpNotSent));
    assert_eq!(flow.state().name(), "prompting", "no code pending");
    // A merely wrong code keeps the code pending.
    drive(&mut flow, &[email_sent(), started(Method::EmailOtp)]);
    flow.handle(&FlowEvent::VerificationFailed {
        attempt: AttemptId(2),
        error: StepUpError::WrongVerificationToken { channel: OtpChannel::Email },
    });
    assert_eq!(flow.state().name(), "prompting");
    assert!(flow.pending_otp().is_some());
}

#[test]
fn clones_have_their_own_state_but_share_the_token_cell() {
    let (mut flow, _) = flow();
    let snapshot = flow.clone();
    flow.handle(&checked(mfa_options()));
    assert_eq!(snapshot.state(), &FlowState::Idle {});
    assert_eq!(flow.state().name(), "required");
    flow.tokens().insert((*token(&export(), NOW.plus_secs(60), false, "shared")).clone());
    assert!(snapshot.tokens().get(&Scope::WalletExport).is_some(), "the cell is shared, as documented");
}

#[test]
fn a_running_verification_is_not_dropped_for_a_flow_for_other_scopes() {
    let (mut flow, _) = flow();
    drive(&mut flow, &[checked(mfa_options()), opened(Route::Mfa), started(Method::Totp)]);
    let other = ScopeSet::one(Scope::WalletSign);
    assert_eq!(flow.handle(&FlowEvent::FlowRequested { scopes: other }), Effect::Refused(StepUpError::Busy));
    assert_eq!(flow.state().name(), "verifying", "the verification runs on");
    assert_eq!(flow.handle(&FlowEvent::FlowRequested { scopes: export() }), Effect::None, "the same flow");
    assert!(matches!(flow.handle(&verified(1, "t1", 60, false)), Effect::Elevated(_)));
}

#[test]
fn a_result_forgets_the_code_it_answered_not_a_newer_one() {
    let (mut flow, _) = flow();
    drive(&mut flow, &[checked(reauth_options()), opened(Route::Reauthenticate), email_sent()]);
    drive(&mut flow, &[started(Method::EmailOtp)]);
    // While code v-1 is checked, the app sends another: v-2 is the code the server now answers for.
    let newer = OtpVerification {
        id: VerificationId::new("v-2"),
        channel: OtpChannel::Email,
        destination_masked: "a***@example.com".into(),
    };
    flow.handle(&FlowEvent::OtpSent { verification: newer });
    let dead = StepUpError::InvalidVerification { message: "expired".into() };
    flow.handle(&FlowEvent::VerificationFailed { attempt: AttemptId(1), error: dead });
    assert_eq!(flow.pending_otp().unwrap().id.as_str(), "v-2", "v-1 died; v-2 lives");
    let Effect::Verify { otp, .. } = flow.handle(&started(Method::EmailOtp)) else { panic!() };
    assert_eq!(otp.unwrap().id.as_str(), "v-2");
    flow.handle(&verified(2, "t2", 60, false));
    assert_eq!(flow.pending_otp(), None, "v-2 was used");
}
