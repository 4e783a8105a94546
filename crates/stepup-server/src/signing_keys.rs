//! Each environment's signing keys: the current one signs, the recently retired ones still verify.
//!
//! Rotation (`stepup-server admin rotate-signing-key`, or `POST /admin/environments/{env}/signing-keys`) adds a
//! key that becomes current. A key retired by a newer one keeps verifying — and stays in the JWKS — for
//! [`retire_window_secs`] (the longest token lifetime plus a minute of clock skew), so every token it signed
//! verifies until it expires. Replicas share the keys through the database: each reloads its ring once a
//! minute, and at once (at most once a second) when a token names a key it does not hold, so a key made on one
//! replica is honoured by all of them before it matters.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::EnvironmentConfig;
use crate::key_encryption::{KeyEncryptionError, KeyEncryptionKey};
use crate::store::{SigningKeyRow, Store, StoreError};
use crate::tokens::{EnvironmentKey, JwtError, TimeClaims};
use crate::verified_signatures::VerifiedSignatures;
use stepup_core::Jwt;
use stepup_proto::Jwk;

/// Why the keys cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningKeyError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A key does not decrypt.
    #[error(transparent)]
    Sealed(#[from] KeyEncryptionError),
    /// A key is not 32 bytes of hex.
    #[error("signing key {kid} of environment {environment} is corrupt")]
    Corrupt {
        /// The environment.
        environment: String,
        /// The key id.
        kid: String,
    },
    /// The environment has no key (it was deleted from the database under a running server).
    #[error("environment {0} has no signing key")]
    Missing(String),
}

/// How long a retired key keeps verifying: the longest lifetime of anything it signed, plus a minute.
#[must_use]
pub fn retire_window_secs(env: &EnvironmentConfig) -> i64 {
    let policy = &env.policy;
    let longest = policy.session_ttl_secs.max(policy.single_use_ttl_secs).max(policy.multi_use_ttl_secs);
    i64::try_from(longest.saturating_add(60)).unwrap_or(i64::MAX)
}

/// The keys of one environment at one moment.
#[derive(Debug)]
pub struct KeyRing {
    /// Newest first; the first signs.
    keys: Vec<EnvironmentKey>,
    /// The same keys as the guard checks elevated tokens with.
    guard_keys: Vec<Arc<stepup_guard::Key>>,
}

impl KeyRing {
    /// The signing key.
    #[must_use]
    pub fn current(&self) -> &EnvironmentKey {
        // A ring is built from at least one key (`load` refuses an empty list).
        &self.keys[0]
    }

    /// Every key that verifies, current first: the JWKS.
    #[must_use]
    pub fn jwks(&self) -> Vec<Jwk> {
        self.keys.iter().map(EnvironmentKey::jwk).collect()
    }

    fn by_kid(&self, kid: &str) -> Option<&EnvironmentKey> {
        self.keys.iter().find(|key| key.kid() == kid)
    }
}

/// The context a signing key is sealed under.
#[must_use]
pub fn sealing_context(environment_id: &str, kid: &str) -> String {
    // Length-prefixed: an environment id may contain `:`, and `a:b` + `c` must not read as `a` + `b:c`.
    format!("signing_key:{}:{environment_id}:{kid}", environment_id.len())
}

