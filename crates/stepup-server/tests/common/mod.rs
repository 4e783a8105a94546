//! Test harness: a real server on 127.0.0.1:0 (SQLite in memory, or PostgreSQL in a fresh schema when
//! `STEPUP_TEST_DATABASE_URL` is set), a manual clock, and a reqwest client.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

use std::sync::Arc;

use reqwest::{Method, Response, StatusCode};
use serde::Serialize;
use serde_json::Value;
use stepup_core::{Clock, ManualClock, SystemClock, UnixTime};
use stepup_proto::{ErrorBody, SdkUser};
use stepup_server::routes::{AdminSession, CreateUserRequest, OutboxMessage};
use stepup_server::{Server, ServerConfig};

pub mod processes;
pub mod receivers;

pub const ENV: &str = "dev";
pub const ADMIN: &str = "test-admin-token";
/// The key-encryption key every test server uses (replicas of one database must share it).
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
    /// PostgreSQL from `STEPUP_TEST_DATABASE_URL`, or `None` (the test then says it was skipped).
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

/// A fresh schema in the test database, so tests never see each other's rows or migrations.
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

pub struct TestServer {
    pub server: Server,
    pub clock: ManualClock,
    pub http: reqwest::Client,
    cleanup: Option<(String, String)>,
}

impl TestServer {
    pub async fn start(backend: &Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: &Backend, configure: impl FnOnce(&mut ServerConfig)) -> Self {
        let (url, cleanup) = match backend {
            Backend::Sqlite => ("sqlite::memory:".to_owned(), None),
            Backend::Postgres(base) => {
                let (url, schema) = postgres_schema(base).await;
                (url, Some((base.clone(), schema)))
            }
        };
        Self::start_on(url, cleanup, configure).await
    }

    /// A server on an existing database URL (a second replica).
    pub async fn start_on(
        url: String,
        cleanup: Option<(String, String)>,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let mut config = ServerConfig::dev(ENV);
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.database_url = url;
        config.admin_token = Some(stepup_core::SecretString::new(ADMIN));
        config.key_encryption_key_value = Some(test_kek());
        configure(&mut config);
        // Real time to start with (TOTP codes are computed from it), moved by hand afterwards.
        let clock = ManualClock::new(SystemClock.now());
        let server = Server::start_with_clock(config, Arc::new(clock.clone())).await.expect("server starts");
        Self { server, clock, http: http_client(), cleanup }
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

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
            .post(format!("{}/admin/environments/{ENV}{path}", self.server.base_url()))
            .bearer_auth(ADMIN)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// A user with this email (and a unique one if `email` is `None`).
    pub async fn user(&self, email: &str) -> SdkUser {
        let response = self
            .admin_post("/users", &CreateUserRequest { email: Some(email.into()), ..Default::default() })
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    pub async fn session(&self, user_id: &str) -> String {
        let response = self.admin_post(&format!("/users/{user_id}/sessions"), &serde_json::json!({})).await;
        assert_eq!(response.status(), StatusCode::OK);
        let session: AdminSession = response.json().await.unwrap();
        session.jwt.expose_secret().to_owned()
    }

    /// A signed-in user with a unique email: (user, session JWT, email).
    pub async fn signed_in(&self) -> (SdkUser, String, String) {
        let email = format!(
            "u{}@example.com",
            stepup_server::random::hex(&stepup_server::random::bytes::<5>().unwrap())
        );
        let user = self.user(&email).await;
        let jwt = self.session(&user.id).await;
        (user, jwt, email)
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

    pub async fn outbox(&self, to: &str) -> Vec<OutboxMessage> {
        let response = self
            .http
            .get(format!("{}/admin/environments/{ENV}/outbox", self.server.base_url()))
            .query(&[("to", to)])
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
        if let Some((base, schema)) = self.cleanup {
            use sqlx::Executor as _;
            if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&base).await {
                let _ = conn.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await;
            }
        }
    }
}

/// The TOTP code of a base32 secret at a time (SHA-1, 6 digits, 30 s: what the server registers).
pub fn code_at(secret: &str, time: u64) -> String {
    use totp_rs::{Algorithm, Builder, Secret};
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(Secret::try_from_base32(secret).unwrap())
        .build()
        .unwrap();
    totp.generate(time).to_string()
}

/// The payload of a JWT, unverified (tests read what the server signed).
pub fn claims_of(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

impl TestServer {
    /// A signed-in user with a registered, verified TOTP device: (user, session JWT from before the device was
    /// verified, device id, secret, the session the verifying answer carried).
    pub async fn totp_user(&self) -> TotpUser {
        let (user, jwt, email) = self.signed_in().await;
        let link = self.elevated_via_email(&jwt, &email, &["credential:link"]).await;
        let response =
            self.call::<Value>(Method::GET, "/users/mfa/register/totp", Some(&jwt), Some(&link), None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let registration: stepup_proto::TotpRegistration = response.json().await.unwrap();
        let secret = registration.secret.expose_secret().to_owned();
        let code = code_at(&secret, self.now().as_secs() - 30);
        let response = self
            .post(
                "/users/mfa/auth/totp",
                Some(&jwt),
                &serde_json::json!({"code": code, "id": registration.id}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let verified: stepup_proto::VerifyResponse = response.json().await.unwrap();
        let mfa_jwt = verified.minified_jwt.unwrap().expose_secret().to_owned();
        TotpUser { user, jwt, email, device: registration.id, secret, mfa_jwt }
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

/// A plain-HTTP reqwest client. In a workspace build reqwest carries the engine's `rustls-no-provider` feature
/// (Cargo unifies features) and panics without a process-wide crypto provider, so one is installed first.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
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
