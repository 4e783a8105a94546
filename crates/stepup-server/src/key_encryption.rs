//! Secrets at rest: the signing keys, the OTP HMAC key and the TOTP secrets are sealed in the database with
//! XChaCha20-Poly1305 under a key-encryption key (KEK) that is never stored there — it comes from the
//! environment (`STEPUP_KEY_ENCRYPTION_KEY`) or a file (`key_encryption_key_file`,
//! `STEPUP_KEY_ENCRYPTION_KEY_FILE`). A copy of the database alone yields no key, so no code hash can be
//! brute-forced, no token forged and no TOTP code computed from it (docs/security.md).
//!
//! A sealed value is `kek1:<key id>:<base64 of nonce ‖ ciphertext>`. The key id (16 hex digits of a hash of the
//! KEK) tells a wrong KEK from a corrupt value. Each value is bound to where it lives by its associated data
//! (`signing_key:<environment>:<kid>`, `totp:<device id>`, ...): a ciphertext copied into another row does not
//! open.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::random;

/// The prefix of a sealed value.
pub const SEALED_PREFIX: &str = "kek1:";

/// Why a key-encryption key cannot be loaded or a value not opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyEncryptionError {
    /// The KEK text is not 32 bytes in hex (64 digits) or base64.
    #[error(
        "the key-encryption key must be 32 bytes, as 64 hex digits or base64 (make one with `stepup-server generate-key`)"
    )]
    Malformed,
    /// The KEK file cannot be read.
    #[error("cannot read the key-encryption key file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The value was sealed under another KEK.
    #[error("{what} was encrypted with another key-encryption key (id {found}; this one is {expected})")]
    WrongKey {
        /// What the value is.
        what: String,
        /// The id in the value.
        found: String,
        /// This KEK's id.
        expected: String,
    },
    /// The value does not open (corrupt, or moved from another row).
    #[error("{what} does not decrypt: it is corrupt or was copied from another row")]
    Corrupt {
        /// What the value is.
        what: String,
    },
    /// The OS random source failed.
    #[error("the operating system's random source failed")]
    Random,
}

/// The key-encryption key. `Debug` shows only its id.
#[derive(Clone)]
pub struct KeyEncryptionKey {
    key: Zeroizing<[u8; 32]>,
    id: String,
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEncryptionKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl KeyEncryptionKey {
    fn from_bytes(key: [u8; 32]) -> Self {
        let digest =
            Sha256::new().chain_update(b"stepup key-encryption key id\0").chain_update(key).finalize();
        let id = random::hex(&digest[..8]);
        Self { key: Zeroizing::new(key), id }
    }

    /// Parses 64 hex digits or base64 (standard or URL-safe, padded or not) of 32 bytes; surrounding
    /// whitespace (a file's newline) is ignored.
    ///
    /// # Errors
    /// [`KeyEncryptionError::Malformed`].
    pub fn parse(text: &str) -> Result<Self, KeyEncryptionError> {
        let text = text.trim();
        if let Some(key) = random::from_hex::<32>(text) {
            return Ok(Self::from_bytes(key));
        }
        let standard = Zeroizing::new(text.replace('-', "+").replace('_', "/"));
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(standard.trim_end_matches('='))
                .map_err(|_| KeyEncryptionError::Malformed)?,
        );
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyEncryptionError::Malformed)?;
        Ok(Self::from_bytes(key))
    }

    /// Reads a KEK file (see [`KeyEncryptionKey::parse`]).
    ///
    /// # Errors
    /// [`KeyEncryptionError::File`] or [`KeyEncryptionError::Malformed`].
    pub fn from_file(path: &std::path::Path) -> Result<Self, KeyEncryptionError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| KeyEncryptionError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?);
        Self::parse(&text)
    }

    /// A new random KEK (`--dev`, and `stepup-server generate-key`).
    ///
    /// # Errors
    /// [`KeyEncryptionError::Random`].
    pub fn generate() -> Result<Self, KeyEncryptionError> {
        Ok(Self::from_bytes(random::bytes::<32>().map_err(|_| KeyEncryptionError::Random)?))
    }

    /// The key as 64 hex digits (`generate-key` prints it once).
    #[must_use]
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(random::hex(self.key.as_slice()))
    }

    /// The key's id: 16 hex digits of a hash of it, safe to log.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.as_slice().into())
    }

    /// Seals `plaintext`, bound to `context` (where it is stored).
    ///
    /// # Errors
    /// [`KeyEncryptionError::Random`] when no nonce can be drawn.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<String, KeyEncryptionError> {
        let nonce = random::bytes::<24>().map_err(|_| KeyEncryptionError::Random)?;
        let sealed = self
            .cipher()
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: context.as_bytes() })
            .map_err(|_| KeyEncryptionError::Corrupt { what: context.to_owned() })?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}:{}", self.id, STANDARD.encode(blob)))
    }

    /// Opens a value [`KeyEncryptionKey::seal`] made for `context`.
    ///
    /// # Errors
    /// [`KeyEncryptionError::WrongKey`] for another KEK's value, [`KeyEncryptionError::Corrupt`] for a value
    /// that does not open.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Zeroizing<Vec<u8>>, KeyEncryptionError> {
        let corrupt = || KeyEncryptionError::Corrupt { what: context.to_owned() };
        let rest = sealed.strip_prefix(SEALED_PREFIX).ok_or_else(corrupt)?;
        let (id, encoded) = rest.split_once(':').ok_or_else(corrupt)?;
        if id != self.id {
            return Err(KeyEncryptionError::WrongKey {
                what: context.to_owned(),
                found: id.to_owned(),
                expected: self.id.clone(),
            });
        }
        let blob = STANDARD.decode(encoded).map_err(|_| corrupt())?;
        if blob.len() < 24 + 16 {
            return Err(corrupt());
        }
        let (nonce, ciphertext) = blob.split_at(24);
        self.cipher()
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: context.as_bytes() })
            .map(Zeroizing::new)
            .map_err(|_| corrupt())
    }

    /// Opens a sealed text value.
    ///
    /// # Errors
    /// As [`KeyEncryptionKey::open`] (a clear value is [`KeyEncryptionError::Corrupt`]), and
    /// [`KeyEncryptionError::Corrupt`] for sealed bytes that are not UTF-8.
    pub fn open_text(&self, context: &str, stored: &str) -> Result<Zeroizing<String>, KeyEncryptionError> {
        let bytes = self.open(context, stored)?;
        String::from_utf8(bytes.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| KeyEncryptionError::Corrupt { what: context.to_owned() })
    }

    /// [`KeyEncryptionKey::open_text`], or a value an earlier version stored in clear passed through
    /// (`Ok((value, false))`), for the one-time sealing on start. Only that start may take a clear value: at
    /// any other time one is refused, or a row planted in clear by someone with write access to the database
    /// (a signing key, a TOTP secret) would be taken.
    ///
    /// # Errors
    /// As [`KeyEncryptionKey::open_text`].
    pub fn open_or_adopt_clear(
        &self,
        context: &str,
        stored: &str,
    ) -> Result<(Zeroizing<String>, bool), KeyEncryptionError> {
        if is_sealed(stored) {
            Ok((self.open_text(context, stored)?, true))
        } else {
            Ok((Zeroizing::new(stored.to_owned()), false))
        }
    }
}

