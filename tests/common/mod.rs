//! The one test harness: the real reference server on `127.0.0.1:0` — SQLite in memory, or PostgreSQL in a fresh
//! schema when `STEPUP_TEST_DATABASE_URL` is set — on a clock the test moves by hand or on the system clock, users
//! seeded through its admin API, and (`engines.rs`) engines built against it. The server's HTTP tests
//! (`tests/server/`) and the engine's end-to-end tests (`tests/engine_*.rs`) both use it.
//!
//! Nothing here stands in for the server: the only fakes are for things outside this repo (the OTP outbox instead
//! of an SMS gateway, a local wallet key, a software passkey, an SMTP relay), and they are real implementations.
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

pub mod engines;
pub mod fakes;
pub mod processes;
pub mod receivers;

use std::sync::Arc;

use reqwest::{Method, Response, StatusCode};
use serde::Serialize;
use serde_json::Value;
use stepup_core::{Clock, ManualClock, SystemClock, UnixTime};
use stepup_proto::{ErrorBody, SdkUser};
use stepup_server::routes::{AdminSession, CreateUserRequest, OutboxMessage};
use stepup_server::{Server, ServerConfig};

pub use engines::*;
pub use fakes::*;

/// The environment every test server serves.
pub const ENV: &str = "dev";
/// The admin token every test server takes.
pub const ADMIN: &str = "test-admin-token";
/// The origin of the dev environment (WebAuthn RP origin, wallet message URI).
pub const ORIGIN: &str = "http://localhost";
/// The key-encryption key every test server uses: replicas of one database, and a server restarted on its
/// database, must open its sealed keys again (`--dev` alone would make a new one each start).
pub const TEST_KEK: &str = "6b65792d656e6372797074696f6e2d6b65792d666f722d746573747321212121";

pub fn test_kek() -> stepup_server::key_encryption::KeyEncryptionKey {
    stepup_server::key_encryption::KeyEncryptionKey::parse(TEST_KEK).unwrap()
}

/// Which database a test runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    /// PostgreSQL from `STEPUP_TEST_DATABASE_URL`, or `None` (the test then says it was skipped; `.ci/run` sets
    /// the variable and checks the database is up).
    pub fn postgres() -> Option<Backend> {
        match std::env::var("STEPUP_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Some(Backend::Postgres(url)),
            _ => {
                eprintln!("skipped: STEPUP_TEST_DATABASE_URL is not set (PostgreSQL tests run in CI)");
                None
            }
        }
    }
}

/// A fresh schema in the test database, so tests never see each other's rows or migrations: the URL that uses
/// it, and its name.
pub async fn postgres_schema(base: &str) -> (String, String) {
    use sqlx::Executor as _;
    let schema =
        format!("stepup_t_{}", stepup_server::random::hex(&stepup_server::random::bytes::<6>().unwrap()));
    let mut conn =
        <sqlx::PgConnection as sqlx::Connection>::connect(base).await.expect("PostgreSQL reachable");
    conn.execute(format!("CREATE SCHEMA {schema}").as_str()).await.unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    (format!("{base}{sep}options=-c%20search_path%3D{schema}"), schema)
}

/// Drops a schema [`postgres_schema`] made.
pub async fn drop_postgres_schema(base: &str, schema: &str) {
    use sqlx::Executor as _;
    if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(base).await {
        let _ = conn.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await;
    }
}

/// The server's clock: moved by hand (the server's tests: code expiry, lockouts, Issued At, without sleeping),
/// or the system's (the engine's tests: the engine reads the system clock too).
#[derive(Debug, Clone)]
pub enum TestClock {
    Manual(ManualClock),
    System,
}

impl TestClock {
    pub fn now(&self) -> UnixTime {
        match self {
            TestClock::Manual(clock) => clock.now(),
            TestClock::System => SystemClock.now(),
        }
    }

    /// Sets a manual clock to `time` (a second replica's clock, set to the first's).
    pub fn set(&self, time: UnixTime) {
        match self {
            TestClock::Manual(clock) => clock.set(time),
            TestClock::System => panic!("this server runs on the system clock"),
        }
    }

    /// Moves a manual clock `secs` forward.
    pub fn advance(&self, secs: u64) {
        match self {
            TestClock::Manual(clock) => clock.advance(secs),
            TestClock::System => panic!("this server runs on the system clock"),
        }
    }

    fn shared(&self) -> stepup_core::SharedClock {
        match self {
            TestClock::Manual(clock) => Arc::new(clock.clone()),
            TestClock::System => Arc::new(SystemClock),
        }
    }
}

/// A signed-in user: the server's record, the session JWT and the email address.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub user: SdkUser,
    pub jwt: String,
    pub email: String,
}

/// A reference server and an HTTP client for its SDK and admin APIs.
pub struct TestServer {
    pub server: Server,
    pub clock: TestClock,
    pub http: reqwest::Client,
    cleanup: Option<(String, String)>,
    /// The directory of this server's SQLite file, removed at shutdown.
    sqlite_dir: Option<std::path::PathBuf>,
}

