//! `ApiClient`: the HTTP connection to the SDK API — session header, timeouts, error mapping, GET retries.

use std::sync::{Arc, OnceLock};
use std::time::Duration;
use stepup_core::Cause;

use arc_swap::ArcSwapOption;
use reqwest::{Method, RequestBuilder, Response, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use stepup_core::{SessionInfo, StepUpError};
use stepup_proto::headers::ELEVATED_ACCESS_TOKEN;
use stepup_proto::{ErrorBody, Jwt, VerifyResponse};
use tokio::sync::watch;

/// Timeouts and retries of the [`ApiClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// The longest one request may take, connection included. Default 10 s.
    pub request_timeout: Duration,
    /// The longest a connection may take to open. Default 3 s.
    pub connect_timeout: Duration,
    /// How many times an idempotent GET is retried after a connection error (never after an answer, and never
    /// for POST or DELETE). Default 2.
    pub get_retries: u32,
    /// The pause before the first retry; it doubles for each next one. Default 50 ms.
    pub retry_backoff: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            get_retries: 2,
            retry_backoff: Duration::from_millis(50),
        }
    }
}

/// Why an [`ApiClient`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiClientError {
    /// The base URL is not an `http://` or `https://` URL.
    #[error("the base URL `{url}` is not an http:// or https:// URL")]
    InvalidBaseUrl {
        /// The URL given.
        url: String,
    },
    /// The environment id is empty or holds characters that cannot appear in a path segment.
    #[error("the environment id `{id}` is empty or not a plain path segment")]
    InvalidEnvironmentId {
        /// The id given.
        id: String,
    },
    /// The TLS configuration could not be built (no usable root certificates on this platform).
    #[error("TLS setup failed")]
    Tls(#[source] Cause),
    /// reqwest refused the client configuration.
    #[error("HTTP client setup failed")]
    Http(#[source] Cause),
}

/// The typed HTTP client of the SDK API (docs/design.md §8). Cheap to clone: clones share one connection pool and one
/// session.
///
/// Every call sends the session JWT as `Authorization: Bearer`; calls that need a scope take the elevated token
/// and send it as `x-dyn-elevated-access-token`. A failed call gives the [`StepUpError`] variant of the server's
/// `{error, code}` body; a call that got no answer gives [`StepUpError::Timeout`] or [`StepUpError::Transport`].
#[derive(Clone)]
pub struct ApiClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// `{base}/sdk/{environmentId}`, without a trailing slash.
    sdk_base: String,
    environment_id: String,
    /// Read on every request without a lock; written on sign-in, refresh, and when an answer re-issues it.
    session: ArcSwapOption<Jwt>,
    /// Tells the app about every change of `session`, so it can persist the session it should resume with.
    session_changes: watch::Sender<Option<Jwt>>,
    /// Held by every writer of the session, so a check-then-store (adopting an answer's session) cannot
    /// interleave with the app setting another, and `session` and `session_changes` always agree.
    session_writes: std::sync::Mutex<()>,
    config: ApiConfig,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("sdk_base", &self.inner.sdk_base)
            .field("has_session", &self.has_session())
            .field("config", &self.inner.config)
            .finish()
    }
}

impl ApiClient {
    /// A client for environment `environment_id` of the server at `base_url` (e.g. `http://127.0.0.1:8080`), on
    /// the current tokio runtime's shared connection pool for its timeouts ([`ConnectionPool::Shared`]).
    ///
    /// TLS is rustls with the `ring` provider and the platform's certificate verifier, built here rather than
    /// installed as a process-wide default, so the embedding app's own rustls setup is left alone.
    ///
    /// # Errors
    /// [`ApiClientError`] for a base URL that is not http(s), an environment id that is not a plain path
    /// segment, or a TLS/HTTP setup failure.
    pub fn new(
        base_url: &str,
        environment_id: &str,
        session: Option<Jwt>,
        config: ApiConfig,
    ) -> Result<Self, ApiClientError> {
        Self::with_pool(base_url, environment_id, session, config, ConnectionPool::Shared)
    }

