//! Environment-level calls: JWKS, settings, health (`services::settings`, `services::health`).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use stepup_proto::{ErrorCode, JwksResponse, ProjectSettings};

use crate::auth::Env;
use crate::error::ApiError;
use crate::services::{health, settings};
use crate::state::AppState;

/// `GET /.well-known/jwks`: the environment's public signing keys.
pub(crate) async fn jwks(Env(env): Env) -> Json<JwksResponse> {
    Json(JwksResponse { keys: env.keys.ring().jwks() })
}

/// `GET /settings`.
pub(crate) async fn settings(Env(env): Env) -> Json<ProjectSettings> {
    Json(settings::settings(&env))
}

/// `GET /health` (readiness): 200 when the database takes a write, else 503 `database_unavailable`.
pub(crate) async fn health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if health::ready(&state).await {
        Ok(Json(json!({"status": "ok"})))
    } else {
        Err(ApiError::unavailable(ErrorCode::DatabaseUnavailable, "The database cannot be written"))
    }
}

/// `GET /health/live` (liveness): 200 while the process serves HTTP, whatever the database does, so an
/// orchestrator restarts a hung server but not one waiting for its database.
pub(crate) async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}
