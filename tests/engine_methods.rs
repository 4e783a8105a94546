//! Each of the five methods elevates through the engine, against the real reference server, and the stored
//! token opens the matching `/protected/{scope}` resource.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::{TestServer, local_wallet, passkey_engine, totp_code, totp_engine, unix_now};
use reqwest::StatusCode;
use stepup::engine::{PromptReply, PromptRequest, StepUpState};
use stepup::{Method, Scope, StepUpError};

fn assert_elevated_for(state: &StepUpState, scope: &Scope) {
    match state {
        StepUpState::Elevated { scopes, .. } => assert!(scopes.contains(scope), "{state:?}"),
        other => panic!("expected elevated, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_code_elevates_and_opens_the_resource() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let engine = h.engine(&user).await;
    let scope = Scope::WalletExport;

    assert!(engine.is_step_up_required(scope.clone()).await.unwrap());
    assert!(matches!(engine.state(), StepUpState::Required { .. }), "{:?}", engine.state());
    let sent = engine.send_otp(None).await.unwrap();
    assert!(sent.destination_masked.contains("***@example.com"), "{}", sent.destination_masked);
    let code = h.last_code(&user.email).await;
    let info = engine.verify_otp(code.as_str(), std::slice::from_ref(&scope)).await.unwrap();
    assert!(info.single_use, "wallet:export tokens are single-use by the default policy");
    assert_elevated_for(&engine.state(), &scope);
    // A covering token answers without asking the server.
    assert!(!engine.is_step_up_required(scope.clone()).await.unwrap());

    let token = engine.token_for(&scope).expect("the token is stored");
    assert_eq!(token.id(), &info.id);
    assert_eq!(h.open_protected(&user, &scope, &token).await, StatusCode::OK);
    // Single-use: taken exactly once, and the server refuses it a second time.
    assert!(engine.token_for(&scope).is_none());
    assert_eq!(h.open_protected(&user, &scope, &token).await, StatusCode::FORBIDDEN);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_code_elevates_and_opens_the_resource() {
    let h = TestServer::live().await;
    let user = h.user_with(Some("5551234567")).await;
    let engine = h.engine(&user).await;
    let scope = Scope::CredentialLink;
    let phone = user
        .user
        .verified_credentials
        .iter()
        .find(|c| c.format.as_str() == "phoneNumber")
        .expect("the phone credential")
        .id
        .clone();

    let sent = engine.send_otp(Some(stepup::CredentialId::new(phone.as_str()))).await.unwrap();
    assert!(sent.destination_masked.ends_with("4567"), "{}", sent.destination_masked);
    let code = h.last_code("+15551234567").await;
    let info = engine.verify_otp(code.as_str(), std::slice::from_ref(&scope)).await.unwrap();
    assert!(!info.single_use);
    let token = engine.token_for(&scope).unwrap();
    assert_eq!(h.open_protected(&user, &scope, &token).await, StatusCode::OK);
    // Multi-use: still there, and accepted again.
    let again = engine.token_for(&scope).unwrap();
    assert_eq!(h.open_protected(&user, &scope, &again).await, StatusCode::OK);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_wallet_signature_elevates_and_opens_the_resource() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let wallet = local_wallet();
    h.link_wallet(&user, wallet.as_ref(), false).await;
    let engine = h.engine_for(&user).wallet_signer(wallet).build().await.unwrap();
    let scope = Scope::WalletExport;

    let info = engine.verify_wallet(None, std::slice::from_ref(&scope)).await.unwrap();
    assert!(info.scopes.contains(&scope));
    let token = engine.token_for(&scope).unwrap();
    assert_eq!(h.open_protected(&user, &scope, &token).await, StatusCode::OK);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_assertion_elevates_and_opens_the_resource() {
    let h = TestServer::live().await;
    let (engine, user, passkey) = passkey_engine(&h).await;
    assert_eq!(passkey.passkey_count().await, 1);
    let scope = Scope::UserDelete;

    let check = engine.check(scope.clone()).await.unwrap();
    assert!(check.required);
    assert!(check.options.methods().contains(&Method::Passkey), "{:?}", check.options);
    let info = engine.verify_passkey_mfa(std::slice::from_ref(&scope)).await.unwrap();
    assert!(info.single_use);
    let token = engine.token_for(&scope).unwrap();
    assert_eq!(h.open_protected(&user, &scope, &token).await, StatusCode::OK);
    // The authenticator's signature counter moved on: a second assertion is accepted too.
    engine.verify_passkey_mfa(std::slice::from_ref(&scope)).await.unwrap();
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_code_elevates_and_opens_the_resource() {
    let h = TestServer::live().await;
    let (engine, user, _device, secret) = totp_engine(&h).await;
    let scope = Scope::WalletExport;

    let code = totp_code(&secret, unix_now());
    let info = engine.verify_totp_mfa(code.as_str(), None, std::slice::from_ref(&scope)).await.unwrap();
    assert!(info.scopes.contains(&scope));
    let token = engine.token_for(&scope).unwrap();
    assert_eq!(h.open_protected(&user, &scope, &token).await, StatusCode::OK);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_code_elevates_once_and_opens_the_resource() {
    let h = TestServer::live().await;
    let (engine, user, _device, _secret) = totp_engine(&h).await;
    // The device's first code was an MFA verification: its answer re-signed the session, the engine adopted it,
    // and that session may read the recovery codes.
    let codes = engine.api().recovery_codes().await.unwrap();
    let code = codes.recovery_codes.first().expect("ten codes on first read").expose_secret().to_owned();
    let scope = Scope::WalletExport;

    engine.verify_recovery_code(code.as_str(), std::slice::from_ref(&scope)).await.unwrap();
    let token = engine.token_for(&scope).unwrap();
    assert_eq!(h.open_protected(&user, &scope, &token).await, StatusCode::OK);
    // A recovery code is spent by its first use.
    let error = engine.verify_recovery_code(code.as_str(), std::slice::from_ref(&scope)).await.unwrap_err();
    assert_eq!(error, StepUpError::MfaInvalidCode);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_flow_runs_the_email_route_through_the_front_end() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;
    let scope = Scope::WalletExport;

    let waiting = common::spawn_prompt(&engine, std::slice::from_ref(&scope), false);
    // One email credential: no method choice, the code is sent at once.
    let (request, reply) = common::next_prompt(&mut inbox).await;
    let PromptRequest::EnterOtp { destination_masked, .. } = request else {
        panic!("expected EnterOtp, got {request:?}");
    };
    assert!(destination_masked.ends_with("@example.com"));
    assert!(matches!(engine.state(), StepUpState::Verifying { .. } | StepUpState::Prompting { .. }));
    // A wrong code first: the front end hears why and how many tries are left.
    assert!(reply.answer(PromptReply::Code("000000".into())));
    let (request, reply) = common::next_prompt(&mut inbox).await;
    assert!(
        matches!(request, PromptRequest::Failed { error: StepUpError::WrongVerificationToken { .. }, .. }),
        "{request:?}"
    );
    assert!(reply.answer(PromptReply::Confirm));
    let (request, reply) = common::next_prompt(&mut inbox).await;
    assert!(matches!(request, PromptRequest::EnterOtp { .. }), "{request:?}");
    let code = common::pending_code(&h, &engine, &user.email).await;
    assert!(reply.answer(PromptReply::Code(code.as_str().into())));

    let info = waiting.await.unwrap().unwrap();
    assert!(info.scopes.contains(&scope));
    assert_elevated_for(&engine.state(), &scope);
    let token = engine.token_for(&scope).unwrap();
    assert_eq!(h.open_protected(&user, &scope, &token).await, StatusCode::OK);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_mfa_runs_totp_and_mfa_users_cannot_reauthenticate() {
    let h = TestServer::live().await;
    let (_registering, user, _device, secret) = totp_engine(&h).await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;
    let scope = Scope::WalletExport;

    // Dynamic's rule: a user with MFA methods steps up by MFA only.
    let error = engine.prompt_reauthenticate(std::slice::from_ref(&scope)).await.unwrap_err();
    assert_eq!(error, StepUpError::ReauthenticationNotAllowed);
    // The server sends the code, but refuses to elevate by it (`mfa_required`).
    engine.send_otp(None).await.unwrap();
    let code = h.last_code(&user.email).await;
    let error = engine.verify_otp(code.as_str(), std::slice::from_ref(&scope)).await.unwrap_err();
    assert_eq!(error, StepUpError::ReauthenticationNotAllowed);

    let waiting = common::spawn_prompt(&engine, std::slice::from_ref(&scope), true);
    let (request, reply) = common::next_prompt(&mut inbox).await;
    assert_eq!(request, PromptRequest::EnterTotp);
    assert!(reply.answer(PromptReply::Code(totp_code(&secret, unix_now()).as_str().into())));
    let info = waiting.await.unwrap().unwrap();
    assert!(info.scopes.contains(&scope));
    assert_elevated_for(&engine.state(), &scope);
    h.shutdown().await;
}

/// A signer on another chain than the credential it names (a Solana connector naming the user's EVM wallet).
struct OtherChain(std::sync::Arc<stepup::engine::LocalWalletSigner>, &'static str);

#[async_trait::async_trait]
impl stepup::engine::WalletSigner for OtherChain {
    fn address(&self) -> String {
        self.0.address()
    }
    fn chain(&self) -> String {
        self.1.to_owned()
    }
    fn wallet_name(&self) -> String {
        self.0.wallet_name()
    }
    async fn sign_message(&self, message: &str) -> Result<String, stepup::engine::SignerError> {
        self.0.sign_message(message).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_wallet_matches_its_signer_across_chain_spellings() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let wallet = local_wallet();
    h.link_wallet(&user, wallet.as_ref(), false).await;
    // The server answers Dynamic's credential chain name; the signer names its connector chain.
    let credential = h
        .engine(&user)
        .await
        .api()
        .user()
        .await
        .unwrap()
        .verified_credentials
        .into_iter()
        .find(|c| c.format.as_str() == "blockchain")
        .unwrap();
    assert_eq!(credential.chain.as_deref(), Some("eip155"));
    assert_eq!(stepup::engine::WalletSigner::chain(wallet.as_ref()), "EVM");
    let id = stepup::CredentialId::new(credential.id.as_str());
    let scope = Scope::WalletSign;
    let engine = h.engine_for(&user).wallet_signer(wallet.clone()).build().await.unwrap();
    engine.verify_wallet(Some(id.clone()), std::slice::from_ref(&scope)).await.unwrap();
    // Spelled as the credential spells it, the signer still matches.
    let engine = h
        .engine_for(&user)
        .wallet_signer(std::sync::Arc::new(OtherChain(wallet.clone(), "eip155")))
        .build()
        .await
        .unwrap();
    engine.verify_wallet(Some(id.clone()), &[Scope::WalletExport]).await.unwrap();
    // Another chain is not this wallet, whatever the address.
    let engine = h
        .engine_for(&user)
        .wallet_signer(std::sync::Arc::new(OtherChain(wallet, "SOL")))
        .build()
        .await
        .unwrap();
    let error = engine.verify_wallet(Some(id), std::slice::from_ref(&scope)).await.unwrap_err();
    assert_eq!(error, StepUpError::WalletNotLinked);
    h.shutdown().await;
}
