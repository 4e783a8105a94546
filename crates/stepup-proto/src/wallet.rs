//! Nonces and external-wallet verification (EIP-4361 message, EIP-191 signature).

use serde::{Deserialize, Serialize};

use crate::TokenScope;
use crate::user::WalletProvider;

/// Most nonces one `GET /nonces?count=` call hands out.
pub const MAX_NONCES_PER_CALL: usize = 5;

/// Answer of `GET /nonces?count=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NoncesResponse {
    /// Fresh single-use nonces.
    pub nonces: Vec<String>,
}

/// Body of `POST /wallets/verify` (Dynamic's `VerifyRequest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// The EIP-4361-shaped message a wallet signs for step-up (docs/design.md §8), lines joined by `\n`, no trailing
/// newline:
///
/// ```text
/// {domain} wants you to sign in with your Ethereum account:
/// {address}
///
/// {statement}
///
/// URI: {uri}
/// Version: 1
/// Chain ID: {chainId}
/// Nonce: {nonce}
/// Issued At: {RFC 3339}
/// Request ID: {environmentId}
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletMessage {
    /// The app's domain.
    pub domain: String,
    /// The signing address (`0x...`).
    pub address: String,
    /// Free text shown to the user (the server does not check it).
    pub statement: String,
    /// The app's URI.
    pub uri: String,
    /// Always `1`.
    pub version: String,
    /// The chain id, e.g. `1`.
    pub chain_id: String,
    /// A nonce the server issued.
    pub nonce: String,
    /// When the message was made, RFC 3339.
    pub issued_at: String,
    /// The environment id.
    pub request_id: String,
}

/// Why a text is not a wallet message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WalletMessageError {
    /// Fewer or more lines than the format has.
    #[error("the message does not have the expected lines")]
    Shape,
    /// The first line is not `{domain} wants you to sign in with your Ethereum account:`.
    #[error("the message's first line is not a sign-in request")]
    Preamble,
    /// A field line is missing or not `Name: value`.
    #[error("the message's `{0}` field is missing or misplaced")]
    Field(&'static str),
}

const PREAMBLE: &str = " wants you to sign in with your Ethereum account:";

impl WalletMessage {
    /// Dynamic's statement for an app.
    #[must_use]
    pub fn statement_for(app_name: &str) -> String {
        format!(
            "Welcome to {app_name}. Signing is the only way we can truly know that you are the owner of the wallet \
             you are connecting. Signing is a safe, gas-less transaction that does not in any way give {app_name} \
             permission to perform any transactions with your wallet."
        )
    }

    /// Parses the text form.
    ///
    /// # Errors
    /// [`WalletMessageError`] for each way the text can be off.
    pub fn parse(text: &str) -> Result<Self, WalletMessageError> {
        let lines: Vec<&str> = text.split('\n').collect();
        let [first, address, blank1, statement, blank2, uri, version, chain_id, nonce, issued_at, request_id] =
            lines.as_slice()
        else {
            return Err(WalletMessageError::Shape);
        };
        let domain = first.strip_suffix(PREAMBLE).ok_or(WalletMessageError::Preamble)?;
        if !blank1.is_empty() || !blank2.is_empty() {
            return Err(WalletMessageError::Shape);
        }
        let field = |line: &str, name: &'static str| -> Result<String, WalletMessageError> {
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(": "))
                .map(str::to_owned)
                .ok_or(WalletMessageError::Field(name))
        };
        Ok(Self {
            domain: domain.to_owned(),
            address: (*address).to_owned(),
            statement: (*statement).to_owned(),
            uri: field(uri, "URI")?,
            version: field(version, "Version")?,
            chain_id: field(chain_id, "Chain ID")?,
            nonce: field(nonce, "Nonce")?,
            issued_at: field(issued_at, "Issued At")?,
            request_id: field(request_id, "Request ID")?,
        })
    }
}

impl std::fmt::Display for WalletMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{PREAMBLE}\n{}\n\n{}\n\nURI: {}\nVersion: {}\nChain ID: {}\nNonce: {}\nIssued At: {}\nRequest ID: {}",
            self.domain,
            self.address,
            self.statement,
            self.uri,
            self.version,
            self.chain_id,
            self.nonce,
            self.issued_at,
            self.request_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> WalletMessage {
        WalletMessage {
            domain: "localhost".into(),
            address: "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23".into(),
            statement: WalletMessage::statement_for("Stepup Demo"),
            uri: "http://localhost".into(),
            version: "1".into(),
            chain_id: "1".into(),
            nonce: "0123456789abcdef".into(),
            issued_at: "2026-11-28T01:02:03Z".into(),
            request_id: "dev".into(),
        }
    }

    #[test]
    fn text_form_round_trips() {
        let text = sample().to_string();
        assert!(text.starts_with("localhost wants you to sign in with your Ethereum account:\n0x2c75"));
        assert!(text.ends_with("Request ID: dev"));
        assert_eq!(text.lines().count(), 11);
        assert_eq!(WalletMessage::parse(&text).unwrap(), sample());
    }

    #[test]
    fn malformed_messages_have_their_errors() {
        assert_eq!(WalletMessage::parse(""), Err(WalletMessageError::Shape));
        let text = sample().to_string();
        assert_eq!(WalletMessage::parse(&format!("{text}\n")), Err(WalletMessageError::Shape));
        assert_eq!(
            WalletMessage::parse(&text.replacen("wants you", "asks you", 1)),
            Err(WalletMessageError::Preamble)
        );
        assert_eq!(
            WalletMessage::parse(&text.replace("Nonce: ", "Nonce:")),
            Err(WalletMessageError::Field("Nonce"))
        );
        assert_eq!(
            WalletMessage::parse(&text.replace("URI: ", "Uri: ")),
            Err(WalletMessageError::Field("URI"))
        );
    }
}
