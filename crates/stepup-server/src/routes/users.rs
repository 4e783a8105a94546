//! The signed-in user and ending the session.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use stepup_proto::SdkUser;

use super::sdk_user;
use crate::auth::Session;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /users`: the session's user.
pub(crate) async fn current_user(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<SdkUser>, ApiError> {
    let user = state
        .store()
        .user(session.env.id(), &session.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Unknown user"))?;
    let credentials = state.store().credentials(&session.user_id).await?;
    let mut user = sdk_user(&session.env, &user.id, user.email, user.phone_number, &credentials);
    user.session_id = Some(session.session_id);
    Ok(Json(user))
}

/// `POST /revoke`: ends the session; its JWT is refused afterwards.
pub(crate) async fn revoke(State(state): State<AppState>, session: Session) -> Result<StatusCode, ApiError> {
    state.store().revoke_session(&session.session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