    /// [`ApiClient::new`] with the connection pool chosen: the runtime's shared one for these timeouts, or one of
    /// the client's own.
    ///
    /// # Errors
    /// As [`ApiClient::new`].
    pub fn with_pool(
        base_url: &str,
        environment_id: &str,
        session: Option<Jwt>,
        config: ApiConfig,
        pool: ConnectionPool,
    ) -> Result<Self, ApiClientError> {
        let base = base_url.trim_end_matches('/');
        let scheme_ok = base.starts_with("http://") || base.starts_with("https://");
        if !scheme_ok || base.len() <= "https://".len() || base.contains(char::is_whitespace) {
            return Err(ApiClientError::InvalidBaseUrl { url: base_url.to_owned() });
        }
        let plain_segment = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if environment_id.is_empty() || !environment_id.chars().all(plain_segment) {
            return Err(ApiClientError::InvalidEnvironmentId { id: environment_id.to_owned() });
        }
        let http = match pool {
            ConnectionPool::Shared => shared_http_client(&config)?,
            ConnectionPool::Own => http_client(&config)?,
        };
        let (session_changes, _) = watch::channel(session.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                sdk_base: format!("{base}/sdk/{environment_id}"),
                environment_id: environment_id.to_owned(),
                session: ArcSwapOption::from(session.map(Arc::new)),
                session_changes,
                session_writes: std::sync::Mutex::new(()),
                config,
            }),
        })
    }

    /// The environment id.
    #[must_use]
    pub fn environment_id(&self) -> &str {
        &self.inner.environment_id
    }

    /// `{base}/sdk/{environmentId}`: the prefix of every call.
    #[must_use]
    pub fn sdk_base(&self) -> &str {
        &self.inner.sdk_base
    }

    /// The underlying reqwest client (shared pool, TLS and timeouts), for apps that call their own API with it.
    #[must_use]
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Replaces the session JWT (after a sign-in or a refresh); `None` signs out. Subscribers of
    /// [`ApiClient::subscribe_session`] hear of it.
    pub fn set_session(&self, session: Option<Jwt>) {
        let _writing = self.writing();
        self.store_session(session);
    }

    /// The session writers' lock. Nothing panics while holding it, so poisoning cannot happen; should it, the
    /// lock is taken anyway (it guards no data).
    fn writing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner.session_writes.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores and announces `session` (the caller holds [`ApiClient::writing`]).
    fn store_session(&self, session: Option<Jwt>) {
        self.inner.session.store(session.clone().map(Arc::new));
        self.inner.session_changes.send_replace(session);
    }

    /// Whether a session JWT is set.
    #[must_use]
    pub fn has_session(&self) -> bool {
        self.inner.session.load().is_some()
    }

    /// The session JWT the client sends now: the one it was given, or a re-issued one an answer carried.
    #[must_use]
    pub fn session(&self) -> Option<Jwt> {
        self.inner.session.load().as_deref().cloned()
    }

    /// A receiver that sees every change of the session JWT (re-issued by a verify answer, or set by the app).
    #[must_use]
    pub fn subscribe_session(&self) -> watch::Receiver<Option<Jwt>> {
        self.inner.session_changes.subscribe()
    }

    /// Adopts the session JWT a verify answer carries (`minifiedJwt`, else `jwt`), the way Dynamic's own clients
    /// do, but only when it is the same session as the one held (same user, `sub`, and same session id, `sid` or
    /// `jti`) and not older in its MFA time: a confused or hostile answer cannot swap the user, an answer for a
    /// session the app has since replaced cannot bring the old one back, and two answers racing cannot roll the
    /// MFA time back. Returns whether the session changed.
    pub(crate) fn adopt_session(&self, answer: &VerifyResponse) -> bool {
        self.adopt(answer.minified_jwt.as_ref().or(answer.jwt.as_ref()))
    }

    /// [`ApiClient::adopt_session`] for an answer's session JWT, if it has one.
    pub(crate) fn adopt(&self, candidate: Option<&Jwt>) -> bool {
        let Some(candidate) = candidate else { return false };
        // Checked and stored under the writers' lock: the app cannot set another session in between.
        let _writing = self.writing();
        let current = self.inner.session.load_full();
        let Some(current) = current.as_deref() else { return false };
        if current == candidate {
            return false;
        }
        let (Ok(held), Ok(offered)) = (SessionInfo::parse(current), SessionInfo::parse(candidate)) else {
            tracing::debug!("a verify answer's session is not a readable JWT; the held session stays");
            return false;
        };
        if held.subject != offered.subject {
            tracing::warn!("a verify answer carried a session for another user; the held session stays");
            return false;
        }
        if !offered.renews(&held) {
            tracing::debug!(
                "a verify answer carried another or older session of the user; the held session stays"
            );
            return false;
        }
        tracing::debug!("adopted the session re-issued by a verify answer");
        self.store_session(Some(candidate.clone()));
        true
    }

    /// A request to `path` (below the SDK base) with the session and, if given, the elevated token.
    pub(crate) fn request(&self, method: Method, path: &str, elevated: Option<&Jwt>) -> RequestBuilder {
        let mut request = self.inner.http.request(method, format!("{}{path}", self.inner.sdk_base));
        if let Some(session) = self.inner.session.load().as_deref() {
            request = request.bearer_auth(session.expose_secret());
        }
        if let Some(token) = elevated {
            request = request.header(ELEVATED_ACCESS_TOKEN, token.expose_secret());
        }
        request
    }

    /// A request to `path` with the session, sent through `client`: a middleware stack (the engine's own, so that a
    /// tagged request meets its step-up on demand; a retry after a fresh MFA carries the re-issued session).
    pub(crate) fn request_via(
        &self,
        client: &reqwest_middleware::ClientWithMiddleware,
        method: Method,
        path: &str,
    ) -> reqwest_middleware::RequestBuilder {
        let mut request = client.request(method, format!("{}{path}", self.inner.sdk_base));
        if let Some(session) = self.inner.session.load().as_deref() {
            request = request.bearer_auth(session.expose_secret());
        }
        request
    }

    /// GET, retried on connection errors only (the request never reached the server, so a retry is safe), with
    /// a doubling pause.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        elevated: Option<&Jwt>,
    ) -> Result<T, StepUpError> {
        let mut pause = self.inner.config.retry_backoff;
        let mut retries_left = self.inner.config.get_retries;
        loop {
            match self.request(Method::GET, path, elevated).send().await {
                Ok(response) => return read_json(response).await,
                Err(error) if error.is_connect() && retries_left > 0 => {
                    tracing::debug!(path, retries_left, "GET failed to connect; retrying");
                    retries_left -= 1;
                    tokio::time::sleep(pause).await;
                    pause = pause.saturating_mul(2);
                }
                Err(error) => return Err(transport_error(error)),
            }
        }
    }

    /// POST a JSON body; never retried (the server may have acted on it).
    pub(crate) async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        elevated: Option<&Jwt>,
    ) -> Result<T, StepUpError> {
        let response =
            self.request(Method::POST, path, elevated).json(body).send().await.map_err(transport_error)?;
        read_json(response).await
    }

    /// A call with a JSON body whose success has no body (PUT or DELETE answering 204).
    pub(crate) async fn send_json_empty<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: &B,
        elevated: Option<&Jwt>,
    ) -> Result<(), StepUpError> {
        let response =
            self.request(method, path, elevated).json(body).send().await.map_err(transport_error)?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(error_from(response).await)
    }

    /// A call whose success has no body (POST or DELETE answering 204).
    pub(crate) async fn send_empty(
        &self,
        method: Method,
        path: &str,
        elevated: Option<&Jwt>,
    ) -> Result<(), StepUpError> {
        let response = self.request(method, path, elevated).send().await.map_err(transport_error)?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(error_from(response).await)
    }
}

