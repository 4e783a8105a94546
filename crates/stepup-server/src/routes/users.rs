//! The signed-in user: reading it, the one update Dynamic's MFA flow makes (acknowledging recovery codes), and
//! ending the session.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Map, Value};
use stepup_proto::{MfaBackupCodeAcknowledgement, NextView, SdkUser, UpdateSelfResponse};

use crate::auth::{ApiJson, Session};
use crate::error::ApiError;
use crate::services::{issuance, known_user, step_up, views};
use crate::state::AppState;

/// `GET /users`: the session's user.
pub(crate) async fn current_user(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<SdkUser>, ApiError> {
    let user = known_user(&state, &session.env, &session.user_id).await?;
    let credentials = state.store().credentials(&session.user_id).await?;
    let mut user = views::sdk_user(&session.env, &user, &credentials);
    user.session_id = Some(session.session_id);
    Ok(Json(user))
}

/// `PUT /users` (Dynamic's `updateSelf`): only `mfaBackupCodeAcknowledgement: "complete"` is updated here (Dynamic's
/// `acknowledgeRecoveryCodes`); any other field set to a value is a 400, since this server keeps no profile. The
/// answer is an UpdateSelfResponse with the user and the session, which Dynamic's client adopts.
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
    match acknowledgement {
        None => {}
        Some(MfaBackupCodeAcknowledgement::Complete) => {
            state.store().set_backup_code_acknowledgement(&session.user_id, "complete").await?;
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "mfaBackupCodeAcknowledgement can only be set to `complete`, not `{}`",
                other.as_str()
            )));
        }
    }
    let jwt = issuance::reissue_session(&state, &session.env, &session.claims, false)?;
    let verify =
        step_up::verify_response(&state, &session.env, &session.user_id, session.expires_at, jwt, None)
            .await?;
    Ok(Json(UpdateSelfResponse {
        verify,
        next_view: NextView::Done,
        email_verification: None,
        sms_verification: None,
    }))
}

/// `POST /revoke`: ends the session; its JWT is refused afterwards.
pub(crate) async fn revoke(State(state): State<AppState>, session: Session) -> Result<StatusCode, ApiError> {
    state.store().revoke_session(&session.session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