/// Whether a stored value is sealed (not a clear value from an earlier version).
#[must_use]
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_every_refusal() {
        let kek = KeyEncryptionKey::generate().unwrap();
        let sealed = kek.seal("totp:d1", b"JBSWY3DPEHPK3PXP").unwrap();
        assert!(is_sealed(&sealed) && !sealed.contains("JBSWY3DP"));
        assert_eq!(kek.open("totp:d1", &sealed).unwrap().as_slice(), b"JBSWY3DPEHPK3PXP");
        // Another row's context, a flipped byte, another KEK.
        assert_eq!(kek.open("totp:d2", &sealed), Err(KeyEncryptionError::Corrupt { what: "totp:d2".into() }));
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 3;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert!(matches!(
            kek.open("totp:d1", std::str::from_utf8(&flipped).unwrap()),
            Err(KeyEncryptionError::Corrupt { .. })
        ));
        let other = KeyEncryptionKey::generate().unwrap();
        assert!(matches!(other.open("totp:d1", &sealed), Err(KeyEncryptionError::WrongKey { .. })));
        // Clear values of earlier versions pass through, flagged.
        let (clear, was_sealed) = kek.open_or_adopt_clear("totp:d1", "JBSWY3DPEHPK3PXP").unwrap();
        assert_eq!((clear.as_str(), was_sealed), ("JBSWY3DPEHPK3PXP", false));
        // Outside the sealing on start, a clear value is refused.
        assert!(matches!(
            kek.open_text("totp:d1", "JBSWY3DPEHPK3PXP"),
            Err(KeyEncryptionError::Corrupt { .. })
        ));
        assert!(!format!("{kek:?}").contains(kek.to_hex().as_str()));
    }

    #[test]
    fn keys_parse_from_hex_and_base64_only_at_32_bytes() {
        let kek = KeyEncryptionKey::generate().unwrap();
        let hex = kek.to_hex();
        assert_eq!(KeyEncryptionKey::parse(&format!("{}\n", hex.as_str())).unwrap().id(), kek.id());
        let b64 = STANDARD.encode(KeyEncryptionKey::parse(&hex).unwrap().key.as_slice());
        assert_eq!(KeyEncryptionKey::parse(&b64).unwrap().id(), kek.id());
        for bad in ["", "abc", &hex[..62], "not base64 at all!!"] {
            assert_eq!(KeyEncryptionKey::parse(bad).unwrap_err(), KeyEncryptionError::Malformed, "{bad}");
        }
    }
}
