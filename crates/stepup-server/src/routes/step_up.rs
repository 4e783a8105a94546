//! `POST /stepUp/check`: does a scope need step-up, and with what (`services::offer`).

use axum::Json;
use axum::extract::State;
use stepup_proto::{StepUpCheckRequest, StepUpCheckResponse};

use crate::auth::{ApiJson, Session};
use crate::error::ApiError;
use crate::services::offer;
use crate::state::AppState;

/// `POST /stepUp/check`.
pub(crate) async fn check(
    State(state): State<AppState>,
    session: Session,
    ApiJson(request): ApiJson<StepUpCheckRequest>,
) -> Result<Json<StepUpCheckResponse>, ApiError> {
    Ok(Json(offer::check(&state, &session.env, &session.user_id, &request.scope).await?))
}
