//! `AppState`: what every handler shares — storage, environments and their keys, the clock, the OTP key.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderName;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use stepup_core::{SecretString, SharedClock, UnixTime};

use crate::config::{ConnectionLimits, EnvironmentConfig, ServerConfig};
use crate::delivery::Delivery;
use crate::error::ApiError;
use crate::key_encryption::{KeyEncryptionError, KeyEncryptionKey};
use crate::metrics::Metrics;
use crate::random;
use crate::signing_keys::{SigningKeyError, SigningKeys};
use crate::store::{Store, StoreError, secs};
use crate::tokens::{JwtError, TimeClaims};
use crate::verify::external_auth::ExternalAuthKeys;
use crate::verify::hash_work::HashWork;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored key is corrupt.
    #[error("stored key material is corrupt: {0}")]
    Keys(String),
    /// The signing keys cannot be loaded.
    #[error(transparent)]
    SigningKeys(#[from] SigningKeyError),
    /// A sealed secret does not open, or no key-encryption key was given.
    #[error(transparent)]
    KeyEncryption(#[from] KeyEncryptionError),
    /// Outside `--dev` the server needs a key-encryption key.
    #[error(
        "no key-encryption key: set STEPUP_KEY_ENCRYPTION_KEY (64 hex digits) or key_encryption_key_file \
         (make one with `stepup-server generate-key`); the database's secrets are encrypted under it"
    )]
    NoKeyEncryptionKey,
    /// The OS random source failed.
    #[error(transparent)]
    Random(#[from] random::RandomError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// One environment: its configuration, signing key, WebAuthn relying party and the app backend's keys.
pub struct Environment {
    /// Configuration.
    pub config: EnvironmentConfig,
    /// Its signing keys: the current one signs sessions and elevated tokens, recently retired ones verify.
    pub keys: SigningKeys,
    /// The WebAuthn relying party (RP id and origin from the configuration; any port of the origin is accepted,
    /// as development servers move between ports).
    pub webauthn: webauthn_rs::Webauthn,
    /// The keys external-auth tokens are checked with, when external auth is configured.
    pub external_auth: Option<ExternalAuthKeys>,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("config", &self.config)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

fn relying_party(env: &EnvironmentConfig) -> Result<webauthn_rs::Webauthn, StartError> {
    let invalid = |why: String| {
        StartError::Config(crate::config::ConfigError::Invalid(format!("environment {}: {why}", env.id)))
    };
    let parse = |origin: &String| {
        webauthn_rs::prelude::Url::parse(origin).map_err(|e| invalid(format!("rp_origins: `{origin}`: {e}")))
    };
    let origins = env.rp_origins.iter().map(parse).collect::<Result<Vec<_>, _>>()?;
    let (first, others) =
        origins.split_first().ok_or_else(|| invalid("rp_origins must list at least one origin".into()))?;
    // Origins match exactly, port included: `allow_any_port` would let a page on any port of the host (another
    // app on `localhost:8081`) run ceremonies for this one.
    let mut builder = webauthn_rs::WebauthnBuilder::new(&env.rp_id, first)
        .map_err(|e| invalid(format!("rp_id and rp_origins do not match: {e}")))?
        .rp_name(&env.app_name)
        .allow_any_port(false);
    for origin in others {
        builder = builder.append_allowed_origin(origin);
    }
    builder.build().map_err(|e| invalid(format!("WebAuthn: {e}")))
}

impl Environment {
    /// The environment id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.config.id
    }
}

/// The state handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: Store,
    environments: HashMap<String, Arc<Environment>>,
    admin_token: Option<SecretString>,
    metrics_token: Option<SecretString>,
    clock: SharedClock,
    otp_key: zeroize::Zeroizing<[u8; 32]>,
    kek: KeyEncryptionKey,
    delivery: Delivery,
    metrics: Metrics,
    hash_work: HashWork,
    connections: ConnectionLimits,
    trusted_proxy_header: Option<HeaderName>,
    /// The last `/health` write and whether it went through: health checks write at most once a second.
    health: tokio::sync::Mutex<Option<(tokio::time::Instant, bool)>>,
    /// `/openapi.json`, built on first request (it depends only on the configuration).
    openapi: std::sync::OnceLock<axum::body::Bytes>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("environments", &self.0.environments.keys()).finish_non_exhaustive()
    }
}

pub use crate::tokens::ISSUER;

/// The context the OTP HMAC key is sealed under.
const OTP_KEY_CONTEXT: &str = "server_secret:otp_hmac_key";

