//! The collaborators that hold the user's keys: an external wallet and a passkey authenticator.

mod passkey;
mod wallet;

#[cfg(feature = "software-passkey")]
pub use passkey::SoftwarePasskey;
pub use passkey::{PasskeyAuthenticator, PasskeyError};
#[cfg(feature = "local-wallet")]
pub use wallet::LocalWalletSigner;
pub use wallet::{SignerError, WalletSigner};
