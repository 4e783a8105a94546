//! External-wallet verification: the EIP-4361-shaped message and its EIP-191 signature (docs/design.md §8, §9).
//!
//! Every field but the statement is checked against the environment and the request; the signature must
//! recover to the claimed address, which must be an external wallet of this user; the nonce must be one this
//! server issued, unused. Each failure has its own code.

use std::str::FromStr as _;

use alloy_primitives::{Address, Signature};
use stepup_core::UnixTime;
use stepup_proto::{ErrorCode, WalletMessage};

use crate::config::EnvironmentConfig;
use crate::error::ApiError;

/// How far `Issued At` may be from the server's clock, either way.
pub const ISSUED_AT_TOLERANCE_SECS: u64 = 10 * 60;

fn refuse(code: &str, message: &str) -> ApiError {
    ApiError::unprocessable(ErrorCode::Unknown(code.to_owned()), message)
}

/// `https://app/` and `https://app` are the same URI (Dynamic's client adds the slash).
fn same_uri(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// A message that passed every check but the nonce (which the caller spends last) and the wallet ownership
/// (which needs the database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedMessage {
    /// The signer (recovered and equal to the claimed address).
    pub address: Address,
    /// The nonce to spend.
    pub nonce: String,
}

/// Checks the message text, its fields and the signature.
///
/// # Errors
/// 422 with `invalid_message` (not the format), `invalid_message_domain`, `invalid_message_address` (message
/// and request disagree, or not an address), `invalid_message_uri`, `invalid_message_version`,
/// `invalid_message_chain_id` (not a decimal chain id),
/// `invalid_message_request_id`, `invalid_message_issued_at` (unreadable or more than 10 minutes off), or
/// `invalid_signature` (unreadable, or recovers to another address).
pub fn check_message(
    env: &EnvironmentConfig,
    message_text: &str,
    signature: &str,
    claimed_address: &str,
    now: UnixTime,
) -> Result<CheckedMessage, ApiError> {
    let message =
        WalletMessage::parse(message_text).map_err(|e| refuse("invalid_message", &e.to_string()))?;
    if message.domain != env.app_domain {
        return Err(refuse("invalid_message_domain", "The message is for another domain"));
    }
    let address = Address::from_str(&message.address)
        .map_err(|_| refuse("invalid_message_address", "The message's address is not an address"))?;
    let claimed = Address::from_str(claimed_address)
        .map_err(|_| refuse("invalid_message_address", "publicWalletAddress is not an address"))?;
    if address != claimed {
        return Err(refuse("invalid_message_address", "The message's address is not publicWalletAddress"));
    }
    if !same_uri(&message.uri, &env.app_uri) {
        return Err(refuse("invalid_message_uri", "The message is for another URI"));
    }
    if message.version != "1" {
        return Err(refuse("invalid_message_version", "The message version must be 1"));
    }
    if message.chain_id.is_empty()
        || message.chain_id.len() > 20
        || !message.chain_id.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(refuse("invalid_message_chain_id", "Chain ID must be a decimal chain id"));
    }
    if message.request_id != env.id {
        return Err(refuse("invalid_message_request_id", "The message is for another environment"));
    }
    let issued_at = UnixTime::parse_rfc3339(&message.issued_at)
        .map_err(|_| refuse("invalid_message_issued_at", "Issued At is not an RFC 3339 time"))?;
    let skew = now.as_secs().abs_diff(issued_at.as_secs());
    if skew > ISSUED_AT_TOLERANCE_SECS {
        return Err(refuse("invalid_message_issued_at", "Issued At is more than 10 minutes off"));
    }
    let signature = Signature::from_str(signature)
        .map_err(|_| refuse("invalid_signature", "The signature is not a 65-byte hex signature"))?;
    // EIP-2: of the two valid signatures (s and n - s), only the low one is accepted, as Ethereum does for
    // transactions; wallets make low-S signatures. The high twin is a second spelling of the same signature.
    if signature.normalize_s().is_some() {
        return Err(refuse("invalid_signature", "The signature is not in low-S form (EIP-2)"));
    }
    let signer = signature
        .recover_address_from_msg(message_text.as_bytes())
        .map_err(|_| refuse("invalid_signature", "The signature does not verify"))?;
    if signer != address {
        return Err(refuse("invalid_signature", "The signature is not by this address"));
    }
    Ok(CheckedMessage { address, nonce: message.nonce })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The web3.js documentation's `personal_sign` vector, as alloy-primitives' own test uses it: a signature
    /// made by an independent implementation recovers to its address here.
    #[test]
    fn web3js_documentation_vector_recovers() {
        let signature = Signature::from_str(
            "0xb91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a0291c",
        )
        .unwrap();
        let expected = Address::from_str("0x2c7536E3605D9C16a7a3D7b1898e529396a65c23").unwrap();
        assert_eq!(signature.recover_address_from_msg(b"Some data").unwrap(), expected);
        assert_ne!(signature.recover_address_from_msg(b"Some other data").unwrap(), expected);
    }

    /// A signature's high-S twin (s replaced by n - s, the parity flipped) recovers to the same address, so it
    /// was accepted as a second spelling of the same signature; EIP-2 allows only the low one.
    #[test]
    fn the_high_s_twin_recovers_but_is_not_low_s() {
        let low = Signature::from_str(
            "0xb91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a0291c",
        )
        .unwrap();
        assert!(low.normalize_s().is_none());
        let order = alloy_primitives::U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        let high = Signature::new(low.r(), order - low.s(), !low.v());
        assert_eq!(
            high.recover_address_from_msg(b"Some data").unwrap(),
            low.recover_address_from_msg(b"Some data").unwrap()
        );
        assert_eq!(high.normalize_s(), Some(low));
    }

    #[test]
    fn uris_compare_without_a_trailing_slash() {
        assert!(same_uri("http://localhost/", "http://localhost"));
        assert!(!same_uri("http://localhost:8080", "http://localhost"));
    }
}