/// The OTP HMAC key: made and sealed on first start, sealed on start if an earlier version stored it in clear.
async fn load_otp_key(
    store: &Store,
    kek: &KeyEncryptionKey,
) -> Result<zeroize::Zeroizing<[u8; 32]>, StartError> {
    let candidate = kek.seal(OTP_KEY_CONTEXT, random::hex(&random::bytes::<32>()?).as_bytes())?;
    let stored = store.server_secret("otp_hmac_key", &candidate).await?;
    let (hex, was_sealed) = kek.open_or_adopt_clear(OTP_KEY_CONTEXT, &stored)?;
    if !was_sealed {
        store
            .reseal_server_secret("otp_hmac_key", &stored, &kek.seal(OTP_KEY_CONTEXT, hex.as_bytes())?)
            .await?;
        tracing::info!("OTP key encrypted at rest");
    }
    let key = random::from_hex::<32>(&hex)
        .ok_or_else(|| StartError::Keys("the OTP key is not 32 bytes of hex".into()))?;
    Ok(zeroize::Zeroizing::new(key))
}

/// Seals the TOTP secrets an earlier version stored in clear.
async fn seal_clear_totp_secrets(store: &Store, kek: &KeyEncryptionKey) -> Result<(), StartError> {
    let clear = store.clear_totp_secrets().await?;
    for (id, secret) in &clear {
        let secret = zeroize::Zeroizing::new(secret.clone());
        store.reseal_totp_secret(id, &secret, &kek.seal(&totp_context(id), secret.as_bytes())?).await?;
    }
    if !clear.is_empty() {
        tracing::info!(devices = clear.len(), "TOTP secrets encrypted at rest");
    }
    Ok(())
}

fn totp_context(device_id: &str) -> String {
    format!("totp:{device_id}")
}

impl AppState {
    /// Loads (or, on first start, creates) every environment's signing key and the OTP key.
    ///
    /// # Errors
    /// [`StartError`] for a bad configuration, a database failure or corrupt keys.
    pub async fn new(config: &ServerConfig, store: Store, clock: SharedClock) -> Result<Self, StartError> {
        config.validate()?;
        for warning in config.warnings() {
            tracing::warn!("{warning}");
        }
        let kek = match config.key_encryption_key()? {
            Some(kek) => kek,
            None if config.dev => {
                let kek = KeyEncryptionKey::generate()?;
                tracing::warn!(
                    kek = %kek.id(),
                    "--dev: an ephemeral key-encryption key was made; this database's secrets cannot be read after \
                     a restart unless STEPUP_KEY_ENCRYPTION_KEY is set"
                );
                kek
            }
            None => return Err(StartError::NoKeyEncryptionKey),
        };
        let delivery = Delivery::new(config)?;
        let now = secs(clock.now());
        let mut environments = HashMap::new();
        for env in &config.environments {
            let keys = SigningKeys::load_or_create(&store, env, &kek, now).await?;
            let webauthn = relying_party(env)?;
            let external_auth =
                env.external_auth.as_ref().map(ExternalAuthKeys::new).transpose().map_err(|why| {
                    StartError::Config(crate::config::ConfigError::Invalid(format!(
                        "environment {}: external_auth: {why}",
                        env.id
                    )))
                })?;
            let environment = Environment { config: env.clone(), keys, webauthn, external_auth };
            environments.insert(env.id.clone(), Arc::new(environment));
        }
        let otp_key = load_otp_key(&store, &kek).await?;
        seal_clear_totp_secrets(&store, &kek).await?;
        Ok(Self(Arc::new(Inner {
            store,
            environments,
            admin_token: config.admin_token.clone(),
            metrics_token: config.metrics.token.clone(),
            clock,
            otp_key,
            kek,
            delivery,
            metrics: Metrics::new(),
            hash_work: config.hash_workers.map_or_else(HashWork::per_core, HashWork::new),
            connections: config.connections,
            trusted_proxy_header: config
                .trusted_proxy_header
                .as_deref()
                .map(|name| HeaderName::from_bytes(name.as_bytes()))
                .transpose()
                .map_err(|_| {
                    StartError::Config(crate::config::ConfigError::Invalid("trusted_proxy_header".into()))
                })?,
            health: tokio::sync::Mutex::new(None),
            openapi: std::sync::OnceLock::new(),
        })))
    }

    /// Storage.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The current time.
    #[must_use]
    pub fn now(&self) -> UnixTime {
        self.0.clock.now()
    }

    /// An environment by id.
    #[must_use]
    pub fn environment(&self, id: &str) -> Option<&Arc<Environment>> {
        self.0.environments.get(id)
    }

    /// The ids of the environments served.
    pub fn environment_ids(&self) -> impl Iterator<Item = &str> {
        self.0.environments.keys().map(String::as_str)
    }

