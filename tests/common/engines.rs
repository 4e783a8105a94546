//! The engine's side of the harness: engines built against a [`TestServer`], the person played through a
//! `ChannelFrontend`, and the factors enrolled through the engine itself.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use stepup::engine::{
    ChannelFrontend, FrontendEvent, FrontendInbox, LocalWalletSigner, PendingPrompt, PromptRequest,
    SoftwarePasskey, StepUpAuth, StepUpAuthBuilder, WalletSigner,
};
use stepup::{ElevatedToken, Scope};

use super::{ENV, ORIGIN, TestServer, TestUser, totp_code, unix_now};

impl TestServer {
    /// An engine builder pointed at this server for `user`.
    pub fn engine_for(&self, user: &TestUser) -> StepUpAuthBuilder {
        StepUpAuth::builder(self.base_url(), ENV).session(user.jwt.as_str())
    }

    /// An engine for `user` whose front end is a [`ChannelFrontend`] the test plays the person through.
    pub async fn prompted_engine(&self, user: &TestUser) -> (StepUpAuth, PromptInbox) {
        let (frontend, inbox) = frontend();
        (self.engine_for(user).frontend(frontend).build().await.expect("the engine builds"), inbox)
    }

    /// An engine for `user` that can do everything MFA management asks of one: a [`ChannelFrontend`] the test
    /// plays the person through (step-ups on demand, guided enrolments) and a software passkey.
    pub async fn managing_engine(&self, user: &TestUser) -> (StepUpAuth, PromptInbox, Arc<SoftwarePasskey>) {
        let (frontend, inbox) = frontend();
        let passkey = Arc::new(SoftwarePasskey::new(ORIGIN).unwrap());
        let engine = self
            .engine_for(user)
            .frontend(frontend)
            .passkey_authenticator(passkey.clone())
            .build()
            .await
            .expect("the engine builds");
        (engine, inbox, passkey)
    }

    /// An engine for `user` with the builder's defaults.
    pub async fn engine(&self, user: &TestUser) -> StepUpAuth {
        self.engine_for(user).build().await.expect("the engine builds")
    }

    /// Links `signer`'s address to `user` as an external (or embedded) wallet.
    pub async fn link_wallet(&self, user: &TestUser, signer: &dyn WalletSigner, embedded: bool) {
        let request = stepup_demo::link_wallet_request(signer, embedded);
        let path = format!("/users/{}/wallets", user.user.id);
        let response = self.admin_post(&path, &request).await;
        assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
    }

    /// The code of the verification `sent` (sent to `to`).
    pub async fn code_of(&self, to: &str, sent: &stepup::OtpVerification) -> String {
        let messages = self.outbox(to).await;
        let id = sent.id.as_str();
        messages.into_iter().find(|m| m.verification_uuid == id).expect("the code was sent").code
    }

    /// Calls `/protected/{scope}` with the session and `token` in the elevated-token header: the status.
    pub async fn open_protected(&self, user: &TestUser, scope: &Scope, token: &ElevatedToken) -> StatusCode {
        self.http
            .post(format!("{}/sdk/{ENV}/protected/{}", self.base_url(), scope.as_str()))
            .bearer_auth(&user.jwt)
            .header("x-dyn-elevated-access-token", token.raw().expose_secret())
            .send()
            .await
            .unwrap()
            .status()
    }
}

/// The engine's email route end to end: send a code, read it from the outbox, verify it for `scopes`.
pub async fn elevate_by_email(h: &TestServer, engine: &StepUpAuth, user: &TestUser, scopes: &[Scope]) {
    let sent = engine.send_otp(None).await.expect("the code is sent");
    let code = h.code_of(&user.email, &sent).await;
    engine.verify_otp(code.as_str(), scopes).await.expect("the right code elevates");
}

/// The code of the one-time code the engine's running flow is waiting for (as a prompt's `EnterOtp` shows).
pub async fn pending_code(h: &TestServer, engine: &StepUpAuth, to: &str) -> String {
    let snapshot = engine.snapshot().await.expect("the engine answers");
    let sent = snapshot.pending_otp.unwrap_or_else(|| panic!("no code pending in {:?}", snapshot.state));
    h.code_of(to, &sent).await
}

/// A user with a verified TOTP device, registered through the engine itself: an email code elevates
/// `credential:link`, the engine's API client registers the device with that token, and the first code (of the
/// previous 30-second step, so the current step stays fresh for the test) verifies it.
/// Returns the engine, the user, the device id and the secret.
pub async fn totp_engine(h: &TestServer) -> (StepUpAuth, TestUser, String, String) {
    let user = h.user().await;
    let engine = h.engine(&user).await;
    elevate_by_email(h, &engine, &user, &[Scope::CredentialLink]).await;
    let link = engine.token_for(&Scope::CredentialLink).expect("a credential:link token");
    let registration = engine.api().register_totp(Some(link.raw())).await.expect("TOTP registration starts");
    let secret = registration.secret.expose_secret().to_owned();
    let first = totp_code(&secret, unix_now() - 30);
    let device = stepup::CredentialId::new(registration.id.as_str());
    engine
        .verify_totp_mfa(first.as_str(), Some(device), &[Scope::CredentialLink])
        .await
        .expect("the first code verifies the device");
    (engine, user, registration.id, secret)
}

