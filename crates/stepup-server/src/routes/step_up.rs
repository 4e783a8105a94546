//! `POST /stepUp/check`: does a scope need step-up, and with what.

use axum::Json;
use axum::extract::State;
use stepup_core::Method;
use stepup_proto::{CredentialFormat, ErrorCode, StepUpCheckRequest, StepUpCheckResponse, StepUpCredential};

use crate::auth::{ApiJson, Session};
use crate::error::ApiError;
use crate::state::{AppState, Environment};

/// The id under which the user's recovery codes are offered.
pub(crate) const RECOVERY_CREDENTIAL_ID: &str = "recovery-codes";

/// The id under which elevation by the app's backend (external auth) is offered.
pub(crate) const EXTERNAL_AUTH_CREDENTIAL_ID: &str = "external-auth";

/// `POST /stepUp/check`: required if step-up is on and the environment's policy lists the scope. The credentials
/// are the MFA methods if the user has verified ones (then re-authentication is not offered), otherwise the
/// sign-in-enabled email addresses, phone numbers and external wallets; only methods the environment enables;
/// then external auth when the environment trusts a backend for this user. Embedded wallets are never offered.
pub(crate) async fn check(
    State(state): State<AppState>,
    session: Session,
    ApiJson(request): ApiJson<StepUpCheckRequest>,
) -> Result<Json<StepUpCheckResponse>, ApiError> {
    // A typo must never read as "no step-up needed": verify refuses an unknown scope, and so does the check.
    if !request.scope.is_known() {
        return Err(ApiError::unprocessable(
            ErrorCode::InvalidScopes,
            format!("Unknown scope `{}`", request.scope.as_str()),
        ));
    }
    let required = session.env.config.policy.requires_step_up(&request.scope);
    state.metrics().step_up_check(required);
    if !required {
        return Ok(Json(StepUpCheckResponse {
            is_required: false,
            credentials: vec![],
            default_credential_id: None,
        }));
    }
    let (credentials, default) = step_up_credentials(&state, &session.env, &session.user_id).await?;
    let default_credential_id = default.or_else(|| credentials.first().map(|c| c.id.clone()));
    Ok(Json(StepUpCheckResponse { is_required: true, credentials, default_credential_id }))
}

/// The credentials a user can step up with (see [`check`]), and the default one (the default TOTP device) if
/// it is among them.
pub(crate) async fn step_up_credentials(
    state: &AppState,
    env: &Environment,
    user_id: &str,
) -> Result<(Vec<StepUpCredential>, Option<String>), ApiError> {
    let policy = &env.config.policy;
    let devices = state.store().totp_devices(user_id).await?;
    let passkeys = super::passkey::list(state, user_id).await?;
    let has_mfa = devices.iter().any(|d| d.verified) || !passkeys.is_empty();
    let mut default = None;
    let mut offered: Vec<StepUpCredential> = Vec::new();
    if has_mfa {
        if policy.method_enabled(Method::Totp) {
            default = super::mfa::default_device(&devices).map(|d| d.id.clone());
            offered.extend(devices.into_iter().filter(|d| d.verified).map(|d| StepUpCredential {
                id: d.id,
                format: CredentialFormat::Totp,
                kind: Some("totp".into()),
                alias: Some("Authenticator app".into()),
            }));
        }
        if policy.method_enabled(Method::Passkey) {
            offered.extend(passkeys.into_iter().map(|p| StepUpCredential {
                id: p.id,
                format: CredentialFormat::Passkey,
                kind: Some("passkey".into()),
                alias: Some("Passkey".into()),
            }));
        }
        if policy.method_enabled(Method::RecoveryCode) {
            let (unused, _) = state.store().unused_recovery_codes(user_id).await?;
            if !unused.is_empty() {
                offered.push(StepUpCredential {
                    id: RECOVERY_CREDENTIAL_ID.into(),
                    format: CredentialFormat::RecoveryCode,
                    kind: None,
                    alias: Some(format!("{} recovery codes left", unused.len())),
                });
            }
        }
    } else {
        let mut credentials = state.store().credentials(user_id).await?;
        // Offer email first, then phone, then wallets (the order docs/design.md lists them in); oldest first within a kind.
        credentials.sort_by_key(|c| match c.format {
            CredentialFormat::Email => 0,
            CredentialFormat::PhoneNumber => 1,
            _ => 2,
        });
        offered.extend(credentials.into_iter().filter(|c| c.sign_in_enabled && !c.embedded).filter_map(
            |c| {
                let format = c.format.clone();
                let (method, alias) = match format {
                    CredentialFormat::Email => (Method::EmailOtp, c.email.clone()),
                    CredentialFormat::PhoneNumber => (Method::SmsOtp, c.phone_number.clone()),
                    CredentialFormat::Blockchain => (Method::ExternalWallet, c.address.clone()),
                    _ => return None,
                };
                policy.method_enabled(method).then_some(StepUpCredential {
                    id: c.id,
                    format,
                    kind: c.wallet_provider,
                    alias,
                })
            },
        ));
    }
    let external = env.external_auth.as_ref().is_some_and(|keys| !has_mfa || keys.config().allow_mfa_users);
    if external {
        offered.push(StepUpCredential {
            id: EXTERNAL_AUTH_CREDENTIAL_ID.into(),
            format: CredentialFormat::ExternalUser,
            kind: None,
            alias: Some("The app's backend".into()),
        });
    }
    Ok((offered, default))
}