/// Builds the ring from stored rows (newest first). With `adopt_clear` (the start only), a key an earlier
/// version stored in clear is taken and sealed; on a reload it is refused.
async fn ring_from_rows(
    store: &Store,
    env: &EnvironmentConfig,
    kek: &KeyEncryptionKey,
    rows: Vec<SigningKeyRow>,
    now: i64,
    adopt_clear: bool,
) -> Result<KeyRing, SigningKeyError> {
    let window = retire_window_secs(env);
    let mut keys = Vec::new();
    let mut successor_created: Option<i64> = None;
    for row in rows {
        // A key retired (by the next newer one) longer ago than the window signs nothing still valid.
        if successor_created.is_some_and(|at| at < now.saturating_sub(window)) {
            break;
        }
        successor_created = Some(row.created_at);
        let context = sealing_context(&env.id, &row.kid);
        let (secret, was_sealed) = if adopt_clear {
            kek.open_or_adopt_clear(&context, &row.secret_key)?
        } else {
            (kek.open_text(&context, &row.secret_key)?, true)
        };
        let corrupt = || SigningKeyError::Corrupt { environment: env.id.clone(), kid: row.kid.clone() };
        let bytes = zeroize::Zeroizing::new(crate::random::from_hex::<32>(&secret).ok_or_else(corrupt)?);
        if !was_sealed {
            let sealed = kek.seal(&context, secret.as_bytes())?;
            store.reseal_signing_key(&env.id, &row.slot, &row.secret_key, &sealed).await?;
            tracing::info!(environment = %env.id, kid = %row.kid, "signing key encrypted at rest");
        }
        keys.push(EnvironmentKey::from_secret(row.kid.clone(), &env.id, &bytes));
    }
    if keys.is_empty() {
        return Err(SigningKeyError::Missing(env.id.clone()));
    }
    let guard_keys = keys.iter().map(|key| Arc::new(key.guard_key())).collect();
    Ok(KeyRing { keys, guard_keys })
}

/// One environment's keys, swapped whole on reload (readers never wait).
#[derive(Debug)]
pub struct SigningKeys {
    ring: Arc<ArcSwap<KeyRing>>,
    /// When a reload for an unknown key id last ran (none yet: the first may run at once).
    last_reload: Mutex<Option<Instant>>,
    /// Session tokens whose signature was checked or made here (only the signature check is skipped for them).
    verified_sessions: VerifiedSignatures,
}

impl SigningKeys {
    /// Loads the keys, creating the first one (sealed) when the environment has none. Replicas racing on first
    /// start all end up with the same key (the first insert wins).
    ///
    /// # Errors
    /// [`SigningKeyError`].
    pub async fn load_or_create(
        store: &Store,
        env: &EnvironmentConfig,
        kek: &KeyEncryptionKey,
        now: i64,
    ) -> Result<Self, SigningKeyError> {
        if store.signing_keys(&env.id).await?.is_empty() {
            let kid = crate::random::uuid().map_err(|_| KeyEncryptionError::Random)?;
            let secret = crate::random::bytes::<32>().map_err(|_| KeyEncryptionError::Random)?;
            let sealed = kek.seal(&sealing_context(&env.id, &kid), crate::random::hex(&secret).as_bytes())?;
            store.insert_signing_key_if_none(&env.id, "primary", &kid, &sealed, now).await?;
        }
        let ring = ring_from_rows(store, env, kek, store.signing_keys(&env.id).await?, now, true).await?;
        Ok(Self {
            ring: Arc::new(ArcSwap::from_pointee(ring)),
            last_reload: Mutex::new(None),
            verified_sessions: VerifiedSignatures::default(),
        })
    }

    /// The ring as the guard's key source: it sees every reload.
    #[must_use]
    pub fn guard_key_source(&self) -> RingKeys {
        RingKeys(self.ring.clone())
    }

