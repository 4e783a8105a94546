//! `WalletSigner`: the external wallet that signs the step-up message, and a local-key implementation.

use stepup_core::Cause;
use stepup_proto::WalletProvider;

/// Why a wallet could not sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignerError {
    /// The user declined to sign.
    #[error("the user declined to sign")]
    Declined,
    /// The wallet failed (disconnected, locked, crashed); the cause, without secrets, is the `source()`.
    #[error("the wallet failed")]
    Failed(#[source] Cause),
}

/// An external wallet that can sign the EIP-4361 step-up message with EIP-191 `personal_sign`.
///
/// Implement it over a browser extension bridge, WalletConnect or a hardware wallet; [`LocalWalletSigner`] holds
/// a key in memory. `is_embedded` must be true for wallets the app itself holds for the user (they prove nothing
/// the session does not): the engine refuses them with `EmbeddedWalletNotAllowed` before asking for a signature.
#[async_trait::async_trait]
pub trait WalletSigner: Send + Sync {
    /// The wallet's address as the server stores it (EIP-55 checksummed, `0x` prefix).
    fn address(&self) -> String;

    /// The chain family as wallet connectors name it (`EVM`), sent as `chain` in `POST /wallets/verify`. The
    /// user's wallet credential names the same chain as Dynamic's credentials do (`eip155`); the engine matches
    /// the two spellings (`stepup_proto::chain`).
    fn chain(&self) -> String {
        "EVM".to_owned()
    }

    /// The EIP-155 chain id written into the message (`1` for Ethereum mainnet).
    fn chain_id(&self) -> u64 {
        1
    }

    /// The wallet's name (`metamask`, `coinbase`...).
    fn wallet_name(&self) -> String;

    /// How the wallet is connected.
    fn wallet_provider(&self) -> WalletProvider {
        WalletProvider::BrowserExtension
    }

    /// Whether the app embeds this wallet (then it never qualifies for step-up).
    fn is_embedded(&self) -> bool {
        false
    }

    /// Signs `message` with EIP-191 `personal_sign`; the answer is the 65-byte signature as `0x` hex.
    ///
    /// # Errors
    /// [`SignerError::Declined`] when the user says no, [`SignerError::Failed`] when the wallet fails.
    async fn sign_message(&self, message: &str) -> Result<String, SignerError>;
}

#[cfg(feature = "local-wallet")]
pub use local::LocalWalletSigner;

#[cfg(feature = "local-wallet")]
mod local {
    use alloy_primitives::{Address, Signature, eip191_hash_message};
    use k256::ecdsa::SigningKey;

    use super::{Cause, SignerError, WalletSigner};

    /// An external wallet whose secp256k1 key lives in this process: for kiosks, tests and demos. The key is
    /// zeroized on drop (k256 does it) and never printed.
    pub struct LocalWalletSigner {
        key: SigningKey,
        address: Address,
        name: String,
    }

    impl std::fmt::Debug for LocalWalletSigner {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("LocalWalletSigner")
                .field("address", &self.address.to_checksum(None))
                .field("name", &self.name)
                .finish_non_exhaustive()
        }
    }

    impl LocalWalletSigner {
        /// A wallet with a fresh random key.
        ///
        /// # Errors
        /// [`SignerError::Failed`] when the system's random source fails.
        pub fn random(name: &str) -> Result<Self, SignerError> {
            loop {
                let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
                getrandom_fill(bytes.as_mut())?;
                // A random 32-byte string is a valid key unless it is 0 or >= the group order (p ~ 2^-128).
                if let Ok(signer) = Self::from_secret_bytes(bytes.as_ref(), name) {
                    return Ok(signer);
                }
            }
        }

        /// A wallet with the given 32-byte secret key.
        ///
        /// # Errors
        /// [`SignerError::Failed`] when the bytes are not a valid secp256k1 secret key.
        pub fn from_secret_bytes(secret: &[u8], name: &str) -> Result<Self, SignerError> {
            // The key error is not kept: it could say something about the secret.
            let key = SigningKey::from_slice(secret)
                .map_err(|_| SignerError::Failed(Cause::message("not a valid secp256k1 secret key")))?;
            let address = Address::from_private_key(&key);
            Ok(Self { key, address, name: name.to_owned() })
        }
    }

    fn getrandom_fill(bytes: &mut [u8]) -> Result<(), SignerError> {
        getrandom::fill(bytes).map_err(|e| SignerError::Failed(Cause::context("no randomness", e)))
    }

    #[async_trait::async_trait]
    impl WalletSigner for LocalWalletSigner {
        fn address(&self) -> String {
            self.address.to_checksum(None)
        }

        fn wallet_name(&self) -> String {
            self.name.clone()
        }

        async fn sign_message(&self, message: &str) -> Result<String, SignerError> {
            let digest = eip191_hash_message(message);
            let (signature, recovery) = self
                .key
                .sign_prehash_recoverable(digest.as_slice())
                .map_err(|e| SignerError::Failed(Cause::new(e)))?;
            let signature = Signature::from((signature, recovery));
            Ok(format!("0x{}", hex(&signature.as_bytes())))
        }
    }

    fn hex(bytes: &[u8]) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(bytes.len() * 2);
        for byte in bytes {
            out.push(char::from(DIGITS[usize::from(byte >> 4)]));
            out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// The web3.js `personal_sign` vector (docs/design.md §12): the signature recovers to the key's address.
        #[tokio::test]
        async fn signature_recovers_to_the_address() {
            let signer = LocalWalletSigner::from_secret_bytes(&[7; 32], "test").unwrap();
            let hex_signature = signer.sign_message("Some data").await.unwrap();
            assert_eq!(hex_signature.len(), 2 + 130);
            let bytes: Vec<u8> = (2..hex_signature.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex_signature[i..i + 2], 16).unwrap())
                .collect();
            let signature = Signature::try_from(bytes.as_slice()).unwrap();
            let recovered = signature.recover_address_from_msg("Some data").unwrap();
            assert_eq!(recovered.to_checksum(None), signer.address());
            assert!(!format!("{signer:?}").contains("07070707"));
        }

        #[test]
        fn a_zero_key_is_refused() {
            assert!(matches!(
                LocalWalletSigner::from_secret_bytes(&[0; 32], "x"),
                Err(SignerError::Failed(_))
            ));
            assert!(LocalWalletSigner::random("x").is_ok());
        }
    }
}
