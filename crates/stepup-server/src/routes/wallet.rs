//! Wallet step-up: nonces, and verification of an external wallet's signature.

use std::str::FromStr as _;

use alloy_primitives::Address;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use stepup_core::Method;
use stepup_proto::wallet::MAX_NONCES_PER_CALL;
use stepup_proto::{CredentialFormat, ErrorCode, NoncesResponse, VerifyResponse, WalletVerifyRequest};

use super::otp::MaybeSession;
use super::{check_step_up_request, step_up_response};
use crate::auth::{ApiJson, ApiQuery, Env, Session};
use crate::client_address::ClientAddress;
use crate::error::ApiError;
use crate::random;
use crate::state::AppState;
use crate::store::secs;
use crate::verify::rate;
use crate::verify::wallet::check_message;

/// How long an unused nonce stays valid.
pub(crate) const NONCE_TTL_SECS: u64 = 10 * 60;

/// `?count=`.
#[derive(Debug, Deserialize)]
pub(crate) struct NonceQuery {
    count: Option<String>,
}

/// `GET /nonces?count=`: 1 to 5 fresh single-use nonces (default 1).
pub(crate) async fn nonces(
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
    // Anyone may ask for nonces (wallet sign-in comes before a session). Anonymous calls are counted per client
    // address, its own budget first, and for the environment; a signed-in user's calls (wallet step-up) per user,
    // so an anonymous flood that fills the environment's budget cannot stop step-up.
    let limits = &env.config.limits;
    let hourly = |max| rate::Limit { max, window_secs: 3600 };
    let too_many = "Too many nonces requested; try again later";
    if let Some(session) = session {
        let key = format!("nonces:user:{}", session.user_id);
        let limit = hourly(limits.nonce_requests_per_client_per_hour);
        rate::count(&state, env.id(), &key, limit, ErrorCode::RateLimited, too_many).await?;
    } else {
        rate::count(
            &state,
            env.id(),
            &format!("nonces:client:{}", client.rate_key()),
            hourly(limits.nonce_requests_per_client_per_hour),
            ErrorCode::RateLimited,
            "Too many nonces requested from this address; try again later",
        )
        .await?;
        rate::count(
            &state,
            env.id(),
            "nonces:all",
            hourly(limits.nonce_requests_per_hour),
            ErrorCode::RateLimited,
            "Too many nonces are being requested; try again later",
        )
        .await?;
    }
    let expires_at = secs(state.now().plus_secs(NONCE_TTL_SECS));
    let mut nonces = Vec::with_capacity(count);
    for _ in 0..count {
        // EIP-4361 nonces are alphanumeric, at least 8 characters.
        let nonce = random::hex(&random::bytes::<16>().map_err(|_| ApiError::internal())?);
        state.store().insert_nonce(&nonce, env.id(), expires_at).await?;
        nonces.push(nonce);
    }
    Ok(Json(NoncesResponse { nonces }))
}

fn refuse(code: &str, message: &str) -> ApiError {
    ApiError::unprocessable(ErrorCode::Unknown(code.to_owned()), message)
}

/// `POST /wallets/verify`: re-authentication with an external wallet's signature. The message and signature
/// are checked (see `verify::wallet`), the signer must be an external wallet of this user (422
/// `wallet_not_linked`, `embedded_wallet_not_allowed`), and the nonce is spent last (422 `invalid_nonce` for one
/// this server never issued or that expired, `nonce_already_used` for a replay).
pub(crate) async fn verify(
    State(state): State<AppState>,
    session: Session,
    ApiJson(request): ApiJson<WalletVerifyRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    check_step_up_request(&state, &session, Method::ExternalWallet, request.requested_scopes.as_deref())
        .await?;
    let now = state.now();
    let checked = check_message(
        &session.env.config,
        &request.message_to_sign,
        &request.signed_message,
        &request.public_wallet_address,
        now,
    )?;
    let credentials = state.store().credentials(&session.user_id).await?;
    let wallet = credentials
        .iter()
        .find(|c| {
            c.format == CredentialFormat::Blockchain
                && c.address.as_deref().and_then(|a| Address::from_str(a).ok()) == Some(checked.address)
                // The request names the connector's chain (`EVM`), the credential Dynamic's (`eip155`).
                && c.chain.as_deref().is_none_or(|chain| stepup_proto::chain::same_chain(chain, &request.chain))
        })
        .ok_or_else(|| refuse("wallet_not_linked", "This wallet is not one of your wallets"))?;
    if wallet.embedded {
        return Err(refuse("embedded_wallet_not_allowed", "Embedded wallets cannot be used for step-up"));
    }
    if !state.store().use_nonce(&checked.nonce, session.env.id(), secs(now)).await? {
        return Err(match state.store().nonce_used(&checked.nonce, session.env.id()).await? {
            Some(true) => refuse("nonce_already_used", "This nonce was already used"),
            _ => refuse("invalid_nonce", "This nonce was not issued by this server or has expired"),
        });
    }
    let response =
        step_up_response(&state, &session, request.requested_scopes.as_deref(), Method::ExternalWallet)
            .await?;
    Ok(Json(response))
}
