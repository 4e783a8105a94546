//! Environment-level calls: JWKS, settings, health.

use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};
use stepup_proto::{JwksResponse, ProjectSettings};

use crate::auth::Env;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /.well-known/jwks`: the environment's public signing keys.
pub(crate) async fn jwks(Env(env): Env) -> Json<JwksResponse> {
    Json(JwksResponse { keys: vec![env.key.jwk()] })
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `GET /settings`: enough project settings for Dynamic's clients to initialise.
pub(crate) async fn settings(Env(env): Env) -> Json<ProjectSettings> {
    Json(ProjectSettings {
        chains: vec![json!({"name": "EVM", "enabled": true})],
        kyc: vec![],
        design: Map::new(),
        general: object(json!({"appName": env.config.app_name, "displayName": env.config.app_name})),
        privacy: Map::new(),
        sdk: object(json!({"emailSignIn": {"signInProvider": "dynamic"}})),
        security: object(json!({"mfa": {"enabled": true, "methods": ["totp", "passkey"]}})),
    })
}

/// `GET /health`: 200 when the database answers.
pub(crate) async fn health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store().ping().await?;
    Ok(Json(json!({"status": "ok"})))
}
