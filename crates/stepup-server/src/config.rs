//! Server configuration: a TOML file, then environment overrides, then command-line flags.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use stepup_core::Method;
use stepup_core::SecretString;
use stepup_proto::TokenScope;

pub use crate::delivery::settings::{DeliveryConfig, EmailSettings, SmsSettings};
use crate::key_encryption::KeyEncryptionKey;

/// Scopes that are single-use by default: the destructive ones.
pub const DEFAULT_SINGLE_USE: [TokenScope; 4] = [
    TokenScope::WalletExport,
    TokenScope::WalletDelete,
    TokenScope::UserDelete,
    TokenScope::CredentialUnlink,
];

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("invalid configuration file: {0}")]
    Parse(String),
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole server configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Where to listen.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// `sqlite::memory:`, `sqlite://path/to/file.db` or `postgres://...`.
    #[serde(default = "default_database_url")]
    pub database_url: String,
    /// The admin API's bearer token; the `/admin` tree is off without one.
    #[serde(default)]
    pub admin_token: Option<SecretString>,
    /// The environments this server serves.
    #[serde(default)]
    pub environments: Vec<EnvironmentConfig>,
    /// How many argon2 jobs (recovery codes) may run at once; default one per core. Each takes 8 MiB while it runs.
    #[serde(default)]
    pub hash_workers: Option<usize>,
    /// The header a reverse proxy in front of the server writes the client's address into (`X-Forwarded-For`,
    /// `X-Real-IP`); its last address is the client for per-client limits. Leave unset when clients reach the
    /// server directly: they could name any address in it.
    #[serde(default)]
    pub trusted_proxy_header: Option<String>,
    /// Connection limits and timeouts (`[connections]`).
    #[serde(default)]
    pub connections: ConnectionLimits,
    /// How codes and security notices are delivered (`[delivery]`: outbox, SMTP, SMS gateway).
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// Prometheus metrics (`[metrics]`); off unless a listen address or a token is set.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// A file holding the key-encryption key (64 hex digits or base64 of 32 bytes) that seals the signing
    /// keys, the OTP key and TOTP secrets in the database; also `STEPUP_KEY_ENCRYPTION_KEY_FILE`, or the key
    /// itself in `STEPUP_KEY_ENCRYPTION_KEY`. Required outside `--dev`. Never store it in the database.
    #[serde(default)]
    pub key_encryption_key_file: Option<std::path::PathBuf>,
    /// The key-encryption key itself (from `STEPUP_KEY_ENCRYPTION_KEY`, or set by an embedding program; never
    /// read from the file).
    #[serde(skip)]
    pub key_encryption_key_value: Option<KeyEncryptionKey>,
    /// Development mode (`serve --dev`; never read from a file): the app backend's JWKS may be fetched over
    /// plain `http://` (loopback test servers).
    #[serde(skip)]
    pub dev: bool,
}

/// `[metrics]`: where `GET /metrics` is served.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// A listen address of its own (e.g. `127.0.0.1:9090`), open to whoever reaches it; also
    /// `STEPUP_METRICS_LISTEN`.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// Serve `/metrics` on the main listener to `Authorization: Bearer <token>`; also `STEPUP_METRICS_TOKEN`.
    #[serde(default)]
    pub token: Option<SecretString>,
}

/// How many connections the server holds and how long it waits for each (slow or idle clients cannot hold a
/// connection forever; docs/design.md §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionLimits {
    /// The most connections open at once; more wait in the listen backlog until one closes. Default 1024.
    pub max_connections: usize,
    /// How long a request head (request line and headers) may take to arrive, milliseconds, counted from when
    /// the server starts waiting for it: a new connection, or the previous answer on a kept-alive one. The
    /// connection is closed, unanswered, when it runs out (the client has not said what it wants yet).
    /// Default 10 000.
    pub header_read_timeout_ms: u64,
    /// How long one request may take from its head to the end of the handler, body upload included,
    /// milliseconds; it is answered 408 `request_timeout` when this runs out. Default 30 000.
    pub request_timeout_ms: u64,
    /// How long a connection may stay with no request in progress and no byte moving either way, milliseconds:
    /// an idle keep-alive connection, or a client that stopped reading its answer. Not more than
    /// `header_read_timeout_ms`, which bounds idle keep-alive time anyway. Default 5 000.
    pub idle_timeout_ms: u64,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            idle_timeout_ms: 5_000,
        }
    }
}

