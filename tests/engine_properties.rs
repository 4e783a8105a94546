//! Property test of the real engine against the real reference server: random sequences of facade calls
//! (checks, codes right and wrong, wallet signatures, token use, cancel, reset, a reset or cancel racing a verification),
//! with the flow machine's invariants checked on every state the coordinator publishes and on a consistent
//! snapshot after every call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use common::{TestServer, TestUser, local_wallet};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use stepup::engine::{StepUpAuth, StepUpState};
use stepup::{OtpVerification, Scope, ScopeSet, StepUpError, TokenId, UnixTime};
use stepup_core::testkit::invariants::check_state;

/// Two multi-use scopes and two single-use ones (by the server's default policy).
fn arb_scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        Just(Scope::CredentialLink),
        Just(Scope::WalletExport),
        Just(Scope::UserDelete),
        Just(Scope::WalletSign),
    ]
}

fn arb_scopes() -> impl Strategy<Value = Vec<Scope>> {
    proptest::collection::vec(arb_scope(), 1..=2)
}

#[derive(Debug, Clone)]
enum Op {
    Check(Scope),
    SendOtp,
    VerifyOtp {
        right: bool,
        scopes: Vec<Scope>,
    },
    VerifyWallet(Vec<Scope>),
    TokenFor(Scope),
    Cancel,
    Reset,
    /// A wallet verification with a reset sent right behind it: whichever wins, no stale token may appear.
    ResetDuringWallet(Vec<Scope>),
    /// The same with a cancel, which keeps the tokens: the stale result must still never be stored.
    CancelDuringWallet(Vec<Scope>),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => arb_scope().prop_map(Op::Check),
        2 => Just(Op::SendOtp),
        3 => (any::<bool>(), arb_scopes()).prop_map(|(right, scopes)| Op::VerifyOtp { right, scopes }),
        2 => arb_scopes().prop_map(Op::VerifyWallet),
        2 => arb_scope().prop_map(Op::TokenFor),
        1 => Just(Op::Cancel),
        1 => Just(Op::Reset),
        1 => arb_scopes().prop_map(Op::ResetDuringWallet),
        1 => arb_scopes().prop_map(Op::CancelDuringWallet),
    ]
}

fn now() -> UnixTime {
    UnixTime(common::unix_now())
}

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

/// What the test knows: the code it may type, and every token id a verification handed out.
struct Driver<'a> {
    h: &'a TestServer,
    user: TestUser,
    engine: StepUpAuth,
    sent: Option<OtpVerification>,
    issued: Arc<Mutex<HashSet<TokenId>>>,
}

