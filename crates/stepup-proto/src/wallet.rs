//! Nonces and external-wallet verification (EIP-4361 message, EIP-191 signature).

use serde::{Deserialize, Serialize};

use crate::TokenScope;
use crate::user::WalletProvider;

/// Most nonces one `GET /nonces?count=` call hands out.
pub const MAX_NONCES_PER_CALL: usize = 5;

/// Answer of `GET /nonces?count=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoncesResponse {
    /// Fresh single-use nonces.
    pub nonces: Vec<String>,
}

/// Body of `POST /wallets/verify` (Dynamic's `VerifyRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletVerifyRequest {
    /// The EIP-191 `personal_sign` signature of `message_to_sign`, `0x`-prefixed hex.
    pub signed_message: String,
    /// The EIP-4361 message that was signed.
    pub message_to_sign: String,
    /// The wallet's address.
    pub public_wallet_address: String,
    /// The wallet's chain (`EVM`, ...).
    pub chain: String,
    /// The wallet's name, e.g. `metamask`.
    pub wallet_name: String,
    /// How the wallet is connected.
    pub wallet_provider: WalletProvider,
    /// Scopes to get an elevated token for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_scopes: Option<Vec<TokenScope>>,
    /// The network (chain id), if the client knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
}
