//! The signed-in user over HTTP: reading it, `PUT /users` (Dynamic's `updateSelf`), ending the session
//! (`services::users`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Map, Value};
use stepup_proto::{MfaBackupCodeAcknowledgement, SdkUser, UpdateSelfResponse};

use crate::auth::{ApiJson, Session};
use crate::error::ApiError;
use crate::services::users;
use crate::state::AppState;

/// `GET /users`: the session's user.
pub(crate) async fn current_user(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<SdkUser>, ApiError> {
    Ok(Json(users::current(&state, &session).await?))
}

/// `PUT /users` (Dynamic's `updateSelf`): only `mfaBackupCodeAcknowledgement` is read (Dynamic's
/// `acknowledgeRecoveryCodes`); any other field set to a value is a 400, since this server keeps no profile.
pub(crate) async fn update_user(
    State(state): State<AppState>,
    session: Session,
    ApiJson(fields): ApiJson<Map<String, Value>>,
) -> Result<Json<UpdateSelfResponse>, ApiError> {
    let mut acknowledgement = None;
    for (name, value) in &fields {
        match (name.as_str(), value) {
            (_, Value::Null) => {}
            ("mfaBackupCodeAcknowledgement", Value::String(text)) => {
                acknowledgement = Some(MfaBackupCodeAcknowledgement::parse(text));
            }
            ("mfaBackupCodeAcknowledgement", _) => {
                return Err(ApiError::bad_request("mfaBackupCodeAcknowledgement must be a string"));
            }
            (other, _) => {
                return Err(ApiError::bad_request(format!(
                    "`{other}` cannot be updated on this server; only mfaBackupCodeAcknowledgement can"
                )));
            }
        }
    }
    Ok(Json(users::update_self(&state, &session, acknowledgement).await?))
}

/// `POST /revoke`: ends the session. Answers 204.
pub(crate) async fn revoke(State(state): State<AppState>, session: Session) -> Result<StatusCode, ApiError> {
    users::revoke(&state, &session).await?;
    Ok(StatusCode::NO_CONTENT)
}
