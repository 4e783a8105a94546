//! One environment (project) as the server serves it: its configuration, signing keys, WebAuthn relying party
//! and the app backend's keys, built from the configuration at start.

use stepup_core::UnixTime;

use crate::config::{ConfigError, EnvironmentConfig};
use crate::key_encryption::KeyEncryptionKey;
use crate::methods::external_auth::ExternalAuthKeys;
use crate::signing_keys::SigningKeys;
use crate::state::StartError;
use crate::store::{Store, secs};

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
    /// Checks this environment's elevated tokens: its signing keys, its database as the single-use store
    /// (`crate::guard` adds the policy).
    pub guard: stepup_guard::Guard,
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
    let invalid =
        |why: String| StartError::Config(ConfigError::Invalid(format!("environment {}: {why}", env.id)));
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
    /// Builds the environment of `config`: loads (or, on first start, creates) its signing keys, and reads its
    /// relying party and the backend keys it trusts.
    ///
    /// # Errors
    /// [`StartError`] for a bad configuration, a database failure or keys that do not open.
    pub async fn load(
        config: &EnvironmentConfig,
        store: &Store,
        kek: &KeyEncryptionKey,
        now: UnixTime,
    ) -> Result<Self, StartError> {
        let keys = SigningKeys::load_or_create(store, config, kek, secs(now)).await?;
        let webauthn = relying_party(config)?;
        let external_auth =
            config.external_auth.as_ref().map(ExternalAuthKeys::new).transpose().map_err(|why| {
                StartError::Config(ConfigError::Invalid(format!(
                    "environment {}: external_auth: {why}",
                    config.id
                )))
            })?;
        let guard = stepup_guard::Guard::builder()
            .issuer(crate::tokens::ISSUER)
            .audience(config.id.clone())
            .key_source(keys.guard_key_source())
            .single_use_store(crate::store::DatabaseSingleUse::new(store.clone()))
            // This server issued the token by the same clock (its replicas share the database's idea of it):
            // expired is expired; `iat` may be a replica's clock a minute ahead.
            .leeway(std::time::Duration::ZERO)
            .clock_skew(std::time::Duration::from_secs(crate::tokens::MAX_CLOCK_SKEW_SECS))
            .token_use(stepup_guard::TokenUse::Claim)
            .build()
            .map_err(|e| {
                StartError::Config(ConfigError::Invalid(format!("environment {}: guard: {e}", config.id)))
            })?;
        Ok(Self { config: config.clone(), keys, webauthn, external_auth, guard })
    }

    /// The environment id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.config.id
    }
}
