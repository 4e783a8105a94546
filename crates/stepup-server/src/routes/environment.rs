//! Environment-level calls: JWKS, settings, health.

use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};
use stepup_core::Method;
use stepup_proto::{ErrorCode, JwksResponse, ProjectSettings, TokenScope};

use crate::auth::Env;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /.well-known/jwks`: the environment's public signing keys.
pub(crate) async fn jwks(Env(env): Env) -> Json<JwksResponse> {
    Json(JwksResponse { keys: env.keys.ring().jwks() })
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Dynamic's MFA actions (`MFAAction`) and the scope each needs here.
const MFA_ACTIONS: [(&str, &str); 5] = [
    ("wallet.waas.sign", "wallet:sign"),
    ("wallet.waas.export", "wallet:export"),
    ("wallet.waas.reshare", "wallet:reshare"),
    ("wallet.waas.refresh", "wallet:refresh"),
    ("user.update", "user:update"),
];

/// `GET /settings`: the project settings Dynamic's clients initialise with, read from the environment's
/// policy: `security.mfa` (which MFA methods are on, and for each of Dynamic's MFA actions whether the server
/// requires step-up, which `isMfaRequiredForAction` reads), `security.externalAuth`, `chains` (wallets on or
/// off), and stepup's own `security.stepUp` (on/off, methods, scopes), which Dynamic's client ignores.
pub(crate) async fn settings(Env(env): Env) -> Json<ProjectSettings> {
    let config = &env.config;
    let policy = &config.policy;
    let on = |method| policy.step_up_enabled && policy.method_enabled(method);
    let mfa_methods: Vec<&str> = [(Method::Totp, "totp"), (Method::Passkey, "passkey")]
        .into_iter()
        .filter(|(method, _)| on(*method))
        .map(|(_, name)| name)
        .collect();
    let actions: Vec<Value> = MFA_ACTIONS
        .iter()
        .map(|(action, scope)| json!({"action": action, "required": policy.requires_step_up(&TokenScope::parse(scope))}))
        .collect();
    let methods: Map<String, Value> = crate::config::switchable_methods()
        .map(|(method, setting)| (setting.to_owned(), Value::Bool(on(method))))
        .collect();
    let scope_names =
        |scopes: &[TokenScope]| scopes.iter().map(|s| s.as_str().to_owned()).collect::<Vec<_>>();
    let external = config.external_auth.as_ref();
    Json(ProjectSettings {
        chains: vec![json!({"name": "EVM", "enabled": on(Method::ExternalWallet)})],
        kyc: vec![],
        design: Map::new(),
        general: object(json!({"appName": config.app_name, "displayName": config.app_name})),
        privacy: Map::new(),
        sdk: object(json!({"emailSignIn": {"signInProvider": "dynamic"}})),
        security: object(json!({
            "mfa": {
                "enabled": !mfa_methods.is_empty(),
                "required": false,
                "availableMethods": mfa_methods,
                "methods": [
                    {"type": "totp", "enabled": on(Method::Totp), "allowBackupCodes": on(Method::RecoveryCode)},
                    {"type": "passkey", "enabled": on(Method::Passkey), "allowBackupCodes": on(Method::RecoveryCode)},
                ],
                "actions": actions,
            },
            "externalAuth": {
                "enabled": external.is_some() && policy.step_up_enabled,
                "iss": external.and_then(|e| e.issuer.clone()),
                "aud": env.id(),
                "jwksUrl": external.and_then(|e| e.jwks_url.clone()),
            },
            "stepUp": {
                "enabled": policy.step_up_enabled,
                "methods": methods,
                "scopes": if policy.step_up_enabled { scope_names(&policy.step_up_scopes) } else { vec![] },
                "singleUseScopes": scope_names(&policy.single_use_scopes),
                "recentMfaMaxAgeSeconds": policy.recent_mfa_max_age_secs,
            },
        })),
    })
}

/// How long `/health` waits for its write: a database that hangs is as unhealthy as one that refuses.
const HEALTH_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// `GET /health` (readiness): 200 when the database takes a write within [`HEALTH_WRITE_TIMEOUT`], else 503
/// `database_unavailable`. A server that can read but not write would answer every check and fail every
/// verification, so reading is not enough. The outcome is kept for a second: however many probes (or
/// anonymous callers) ask, the database sees one write a second from each replica.
pub(crate) async fn health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    const FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(1);
    let mut last = state.health_cache().lock().await;
    let healthy = match *last {
        Some((at, healthy)) if at.elapsed() < FRESH_FOR => healthy,
        _ => {
            let healthy = database_writable(&state).await;
            *last = Some((tokio::time::Instant::now(), healthy));
            healthy
        }
    };
    drop(last);
    if healthy { Ok(Json(json!({"status": "ok"}))) } else { Err(database_unavailable()) }
}

async fn database_writable(state: &AppState) -> bool {
    let write = state.store().check_writable(crate::store::secs(state.now()));
    match tokio::time::timeout(HEALTH_WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::warn!(%error, "health check: the database refused a write");
            false
        }
        Err(_elapsed) => {
            tracing::warn!("health check: the database did not take a write in time");
            false
        }
    }
}

fn database_unavailable() -> ApiError {
    ApiError::unavailable(ErrorCode::DatabaseUnavailable, "The database cannot be written")
}

/// `GET /health/live` (liveness): 200 while the process serves HTTP, whatever the database does, so an
/// orchestrator restarts a hung server but not one waiting for its database.
pub(crate) async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}
