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

pub const ENV: &str = "dev";
pub const ADMIN: &str = "test-admin-token";

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

    /// An elevated token for `scopes` through an email code to `email` (the user's own address).
    pub async fn elevated_via_email(&self, jwt: &str, email: &str, scopes: &[&str]) -> String {
        let response =
            self.post("/emailVerifications/create", Some(jwt), &serde_json::json!({"email": email})).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        let verification = body["verificationUUID"].as_str().unwrap().to_owned();
        let code =
            self.outbox(email).await.into_iter().find(|m| m.verification_uuid == verification).unwrap().code;
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