impl ConnectionLimits {
    /// [`ConnectionLimits::header_read_timeout_ms`] as a duration.
    #[must_use]
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    /// [`ConnectionLimits::request_timeout_ms`] as a duration.
    #[must_use]
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// [`ConnectionLimits::idle_timeout_ms`] as a duration.
    #[must_use]
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |why: &str| Err(ConfigError::Invalid(format!("connections: {why}")));
        if self.max_connections == 0 || self.max_connections > u32::MAX as usize {
            return invalid("max_connections must be 1 to 4294967295");
        }
        if self.header_read_timeout_ms == 0 || self.request_timeout_ms == 0 || self.idle_timeout_ms == 0 {
            return invalid("timeouts must be positive");
        }
        if self.idle_timeout_ms > self.header_read_timeout_ms {
            return invalid("idle_timeout_ms must not exceed header_read_timeout_ms");
        }
        Ok(())
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_database_url() -> String {
    "sqlite::memory:".to_owned()
}

/// One environment (project): its identity, wallet-message and WebAuthn settings, and policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// The environment id in `/sdk/{environmentId}`.
    pub id: String,
    /// The app's name (wallet message statement).
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// The app's domain (wallet message first line), e.g. `localhost`.
    #[serde(default = "default_domain")]
    pub app_domain: String,
    /// The app's URI (wallet message `URI:`), e.g. `http://localhost`.
    #[serde(default = "default_origin")]
    pub app_uri: String,
    /// WebAuthn relying-party id.
    #[serde(default = "default_domain")]
    pub rp_id: String,
    /// The origins passkey ceremonies may come from (WebAuthn `origin` in the client data), matched exactly —
    /// scheme, host and port — e.g. `["https://app.example.com"]`. Each must be the RP id or a subdomain of it.
    /// Default (and `--dev`): `http://localhost`, the demo's and the conformance client's origin.
    #[serde(default = "default_origins")]
    pub rp_origins: Vec<String>,
    /// What needs step-up and for how long tokens live.
    #[serde(default)]
    pub policy: Policy,
    /// What callers may create, per hour (`[environments.limits]`).
    #[serde(default)]
    pub limits: Limits,
    /// Browser origins allowed to call the SDK API (CORS), e.g. `https://app.example.com`; `*` allows any
    /// origin (the `--dev` environment has it). Empty: no browser origin is allowed.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Elevation by the app's own backend (`POST /externalAuth/verify`); off when absent.
    #[serde(default)]
    pub external_auth: Option<ExternalAuthConfig>,
    /// Email sender and templates (`[environments.email]`).
    #[serde(default)]
    pub email: EmailSettings,
    /// SMS sender and template (`[environments.sms]`).
    #[serde(default)]
    pub sms: SmsSettings,
}

/// The methods an environment switches on and off (`enabled_methods`), with their setting names, in
/// [`Method::ALL`] order: every method `methods::setting_name` names (external auth is on when the environment trusts a
/// backend).
pub fn switchable_methods() -> impl Iterator<Item = (Method, &'static str)> {
    Method::ALL.into_iter().filter_map(|method| Some((method, crate::methods::setting_name(method)?)))
}

/// `enabled_methods`, read by the methods' setting names.
mod method_names {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};
    use stepup_core::Method;

    use super::switchable_methods;

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Method>, D::Error> {
        let names = Vec::<String>::deserialize(deserializer)?;
        names
            .iter()
            .map(|name| {
                switchable_methods()
                    .find(|(_, setting)| setting == name)
                    .map(|(method, _)| method)
                    .ok_or_else(|| {
                        let known: Vec<&str> = switchable_methods().map(|(_, setting)| setting).collect();
                        D::Error::custom(format!(
                            "unknown method `{name}`, expected one of {}",
                            known.join(", ")
                        ))
                    })
            })
            .collect()
    }
}

/// How the environment trusts the app's backend for external-auth elevation: public keys given here, or a JWKS
/// URL, or both.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalAuthConfig {
    /// Public keys, each pinned to one algorithm.
    #[serde(default)]
    pub public_keys: Vec<ExternalAuthKey>,
    /// A JWKS URL (`https://` outside `--dev`), fetched with a timeout, cached, and fetched again at most once a
    /// minute when a token names a key id it does not hold.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The `iss` the backend's tokens must carry; not checked when absent.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The longest lifetime a backend token may have (`exp` minus now, and minus `iat`), seconds. Default 300.
    #[serde(default = "default_external_lifetime")]
    pub max_lifetime_secs: u64,
    /// Whether users with MFA methods may be elevated this way (default no: the same rule as
    /// re-authentication, docs/design.md §1).
    #[serde(default)]
    pub allow_mfa_users: bool,
}

fn default_external_lifetime() -> u64 {
    300
}