    /// The current ring.
    #[must_use]
    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.load_full()
    }

    /// Reloads from the database.
    ///
    /// # Errors
    /// [`SigningKeyError`].
    pub async fn reload(
        &self,
        store: &Store,
        env: &EnvironmentConfig,
        kek: &KeyEncryptionKey,
        now: i64,
    ) -> Result<(), SigningKeyError> {
        let ring = ring_from_rows(store, env, kek, store.signing_keys(&env.id).await?, now, false).await?;
        self.ring.store(Arc::new(ring));
        Ok(())
    }

    /// The gate of reloads for unknown key ids: held while such a reload runs, so callers that arrive meanwhile
    /// wait for it and then look again, and it holds when the last one ran (at most one a second: a stream of
    /// forged key ids must not turn into a stream of queries).
    pub fn reload_gate(&self) -> &Mutex<Option<Instant>> {
        &self.last_reload
    }

    /// Verifies a token against the ring (see [`EnvironmentKey::verify`]).
    ///
    /// # Errors
    /// [`JwtError::UnknownKey`] when no key of the ring has the token's `kid`; the others as
    /// [`EnvironmentKey::verify`].
    pub fn verify<C: serde::de::DeserializeOwned + TimeClaims>(
        &self,
        token: &str,
        now: u64,
    ) -> Result<C, JwtError> {
        self.with_key_of(token, |key| key.verify(token, now))
    }

    /// [`SigningKeys::verify`] for a session token, skipping the signature check (only that) for a token whose
    /// signature was checked or made here before: see [`crate::verified_signatures`].
    ///
    /// # Errors
    /// As [`SigningKeys::verify`].
    pub fn verify_session<C: serde::de::DeserializeOwned + TimeClaims>(
        &self,
        token: &str,
        now: u64,
    ) -> Result<C, JwtError> {
        self.with_key_of(token, |key| {
            if self.verified_sessions.contains(token) {
                return key.verify_claims(token, now);
            }
            let claims = key.verify(token, now)?;
            self.verified_sessions.remember(token);
            Ok(claims)
        })
    }

    /// Runs `check` with the ring's key that `token`'s header names.
    fn with_key_of<T>(
        &self,
        token: &str,
        check: impl FnOnce(&EnvironmentKey) -> Result<T, JwtError>,
    ) -> Result<T, JwtError> {
        let header = crate::tokens::peek_header(token)?;
        let ring = self.ring.load();
        let key = header.kid.as_deref().and_then(|kid| ring.by_kid(kid)).ok_or(JwtError::UnknownKey)?;
        check(key)
    }

    /// Signs a session token with the current key, and remembers it as verified: the client's next request
    /// carries it.
    ///
    /// # Errors
    /// As [`EnvironmentKey::sign`].
    pub fn sign_session<C: serde::Serialize>(&self, claims: &C) -> Result<Jwt, JwtError> {
        let jwt = self.ring.load().current().sign(claims)?;
        self.verified_sessions.remember(jwt.expose_secret());
        Ok(jwt)
    }
}

/// An environment's signing keys as `stepup-guard` looks them up: the live ring, so a reload (a rotation here or
/// on another replica) is seen at once. Reloading for an unknown `kid` is the caller's
/// ([`crate::services::issuance::with_key_reload`]).
#[derive(Debug, Clone)]
pub struct RingKeys(Arc<ArcSwap<KeyRing>>);

#[async_trait::async_trait]
impl stepup_guard::KeySource for RingKeys {
    async fn keys_for(
        &self,
        kid: Option<&str>,
        algorithm: stepup_guard::Algorithm,
        _now: u64,
    ) -> Result<Vec<Arc<stepup_guard::Key>>, stepup_guard::Unavailable> {
        let ring = self.0.load();
        Ok(ring.guard_keys.iter().filter(|key| key.fits(kid, algorithm)).cloned().collect())
    }
}

/// Adds a new signing key that becomes current at once (its `created_at` is after every other key's, so all
/// replicas agree which is newest), and deletes keys retired longer than the window — or, with
/// `retire_previous` (a key that leaked), every other key at once: what they signed stops verifying, here at
/// once and on other replicas at their next reload (within a minute). Returns the new key id.
///
/// # Errors
/// [`SigningKeyError`].
pub async fn rotate(
    store: &Store,
    env: &EnvironmentConfig,
    kek: &KeyEncryptionKey,
    now: i64,
    retire_previous: bool,
) -> Result<String, SigningKeyError> {
    let rows = store.signing_keys(&env.id).await?;
    let created_at = rows.first().map_or(now, |newest| now.max(newest.created_at + 1));
    let kid = crate::random::uuid().map_err(|_| KeyEncryptionError::Random)?;
    let secret = crate::random::bytes::<32>().map_err(|_| KeyEncryptionError::Random)?;
    let sealed = kek.seal(&sealing_context(&env.id, &kid), crate::random::hex(&secret).as_bytes())?;
    store.insert_signing_key_if_none(&env.id, &kid, &kid, &sealed, created_at).await?;
    // Keys whose successor is older than the window verify nothing still alive.
    let window = retire_window_secs(env);
    let mut successor: Option<i64> = Some(created_at);
    for row in &rows {
        if retire_previous || successor.is_some_and(|at| at < now.saturating_sub(window)) {
            store.delete_signing_key(&env.id, &row.slot).await?;
        }
        successor = Some(row.created_at);
    }
    Ok(kid)
}