/// Installs rustls' `ring` provider as the process-wide default, unless one is installed already; `true` if this
/// call installed it.
///
/// Why this exists: the engine builds reqwest with `rustls-no-provider` (ring instead of aws-lc-sys, docs/design.md
/// §12), and Cargo unifies features, so in an app whose other reqwest clients enable no TLS feature of their own,
/// `reqwest::Client::new()` panics for want of a provider. The engine's own client never needs this (its TLS
/// configuration is built with the provider, not looked up); call it once at start-up before building other
/// clients.
pub fn install_default_crypto_provider() -> bool {
    rustls::crypto::ring::default_provider().install_default().is_ok()
}

/// Whose connections an [`ApiClient`] uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionPool {
    /// One reqwest client per tokio runtime for each pair of timeouts: engines of one runtime with the same
    /// [`ApiConfig`] timeouts (the default ones, say) share its connections, TLS sessions and memory. A reqwest client weighs several KiB, about
    /// as much as the rest of an idle engine (docs/benchmarks.md, engines in one process).
    #[default]
    Shared,
    /// A client of the engine's own: connections no other engine reuses.
    Own,
}

/// The shared client for `config`'s timeouts (the only client settings that vary) in the current tokio runtime,
/// built on first use. Timeouts stay client settings rather than per-request ones so that the app's own calls
/// through `StepUpAuth::http_client` keep the engine's request timeout. Per runtime, because pooled connections
/// belong to the runtime that opened them: when it shuts down they are dead, and an engine of another runtime
/// must not be handed one. Outside a runtime the client is the engine's own. The map holds at most
/// [`MAX_SHARED_CLIENTS`] clients (a process that makes a runtime per job would otherwise grow it forever);
/// forgetting one only stops new engines from sharing it.
fn shared_http_client(config: &ApiConfig) -> Result<reqwest::Client, ApiClientError> {
    type Key = (tokio::runtime::Id, Duration, Duration);
    static SHARED: OnceLock<std::sync::Mutex<std::collections::HashMap<Key, reqwest::Client>>> =
        OnceLock::new();
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return http_client(config);
    };
    let mut clients =
        SHARED.get_or_init(Default::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let key = (runtime.id(), config.request_timeout, config.connect_timeout);
    if let Some(client) = clients.get(&key) {
        return Ok(client.clone());
    }
    let client = http_client(config)?;
    if clients.len() >= MAX_SHARED_CLIENTS {
        clients.clear();
    }
    clients.insert(key, client.clone());
    Ok(client)
}

