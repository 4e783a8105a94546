//! Passkey management over HTTP: registration options, registration (the attestation as Dynamic's client writes
//! it), the user's passkeys, deletion (`services::passkeys`). Step-up by a passkey is the method's
//! (`methods::passkey`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use stepup_proto::{UserPasskeysResponse, VerifyResponse};

use crate::auth::{ApiJson, ElevatedHeader, Session};
use crate::error::ApiError;
use crate::services::passkeys;
use crate::state::AppState;

/// `GET /users/passkeys/register`: WebAuthn creation options (user verification required).
pub(crate) async fn registration_options(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(passkeys::registration_options(&state, &session).await?))
}

/// `POST /users/passkeys/register`: the attestation; answers a VerifyResponse.
pub(crate) async fn register(
    State(state): State<AppState>,
    session: Session,
    ElevatedHeader(elevated): ElevatedHeader,
    ApiJson(body): ApiJson<serde_json::Map<String, Value>>,
) -> Result<Json<VerifyResponse>, ApiError> {
    Ok(Json(passkeys::register(&state, &session, elevated.as_deref(), body).await?))
}

/// `GET /users/passkeys`: the user's passkeys (`{count, passkeys}`).
pub(crate) async fn passkeys(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<UserPasskeysResponse>, ApiError> {
    let passkeys = passkeys::list(&state, &session.user_id).await?;
    Ok(Json(UserPasskeysResponse { count: passkeys.len(), passkeys }))
}

/// Body of `DELETE /users/passkeys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeletePasskey {
    passkey_id: String,
}

/// `DELETE /users/passkeys`: removes a passkey. Answers 204.
pub(crate) async fn delete(
    State(state): State<AppState>,
    session: Session,
    ElevatedHeader(elevated): ElevatedHeader,
    ApiJson(request): ApiJson<DeletePasskey>,
) -> Result<StatusCode, ApiError> {
    passkeys::delete(&state, &session, elevated.as_deref(), &request.passkey_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
