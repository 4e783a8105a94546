//! External-wallet re-authentication: nonces (`GET /nonces`), and step-up by an external wallet's EIP-191
//! signature over an EIP-4361-shaped message (`POST /wallets/verify`, docs/design.md §8, §9); the user's
//! external wallets in the step-up offer.
//!
//! Every field of the message but the statement is checked against the environment and the request; the
//! signature must recover to the claimed address, which must be an external wallet of this user; the nonce must
//! be one this server issued, unused, and it is spent last. Each failure has its own code ([`WalletRefusal`]).

use std::str::FromStr as _;

use alloy_primitives::{Address, Signature};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use stepup_core::{Method, UnixTime};
use stepup_proto::wallet::MAX_NONCES_PER_CALL;
use stepup_proto::{
    CredentialFormat, ErrorCode, NoncesResponse, StepUpCredential, VerifyResponse, WalletMessage,
    WalletVerifyRequest,
};
use utoipa::openapi::HttpMethod;
use utoipa::openapi::schema::{ObjectBuilder, Type};

use super::Served;
use crate::auth::{ApiJson, ApiQuery, Env, MaybeSession, Session};
use crate::client_address::ClientAddress;
use crate::config::EnvironmentConfig;
use crate::environment::Environment;
use crate::error::ApiError;
use crate::random;
use crate::routes::openapi::{Caller, Document};
use crate::services::limits::{self, Limit};
use crate::services::offer::Account;
use crate::services::{Limited, Refusal, ServiceError, step_up};
use crate::state::AppState;
use crate::store::secs;

/// How long an unused nonce stays valid.
pub const NONCE_TTL_SECS: u64 = 10 * 60;

/// How far `Issued At` may be from the server's clock, either way.
pub const ISSUED_AT_TOLERANCE_SECS: u64 = 10 * 60;

pub(super) const SERVED: Served = Served {
    methods: &[Method::ExternalWallet],
    routes,
    document,
    verifications: &[("/wallets/verify", "wallet")],
};

fn routes(router: Router<AppState>) -> Router<AppState> {
    router.route("/nonces", get(nonces)).route("/wallets/verify", post(verify))
}

fn document(doc: &mut Document) {
    let count = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(5));
    doc.sdk(HttpMethod::Get, "/nonces", "Fresh single-use nonces for wallet messages", Caller::Anyone)
        .query_parameter("count", "How many (1 to 5, default 1)", count)
        .answers::<NoncesResponse>()
        .add();
    doc.sdk(
        HttpMethod::Post,
        "/wallets/verify",
        "Step up by an external wallet's signature",
        Caller::SignedIn,
    )
    .body::<WalletVerifyRequest>(false)
    .answers::<VerifyResponse>()
    .add();
}

/// The user's external wallets (embedded ones never qualify), oldest first.
pub(super) async fn offer(account: &Account<'_>) -> Result<Vec<StepUpCredential>, ServiceError> {
    Ok(account
        .credentials()
        .await?
        .iter()
        .filter(|c| c.format == CredentialFormat::Blockchain && c.sign_in_enabled && !c.embedded)
        .map(|c| StepUpCredential {
            id: c.id.clone(),
            format: c.format.clone(),
            kind: c.wallet_provider.clone(),
            alias: c.address.clone(),
        })
        .collect())
}

// ---- HTTP ----

/// `?count=`.
#[derive(Debug, Deserialize)]
struct NonceQuery {
    count: Option<String>,
}

/// `GET /nonces?count=`: 1 to 5 fresh single-use nonces (default 1).
async fn nonces(
    State(state): State<AppState>,
    Env(env): Env,
    MaybeSession(session): MaybeSession,
    client: ClientAddress,
    ApiQuery(query): ApiQuery<NonceQuery>,
) -> Result<Json<NoncesResponse>, ApiError> {
    let count = match query.count.as_deref() {
        None => 1,
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_NONCES_PER_CALL).contains(n))
            .ok_or_else(|| ApiError::bad_request("count must be 1 to 5"))?,
    };
    let user = session.as_ref().map(|s| s.user_id.as_str());
    Ok(Json(NoncesResponse { nonces: issue_nonces(&state, &env, user, client, count).await? }))
}

/// `POST /wallets/verify`.
async fn verify(
    State(state): State<AppState>,
    session: Session,
    ApiJson(request): ApiJson<WalletVerifyRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    Ok(Json(step_up(&state, &session, &request).await?))
}

// ---- The check ----