/// One public key of the app's backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalAuthKey {
    /// `RS256`, `ES256` or `EdDSA`: the only algorithm this key verifies.
    pub algorithm: String,
    /// The public key, PEM (`-----BEGIN PUBLIC KEY-----`; RSA also as `BEGIN RSA PUBLIC KEY`).
    pub public_key_pem: String,
    /// The key id; when set, a token's `kid` must name it.
    #[serde(default)]
    pub kid: Option<String>,
}

fn default_app_name() -> String {
    "Stepup Demo".to_owned()
}

fn default_domain() -> String {
    "localhost".to_owned()
}

fn default_origins() -> Vec<String> {
    vec![default_origin()]
}

fn default_origin() -> String {
    "http://localhost".to_owned()
}

/// An environment's step-up policy and limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Scopes that need step-up (default: all 26).
    pub step_up_scopes: Vec<TokenScope>,
    /// Scopes whose tokens are single-use (default: the destructive ones).
    pub single_use_scopes: Vec<TokenScope>,
    /// Lifetime of a single-use elevated token, seconds.
    pub single_use_ttl_secs: u64,
    /// Lifetime of a multi-use elevated token, seconds.
    pub multi_use_ttl_secs: u64,
    /// Lifetime of a session, seconds.
    pub session_ttl_secs: u64,
    /// Whether step-up is on at all. Off: every check answers "not required", the guard lets every call through,
    /// and no elevated token is issued.
    pub step_up_enabled: bool,
    /// The methods a user may step up with, by their setting names (default: all six of
    /// [`switchable_methods`]). At least one must be enabled while step-up is on.
    #[serde(deserialize_with = "method_names::deserialize")]
    pub enabled_methods: Vec<Method>,
    /// How recent the session's last MFA verification must be for calls that need one (recovery codes),
    /// seconds (the RFC 9470 `max_age` of their challenge). Default 300.
    pub recent_mfa_max_age_secs: u64,
}

/// An environment's limits on what callers may create, per hour (abuse control; docs/design.md §9). Large limits are
/// counted in fixed hourly windows, per client address (an IPv4 address, an IPv6 /64; see
/// [`ServerConfig::trusted_proxy_header`]) or per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// How many times a user may have recovery codes made (the first read, and each regeneration: ten argon2
    /// hashes each). Default 5.
    pub recovery_code_generations_per_hour: u32,
    /// How many one-time codes one client address may have sent without a session (sign-in codes). Default 30;
    /// `--dev` 100 000.
    pub anonymous_sends_per_client_per_hour: u32,
    /// How many one-time codes the environment may send without a session: the ceiling on what anonymous
    /// callers can cost in mail and SMS. Default 2 000; `--dev` 1 000 000.
    pub anonymous_sends_per_hour: u32,
    /// How many one-time codes signed-in users may have sent to their own addresses from one client address.
    /// Default 60; `--dev` 100 000.
    pub signed_in_sends_per_client_per_hour: u32,
    /// How many `GET /nonces` calls one client address may make without a session, and one signed-in user with
    /// one (each makes up to 5 nonces). Default 300; `--dev` 100 000.
    pub nonce_requests_per_client_per_hour: u32,
    /// How many `GET /nonces` calls without a session the environment takes. Default 20 000; `--dev` 1 000 000.
    pub nonce_requests_per_hour: u32,
    /// How many enrolment and passkey ceremonies a user may start (TOTP registrations, passkey registration and
    /// authentication options). Default 60.
    pub ceremonies_per_user_per_hour: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            recovery_code_generations_per_hour: 5,
            anonymous_sends_per_client_per_hour: 30,
            anonymous_sends_per_hour: 2_000,
            signed_in_sends_per_client_per_hour: 60,
            nonce_requests_per_client_per_hour: 300,
            nonce_requests_per_hour: 20_000,
            ceremonies_per_user_per_hour: 60,
        }
    }
}

