//! The signed-in user: reading it, acknowledging the recovery codes shown (the one update Dynamic's MFA flow
//! makes), and ending the session.

use stepup_proto::{MfaBackupCodeAcknowledgement, NextView, SdkUser, UpdateSelfResponse};

use super::{ServiceError, issuance, step_up, views};
use crate::auth::Session;
use crate::state::AppState;

/// The session's user, with the session id.
///
/// # Errors
/// [`ServiceError::UnknownUser`], [`ServiceError::Storage`].
pub async fn current(state: &AppState, session: &Session) -> Result<SdkUser, ServiceError> {
    let (user, credentials) = state
        .store()
        .user_with_credentials(session.env.id(), &session.user_id)
        .await?
        .ok_or(ServiceError::UnknownUser)?;
    let mut user = views::sdk_user(&session.env, &user, &credentials);
    user.session_id = Some(session.session_id.clone());
    Ok(user)
}

/// Dynamic's `updateSelf`: only the recovery-code acknowledgement (`complete`) is kept here. The answer carries
/// the user and the session, which Dynamic's client adopts.
///
/// # Errors
/// [`ServiceError::BadInput`] for an acknowledgement other than `complete`; [`ServiceError::UnknownUser`],
/// [`ServiceError::Storage`], [`ServiceError::Internal`].
pub async fn update_self(
    state: &AppState,
    session: &Session,
    acknowledgement: Option<MfaBackupCodeAcknowledgement>,
) -> Result<UpdateSelfResponse, ServiceError> {
    match acknowledgement {
        None => {}
        Some(MfaBackupCodeAcknowledgement::Complete) => {
            state.store().set_backup_code_acknowledgement(&session.user_id, "complete").await?;
        }
        Some(other) => {
            return Err(ServiceError::BadInput(format!(
                "mfaBackupCodeAcknowledgement can only be set to `complete`, not `{}`",
                other.as_str()
            )));
        }
    }
    let jwt = issuance::reissue_session(state, &session.env, &session.claims, false)?;
    let verify =
        step_up::verify_response(state, &session.env, &session.user_id, session.expires_at, jwt, None)
            .await?;
    Ok(UpdateSelfResponse {
        verify,
        next_view: NextView::Done,
        email_verification: None,
        sms_verification: None,
    })
}

/// Ends the session: its JWT, and every elevated token it earned, are refused from now on.
///
/// # Errors
/// [`ServiceError::Storage`].
pub async fn revoke(state: &AppState, session: &Session) -> Result<(), ServiceError> {
    Ok(state.store().revoke_session(&session.session_id).await?)
}
