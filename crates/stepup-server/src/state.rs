//! `AppState`: what every handler shares — storage, the environments, the clock, the server's secrets, the
//! delivery channels, metrics and limits. It holds them; the services use them.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderName;
use stepup_core::{SecretString, SharedClock, UnixTime};

use crate::config::{ConnectionLimits, ServerConfig};
use crate::delivery::Delivery;
use crate::environment::Environment;
use crate::key_encryption::{KeyEncryptionError, KeyEncryptionKey};
use crate::metrics::Metrics;
use crate::random;
use crate::services::hash_work::HashWork;
use crate::services::secrets::{self, OtpKey, SecretsError};
use crate::signing_keys::SigningKeyError;
use crate::store::{Store, StoreError};

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
    /// The server's secrets (the OTP key, TOTP secrets) cannot be loaded.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
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

/// The state handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: Store,
    environments: HashMap<String, Arc<Environment>>,
    admin_token: Option<SecretString>,
    metrics_token: Option<SecretString>,
    clock: SharedClock,
    otp_key: OtpKey,
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

impl AppState {
    /// Loads (or, on first start, creates) every environment's signing keys and the OTP key, and seals secrets an
    /// earlier version stored in clear.
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
        let mut environments = HashMap::new();
        for env in &config.environments {
            let environment = Environment::load(env, &store, &kek, clock.now()).await?;
            environments.insert(env.id.clone(), Arc::new(environment));
        }
        let otp_key = OtpKey::load(&store, &kek).await?;
        secrets::seal_clear_totp_secrets(&store, &kek).await?;
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

    /// The key one-time codes are stored under.
    #[must_use]
    pub fn otp_key(&self) -> &OtpKey {
        &self.0.otp_key
    }
}
