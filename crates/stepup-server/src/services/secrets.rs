//! The server's own secrets at rest, besides the signing keys (`signing_keys.rs`): the OTP HMAC key, and the TOTP
//! devices' secrets, each sealed under the key-encryption key and bound to its row (`key_encryption.rs`).

use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::ServiceError;
use crate::key_encryption::{KeyEncryptionError, KeyEncryptionKey};
use crate::random;
use crate::store::{Store, StoreError};

/// Why the server's secrets could not be loaded at start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sealed secret does not open.
    #[error(transparent)]
    KeyEncryption(#[from] KeyEncryptionError),
    /// The OS random source failed.
    #[error(transparent)]
    Random(#[from] random::RandomError),
    /// A stored key is not what it must be.
    #[error("stored key material is corrupt: {0}")]
    Corrupt(&'static str),
}

/// The context the OTP HMAC key is sealed under.
const OTP_KEY_CONTEXT: &str = "server_secret:otp_hmac_key";

/// The key one-time codes are stored under: a database dump does not reveal codes, and a hash cannot be replayed
/// for another verification. One per database, shared by every replica.
pub struct OtpKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for OtpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtpKey(..)")
    }
}

impl OtpKey {
    /// The stored key: made and sealed on first start, sealed on start if an earlier version stored it in clear.
    ///
    /// # Errors
    /// [`SecretsError`].
    pub async fn load(store: &Store, kek: &KeyEncryptionKey) -> Result<Self, SecretsError> {
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
            .ok_or(SecretsError::Corrupt("the OTP key is not 32 bytes of hex"))?;
        Ok(Self(Zeroizing::new(key)))
    }

    /// The keyed hash a one-time code is stored as: HMAC-SHA256 over the verification id and the code.
    #[must_use]
    pub fn hash(&self, verification_id: &str, code: &str) -> String {
        // HMAC accepts keys of any length; the error branch cannot happen for a 32-byte key.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.0.as_slice()) else {
            return String::new();
        };
        mac.update(verification_id.as_bytes());
        mac.update(b":");
        mac.update(code.as_bytes());
        random::hex(&mac.finalize().into_bytes())
    }
}

fn totp_context(device_id: &str) -> String {
    format!("totp:{device_id}")
}

/// Seals a new TOTP device's secret for storage.
///
/// # Errors
/// [`ServiceError::Internal`] when no nonce can be drawn.
pub fn seal_totp_secret(
    kek: &KeyEncryptionKey,
    device_id: &str,
    secret: &str,
) -> Result<String, ServiceError> {
    kek.seal(&totp_context(device_id), secret.as_bytes()).map_err(|_| ServiceError::randomness())
}

/// Opens a stored TOTP secret.
///
/// # Errors
/// [`ServiceError::Internal`] when it does not open (logged: the row or the key is wrong).
pub fn open_totp_secret(
    kek: &KeyEncryptionKey,
    device_id: &str,
    stored: &str,
) -> Result<Zeroizing<String>, ServiceError> {
    kek.open_text(&totp_context(device_id), stored).map_err(|error| {
        tracing::error!(%error, "a TOTP secret does not open");
        ServiceError::Internal { what: "opening a TOTP secret" }
    })
}

/// Seals the TOTP secrets an earlier version stored in clear (at start, and only then).
///
/// # Errors
/// [`SecretsError`].
pub async fn seal_clear_totp_secrets(store: &Store, kek: &KeyEncryptionKey) -> Result<(), SecretsError> {
    let clear = store.clear_totp_secrets().await?;
    for (id, secret) in &clear {
        let secret = Zeroizing::new(secret.clone());
        store.reseal_totp_secret(id, &secret, &kek.seal(&totp_context(id), secret.as_bytes())?).await?;
    }
    if !clear.is_empty() {
        tracing::info!(devices = clear.len(), "TOTP secrets encrypted at rest");
    }
    Ok(())
}
