//! `POST /stepUp/check`: does a scope need step-up, and with what.

use axum::Json;
use axum::extract::State;
use stepup_proto::{CredentialFormat, StepUpCheckRequest, StepUpCheckResponse, StepUpCredential};

use crate::auth::{ApiJson, Session};
use crate::error::ApiError;
use crate::state::AppState;

/// The id under which the user's recovery codes are offered.
pub(crate) const RECOVERY_CREDENTIAL_ID: &str = "recovery-codes";

/// `POST /stepUp/check`: required if the environment's policy lists the scope. The credentials are the MFA
/// methods if the user has verified ones (then re-authentication is not offered), otherwise the sign-in-enabled
/// email addresses, phone numbers and external wallets. Embedded wallets are never offered.
pub(crate) async fn check(
    State(state): State<AppState>,
    session: Session,
    ApiJson(request): ApiJson<StepUpCheckRequest>,
) -> Result<Json<StepUpCheckResponse>, ApiError> {
    if !session.env.config.policy.requires_step_up(&request.scope) {
        return Ok(Json(StepUpCheckResponse {
            is_required: false,
            credentials: vec![],
            default_credential_id: None,
        }));
    }
    let credentials = step_up_credentials(&state, &session.user_id).await?;
    let default_credential_id = credentials.first().map(|c| c.id.clone());
    Ok(Json(StepUpCheckResponse { is_required: true, credentials, default_credential_id }))
}

/// The credentials a user can step up with (see [`check`]).
pub(crate) async fn step_up_credentials(
    state: &AppState,
    user_id: &str,
) -> Result<Vec<StepUpCredential>, ApiError> {
    let mut mfa: Vec<StepUpCredential> = state
        .store()
        .totp_devices(user_id)
        .await?
        .into_iter()
        .filter(|d| d.verified)
        .map(|d| StepUpCredential {
            id: d.id,
            format: CredentialFormat::Totp,
            kind: Some("totp".into()),
            alias: Some("Authenticator app".into()),
        })
        .collect();
    mfa.extend(super::passkey::list(state, user_id).await?.into_iter().map(|p| StepUpCredential {
        id: p.id,
        format: CredentialFormat::Passkey,
        kind: Some("passkey".into()),
        alias: Some("Passkey".into()),
    }));
    if !mfa.is_empty() {
        let (unused, _) = state.store().unused_recovery_codes(user_id).await?;
        if !unused.is_empty() {
            mfa.push(StepUpCredential {
                id: RECOVERY_CREDENTIAL_ID.into(),
                format: CredentialFormat::RecoveryCode,
                kind: None,
                alias: Some(format!("{} recovery codes left", unused.len())),
            });
        }
        return Ok(mfa);
    }
    let mut credentials = state.store().credentials(user_id).await?;
    // Offer email first, then phone, then wallets (the order DESIGN lists them in); oldest first within a kind.
    credentials.sort_by_key(|c| match c.format.as_str() {
        "email" => 0,
        "phoneNumber" => 1,
        _ => 2,
    });
    Ok(credentials
        .into_iter()
        .filter(|c| c.sign_in_enabled && !c.embedded)
        .filter_map(|c| {
            let format = CredentialFormat::parse(&c.format);
            let alias = match format {
                CredentialFormat::Email => c.email.clone(),
                CredentialFormat::PhoneNumber => c.phone_number.clone(),
                CredentialFormat::Blockchain => c.address.clone(),
                _ => return None,
            };
            Some(StepUpCredential { id: c.id, format, kind: c.wallet_provider, alias })
        })
        .collect())
}