/// What a wallet verification refuses, each with its own code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletRefusal {
    /// Not the message format (`invalid_message`).
    #[error("{0}")]
    Message(String),
    /// The message is for another domain (`invalid_message_domain`).
    #[error("The message is for another domain")]
    Domain,
    /// The message and the request disagree on the address, or one is not an address (`invalid_message_address`).
    #[error("{0}")]
    Address(&'static str),
    /// The message is for another URI (`invalid_message_uri`).
    #[error("The message is for another URI")]
    Uri,
    /// The message's version is not 1 (`invalid_message_version`).
    #[error("The message version must be 1")]
    Version,
    /// The chain id is not a decimal chain id (`invalid_message_chain_id`).
    #[error("Chain ID must be a decimal chain id")]
    ChainId,
    /// The message is for another environment (`invalid_message_request_id`).
    #[error("The message is for another environment")]
    RequestId,
    /// Issued At is unreadable or too far off (`invalid_message_issued_at`).
    #[error("{0}")]
    IssuedAt(&'static str),
    /// The signature is unreadable, high-S, or recovers to another address (`invalid_signature`).
    #[error("{0}")]
    Signature(&'static str),
    /// The signer is not one of the user's wallets (`wallet_not_linked`).
    #[error("This wallet is not one of your wallets")]
    NotLinked,
    /// The signer is an embedded wallet (`embedded_wallet_not_allowed`).
    #[error("Embedded wallets cannot be used for step-up")]
    Embedded,
    /// The nonce was spent before (`nonce_already_used`).
    #[error("This nonce was already used")]
    NonceUsed,
    /// The nonce was never issued here, or has expired (`invalid_nonce`).
    #[error("This nonce was not issued by this server or has expired")]
    NonceUnknown,
}

impl Refusal for WalletRefusal {
    fn code(&self) -> ErrorCode {
        ErrorCode::Unknown(
            match self {
                WalletRefusal::Message(_) => "invalid_message",
                WalletRefusal::Domain => "invalid_message_domain",
                WalletRefusal::Address(_) => "invalid_message_address",
                WalletRefusal::Uri => "invalid_message_uri",
                WalletRefusal::Version => "invalid_message_version",
                WalletRefusal::ChainId => "invalid_message_chain_id",
                WalletRefusal::RequestId => "invalid_message_request_id",
                WalletRefusal::IssuedAt(_) => "invalid_message_issued_at",
                WalletRefusal::Signature(_) => "invalid_signature",
                WalletRefusal::NotLinked => "wallet_not_linked",
                WalletRefusal::Embedded => "embedded_wallet_not_allowed",
                WalletRefusal::NonceUsed => "nonce_already_used",
                WalletRefusal::NonceUnknown => "invalid_nonce",
            }
            .to_owned(),
        )
    }
}

/// `count` fresh nonces. Anyone may ask (wallet sign-in comes before a session): anonymous calls are counted
/// per client address, its own budget first, and for the environment; a signed-in user's calls (wallet step-up)
/// per user, so an anonymous flood that fills the environment's budget cannot stop step-up.
///
/// # Errors
/// [`ServiceError::TooMany`], [`ServiceError::Storage`], [`ServiceError::Internal`].
pub async fn issue_nonces(
    state: &AppState,
    env: &Environment,
    session_user: Option<&str>,
    client: ClientAddress,
    count: usize,
) -> Result<Vec<String>, ServiceError> {
    let limits = &env.config.limits;
    let hourly = |max| Limit { max, window_secs: 3600 };
    if let Some(user_id) = session_user {
        let key = format!("nonces:user:{user_id}");
        let limit = hourly(limits.nonce_requests_per_client_per_hour);
        limits::count(state, env.id(), &key, limit, Limited::NoncesForUser).await?;
    } else {
        let key = format!("nonces:client:{}", client.rate_key());
        let limit = hourly(limits.nonce_requests_per_client_per_hour);
        limits::count(state, env.id(), &key, limit, Limited::NoncesFromClient).await?;
        limits::count(state, env.id(), "nonces:all", hourly(limits.nonce_requests_per_hour), Limited::Nonces)
            .await?;
    }
    let expires_at = secs(state.now().plus_secs(NONCE_TTL_SECS));
    let mut nonces = Vec::with_capacity(count);
    for _ in 0..count {
        // EIP-4361 nonces are alphanumeric, at least 8 characters.
        let nonce = random::hex(&random::bytes::<16>().map_err(|_| ServiceError::randomness())?);
        state.store().insert_nonce(&nonce, env.id(), expires_at).await?;
        nonces.push(nonce);
    }
    Ok(nonces)
}

/// Step-up by a wallet signature: the message and signature are checked ([`check_message`]), the signer must be
/// an external wallet of this user, and the nonce is spent last.
///
/// # Errors
/// As [`step_up::check_request`] and [`check_message`]; [`WalletRefusal::NotLinked`], [`WalletRefusal::Embedded`],
/// [`WalletRefusal::NonceUnknown`], [`WalletRefusal::NonceUsed`].
pub async fn step_up(
    state: &AppState,
    session: &Session,
    request: &WalletVerifyRequest,
) -> Result<VerifyResponse, ServiceError> {
    let requested = request.requested_scopes.as_deref();
    step_up::check_request(state, session, Method::ExternalWallet, requested).await?;
    let now = state.now();
    let checked = check_message(
        &session.env.config,
        &request.message_to_sign,
        &request.signed_message,
        &request.public_wallet_address,
        now,
    )
    .map_err(ServiceError::refused)?;
    let credentials = state.store().credentials(&session.user_id).await?;
    let wallet = credentials
        .iter()
        .find(|c| {
            c.format == CredentialFormat::Blockchain
                && c.address.as_deref().and_then(|a| Address::from_str(a).ok()) == Some(checked.address)
                // The request names the connector's chain (`EVM`), the credential Dynamic's (`eip155`).
                && c.chain.as_deref().is_none_or(|chain| stepup_proto::chain::same_chain(chain, &request.chain))
        })
        .ok_or(ServiceError::refused(WalletRefusal::NotLinked))?;
    if wallet.embedded {
        return Err(ServiceError::refused(WalletRefusal::Embedded));
    }
    if !state.store().use_nonce(&checked.nonce, session.env.id(), secs(now)).await? {
        return Err(ServiceError::refused(
            match state.store().nonce_used(&checked.nonce, session.env.id()).await? {
                Some(true) => WalletRefusal::NonceUsed,
                _ => WalletRefusal::NonceUnknown,
            },
        ));
    }
    step_up::respond(state, session, requested, Method::ExternalWallet).await
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
/// The [`WalletRefusal`] of the first field that is wrong: [`WalletRefusal::Message`] (not the format),
/// `Domain`, `Address` (message and request disagree, or not an address), `Uri`, `Version`, `ChainId` (not a
/// decimal chain id), `RequestId`, `IssuedAt` (unreadable or more than 10 minutes off), or `Signature`
/// (unreadable, high-S, or recovers to another address).
pub fn check_message(
    env: &EnvironmentConfig,
    message_text: &str,
    signature: &str,
    claimed_address: &str,
    now: UnixTime,
) -> Result<CheckedMessage, WalletRefusal> {
    let message = WalletMessage::parse(message_text).map_err(|e| WalletRefusal::Message(e.to_string()))?;
    if message.domain != env.app_domain {
        return Err(WalletRefusal::Domain);
    }
    let address = Address::from_str(&message.address)
        .map_err(|_| WalletRefusal::Address("The message's address is not an address"))?;
    let claimed = Address::from_str(claimed_address)
        .map_err(|_| WalletRefusal::Address("publicWalletAddress is not an address"))?;
    if address != claimed {
        return Err(WalletRefusal::Address("The message's address is not publicWalletAddress"));
    }
    if !same_uri(&message.uri, &env.app_uri) {
        return Err(WalletRefusal::Uri);
    }
    if message.version != "1" {
        return Err(WalletRefusal::Version);
    }
    if message.chain_id.is_empty()
        || message.chain_id.len() > 20
        || !message.chain_id.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(WalletRefusal::ChainId);
    }
    if message.request_id != env.id {
        return Err(WalletRefusal::RequestId);
    }
    let issued_at = UnixTime::parse_rfc3339(&message.issued_at)
        .map_err(|_| WalletRefusal::IssuedAt("Issued At is not an RFC 3339 time"))?;
    let skew = now.as_secs().abs_diff(issued_at.as_secs());
    if skew > ISSUED_AT_TOLERANCE_SECS {
        return Err(WalletRefusal::IssuedAt("Issued At is more than 10 minutes off"));
    }
    let signature = Signature::from_str(signature)
        .map_err(|_| WalletRefusal::Signature("The signature is not a 65-byte hex signature"))?;
    // EIP-2: of the two valid signatures (s and n - s), only the low one is accepted, as Ethereum does for
    // transactions; wallets make low-S signatures. The high twin is a second spelling of the same signature.
    if signature.normalize_s().is_some() {
        return Err(WalletRefusal::Signature("The signature is not in low-S form (EIP-2)"));
    }
    let signer = signature
        .recover_address_from_msg(message_text.as_bytes())
        .map_err(|_| WalletRefusal::Signature("The signature does not verify"))?;
    if signer != address {
        return Err(WalletRefusal::Signature("The signature is not by this address"));
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
