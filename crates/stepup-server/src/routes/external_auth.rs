//! `POST /externalAuth/verify`: elevation granted by the app's own backend (Dynamic's
//! `requestExternalAuthElevatedToken`). The backend signs a short JWT for the signed-in user; the server checks it
//! (`verify::external_auth`), spends its `jti` once across replicas, and answers a VerifyResponse whose elevated
//! token carries the JWT's scopes (`amr: external`).

use axum::Json;
use axum::extract::State;
use stepup_core::Method;
use stepup_proto::{ErrorCode, ExternalAuthVerifyRequest, TokenScope, VerifyResponse};

use super::{check_scopes, has_mfa, step_up_response};
use crate::auth::{ApiJson, Session};
use crate::error::ApiError;
use crate::state::AppState;
use crate::verify::external_auth::ExternalAuthError;

/// How a refused backend token is answered.
fn refusal(error: &ExternalAuthError) -> ApiError {
    match error {
        ExternalAuthError::KeysUnavailable { reason } => {
            // The reason (a TLS or DNS error, say) goes to the log, not to the caller.
            tracing::warn!(%reason, "the external-auth JWKS cannot be fetched");
            ApiError::unavailable(
                ErrorCode::ExternalAuthUnavailable,
                "The app backend's keys cannot be fetched right now; try again later",
            )
        }
        _ => ApiError::unprocessable(ErrorCode::InvalidExternalAuth, error.to_string()),
    }
}

/// `POST /externalAuth/verify` `{jwt}`.
pub(crate) async fn verify(
    State(state): State<AppState>,
    session: Session,
    ApiJson(request): ApiJson<ExternalAuthVerifyRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    let keys =
        session.env.external_auth.as_ref().ok_or_else(|| refusal(&ExternalAuthError::NotConfigured))?;
    if !session.env.config.policy.step_up_enabled {
        return Err(ApiError::unprocessable(
            ErrorCode::StepUpDisabled,
            "Step-up is switched off for this environment",
        ));
    }
    let grant = keys
        .check(request.jwt.expose_secret(), session.env.id(), state.now())
        .await
        .map_err(|error| refusal(&error))?;
    if grant.subject != session.user_id {
        return Err(refusal(&ExternalAuthError::Subject));
    }
    let scopes: Vec<TokenScope> = grant.scopes.iter().map(|s| TokenScope::parse(s)).collect();
    // Checked before the `jti` is spent: a refused token can be fixed and sent again.
    check_scopes(Some(&scopes))?;
    if !keys.config().allow_mfa_users && has_mfa(&state, &session.user_id).await? {
        return Err(ApiError::unprocessable(
            ErrorCode::MfaRequired,
            "This user has MFA methods: this environment does not elevate them by external auth",
        ));
    }
    // Length-prefixed, so no environment id and jti pair can spell another's.
    let spent = format!("external:{}:{}:{}", session.env.id().len(), session.env.id(), grant.jti);
    let exp = i64::try_from(grant.exp).unwrap_or(i64::MAX);
    if !state.store().consume_token(&spent, exp).await? {
        return Err(refusal(&ExternalAuthError::Replayed));
    }
    tracing::info!(user = %session.user_id, "elevated by external auth");
    Ok(Json(step_up_response(&state, &session, Some(&scopes), Method::ExternalAuth).await?))
}