/// How many shared clients (runtimes × timeouts) are remembered at most.
const MAX_SHARED_CLIENTS: usize = 64;

/// A reqwest client with the engine's settings.
fn http_client(config: &ApiConfig) -> Result<reqwest::Client, ApiClientError> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config()?)
        .timeout(config.request_timeout)
        .connect_timeout(config.connect_timeout)
        .user_agent(concat!("stepup/", env!("CARGO_PKG_VERSION")))
        // Never follow redirects: reqwest drops `Authorization` on a redirect to another host, but not the
        // elevated-token header that `StepUpMiddleware` adds on this same client. The SDK API does not redirect.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ApiClientError::Http(Cause::new(e)))
}

/// The TLS configuration every engine's client uses: built once per process and cloned (a clone shares the
/// verifier, its root certificates and the session cache behind `Arc`s). Built per engine it cost about 150 KiB
/// each (`benches/engine_memory.rs`), most of a whole engine.
fn tls_config() -> Result<rustls::ClientConfig, ApiClientError> {
    static SHARED: OnceLock<Result<rustls::ClientConfig, ApiClientError>> = OnceLock::new();
    SHARED.get_or_init(build_tls_config).clone()
}

fn build_tls_config() -> Result<rustls::ClientConfig, ApiClientError> {
    use rustls_platform_verifier::BuilderVerifierExt as _;
    let tls_error = |e: rustls::Error| ApiClientError::Tls(Cause::new(e));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_platform_verifier()
        .map_err(tls_error)?
        .with_no_client_auth())
}

/// Reads a JSON answer, or the typed error of an error answer.
pub(crate) async fn read_json<T: DeserializeOwned>(response: Response) -> Result<T, StepUpError> {
    if !response.status().is_success() {
        return Err(error_from(response).await);
    }
    let status = response.status();
    let bytes = response.bytes().await.map_err(transport_error)?;
    serde_json::from_slice(&bytes).map_err(|e| StepUpError::UnexpectedResponse {
        message: format!("{status} answer is not the expected JSON: {e}"),
    })
}