/// A user with a passkey registered through the engine (email code for `credential:link`, then the software
/// authenticator's attestation), and the engine holding that authenticator.
pub async fn passkey_engine(h: &TestServer) -> (StepUpAuth, TestUser, Arc<SoftwarePasskey>) {
    let user = h.user().await;
    let passkey = Arc::new(SoftwarePasskey::new(ORIGIN).unwrap());
    let engine =
        h.engine_for(&user).passkey_authenticator(passkey.clone()).build().await.expect("the engine builds");
    elevate_by_email(h, &engine, &user, &[Scope::CredentialLink]).await;
    let link = engine.token_for(&Scope::CredentialLink).expect("a credential:link token");
    let options = engine.api().passkey_registration_options().await.expect("registration options");
    let attestation = stepup::engine::PasskeyAuthenticator::register(passkey.as_ref(), &options)
        .await
        .expect("attestation");
    engine
        .api()
        .register_passkey(&attestation, Some(link.raw()))
        .await
        .expect("the server saves the passkey");
    (engine, user, passkey)
}

/// A wallet signer with a fresh local key.
pub fn local_wallet() -> Arc<LocalWalletSigner> {
    Arc::new(LocalWalletSigner::random("metamask").unwrap())
}

/// The engine's [`ChannelFrontend`] with the test's end of it: the test plays the person, the way a game or kiosk
/// runtime drives its own UI.
pub fn frontend() -> (Arc<ChannelFrontend>, PromptInbox) {
    let (frontend, inbox) = ChannelFrontend::new();
    (frontend, PromptInbox { inbox, outcomes: Vec::new() })
}

/// The test's end of a [`ChannelFrontend`]: prompts in order, with the flows' end notices kept aside.
pub struct PromptInbox {
    inbox: FrontendInbox,
    /// How each flow ended, as `Frontend::finished` reported it, in order.
    pub outcomes: Vec<Result<stepup::TokenInfo, stepup::StepUpError>>,
}

impl PromptInbox {
    fn keep(&mut self, event: FrontendEvent) -> Option<PendingPrompt> {
        match event {
            FrontendEvent::Prompt(prompt) => Some(prompt),
            FrontendEvent::Finished(outcome) => {
                self.outcomes.push(outcome);
                None
            }
            other => panic!("unexpected front-end event {other:?}"),
        }
    }

    /// A prompt already waiting, without waiting for one.
    pub fn try_next_prompt(&mut self) -> Option<PendingPrompt> {
        while let Some(event) = self.inbox.try_next() {
            if let Some(prompt) = self.keep(event) {
                return Some(prompt);
            }
        }
        None
    }

    /// Waits (up to 5 s) until `finished` has reported `count` outcomes, and returns them.
    pub async fn outcomes_after(
        &mut self,
        count: usize,
    ) -> Vec<Result<stepup::TokenInfo, stepup::StepUpError>> {
        while self.outcomes.len() < count {
            let event = tokio::time::timeout(Duration::from_secs(5), self.inbox.next())
                .await
                .unwrap_or_else(|_| panic!("the front end heard of fewer than {count} finished flows"))
                .expect("the front end is alive");
            if let Some(prompt) = self.keep(event) {
                panic!("a prompt while waiting for end notices: {:?}", prompt.request());
            }
        }
        self.outcomes.clone()
    }
}

/// Starts `prompt_step_up_auth` (or `prompt_mfa` with `mfa`) for `scopes` on a task of its own, as an app's
/// request handler would; the test then plays the person through the front end.
pub fn spawn_prompt(
    engine: &StepUpAuth,
    scopes: &[Scope],
    mfa: bool,
) -> tokio::task::JoinHandle<Result<stepup::TokenInfo, stepup::StepUpError>> {
    let engine = engine.clone();
    let scopes = scopes.to_vec();
    tokio::spawn(async move {
        if mfa { engine.prompt_mfa(&scopes).await } else { engine.prompt_step_up_auth(&scopes).await }
    })
}

/// The next prompt request and its pending answer, or a panic after 10 seconds.
pub async fn next_prompt(inbox: &mut PromptInbox) -> (PromptRequest, PendingPrompt) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, inbox.inbox.next())
            .await
            .expect("a prompt within 10 s")
            .expect("the front end is alive");
        if let Some(prompt) = inbox.keep(event) {
            return (prompt.request().clone(), prompt);
        }
    }
}
