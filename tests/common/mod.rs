//! End-to-end harness: the real reference server on `127.0.0.1:0` (SQLite in memory, system clock), users
//! seeded through its admin API, and engines built against it. Nothing here stands in for the server: the
//! only fakes are for things outside this repo (the OTP outbox instead of an SMS gateway, a local wallet key,
//! a software passkey), and they are real implementations.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use stepup::engine::{
    ChannelFrontend, FrontendEvent, FrontendInbox, LocalWalletSigner, PendingPrompt, PromptRequest,
    SoftwarePasskey, StepUpAuth, StepUpAuthBuilder, WalletSigner,
};
use stepup::proto::SdkUser;
use stepup::{ElevatedToken, Scope, SecretString};
use stepup_server::routes::{AdminSession, CreateUserRequest, OutboxMessage};
use stepup_server::{Server, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

pub const ENV: &str = "dev";
pub const ADMIN: &str = "e2e-admin-token";
/// The origin of the server's dev environment (WebAuthn RP origin, wallet message URI).
pub const ORIGIN: &str = "http://localhost";

/// The reference server and an HTTP client for the admin API and the protected resources.
pub struct Harness {
    pub server: Server,
    pub http: reqwest::Client,
}

/// A signed-in user: the server's record, the session JWT and the email address.
pub struct TestUser {
    pub user: SdkUser,
    pub jwt: String,
    pub email: String,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server whose dev environment `configure` may change (policy TTLs, scopes...).
    pub async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> Self {
        let mut config = ServerConfig::dev(ENV);
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.admin_token = Some(SecretString::new(ADMIN));
        // One key-encryption key for every start, as a deployment has: a test that restarts the server on the
        // same database must open its sealed keys again (`--dev` alone would make a new one each start).
        config.key_encryption_key_value = Some(
            stepup_server::key_encryption::KeyEncryptionKey::parse(
                "6b65792d656e6372797074696f6e2d6b65792d666f722d746573747321212121",
            )
            .unwrap(),
        );
        configure(&mut config);
        let server = Server::start(config).await.expect("the reference server starts");
        // This harness's own reqwest client needs a TLS provider (see the function's docs), though it speaks
        // plain HTTP on loopback.
        stepup::engine::install_default_crypto_provider();
        Self { server, http: reqwest::Client::new() }
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// An engine builder pointed at this server for `user`.
    pub fn engine_for(&self, user: &TestUser) -> StepUpAuthBuilder {
        StepUpAuth::builder(self.base_url(), ENV).session(user.jwt.as_str())
    }

    /// An engine for `user` whose front end is a [`ChannelFrontend`] the test plays the person through.
    pub async fn prompted_engine(&self, user: &TestUser) -> (StepUpAuth, PromptInbox) {
        let (frontend, inbox) = frontend();
        (self.engine_for(user).frontend(frontend).build().await.expect("the engine builds"), inbox)
    }

    /// An engine for `user` with the builder's defaults.
    pub async fn engine(&self, user: &TestUser) -> StepUpAuth {
        self.engine_for(user).build().await.expect("the engine builds")
    }

    async fn admin_post(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.http
            .post(format!("{}/admin/environments/{ENV}{path}", self.base_url()))
            .bearer_auth(ADMIN)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// A new user with a unique email address (and a phone when `phone` is given), signed in.
    pub async fn user_with(&self, phone: Option<&str>) -> TestUser {
        let tag = stepup_server::random::hex(&stepup_server::random::bytes::<5>().unwrap());
        let email = format!("u{tag}@example.com");
        let request = CreateUserRequest {
            email: Some(email.clone()),
            phone_number: phone.map(str::to_owned),
            ..Default::default()
        };
        let response = self.admin_post("/users", &serde_json::to_value(&request).unwrap()).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        let user: SdkUser = serde_json::from_str(&body).unwrap();
        let response = self.admin_post(&format!("/users/{}/sessions", user.id), &serde_json::json!({})).await;
        assert_eq!(response.status(), StatusCode::OK);
        let session: AdminSession = response.json().await.unwrap();
        TestUser { user, jwt: session.jwt.expose_secret().to_owned(), email }
    }

    pub async fn user(&self) -> TestUser {
        self.user_with(None).await
    }

    /// Another session JWT for `user` (what an app's own refresh would hand it).
    pub async fn session_of(&self, user: &TestUser) -> String {
        let response =
            self.admin_post(&format!("/users/{}/sessions", user.user.id), &serde_json::json!({})).await;
        assert_eq!(response.status(), StatusCode::OK);
        let session: AdminSession = response.json().await.unwrap();
        session.jwt.expose_secret().to_owned()
    }

    /// Links `signer`'s address to `user` as an external (or embedded) wallet.
    pub async fn link_wallet(&self, user: &TestUser, signer: &dyn WalletSigner, embedded: bool) {
        let request = stepup_demo::link_wallet_request(signer, embedded);
        let path = format!("/users/{}/wallets", user.user.id);
        let response = self.admin_post(&path, &serde_json::to_value(&request).unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
    }

    /// The code of the newest message sent to `to` (an email address or `+<cc><number>`).
    pub async fn last_code(&self, to: &str) -> String {
        // Newest first, to the second: a test that sends several codes within a second uses `code_of`.
        self.outbox(to).await.into_iter().next().expect("a code was sent").code
    }

    /// The code of the verification `sent` (sent to `to`).
    pub async fn code_of(&self, to: &str, sent: &stepup::OtpVerification) -> String {
        let messages = self.outbox(to).await;
        let id = sent.id.as_str();
        messages.into_iter().find(|m| m.verification_uuid == id).expect("the code was sent").code
    }

    /// How many codes were sent to `to`.
    pub async fn outbox_len(&self, to: &str) -> usize {
        self.outbox(to).await.len()
    }

    async fn outbox(&self, to: &str) -> Vec<OutboxMessage> {
        let response = self
            .http
            .get(format!("{}/admin/environments/{ENV}/outbox", self.base_url()))
            .query(&[("to", to)])
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
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

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// The engine's email route end to end: send a code, read it from the outbox, verify it for `scopes`.
pub async fn elevate_by_email(h: &Harness, engine: &StepUpAuth, user: &TestUser, scopes: &[Scope]) {
    let sent = engine.send_otp(None).await.expect("the code is sent");
    let code = h.code_of(&user.email, &sent).await;
    engine.verify_otp(code.as_str(), scopes).await.expect("the right code elevates");
}

/// The code of the one-time code the engine's running flow is waiting for (as a prompt's `EnterOtp` shows).
pub async fn pending_code(h: &Harness, engine: &StepUpAuth, to: &str) -> String {
    let snapshot = engine.snapshot().await.expect("the engine answers");
    let sent = snapshot.pending_otp.unwrap_or_else(|| panic!("no code pending in {:?}", snapshot.state));
    h.code_of(to, &sent).await
}

/// The TOTP code for `secret` (base32) at Unix time `at` (what the person's authenticator app shows).
pub fn totp_code(secret: &str, at: u64) -> String {
    stepup_demo::totp_code(secret, at).unwrap()
}

pub fn unix_now() -> u64 {
    stepup_demo::unix_now()
}

/// A user with a verified TOTP device, registered through the engine itself: an email code elevates
/// `credential:link`, the engine's API client registers the device with that token, and the first code (of the
/// previous 30-second step, so the current step stays fresh for the test) verifies it.
/// Returns the engine, the user, the device id and the secret.
pub async fn totp_user(h: &Harness) -> (StepUpAuth, TestUser, String, String) {
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
pub async fn passkey_user(h: &Harness) -> (StepUpAuth, TestUser, Arc<SoftwarePasskey>) {
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

/// A TCP proxy in front of `target` that holds every new connection for a delay before passing bytes on: a
/// slow server, made of the real one. The delay can be changed while it runs.
pub struct SlowProxy {
    pub addr: SocketAddr,
    delay_ms: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl SlowProxy {
    pub async fn start(target: SocketAddr, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let delay_ms = Arc::new(AtomicU64::new(u64::try_from(delay.as_millis()).unwrap()));
        let delay = delay_ms.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let wait = Duration::from_millis(delay.load(Ordering::Relaxed));
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { addr, delay_ms, task }
    }

    /// The delay for connections accepted from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(u64::try_from(delay.as_millis()).unwrap(), Ordering::Relaxed);
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A wallet signer that panics on its first signature (a crashing wallet bridge), then signs with `inner`.
pub struct PanicOnceSigner {
    pub inner: Arc<LocalWalletSigner>,
    pub panicked: Mutex<bool>,
}

#[async_trait::async_trait]
impl WalletSigner for PanicOnceSigner {
    fn address(&self) -> String {
        self.inner.address()
    }

    fn wallet_name(&self) -> String {
        self.inner.wallet_name()
    }

    async fn sign_message(&self, message: &str) -> Result<String, stepup::engine::SignerError> {
        let first = {
            let mut panicked = self.panicked.lock().await;
            !std::mem::replace(&mut *panicked, true)
        };
        if first {
            panic!("the wallet bridge crashed");
        }
        self.inner.sign_message(message).await
    }
}

/// A signer for a wallet the app embeds: it must never be asked to sign.
pub struct EmbeddedSigner(pub Arc<LocalWalletSigner>);

#[async_trait::async_trait]
impl WalletSigner for EmbeddedSigner {
    fn address(&self) -> String {
        self.0.address()
    }

    fn wallet_name(&self) -> String {
        "dynamicwaas".to_owned()
    }

    fn is_embedded(&self) -> bool {
        true
    }

    async fn sign_message(&self, _message: &str) -> Result<String, stepup::engine::SignerError> {
        panic!("an embedded wallet must never be asked to sign for step-up");
    }
}