impl Limits {
    /// The `--dev` limits: tests and demos sign in many users and fetch many nonces from one loopback address.
    #[must_use]
    pub fn dev() -> Self {
        Self {
            anonymous_sends_per_client_per_hour: 100_000,
            anonymous_sends_per_hour: 1_000_000,
            signed_in_sends_per_client_per_hour: 100_000,
            nonce_requests_per_client_per_hour: 100_000,
            nonce_requests_per_hour: 1_000_000,
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<(), String> {
        let all = [
            self.recovery_code_generations_per_hour,
            self.anonymous_sends_per_client_per_hour,
            self.anonymous_sends_per_hour,
            self.signed_in_sends_per_client_per_hour,
            self.nonce_requests_per_client_per_hour,
            self.nonce_requests_per_hour,
            self.ceremonies_per_user_per_hour,
        ];
        if all.contains(&0) { Err("limits must be positive".into()) } else { Ok(()) }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            step_up_scopes: TokenScope::KNOWN.to_vec(),
            single_use_scopes: DEFAULT_SINGLE_USE.to_vec(),
            single_use_ttl_secs: 300,
            multi_use_ttl_secs: 600,
            session_ttl_secs: 24 * 3600,
            step_up_enabled: true,
            enabled_methods: switchable_methods().map(|(method, _)| method).collect(),
            recent_mfa_max_age_secs: 300,
        }
    }
}

impl Policy {
    /// Whether `scope` needs step-up: step-up is on and the policy lists the scope.
    #[must_use]
    pub fn requires_step_up(&self, scope: &TokenScope) -> bool {
        self.step_up_enabled && self.step_up_scopes.contains(scope)
    }

    /// Whether `method` is enabled for step-up (external auth, which no setting switches, always is: the
    /// environment's trust in a backend decides it).
    #[must_use]
    pub fn method_enabled(&self, method: Method) -> bool {
        crate::methods::setting_name(method).is_none() || self.enabled_methods.contains(&method)
    }

    /// Whether a token for these scopes is single-use (any of them is), and its lifetime in seconds.
    #[must_use]
    pub fn token_terms(&self, scopes: &[TokenScope]) -> (bool, u64) {
        let single_use = scopes.iter().any(|s| self.single_use_scopes.contains(s));
        (single_use, if single_use { self.single_use_ttl_secs } else { self.multi_use_ttl_secs })
    }
}

impl EnvironmentConfig {
    /// The development environment of `serve --dev`: app domain `localhost`, URI and origin
    /// `http://localhost`, RP id `localhost`, default policy.
    #[must_use]
    pub fn dev(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            app_name: default_app_name(),
            app_domain: default_domain(),
            app_uri: default_origin(),
            rp_id: default_domain(),
            rp_origins: default_origins(),
            policy: Policy::default(),
            limits: Limits::dev(),
            // A development server is called from any local page (a Vite dev server, a test harness).
            allowed_origins: vec!["*".to_owned()],
            external_auth: None,
            email: EmailSettings {
                from: Some("Stepup Demo <no-reply@localhost>".into()),
                ..EmailSettings::default()
            },
            sms: SmsSettings::default(),
        }
    }
}

/// Whether the origin's host is `rp_id` or a subdomain of it (WebAuthn's rule; webauthn-rs checks it only for
/// the first origin).
fn origin_under(origin: &str, rp_id: &str) -> bool {
    let authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(host, _port)| host),
    };
    let (host, rp_id) = (host.to_ascii_lowercase(), rp_id.to_ascii_lowercase());
    host == rp_id || host.strip_suffix(&rp_id).is_some_and(|prefix| prefix.ends_with('.'))
}