/// The typed error of an error answer: the `{error, code}` body (if readable) and `Retry-After`.
pub(crate) async fn error_from(response: Response) -> StepUpError {
    let status = response.status();
    let retry_after = retry_after(&response);
    let body = response.bytes().await.ok().and_then(|bytes| serde_json::from_slice::<ErrorBody>(&bytes).ok());
    StepUpError::from_response(status.as_u16(), body, retry_after)
}

fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A request that got no answer: a timeout, or a transport failure, kept as the source without its URL (a URL
/// may name the user's verification).
pub(crate) fn transport_error(error: reqwest::Error) -> StepUpError {
    if error.is_timeout() {
        return StepUpError::Timeout;
    }
    let what = if error.is_connect() { "connection failed" } else { "request failed" };
    StepUpError::Transport { what, cause: Cause::new(error.without_url()) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use stepup_proto::SdkUser;

    use super::*;

    fn jwt(claims: serde_json::Value) -> Jwt {
        let part = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
        Jwt::new(format!("{}.{}.sig", part(&serde_json::json!({"alg": "EdDSA"})), part(&claims)))
    }

    fn answer(session: Option<Jwt>) -> VerifyResponse {
        let user = SdkUser {
            id: "u1".into(),
            project_environment_id: "dev".into(),
            email: None,
            phone_number: None,
            username: None,
            session_id: None,
            last_verified_credential_id: None,
            verified_credentials: vec![],
            mfa_backup_code_acknowledgement: None,
        };
        VerifyResponse {
            jwt: session.clone(),
            minified_jwt: session,
            mfa_token: None,
            user,
            expires_at: 100,
            elevated_access_token: None,
        }
    }

    /// What a verify answer may do to the held session. (End to end against the reference server:
    /// `tests/engine_session.rs`; these are the answers a real server does not give.)
    #[test]
    fn only_the_same_users_session_is_adopted_and_the_mfa_time_never_goes_back() {
        let held = jwt(serde_json::json!({"sub": "u1", "sid": "s1", "exp": 100}));
        let client =
            ApiClient::new("http://127.0.0.1:9", "dev", Some(held.clone()), ApiConfig::default()).unwrap();
        let mut changes = client.subscribe_session();
        // No session in the answer, the same one, an opaque one, another user's: the held session stays.
        for offered in [
            None,
            Some(held.clone()),
            Some(Jwt::new("opaque")),
            Some(jwt(serde_json::json!({"sub": "u2", "sid": "s9", "exp": 100}))),
            // The same user's other session (the app has since replaced the one this answer was for).
            Some(jwt(serde_json::json!({"sub": "u1", "sid": "s2", "exp": 100, "mfa_auth_time": 60}))),
        ] {
            assert!(!client.adopt_session(&answer(offered)));
            assert_eq!(client.session(), Some(held.clone()));
        }
        assert!(!changes.has_changed().unwrap());
        // The same user, re-signed after an MFA: adopted, and the app hears of it.
        let mfa = jwt(serde_json::json!({"sub": "u1", "sid": "s1", "exp": 100, "mfa_auth_time": 50}));
        assert!(client.adopt_session(&answer(Some(mfa.clone()))));
        assert_eq!(client.session(), Some(mfa.clone()));
        assert_eq!(changes.borrow_and_update().clone(), Some(mfa.clone()));
        // An older answer arriving late does not roll the MFA time back.
        let older = jwt(serde_json::json!({"sub": "u1", "sid": "s1", "exp": 100, "mfa_auth_time": 40}));
        assert!(!client.adopt_session(&answer(Some(older))));
        assert_eq!(client.session(), Some(mfa));
        // Without a held session (signed out) nothing is adopted.
        client.set_session(None);
        assert!(!client.adopt_session(&answer(Some(held))));
        assert_eq!(client.session(), None);
    }
}
