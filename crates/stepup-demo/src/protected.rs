//! The demo's sensitive action: `/sdk/{env}/protected/{scope}` on the reference server, which answers 200 only
//! with a valid elevated token for the scope (and 403 with a step-up challenge otherwise).

use serde_json::Value;
use stepup_core::Scope;
use stepup_engine::{ElevatedRequestExt, StepUpAuth};

use crate::DemoError;
use crate::people::Session;

/// What the protected resource answered.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtectedCall {
    /// The HTTP status.
    pub status: u16,
    /// Whether the server let an elevated token through (its answer names the token's `jti`).
    pub token_applied: bool,
    /// The JSON body: on success `{ok, scope, jti, singleUse, amr}`, else `{error, code}`.
    pub body: Value,
}

impl ProtectedCall {
    /// Whether the server let the call through.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.status == 200
    }
}

/// Calls the protected resource for `scope` as `session`, the way an app makes its own sensitive calls: through
/// the engine's middleware client, tagged with the scope. The middleware applies the engine's token (a single-use
/// token is spent by this call) and, should the server challenge the call, steps up through the engine's front
/// end and retries once.
///
/// # Errors
/// [`DemoError::Http`] when the server cannot be reached, or a challenge's step-up did not succeed
/// (`stepup_engine::MiddlewareError` inside).
pub async fn call_protected(
    engine: &StepUpAuth,
    session: &Session,
    scope: &Scope,
) -> Result<ProtectedCall, DemoError> {
    let url = format!("{}/protected/{}", engine.api().sdk_base(), scope.as_str());
    let response = engine
        .http_client()
        .post(url)
        .bearer_auth(session.jwt.expose_secret())
        .elevated(scope.clone())
        .send()
        .await?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let token_applied = body.get("jti").is_some_and(Value::is_string);
    Ok(ProtectedCall { status, token_applied, body })
}
