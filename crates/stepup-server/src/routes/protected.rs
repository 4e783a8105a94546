//! `/protected/{scope}`: one demo resource per scope, behind the resource guard.

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use serde_json::{Value, json};
use stepup_proto::TokenScope;

use crate::auth::{ApiPath, ElevatedHeader, Session};
use crate::error::ApiError;
use crate::guard;
use crate::state::AppState;

/// Any method: 200 with the token's `jti` and the scope (`jti` null when the scope needs no step-up here), or the
/// 403 step-up challenge.
pub(crate) async fn protected(
    State(state): State<AppState>,
    session: Session,
    method: Method,
    ApiPath((_environment_id, scope)): ApiPath<(String, String)>,
    ElevatedHeader(elevated): ElevatedHeader,
) -> Result<Json<Value>, ApiError> {
    let scope = TokenScope::parse(&scope);
    if !scope.is_known() {
        return Err(ApiError::not_found("Unknown scope"));
    }
    let elevated = guard::check(&state, &session, elevated.as_deref(), &scope).await?;
    Ok(Json(json!({
        "ok": true,
        "method": method.as_str(),
        "scope": scope,
        "jti": elevated.claims.as_ref().map(|c| c.token_id.clone()),
        "singleUse": elevated.claims.as_ref().is_some_and(|c| c.single_use),
        "amr": elevated.claims.as_ref().map(|c| c.amr.clone()).unwrap_or_default(),
    })))
}