impl TestServer {
    /// A server on `backend`, on a clock the test moves (starting at the real time: TOTP codes are computed
    /// from it).
    pub async fn start(backend: &Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// [`TestServer::start`], with a dev environment that `configure` may change.
    /// SQLite is a file here, as the server ships (WAL, the store's own connections); engines' servers
    /// ([`TestServer::live`]) keep SQLite in memory.
    pub async fn start_with(backend: &Backend, configure: impl FnOnce(&mut ServerConfig)) -> Self {
        match backend {
            Backend::Sqlite => {
                let tag = stepup_server::random::hex(&stepup_server::random::bytes::<8>().unwrap());
                let dir = std::env::temp_dir().join(format!("stepup-test-{tag}"));
                std::fs::create_dir_all(&dir).unwrap();
                let url = format!("sqlite://{}", dir.join("stepup.db").display());
                let mut server = Self::start_on(url, None, configure).await;
                server.sqlite_dir = Some(dir);
                server
            }
            Backend::Postgres(base) => {
                let (url, schema) = postgres_schema(base).await;
                Self::start_on(url, Some((base.clone(), schema)), configure).await
            }
        }
    }

    /// A server on an existing database URL (a second replica, a file), on a clock the test moves. `cleanup`
    /// names a PostgreSQL schema to drop at shutdown.
    pub async fn start_on(
        url: String,
        cleanup: Option<(String, String)>,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let clock = TestClock::Manual(ManualClock::new(SystemClock.now()));
        Self::start_full(url, cleanup, clock, configure).await
    }

    /// A server on SQLite in memory and the system clock, for engines (which read the system clock too).
    pub async fn live() -> Self {
        Self::live_with(|_| {}).await
    }

    /// [`TestServer::live`], with a dev environment that `configure` may change (policy TTLs, scopes...).
    pub async fn live_with(configure: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_full("sqlite::memory:".to_owned(), None, TestClock::System, configure).await
    }

    /// A server for engines on `backend` (PostgreSQL in a fresh schema, or SQLite in memory), on the system clock.
    pub async fn live_on(backend: &Backend) -> Self {
        let (url, cleanup) = match backend {
            Backend::Sqlite => ("sqlite::memory:".to_owned(), None),
            Backend::Postgres(base) => {
                let (url, schema) = postgres_schema(base).await;
                (url, Some((base.clone(), schema)))
            }
        };
        Self::start_full(url, cleanup, TestClock::System, |_| {}).await
    }

    async fn start_full(
        url: String,
        cleanup: Option<(String, String)>,
        clock: TestClock,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let mut config = ServerConfig::dev(ENV);
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.database_url = url;
        config.admin_token = Some(stepup_core::SecretString::new(ADMIN));
        config.key_encryption_key_value = Some(test_kek());
        configure(&mut config);
        let server =
            Server::start_with_clock(config, clock.shared()).await.expect("the reference server starts");
        Self { server, clock, http: http_client(), cleanup, sqlite_dir: None }
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The SDK API URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.sdk_url(ENV))
    }

