//! The admin API (`Authorization: Bearer <admin token>`; mounted only when a token is configured): seed users,
//! mint sessions, link wallets, read the OTP outbox. Used by tests and demos, and by the CLI.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use stepup_proto::{SdkUser, VerifiedCredential};

use crate::auth::{Admin, ApiJson, OptionalJson};
use crate::error::ApiError;
use crate::services::admin as ops;
pub use crate::services::admin::{
    AdminSession, CreateSessionRequest, CreateUserRequest, LinkWalletRequest, OutboxMessage,
};
use crate::state::AppState;

/// `?to=`.
#[derive(Debug, Deserialize)]
pub(crate) struct OutboxQuery {
    to: Option<String>,
}

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/environments/{environment_id}/users", post(create_user))
        .route("/environments/{environment_id}/users/{user_id}/sessions", post(create_session))
        .route("/environments/{environment_id}/users/{user_id}/wallets", post(link_wallet))
        .route("/environments/{environment_id}/outbox", get(outbox))
}

async fn create_user(
    _: Admin,
    State(state): State<AppState>,
    Path(environment_id): Path<String>,
    ApiJson(request): ApiJson<CreateUserRequest>,
) -> Result<Json<SdkUser>, ApiError> {
    Ok(Json(ops::create_user(&state, &environment_id, request).await?))
}

async fn create_session(
    _: Admin,
    State(state): State<AppState>,
    Path((environment_id, user_id)): Path<(String, String)>,
    OptionalJson(request): OptionalJson<CreateSessionRequest>,
) -> Result<Json<AdminSession>, ApiError> {
    Ok(Json(ops::session_with_token(&state, &environment_id, &user_id, &request.elevated_scopes).await?))
}

async fn link_wallet(
    _: Admin,
    State(state): State<AppState>,
    Path((environment_id, user_id)): Path<(String, String)>,
    ApiJson(request): ApiJson<LinkWalletRequest>,
) -> Result<Json<VerifiedCredential>, ApiError> {
    Ok(Json(ops::link_wallet(&state, &environment_id, &user_id, request).await?))
}

async fn outbox(
    _: Admin,
    State(state): State<AppState>,
    Path(environment_id): Path<String>,
    Query(query): Query<OutboxQuery>,
) -> Result<Json<Vec<OutboxMessage>>, ApiError> {
    Ok(Json(ops::outbox(&state, &environment_id, query.to.as_deref()).await?))
}