    /// The delivery channels (SMTP, SMS gateway, outbox).
    #[must_use]
    pub fn delivery(&self) -> &Delivery {
        &self.0.delivery
    }

    /// The metrics.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The key-encryption key.
    #[must_use]
    pub fn key_encryption_key(&self) -> &KeyEncryptionKey {
        &self.0.kek
    }

    /// Seals a new TOTP device's secret for storage.
    ///
    /// # Errors
    /// 500 when no nonce can be drawn.
    pub fn seal_totp_secret(&self, device_id: &str, secret: &str) -> Result<String, ApiError> {
        self.0.kek.seal(&totp_context(device_id), secret.as_bytes()).map_err(|_| ApiError::internal())
    }

    /// Opens a stored TOTP secret.
    ///
    /// # Errors
    /// 500 when it does not open (logged).
    pub fn open_totp_secret(
        &self,
        device_id: &str,
        stored: &str,
    ) -> Result<zeroize::Zeroizing<String>, ApiError> {
        self.0.kek.open_text(&totp_context(device_id), stored).map_err(|error| {
            tracing::error!(%error, "a TOTP secret does not open");
            ApiError::internal()
        })
    }

    /// Verifies one of this server's JWTs for `env` against its signing keys, reloading them from the database
    /// (at most once a second) when the token names a key this replica does not hold yet — one another replica
    /// just made.
    ///
    /// # Errors
    /// [`JwtError`].
    pub async fn verify_jwt<C: serde::de::DeserializeOwned + TimeClaims>(
        &self,
        env: &Environment,
        token: &str,
    ) -> Result<C, JwtError> {
        let now = self.now().as_secs();
        match env.keys.verify(token, now) {
            Err(JwtError::UnknownKey) => {
                let mut last = env.keys.reload_gate().lock().await;
                // A reload may have run while this waited for the gate.
                match env.keys.verify(token, now) {
                    Err(JwtError::UnknownKey) => {}
                    other => return other,
                }
                if last.is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(1)) {
                    return Err(JwtError::UnknownKey);
                }
                *last = Some(tokio::time::Instant::now());
                if let Err(error) = self.reload_signing_keys(env).await {
                    tracing::warn!(%error, "reloading signing keys failed");
                }
                env.keys.verify(token, now)
            }
            other => other,
        }
    }

    /// Reloads an environment's signing keys from the database (after a rotation, here or on another replica).
    ///
    /// # Errors
    /// [`SigningKeyError`].
    pub async fn reload_signing_keys(&self, env: &Environment) -> Result<(), SigningKeyError> {
        env.keys.reload(self.store(), &env.config, &self.0.kek, secs(self.now())).await
    }

    /// The bounded pool argon2 work runs on.
    #[must_use]
    pub fn hash_work(&self) -> &HashWork {
        &self.0.hash_work
    }

    /// The cached outcome of the last health write (see `routes::environment::health`).
    pub(crate) fn health_cache(&self) -> &tokio::sync::Mutex<Option<(tokio::time::Instant, bool)>> {
        &self.0.health
    }

    /// The OpenAPI document, serialised once.
    pub(crate) fn openapi_cache(&self) -> &std::sync::OnceLock<axum::body::Bytes> {
        &self.0.openapi
    }

    /// The header a trusted reverse proxy writes the client's address into, if one is configured.
    #[must_use]
    pub fn trusted_proxy_header(&self) -> Option<&HeaderName> {
        self.0.trusted_proxy_header.as_ref()
    }

    /// The connection limits and timeouts (the request timeout is applied by the router).
    #[must_use]
    pub fn connection_limits(&self) -> &ConnectionLimits {
        &self.0.connections
    }

    /// The metrics token, if `/metrics` is served on the main listener.
    #[must_use]
    pub fn metrics_token(&self) -> Option<&SecretString> {
        self.0.metrics_token.as_ref()
    }

    /// The admin token, if the admin API is on.
    #[must_use]
    pub fn admin_token(&self) -> Option<&SecretString> {
        self.0.admin_token.as_ref()
    }

    /// The keyed hash a one-time code is stored as: HMAC-SHA256 over the verification id and the code, so a
    /// database dump does not reveal codes and a hash cannot be replayed for another verification.
    #[must_use]
    pub fn otp_hash(&self, verification_id: &str, code: &str) -> String {
        // HMAC accepts keys of any length; the error branch cannot happen for a 32-byte key.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.0.otp_key.as_slice()) else {
            return String::new();
        };
        mac.update(verification_id.as_bytes());
        mac.update(b":");
        mac.update(code.as_bytes());
        random::hex(&mac.finalize().into_bytes())
    }
}