    pub async fn call<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        session: Option<&str>,
        elevated: Option<&str>,
        body: Option<&B>,
    ) -> Response {
        let mut request = self.http.request(method, self.url(path));
        if let Some(jwt) = session {
            request = request.bearer_auth(jwt);
        }
        if let Some(token) = elevated {
            request = request.header("x-dyn-elevated-access-token", token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }

    pub async fn post(&self, path: &str, session: Option<&str>, body: &Value) -> Response {
        self.call(Method::POST, path, session, None, Some(body)).await
    }

    pub async fn get(&self, path: &str, session: Option<&str>) -> Response {
        self.call::<Value>(Method::GET, path, session, None, None).await
    }

    pub async fn admin_post<B: Serialize>(&self, path: &str, body: &B) -> Response {
        self.http
            .post(format!("{}/admin/environments/{ENV}{path}", self.base_url()))
            .bearer_auth(ADMIN)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// A user with this email (and a phone number, when given), without a session.
    pub async fn create_user(&self, email: &str, phone: Option<&str>) -> SdkUser {
        let request = CreateUserRequest {
            email: Some(email.into()),
            phone_number: phone.map(str::to_owned),
            ..Default::default()
        };
        let response = self.admin_post("/users", &request).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// A new session JWT for a user (what an app's own refresh would hand an engine).
    pub async fn session(&self, user_id: &str) -> String {
        let response = self.admin_post(&format!("/users/{user_id}/sessions"), &serde_json::json!({})).await;
        assert_eq!(response.status(), StatusCode::OK);
        let session: AdminSession = response.json().await.unwrap();
        session.jwt.expose_secret().to_owned()
    }

    /// A new signed-in user with a unique email address.
    pub async fn user(&self) -> TestUser {
        self.user_with(None).await
    }

    /// A new signed-in user with a unique email address and, when given, a phone number.
    pub async fn user_with(&self, phone: Option<&str>) -> TestUser {
        let tag = stepup_server::random::hex(&stepup_server::random::bytes::<5>().unwrap());
        let email = format!("u{tag}@example.com");
        let user = self.create_user(&email, phone).await;
        let jwt = self.session(&user.id).await;
        TestUser { user, jwt, email }
    }

    /// Sends an email code to `email` in session `jwt`: the verification id and the code (from the outbox).
    pub async fn email_code(&self, jwt: &str, email: &str) -> (String, String) {
        let response =
            self.post("/emailVerifications/create", Some(jwt), &serde_json::json!({"email": email})).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        let verification = body["verificationUUID"].as_str().unwrap().to_owned();
        let code =
            self.outbox(email).await.into_iter().find(|m| m.verification_uuid == verification).unwrap().code;
        (verification, code)
    }

    /// An elevated token for `scopes` through an email code to `email` (the user's own address).
    pub async fn elevated_via_email(&self, jwt: &str, email: &str, scopes: &[&str]) -> String {
        let (verification, code) = self.email_code(jwt, email).await;
        let body = serde_json::json!({"verificationUUID": verification, "verificationToken": code, "requestedScopes": scopes});
        let response = self.post("/emailVerifications/verify", Some(jwt), &body).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: stepup_proto::UpdateSelfResponse = response.json().await.unwrap();
        body.verify.elevated_access_token.unwrap().expose_secret().to_owned()
    }

    /// The outbox, newest first, for one recipient (an email address or `+<cc><number>`).
    pub async fn outbox(&self, to: &str) -> Vec<OutboxMessage> {
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

    /// The code of the newest message sent to `to`.
    pub async fn last_code(&self, to: &str) -> String {
        // Newest first, to the second: a test that sends several codes within a second uses `code_of`.
        self.outbox(to).await.into_iter().next().expect("a code was sent").code
    }

    /// How many codes were sent to `to`.
    pub async fn outbox_len(&self, to: &str) -> usize {
        self.outbox(to).await.len()
    }

    /// A signed-in user with a registered, verified TOTP device, through the HTTP API: see [`TotpUser`].
    pub async fn totp_user(&self) -> TotpUser {
        let TestUser { user, jwt, email } = self.user().await;
        let link = self.elevated_via_email(&jwt, &email, &["credential:link"]).await;
        let response =
            self.call::<Value>(Method::GET, "/users/mfa/register/totp", Some(&jwt), Some(&link), None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let registration: stepup_proto::TotpRegistration = response.json().await.unwrap();
        let secret = registration.secret.expose_secret().to_owned();
        let code = totp_code(&secret, self.now().as_secs() - 30);
        let body = serde_json::json!({"code": code, "id": registration.id});
        let response = self.post("/users/mfa/auth/totp", Some(&jwt), &body).await;
        assert_eq!(response.status(), StatusCode::OK);
        let verified: stepup_proto::VerifyResponse = response.json().await.unwrap();
        let mfa_jwt = verified.minified_jwt.unwrap().expose_secret().to_owned();
        TotpUser { user, jwt, email, device: registration.id, secret, mfa_jwt }
    }

    /// Stops the server (and drops its PostgreSQL schema).
    pub async fn shutdown(self) {
        self.server.shutdown().await;
        if let Some(dir) = &self.sqlite_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((base, schema)) = self.cleanup {
            drop_postgres_schema(&base, &schema).await;
        }
    }
}

/// What [`TestServer::totp_user`] made.
pub struct TotpUser {
    pub user: SdkUser,
    /// The session as it was minted (no MFA in it).
    pub jwt: String,
    pub email: String,
    pub device: String,
    pub secret: String,
    /// The same session, re-signed by the enrolment's TOTP verification (a recent MFA).
    pub mfa_jwt: String,
}

/// The TOTP code for `secret` (base32) at Unix time `at`: what the person's authenticator app shows (SHA-1, 6
/// digits, 30 s, as the server registers).
pub fn totp_code(secret: &str, at: u64) -> String {
    stepup_demo::totp_code(secret, at).unwrap()
}

pub fn unix_now() -> u64 {
    stepup_demo::unix_now()
}

/// The payload of a JWT, unverified (tests read what the server signed).
pub fn claims_of(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A plain-HTTP reqwest client. In a workspace build reqwest carries the engine's `rustls-no-provider` feature
/// (Cargo unifies features) and panics without a process-wide crypto provider, so one is installed first.
pub fn http_client() -> reqwest::Client {
    stepup::engine::install_default_crypto_provider();
    reqwest::Client::new()
}

/// Asserts a response is an error with this status and code, and returns it.
pub async fn assert_error(
    response: Response,
    status: StatusCode,
    code: &str,
) -> (ErrorBody, reqwest::header::HeaderMap) {
    let headers = response.headers().clone();
    let actual = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "body: {text}");
    let body: ErrorBody = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not an error body: {text}"));
    assert_eq!(body.code.as_str(), code, "body: {text}");
    (body, headers)
}

/// Runs a scenario on SQLite and, when configured, on PostgreSQL.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&$crate::common::Backend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = $crate::common::Backend::postgres() {
                        super::$name(&backend).await;
                    }
                }
            )+
        }
    };
}
