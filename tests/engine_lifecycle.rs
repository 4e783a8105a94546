//! The token lifecycle through the engine, against the real reference server: expiry observed on the watch
//! channel, single-use tokens taken exactly once, `reset_state`, late verifications, and many callers at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestServer, elevate_by_email, local_wallet};
use reqwest::StatusCode;
use stepup::engine::{SignerError, StepUpState, WalletSigner};
use stepup::{Scope, StepUpError};
use tokio::sync::Semaphore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_moves_elevated_to_expired_on_the_watch_channel() {
    let h = TestServer::live_with(|config| {
        config.environments[0].policy.multi_use_ttl_secs = 2;
    })
    .await;
    let user = h.user().await;
    let engine = h.engine(&user).await;
    let scope = Scope::CredentialLink;
    let mut states = engine.subscribe();

    elevate_by_email(&h, &engine, &user, std::slice::from_ref(&scope)).await;
    assert!(matches!(*states.borrow_and_update(), StepUpState::Elevated { .. }));
    assert!(!engine.is_step_up_required(scope.clone()).await.unwrap());

    // The coordinator's expiry timer fires within the TTL plus a second of rounding.
    let expired = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            states.changed().await.unwrap();
            if let StepUpState::Expired { scopes } = &*states.borrow_and_update() {
                break scopes.clone();
            }
        }
    })
    .await
    .expect("the state turns expired within 5 s");
    assert!(expired.contains(&scope));
    assert!(engine.token_for(&scope).is_none(), "an expired token is never handed out");
    assert!(engine.tokens().snapshot().is_empty(), "the expired token is pruned");
    // The server agrees: step-up is needed again, and the machine leaves `expired`.
    assert!(engine.is_step_up_required(scope.clone()).await.unwrap());
    assert!(matches!(engine.state(), StepUpState::Required { .. }), "{:?}", engine.state());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_use_token_is_taken_exactly_once_by_concurrent_callers() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let engine = h.engine(&user).await;
    let scope = Scope::WalletExport;
    elevate_by_email(&h, &engine, &user, std::slice::from_ref(&scope)).await;

    let takers: Vec<_> = (0..16)
        .map(|_| {
            let engine = engine.clone();
            let scope = scope.clone();
            tokio::spawn(async move { engine.token_for(&scope) })
        })
        .collect();
    let mut taken = Vec::new();
    for taker in takers {
        taken.extend(taker.await.unwrap());
    }
    assert_eq!(taken.len(), 1, "one caller gets the single-use token");
    assert_eq!(h.open_protected(&user, &scope, &taken[0]).await, StatusCode::OK);
    // The machine hears the token is spent and leaves `elevated`.
    let snapshot = engine.snapshot().await.unwrap();
    assert!(!matches!(snapshot.state, StepUpState::Elevated { .. }), "{:?}", snapshot.state);
    assert!(snapshot.tokens.is_empty());
    h.shutdown().await;
}

/// A wallet whose signature waits for the test to open a gate: a person slow to confirm.
struct GatedSigner {
    inner: Arc<stepup::engine::LocalWalletSigner>,
    gate: Arc<Semaphore>,
}

#[async_trait::async_trait]
impl WalletSigner for GatedSigner {
    fn address(&self) -> String {
        self.inner.address()
    }

    fn wallet_name(&self) -> String {
        self.inner.wallet_name()
    }

    async fn sign_message(&self, message: &str) -> Result<String, SignerError> {
        self.gate.acquire().await.expect("the gate stays open").forget();
        self.inner.sign_message(message).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_cancels_waiting_callers_and_a_late_verification_never_elevates() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let wallet = local_wallet();
    h.link_wallet(&user, wallet.as_ref(), false).await;
    let gate = Arc::new(Semaphore::new(0));
    let signer = Arc::new(GatedSigner { inner: wallet, gate: gate.clone() });
    let engine = h.engine_for(&user).wallet_signer(signer).build().await.unwrap();
    let scope = Scope::WalletExport;

    // A token for another scope, to see that reset empties the cell.
    elevate_by_email(&h, &engine, &user, &[Scope::CredentialLink]).await;
    let waiting = {
        let engine = engine.clone();
        let scope = scope.clone();
        tokio::spawn(async move { engine.verify_wallet(None, &[scope]).await })
    };
    let mut states = engine.subscribe();
    tokio::time::timeout(
        Duration::from_secs(5),
        states.wait_for(|s| matches!(s, StepUpState::Verifying { .. })),
    )
    .await
    .unwrap()
    .unwrap();
    // One verification at a time.
    let error = engine.verify_otp("123456", std::slice::from_ref(&scope)).await.unwrap_err();
    assert_eq!(error, StepUpError::Busy);

    engine.reset_state().await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap_err(), StepUpError::Cancelled);
    assert_eq!(engine.state(), StepUpState::Idle {});
    assert!(engine.tokens().snapshot().is_empty());

    // The person signs after all: the server issues a token, but the engine drops the stale result. The next
    // verification queues behind it in the wallet verifier, so when it returns the stale one has finished.
    gate.add_permits(2);
    let fresh = engine.verify_wallet(None, std::slice::from_ref(&scope)).await.unwrap();
    let snapshot = engine.snapshot().await.unwrap();
    let ids: Vec<_> = snapshot.tokens.tokens().iter().map(|t| t.id().clone()).collect();
    assert_eq!(ids, vec![fresh.id], "only the fresh verification's token is stored");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_checks() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let engine = h.engine(&user).await;
    let scopes = [Scope::WalletExport, Scope::CredentialLink, Scope::UserDelete, Scope::WalletDelete];

    let checks: Vec<_> = (0..100)
        .map(|i| {
            let engine = engine.clone();
            let scope = scopes[i % scopes.len()].clone();
            tokio::spawn(async move { engine.is_step_up_required(scope).await })
        })
        .collect();
    for check in checks {
        assert!(check.await.unwrap().unwrap(), "every scope needs step-up");
    }
    assert!(matches!(engine.state(), StepUpState::Required { .. }), "{:?}", engine.state());

    // With a token for credential:link, its checks answer from the cell: they succeed with the server gone.
    elevate_by_email(&h, &engine, &user, &[Scope::CredentialLink]).await;
    h.shutdown().await;
    let checks: Vec<_> = (0..100)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.is_step_up_required(Scope::CredentialLink).await })
        })
        .collect();
    for check in checks {
        assert!(!check.await.unwrap().unwrap(), "answered without a network call");
    }
    let error = engine.is_step_up_required(Scope::WalletExport).await.unwrap_err();
    assert!(matches!(error, StepUpError::Transport { .. }), "other scopes do ask the server: {error:?}");
}
