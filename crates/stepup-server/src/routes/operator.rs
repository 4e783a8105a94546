//! The operator tools' routes of the admin API (the operations are `services::operator`, which the CLI calls
//! too): unlock a user locked out of MFA, reset a user's MFA, list and delete users, end all of a user's
//! sessions, rotate an environment's signing key.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::auth::{Admin, OptionalJson};
use crate::error::ApiError;
use crate::services::operator as ops;
pub use crate::services::operator::{
    DeleteAnswer, MAX_PAGE, MfaResetAnswer, RevokeAnswer, RotateRequest, RotatedKey, UnlockAnswer, UserPage,
};
use crate::state::AppState;

/// `?after=&limit=`.
#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    after: Option<String>,
    limit: Option<i64>,
}

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/environments/{environment_id}/users", get(list_users))
        .route("/environments/{environment_id}/users/{user_id}", axum::routing::delete(delete_user))
        .route("/environments/{environment_id}/users/{user_id}/unlock", post(unlock_user))
        .route("/environments/{environment_id}/users/{user_id}/mfa/reset", post(reset_mfa))
        .route("/environments/{environment_id}/users/{user_id}/sessions/revoke", post(revoke_sessions))
        .route("/environments/{environment_id}/signing-keys", post(rotate_signing_key))
}

async fn unlock_user(
    _: Admin,
    State(state): State<AppState>,
    Path((environment_id, user_id)): Path<(String, String)>,
) -> Result<Json<UnlockAnswer>, ApiError> {
    Ok(Json(ops::unlock_user(&state, &environment_id, &user_id).await?))
}

async fn reset_mfa(
    _: Admin,
    State(state): State<AppState>,
    Path((environment_id, user_id)): Path<(String, String)>,
) -> Result<Json<MfaResetAnswer>, ApiError> {
    Ok(Json(ops::reset_mfa(&state, &environment_id, &user_id).await?))
}

async fn revoke_sessions(
    _: Admin,
    State(state): State<AppState>,
    Path((environment_id, user_id)): Path<(String, String)>,
) -> Result<Json<RevokeAnswer>, ApiError> {
    Ok(Json(ops::revoke_sessions(&state, &environment_id, &user_id).await?))
}

async fn list_users(
    _: Admin,
    State(state): State<AppState>,
    Path(environment_id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Json<UserPage>, ApiError> {
    Ok(Json(ops::list_users(&state, &environment_id, query.after.as_deref(), query.limit).await?))
}

async fn delete_user(
    _: Admin,
    State(state): State<AppState>,
    Path((environment_id, user_id)): Path<(String, String)>,
) -> Result<Json<DeleteAnswer>, ApiError> {
    Ok(Json(ops::delete_user(&state, &environment_id, &user_id).await?))
}

async fn rotate_signing_key(
    _: Admin,
    State(state): State<AppState>,
    Path(environment_id): Path<String>,
    OptionalJson(request): OptionalJson<RotateRequest>,
) -> Result<Json<RotatedKey>, ApiError> {
    Ok(Json(ops::rotate_signing_key(&state, &environment_id, request.retire_previous).await?))
}