impl Driver<'_> {
    async fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let before = self.engine.snapshot().await.map_err(|e| fail(e.to_string()))?;
        match op {
            Op::Check(scope) => {
                let covered = before.tokens.find(scope, now()).is_some();
                let required = self.engine.is_step_up_required(scope.clone()).await;
                prop_assert_eq!(required, Ok(!covered), "check of {} (covered: {})", scope, covered);
            }
            Op::SendOtp => match self.engine.send_otp(None).await {
                Ok(sent) => self.sent = Some(sent),
                Err(StepUpError::TooManyVerificationAttempts { .. }) => {}
                Err(other) => return Err(fail(format!("send_otp: {other:?}"))),
            },
            Op::VerifyOtp { right, scopes } => {
                let code = match (&self.sent, right) {
                    (Some(sent), true) => self.h.code_of(&self.user.email, sent).await,
                    _ => "000000".to_owned(),
                };
                let result = self.engine.verify_otp(code.as_str(), scopes).await;
                match (&result, &self.sent) {
                    (_, None) => prop_assert_eq!(result.clone().err(), Some(StepUpError::OtpNotSent)),
                    (Ok(info), Some(_)) => {
                        prop_assert!(right, "a wrong code elevated");
                        self.elevated(info, scopes)?;
                        self.sent = None;
                    }
                    (Err(StepUpError::InvalidVerification { .. }), Some(_)) => self.sent = None,
                    (Err(StepUpError::WrongVerificationToken { .. }), Some(_)) => {
                        // "000000" can be the right code once in a million.
                        prop_assert!(!right, "the right code was called wrong");
                    }
                    (Err(other), Some(_)) => return Err(fail(format!("verify_otp: {other:?}"))),
                }
            }
            Op::VerifyWallet(scopes) => {
                let info =
                    self.engine.verify_wallet(None, scopes).await.map_err(|e| fail(format!("{e:?}")))?;
                self.elevated(&info, scopes)?;
            }
            Op::TokenFor(scope) => {
                let expected = before.tokens.find(scope, now()).cloned();
                let taken = self.engine.token_for(scope);
                prop_assert_eq!(taken.as_ref().map(|t| t.id()), expected.as_ref().map(|t| t.id()));
                if let Some(token) = taken.filter(|t| t.is_single_use()) {
                    let after = self.engine.snapshot().await.map_err(|e| fail(e.to_string()))?;
                    prop_assert!(after.tokens.by_id(token.id()).is_none(), "a single-use token stayed");
                    prop_assert!(self.engine.token_for(scope).is_none_or(|t| t.id() != token.id()));
                }
            }
            Op::Cancel => self.engine.cancel().map_err(|e| fail(e.to_string()))?,
            Op::Reset => {
                self.engine.reset_state().await.map_err(|e| fail(e.to_string()))?;
                self.sent = None;
                self.assert_reset().await?;
            }
            Op::ResetDuringWallet(scopes) => {
                let verifying = {
                    let engine = self.engine.clone();
                    let scopes = scopes.clone();
                    tokio::spawn(async move { engine.verify_wallet(None, &scopes).await })
                };
                tokio::task::yield_now().await;
                self.engine.reset_state().await.map_err(|e| fail(e.to_string()))?;
                self.sent = None;
                match verifying.await.unwrap() {
                    Ok(info) => {
                        // It ran wholly before the reset (the reset emptied its token) or wholly after it (its
                        // Verify reached the coordinator second): either way it is a fresh result.
                        self.issued.lock().unwrap().insert(info.id.clone());
                        let after = self.engine.snapshot().await.map_err(|e| fail(e.to_string()))?;
                        match &after.state {
                            StepUpState::Idle {} => prop_assert!(after.tokens.is_empty()),
                            StepUpState::Elevated { token_id, .. } => {
                                prop_assert_eq!(token_id, &info.id);
                                prop_assert_eq!(after.tokens.len(), 1);
                            }
                            other => return Err(fail(format!("after a reset race: {other:?}"))),
                        }
                    }
                    Err(StepUpError::Cancelled) => {
                        // Its verification was under way when the reset came: it must never elevate. The next
                        // wallet verification queues behind it in the verifier, so once that returns the stale
                        // result has come and gone.
                        self.assert_reset().await?;
                        let fresh = self
                            .engine
                            .verify_wallet(None, scopes)
                            .await
                            .map_err(|e| fail(format!("the verification after a reset: {e:?}")))?;
                        self.elevated(&fresh, scopes)?;
                        let after = self.engine.snapshot().await.map_err(|e| fail(e.to_string()))?;
                        let ids: Vec<_> = after.tokens.tokens().iter().map(|t| t.id().clone()).collect();
                        prop_assert_eq!(ids, vec![fresh.id], "only the fresh token is stored");
                    }
                    Err(other) => return Err(fail(format!("verify_wallet racing a reset: {other:?}"))),
                }
            }
            Op::CancelDuringWallet(scopes) => {
                let verifying = {
                    let engine = self.engine.clone();
                    let scopes = scopes.clone();
                    tokio::spawn(async move { engine.verify_wallet(None, &scopes).await })
                };
                tokio::task::yield_now().await;
                self.engine.cancel().map_err(|e| fail(e.to_string()))?;
                match verifying.await.unwrap() {
                    Ok(info) => {
                        self.issued.lock().unwrap().insert(info.id);
                    }
                    Err(StepUpError::Cancelled) => {
                        // Let the stale verification finish (the next one queues behind it), then the check
                        // after this step sees whether its token was stored.
                        let fresh = self
                            .engine
                            .verify_wallet(None, scopes)
                            .await
                            .map_err(|e| fail(format!("the verification after a cancel: {e:?}")))?;
                        self.elevated(&fresh, scopes)?;
                    }
                    Err(other) => return Err(fail(format!("verify_wallet racing a cancel: {other:?}"))),
                }
            }
        }
        let after = self.engine.snapshot().await.map_err(|e| fail(e.to_string()))?;
        check_state(&after.state, &after.tokens, now()).map_err(|v| fail(v.to_string()))?;
        // Every stored token is one a verification handed to its caller: nothing stale was ever stored.
        let issued = self.issued.lock().unwrap().clone();
        for token in after.tokens.tokens() {
            prop_assert!(
                issued.contains(token.id()),
                "a token no caller received is stored: {:?}",
                token.id()
            );
        }
        Ok(())
    }

    fn elevated(&self, info: &stepup::TokenInfo, scopes: &[Scope]) -> Result<(), TestCaseError> {
        let asked: ScopeSet = scopes.iter().cloned().collect();
        prop_assert_eq!(&info.scopes, &asked, "the token grants exactly the scopes asked for");
        self.issued.lock().unwrap().insert(info.id.clone());
        match self.engine.state() {
            StepUpState::Elevated { token_id, scopes, .. } => {
                prop_assert_eq!(token_id, info.id.clone());
                prop_assert_eq!(scopes, asked);
            }
            other => return Err(fail(format!("verified but {other:?}"))),
        }
        Ok(())
    }

    async fn assert_reset(&self) -> Result<(), TestCaseError> {
        let after = self.engine.snapshot().await.map_err(|e| fail(e.to_string()))?;
        prop_assert_eq!(after.state, StepUpState::Idle {});
        prop_assert!(after.tokens.is_empty(), "reset left tokens: {:?}", after.tokens);
        Ok(())
    }
}

