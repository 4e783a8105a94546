//! The demo's sensitive action: `/sdk/{env}/protected/{scope}` on the reference server, which answers 200 only
//! with a valid elevated token for the scope (and 403 with a step-up challenge otherwise).

use serde_json::Value;
use stepup_core::Scope;
use stepup_engine::StepUpAuth;
use stepup_proto::headers::ELEVATED_ACCESS_TOKEN;

use crate::DemoError;
use crate::people::Session;

/// What the protected resource answered.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtectedCall {
    /// The HTTP status.
    pub status: u16,
    /// Whether the engine had a token for the scope to send.
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

/// Calls the protected resource for `scope` as `session`, with the engine's token for the scope
/// ([`StepUpAuth::token_for`]: a single-use token is spent by this call, and the engine's state says so).
///
/// # Errors
/// [`DemoError::Http`] when the server cannot be reached.
pub async fn call_protected(
    engine: &StepUpAuth,
    session: &Session,
    scope: &Scope,
) -> Result<ProtectedCall, DemoError> {
    let api = engine.api();
    let url = format!("{}/protected/{}", api.sdk_base(), scope.as_str());
    let mut request = api.http().post(url).bearer_auth(session.jwt.expose_secret());
    let token = engine.token_for(scope);
    if let Some(token) = &token {
        request = request.header(ELEVATED_ACCESS_TOKEN, token.raw().expose_secret());
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok(ProtectedCall { status, token_applied: token.is_some(), body })
}