/// A private-network address (RFC 1918, IPv6 unique-local): where a metrics listener without a token belongs.
fn is_private(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// `scheme://host[:port]` with an http(s) scheme and nothing after the authority (no path, query or fragment).
fn is_bare_origin(origin: &str) -> bool {
    let authority = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
    authority.is_some_and(|authority| {
        !authority.is_empty()
            && !authority.contains(['/', '?', '#'])
            && !authority.contains(char::is_whitespace)
    })
}

impl ServerConfig {
    /// A development configuration: one environment, in-memory SQLite, loopback.
    #[must_use]
    pub fn dev(environment_id: &str) -> Self {
        Self {
            listen: default_listen(),
            database_url: default_database_url(),
            admin_token: None,
            environments: vec![EnvironmentConfig::dev(environment_id)],
            hash_workers: None,
            trusted_proxy_header: None,
            connections: ConnectionLimits::default(),
            delivery: DeliveryConfig::default(),
            metrics: MetricsConfig::default(),
            key_encryption_key_file: None,
            key_encryption_key_value: None,
            dev: true,
        }
    }

    /// Reads a TOML file.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Parse`].
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::from_toml(&text)
    }

    /// Parses TOML text.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] for text that is not this configuration.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))
    }

    /// Applies the environment variables that override the file (docs/configuration.md lists them):
    /// `STEPUP_LISTEN`, `STEPUP_DATABASE_URL`, `STEPUP_ADMIN_TOKEN`, `STEPUP_HASH_WORKERS`,
    /// `STEPUP_TRUSTED_PROXY_HEADER`, `STEPUP_KEY_ENCRYPTION_KEY`, `STEPUP_KEY_ENCRYPTION_KEY_FILE`,
    /// `STEPUP_OUTBOX`, `STEPUP_METRICS_LISTEN`, `STEPUP_METRICS_TOKEN`, and the delivery secrets
    /// `STEPUP_SMTP_PASSWORD`, `STEPUP_SMS_AUTH_TOKEN`, `STEPUP_SMS_WEBHOOK_SECRET`.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for a value that does not parse.
    pub fn apply_env(&mut self) -> Result<(), ConfigError> {
        self.apply_vars(|name| std::env::var(name).ok())
    }

    /// [`ServerConfig::apply_env`] with the variables from `var` (tests).
    ///
    /// # Errors
    /// As [`ServerConfig::apply_env`].
    pub fn apply_vars(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let invalid = |name: &str| ConfigError::Invalid(format!("{name} does not parse"));
        if let Some(listen) = var("STEPUP_LISTEN") {
            self.listen =
                listen.parse().map_err(|_| ConfigError::Invalid(format!("STEPUP_LISTEN={listen}")))?;
        }
        if let Some(url) = var("STEPUP_DATABASE_URL") {
            self.database_url = url;
        }
        if let Some(token) = var("STEPUP_ADMIN_TOKEN") {
            self.admin_token = (!token.is_empty()).then(|| SecretString::new(token));
        }
        if let Some(workers) = var("STEPUP_HASH_WORKERS") {
            self.hash_workers = Some(workers.parse().map_err(|_| invalid("STEPUP_HASH_WORKERS"))?);
        }
        if let Some(header) = var("STEPUP_TRUSTED_PROXY_HEADER") {
            self.trusted_proxy_header = (!header.is_empty()).then_some(header);
        }
        if let Some(path) = var("STEPUP_KEY_ENCRYPTION_KEY_FILE") {
            self.key_encryption_key_file = Some(path.into());
        }
        if let Some(key) = var("STEPUP_KEY_ENCRYPTION_KEY") {
            let key = zeroize::Zeroizing::new(key);
            self.key_encryption_key_value = Some(
                KeyEncryptionKey::parse(&key)
                    .map_err(|e| ConfigError::Invalid(format!("STEPUP_KEY_ENCRYPTION_KEY: {e}")))?,
            );
        }
        if let Some(outbox) = var("STEPUP_OUTBOX") {
            self.delivery.outbox = Some(match outbox.as_str() {
                "1" | "true" | "on" => true,
                "0" | "false" | "off" => false,
                _ => return Err(invalid("STEPUP_OUTBOX (true or false)")),
            });
        }
        if let Some(listen) = var("STEPUP_METRICS_LISTEN") {
            self.metrics.listen = Some(listen.parse().map_err(|_| invalid("STEPUP_METRICS_LISTEN"))?);
        }
        if let Some(token) = var("STEPUP_METRICS_TOKEN") {
            self.metrics.token = (!token.is_empty()).then(|| SecretString::new(token));
        }
        if let (Some(smtp), Some(password)) = (&mut self.delivery.smtp, var("STEPUP_SMTP_PASSWORD")) {
            smtp.password = Some(SecretString::new(password));
        }
        match &mut self.delivery.sms {
            Some(crate::delivery::settings::SmsGatewayConfig::Twilio { auth_token, .. }) => {
                if let Some(token) = var("STEPUP_SMS_AUTH_TOKEN") {
                    *auth_token = Some(SecretString::new(token));
                }
            }
            Some(crate::delivery::settings::SmsGatewayConfig::Webhook { secret, .. }) => {
                if let Some(token) = var("STEPUP_SMS_WEBHOOK_SECRET") {
                    *secret = Some(SecretString::new(token));
                }
            }
            None => {}
        }
        Ok(())
    }

    /// The key-encryption key: the value given (`STEPUP_KEY_ENCRYPTION_KEY`), else the file's, else none.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for a file that cannot be read or does not hold a key.
    pub fn key_encryption_key(&self) -> Result<Option<KeyEncryptionKey>, ConfigError> {
        if let Some(key) = &self.key_encryption_key_value {
            return Ok(Some(key.clone()));
        }
        self.key_encryption_key_file
            .as_deref()
            .map(KeyEncryptionKey::from_file)
            .transpose()
            .map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// Checks the configuration is usable.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for no environment, a duplicate or empty id, or a zero lifetime.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.environments.is_empty() {
            return Err(ConfigError::Invalid("no environment configured".into()));
        }
        let mut ids: Vec<&str> = self.environments.iter().map(|e| e.id.as_str()).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) || ids.iter().any(|id| id.is_empty()) {
            return Err(ConfigError::Invalid("environment ids must be unique and not empty".into()));
        }
        self.connections.validate()?;
        if self.admin_token.as_ref().is_some_and(|token| token.expose_secret().trim().is_empty()) {
            return Err(ConfigError::Invalid(
                "admin_token must not be empty (leave it out to turn the admin API off)".into(),
            ));
        }
        if let Some(header) = &self.trusted_proxy_header
            && axum::http::HeaderName::from_bytes(header.as_bytes()).is_err()
        {
            return Err(ConfigError::Invalid(format!(
                "trusted_proxy_header `{header}` is not a header name"
            )));
        }
        for env in &self.environments {
            let p = &env.policy;
            let invalid = |why: &str| ConfigError::Invalid(format!("environment {}: {why}", env.id));
            if p.single_use_ttl_secs == 0
                || p.multi_use_ttl_secs == 0
                || p.session_ttl_secs == 0
                || p.recent_mfa_max_age_secs == 0
            {
                return Err(invalid("lifetimes must be positive"));
            }
            env.limits.validate().map_err(|why| invalid(&why))?;
            // Dynamic's prerequisite: step-up needs at least one verification method enabled.
            if p.step_up_enabled && p.enabled_methods.is_empty() {
                return Err(invalid("step-up is on but no verification method is enabled"));
            }
            if env.rp_origins.is_empty() {
                return Err(invalid("rp_origins must list at least one origin"));
            }
            for origin in &env.rp_origins {
                if !is_bare_origin(origin) || !origin_under(origin, &env.rp_id) {
                    return Err(invalid(&format!(
                        "rp_origins: `{origin}` must be scheme://host[:port] without a path"
                    )));
                }
            }
            for origin in &env.allowed_origins {
                if origin != "*" && !is_bare_origin(origin) {
                    return Err(invalid(&format!(
                        "allowed origin `{origin}` must be `*` or scheme://host[:port] without a path"
                    )));
                }
            }
            if let Some(external) = &env.external_auth {
                self.validate_external_auth(external).map_err(|why| invalid(&why))?;
            }
            env.email.validate().map_err(|why| invalid(&why.to_string()))?;
            env.sms.validate().map_err(|why| invalid(&why.to_string()))?;
            match &env.email.from {
                Some(from) => crate::delivery::smtp::check_mailbox(from)
                    .map_err(|why| invalid(&format!("email.from `{from}`: {why}")))?,
                None if self.delivery.smtp.is_some() && env.policy.method_enabled(Method::EmailOtp) => {
                    return Err(invalid("email.from is needed to send email over SMTP"));
                }
                None => {}
            }
        }
        let request_timeout = self.connections.request_timeout_ms;
        let delivery_timeouts = [
            self.delivery.smtp.as_ref().map(|smtp| ("delivery.smtp.timeout_ms", smtp.timeout_ms)),
            self.delivery.sms.as_ref().map(|sms| ("delivery.sms.timeout_ms", sms.timeout_ms())),
        ];
        for (name, timeout) in delivery_timeouts.into_iter().flatten() {
            if timeout >= request_timeout {
                return Err(ConfigError::Invalid(format!(
                    "{name} ({timeout}) must be below connections.request_timeout_ms ({request_timeout}): a send \
                     cut off by the request timeout is neither answered nor given back"
                )));
            }
        }
        if let Some(crate::delivery::settings::SmsGatewayConfig::Twilio { .. }) = &self.delivery.sms {
            for env in &self.environments {
                if env.policy.method_enabled(Method::SmsOtp) && env.sms.from.is_none() {
                    return Err(ConfigError::Invalid(format!(
                        "environment {}: sms.from is needed to send SMS through Twilio",
                        env.id
                    )));
                }
            }
        }
        if self.metrics.token.as_ref().is_some_and(|token| token.expose_secret().trim().len() < 16) {
            return Err(ConfigError::Invalid("metrics.token must be at least 16 characters".into()));
        }
        Ok(())
    }

    /// What is allowed but likely a mistake outside development: `check-config` prints these, `serve` logs
    /// them.
    #[must_use]
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let outbox = self.delivery.outbox.unwrap_or(self.dev);
        if outbox && !self.dev {
            warnings.push(
                "delivery.outbox is on outside --dev: every code is also stored in clear in the database"
                    .into(),
            );
        }
        for env in &self.environments {
            let channels = [
                (Method::EmailOtp, self.delivery.smtp.is_some(), "email", "delivery.smtp"),
                (Method::SmsOtp, self.delivery.sms.is_some(), "SMS", "delivery.sms"),
            ];
            for (method, configured, name, section) in channels {
                if env.policy.step_up_enabled && env.policy.method_enabled(method) && !configured && !outbox {
                    warnings.push(format!(
                        "environment {}: {name} is an enabled method but no {section} is configured: its codes \
                         cannot be sent (503 delivery_unavailable); configure it or drop it from enabled_methods",
                        env.id
                    ));
                }
            }
        }
        if let Some(addr) = self.metrics.listen
            && !(addr.ip().is_loopback() || is_private(addr.ip()))
        {
            warnings.push(format!(
                "metrics.listen {addr} is not a loopback or private address, and /metrics there takes no token"
            ));
        }
        if self.key_encryption_key_value.is_some() && self.key_encryption_key_file.is_some() {
            warnings.push(
                "both STEPUP_KEY_ENCRYPTION_KEY and a key file are set: the variable is used, the file ignored".into(),
            );
        }
        warnings
    }

    fn validate_external_auth(&self, external: &ExternalAuthConfig) -> Result<(), String> {
        if external.public_keys.is_empty() && external.jwks_url.is_none() {
            return Err("external_auth needs public_keys or a jwks_url".into());
        }
        if external.max_lifetime_secs == 0 || external.max_lifetime_secs > 3600 {
            return Err("external_auth.max_lifetime_secs must be 1 to 3600".into());
        }
        for key in &external.public_keys {
            if !matches!(key.algorithm.as_str(), "RS256" | "ES256" | "EdDSA") {
                return Err(format!(
                    "external_auth key algorithm `{}` is not RS256, ES256 or EdDSA",
                    key.algorithm
                ));
            }
        }
        if let Some(url) = &external.jwks_url {
            let allowed = url.starts_with("https://") || (self.dev && url.starts_with("http://"));
            if !allowed {
                return Err(format!(
                    "external_auth.jwks_url `{url}` must be https:// (http:// only with --dev)"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_with_defaults() {
        let config = ServerConfig::from_toml(
            r#"
            listen = "127.0.0.1:9999"
            [[environments]]
            id = "prod"
            app_name = "Wallet"
            [environments.policy]
            single_use_ttl_secs = 60
            "#,
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.environments[0].policy.single_use_ttl_secs, 60);
        assert_eq!(config.environments[0].policy.step_up_scopes.len(), 26);
        assert_eq!(config.environments[0].rp_id, "localhost");
        config.validate().unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(matches!(ServerConfig::from_toml("nonsense = 1"), Err(ConfigError::Parse(_))));
        let mut config = ServerConfig::dev("a");
        config.environments.push(EnvironmentConfig::dev("a"));
        assert!(matches!(config.validate(), Err(ConfigError::Invalid(_))));
        let mut config = ServerConfig::dev("a");
        config.environments[0].policy.multi_use_ttl_secs = 0;
        assert!(matches!(config.validate(), Err(ConfigError::Invalid(_))));
        assert!(matches!(
            ServerConfig { environments: vec![], ..ServerConfig::dev("x") }.validate(),
            Err(ConfigError::Invalid(_))
        ));
    }

    #[test]
    fn token_terms_follow_the_policy() {
        let policy = Policy::default();
        assert_eq!(policy.token_terms(&[TokenScope::WalletExport]), (true, 300));
        assert_eq!(policy.token_terms(&[TokenScope::WalletSign]), (false, 600));
        assert_eq!(policy.token_terms(&[TokenScope::WalletSign, TokenScope::UserDelete]), (true, 300));
    }

    #[test]
    fn step_up_settings_and_their_limits() {
        let config = ServerConfig::from_toml(
            r#"
            [[environments]]
            id = "prod"
            allowed_origins = ["https://app.example.com"]
            [environments.policy]
            enabled_methods = ["email", "totp", "recovery_code"]
            "#,
        )
        .unwrap();
        config.validate().unwrap();
        let policy = &config.environments[0].policy;
        assert!(policy.method_enabled(Method::Totp));
        assert!(!policy.method_enabled(Method::ExternalWallet));
        assert!(policy.requires_step_up(&TokenScope::WalletExport));
        let off = Policy { step_up_enabled: false, ..Policy::default() };
        assert!(!off.requires_step_up(&TokenScope::WalletExport));

        let mut none = ServerConfig::dev("a");
        none.environments[0].policy.enabled_methods.clear();
        assert!(
            matches!(none.validate(), Err(ConfigError::Invalid(why)) if why.contains("no verification method"))
        );
        // Off and nothing enabled is consistent.
        none.environments[0].policy.step_up_enabled = false;
        none.validate().unwrap();

        let mut origin = ServerConfig::dev("a");
        origin.environments[0].allowed_origins = vec!["https://app.example.com/".into()];
        assert!(
            matches!(origin.validate(), Err(ConfigError::Invalid(why)) if why.contains("allowed origin"))
        );
        assert!(matches!(
            ServerConfig::from_toml(
                "[[environments]]\nid = \"x\"\n[environments.policy]\nenabled_methods = [\"fax\"]"
            ),
            Err(ConfigError::Parse(_))
        ));
    }

    #[test]
    fn external_auth_settings_are_checked() {
        let mut config = ServerConfig::dev("a");
        let mut external = ExternalAuthConfig {
            public_keys: vec![],
            jwks_url: None,
            issuer: None,
            max_lifetime_secs: 300,
            allow_mfa_users: false,
        };
        config.environments[0].external_auth = Some(external.clone());
        assert!(
            matches!(config.validate(), Err(ConfigError::Invalid(why)) if why.contains("public_keys or a jwks_url"))
        );
        external.jwks_url = Some("http://127.0.0.1:9/jwks".into());
        config.environments[0].external_auth = Some(external.clone());
        config.validate().unwrap();
        config.dev = false;
        assert!(matches!(config.validate(), Err(ConfigError::Invalid(why)) if why.contains("https://")));
        external.jwks_url = Some("https://keys.example.com/jwks".into());
        external.public_keys =
            vec![ExternalAuthKey { algorithm: "HS256".into(), public_key_pem: String::new(), kid: None }];
        config.environments[0].external_auth = Some(external.clone());
        assert!(matches!(config.validate(), Err(ConfigError::Invalid(why)) if why.contains("HS256")));
        external.public_keys.clear();
        external.max_lifetime_secs = 86_400;
        config.environments[0].external_auth = Some(external);
        assert!(
            matches!(config.validate(), Err(ConfigError::Invalid(why)) if why.contains("max_lifetime_secs"))
        );
    }

    #[test]
    fn connection_limits_read_from_toml_and_checked() {
        let config = ServerConfig::from_toml(
            r#"
            [connections]
            max_connections = 64
            idle_timeout_ms = 2000
            [[environments]]
            id = "prod"
            "#,
        )
        .unwrap();
        let expected =
            ConnectionLimits { max_connections: 64, idle_timeout_ms: 2000, ..ConnectionLimits::default() };
        assert_eq!(config.connections, expected);
        assert_eq!(config.connections.header_read_timeout(), Duration::from_secs(10));
        config.validate().unwrap();
        for (limits, why) in [
            (ConnectionLimits { max_connections: 0, ..expected }, "max_connections"),
            (ConnectionLimits { request_timeout_ms: 0, ..expected }, "positive"),
            (ConnectionLimits { idle_timeout_ms: 20_000, ..expected }, "idle_timeout_ms must not exceed"),
        ] {
            let config = ServerConfig { connections: limits, ..config.clone() };
            assert!(
                matches!(config.validate(), Err(ConfigError::Invalid(message)) if message.contains(why)),
                "{limits:?}"
            );
        }
        assert!(matches!(
            ServerConfig::from_toml("[connections]\nread_timeout = 1\n[[environments]]\nid = \"a\""),
            Err(ConfigError::Parse(_))
        ));
    }

    #[test]
    fn the_trusted_proxy_header_must_be_a_header_name_and_limits_positive() {
        let mut config = ServerConfig::dev("a");
        config.trusted_proxy_header = Some("X-Forwarded-For".into());
        config.validate().unwrap();
        config.trusted_proxy_header = Some("not a header".into());
        assert!(
            matches!(config.validate(), Err(ConfigError::Invalid(why)) if why.contains("trusted_proxy_header"))
        );
        let mut config = ServerConfig::dev("a");
        config.admin_token = Some(SecretString::new(""));
        assert!(matches!(config.validate(), Err(ConfigError::Invalid(why)) if why.contains("admin_token")));
        let mut config = ServerConfig::dev("a");
        assert_eq!(config.environments[0].rp_origins, ["http://localhost"]);
        config.environments[0].rp_origins = vec![];
        assert!(
            matches!(config.validate(), Err(ConfigError::Invalid(why)) if why.contains("at least one origin"))
        );
        config.environments[0].rp_origins = vec!["https://app.example.com/login".into()];
        assert!(
            matches!(config.validate(), Err(ConfigError::Invalid(why)) if why.contains("without a path"))
        );
        let mut config = ServerConfig::dev("a");
        config.environments[0].limits.anonymous_sends_per_hour = 0;
        assert!(
            matches!(config.validate(), Err(ConfigError::Invalid(why)) if why.contains("limits must be positive"))
        );
    }
}
