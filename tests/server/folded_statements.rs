//! Statements folded together for speed (issue 18: each statement is a hand-off to the database) answer what the
//! statements they replace answered.

use crate::common;

use common::{Backend, TestServer, TotpUser, assert_error, totp_code};
use reqwest::StatusCode;
use serde_json::json;
use stepup_server::store::{TotpAttempt, TotpAttemptRequest};

/// An accepted TOTP step ends the run of MFA failures in the same round trip; a replayed step does not (it is a
/// failure, counted like any other).
async fn an_accepted_step_ends_the_run_of_failures_and_a_replayed_one_does_not(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TotpUser { jwt, secret, .. } = server.totp_user().await;
    let now = server.now().as_secs();
    let good = totp_code(&secret, now);
    let bad = if good == "000000" { "111111" } else { "000000" };
    let fail = async |expected: &str| {
        let response = server.post("/users/mfa/auth/totp", Some(&jwt), &json!({"code": bad})).await;
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, expected).await;
    };
    for _ in 0..4 {
        fail("mfa_invalid_code").await;
    }
    let response = server.post("/users/mfa/auth/totp", Some(&jwt), &json!({"code": good})).await;
    assert_eq!(response.status(), StatusCode::OK);
    // Four more failures do not lock: the success ended the first four's run.
    for _ in 0..4 {
        fail("mfa_invalid_code").await;
    }
    // The replayed code is the fifth failure of this run, and locks.
    let response = server.post("/users/mfa/auth/totp", Some(&jwt), &json!({"code": good})).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "lock_too_many_attempts").await;
    server.shutdown().await;
}

/// The user and their credentials in one statement: the same rows as the two statements, in the same order;
/// nothing for an unknown user or another environment's.
async fn the_user_with_credentials_is_the_user_and_the_credentials(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user_with(Some("5557654321")).await;
    let store = server.server.state().store().clone();
    let both = store.user_with_credentials(common::ENV, &user.user.id).await.unwrap().unwrap();
    let alone = store.user(common::ENV, &user.user.id).await.unwrap().unwrap();
    let credentials = store.credentials(&user.user.id).await.unwrap();
    assert_eq!(credentials.len(), 2, "an email and a phone number");
    assert_eq!(both, (alone, credentials));
    assert_eq!(store.user_with_credentials(common::ENV, "no-such-user").await.unwrap(), None);
    assert_eq!(store.user_with_credentials("another-environment", &user.user.id).await.unwrap(), None);
    server.shutdown().await;
}

/// A TOTP attempt settled in one round trip (the reservation and the step, one transaction on a SQLite file)
/// answers as the reservation and the step did one after the other: wrong codes count; a right code counted
/// beyond the limit is not looked at and its step stays unspent; a right code within it is accepted and ends the
/// run; its replay counts; nothing is counted while locked.
async fn a_settled_totp_attempt_is_the_reservation_then_the_step(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TotpUser { user, device, .. } = server.totp_user().await;
    let store = server.server.state().store().clone();
    let now = stepup_server::store::secs(server.now());
    let last_step = async || store.totp_devices(&user.id).await.unwrap()[0].last_step.unwrap();
    let enrolled_step = last_step().await;
    let next_step = enrolled_step + 1;
    let attempt =
        |step| TotpAttemptRequest { user_id: &user.id, device_id: &device, step, now, max_failures: 5 };
    for failures in 1..=5 {
        assert_eq!(store.settle_totp_attempt(&attempt(None)).await.unwrap(), TotpAttempt::Failed(failures));
    }
    assert_eq!(store.settle_totp_attempt(&attempt(Some(next_step))).await.unwrap(), TotpAttempt::OverLimit);
    assert_eq!(last_step().await, enrolled_step, "a code beyond the limit spends no step");

    store.mfa_succeeded(&user.id).await.unwrap();
    assert_eq!(store.settle_totp_attempt(&attempt(Some(next_step))).await.unwrap(), TotpAttempt::Accepted);
    assert_eq!(last_step().await, next_step);
    assert_eq!(
        store.settle_totp_attempt(&attempt(None)).await.unwrap(),
        TotpAttempt::Failed(1),
        "the run ended"
    );
    assert_eq!(store.settle_totp_attempt(&attempt(Some(next_step))).await.unwrap(), TotpAttempt::Failed(2));

    store.mfa_lock(&user.id, now + 900).await.unwrap();
    let locked = TotpAttempt::Locked { until: now + 900 };
    assert_eq!(store.settle_totp_attempt(&attempt(Some(next_step + 1))).await.unwrap(), locked);
    assert_eq!(last_step().await, next_step, "nothing is spent while locked");
    server.shutdown().await;
}

on_both_databases!(
    an_accepted_step_ends_the_run_of_failures_and_a_replayed_one_does_not,
    the_user_with_credentials_is_the_user_and_the_credentials,
    a_settled_totp_attempt_is_the_reservation_then_the_step
);