async fn run_case(h: &TestServer, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let user = h.user().await;
    let wallet = local_wallet();
    h.link_wallet(&user, wallet.as_ref(), false).await;
    let engine = h.engine_for(&user).wallet_signer(wallet).build().await.unwrap();
    let issued = Arc::new(Mutex::new(HashSet::new()));

    // Every published state, checked as it is published: an `elevated` state names a token a verification
    // handed out, and `expired` follows only `elevated` (no TTL runs out in this test, so never).
    let mut states = engine.subscribe();
    let watcher = {
        let issued = issued.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while states.changed().await.is_ok() {
                let state = states.borrow_and_update().clone();
                seen.push(state);
            }
            let issued = issued.lock().unwrap().clone();
            for state in &seen {
                match state {
                    StepUpState::Elevated { token_id, .. } if !issued.contains(token_id) => {
                        return Err(format!(
                            "published elevated with a token no verification returned: {state:?}"
                        ));
                    }
                    StepUpState::Expired { .. } => {
                        return Err(format!("expired without a TTL running out: {state:?}"));
                    }
                    _ => {}
                }
            }
            Ok(seen.len())
        })
    };

    let mut driver = Driver { h, user, engine, sent: None, issued };
    for op in &ops {
        driver.run(op).await.map_err(|e| fail(format!("{op:?}: {e}")))?;
    }
    drop(driver);
    // The engine is dropped: the coordinator stops, the watch channel closes, the watcher reports.
    let watched = tokio::time::timeout(std::time::Duration::from_secs(5), watcher)
        .await
        .map_err(|_| fail("the engine did not stop".into()))?
        .unwrap();
    watched.map_err(fail)?;
    Ok(())
}

#[test]
fn random_facade_calls_keep_the_flow_invariants() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let h = runtime.block_on(TestServer::live());
    // 24 sequences by default (each is a fresh user and engine on the shared server); PROPTEST_CASES overrides.
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24);
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let ops = proptest::collection::vec(arb_op(), 1..14);
    let result = runner.run(&ops, |ops| runtime.block_on(run_case(&h, ops)));
    runtime.block_on(h.shutdown());
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
