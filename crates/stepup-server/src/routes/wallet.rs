//! Wallet step-up: nonces (wallet signature verification arrives next).

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use stepup_proto::NoncesResponse;
use stepup_proto::wallet::MAX_NONCES_PER_CALL;

use crate::auth::Env;
use crate::error::ApiError;
use crate::random;
use crate::state::AppState;
use crate::store::secs;

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
    Query(query): Query<NonceQuery>,
) -> Result<Json<NoncesResponse>, ApiError> {
    let count = match query.count.as_deref() {
        None => 1,
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_NONCES_PER_CALL).contains(n))
            .ok_or_else(|| ApiError::bad_request("count must be 1 to 5"))?,
    };
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
