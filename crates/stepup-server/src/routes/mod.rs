//! The HTTP surface: one file per area of the API, all under `/sdk/{environment_id}`, plus `/admin` and
//! `/health`.

mod admin;
mod environment;
mod mfa;
mod otp;
mod passkey;
mod protected;
mod step_up;
mod users;
mod wallet;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, delete, get, post};
use stepup_proto::{SdkUser, TokenScope, VerifiedCredential, VerifyResponse, WalletProvider};

use crate::error::ApiError;
use crate::state::{AppState, Environment};
use crate::store::CredentialRow;

pub use admin::{
    AdminSession, CreateUserRequest, LinkWalletRequest, OutboxMessage, create_session_op, create_user_op,
    link_wallet_op, outbox_op,
};

/// Largest request body accepted; anything bigger is a 400.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The whole router.
pub fn router(state: AppState) -> Router {
    let sdk = Router::new()
        .route("/stepUp/check", post(step_up::check))
        .route("/emailVerifications/create", post(otp::create_email))
        .route("/smsVerifications/create", post(otp::create_sms))
        .route("/emailVerifications/verify", post(otp::verify))
        .route("/smsVerifications/verify", post(otp::verify))
        .route("/emailVerifications/signin", post(otp::signin))
        .route("/smsVerifications/signin", post(otp::signin))
        .route("/nonces", get(wallet::nonces))
        .route("/wallets/verify", post(wallet::verify))
        .route("/users", get(users::current_user))
        .route("/users/mfa/methods", get(mfa::methods))
        .route("/users/mfa/register/totp", get(mfa::register_totp))
        .route("/users/mfa/auth/totp", post(mfa::auth_totp))
        .route("/users/mfa/auth/recovery", post(mfa::auth_recovery))
        .route("/users/mfa/auth/passkey", post(passkey::authenticate))
        .route("/users/passkeys/register", get(passkey::registration_options).post(passkey::register))
        .route("/users/passkeys/authenticate", get(passkey::authentication_options))
        .route("/users/passkeys", delete(passkey::delete))
        .route("/users/mfa/recovery", get(mfa::get_recovery_codes).post(mfa::regenerate_recovery_codes))
        .route("/users/mfa/{device_id}", delete(mfa::delete_device))
        .route("/revoke", post(users::revoke))
        .route("/settings", get(environment::settings))
        .route("/.well-known/jwks", get(environment::jwks))
        .route("/.well-known/jwks.json", get(environment::jwks))
        .route("/protected/{scope}", any(protected::protected));
    let mut app = Router::new().nest("/sdk/{environment_id}", sdk).route("/health", get(environment::health));
    if state.admin_token().is_some() {
        app = app.nest("/admin", admin::router());
    }
    app.fallback(|| async { ApiError::not_found("Not found") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The `SdkUser` view of a user and their credentials.
pub(crate) fn sdk_user(
    env: &Environment,
    user_id: &str,
    email: Option<String>,
    phone: Option<String>,
    credentials: &[CredentialRow],
) -> SdkUser {
    SdkUser {
        id: user_id.to_owned(),
        project_environment_id: env.id().to_owned(),
        email,
        phone_number: phone,
        username: None,
        session_id: None,
        last_verified_credential_id: None,
        verified_credentials: credentials.iter().map(verified_credential).collect(),
    }
}

/// The wire view of a stored credential.
pub(crate) fn verified_credential(c: &CredentialRow) -> VerifiedCredential {
    VerifiedCredential {
        id: c.id.clone(),
        format: c.format.as_str().into(),
        address: c.address.clone(),
        chain: c.chain.clone(),
        email: c.email.clone(),
        phone_number: c.phone_number.clone(),
        phone_country_code: c.phone_country_code.clone(),
        iso_country_code: c.iso_country_code.clone(),
        public_identifier: c.email.clone().or_else(|| c.address.clone()).or_else(|| {
            c.phone_number.as_ref().map(|n| format!("+{}{n}", c.phone_country_code.as_deref().unwrap_or("")))
        }),
        wallet_name: c.wallet_name.clone(),
        wallet_provider: c.wallet_provider.as_deref().map(WalletProvider::parse),
        sign_in_enabled: c.sign_in_enabled,
        embedded_wallet_id: c.embedded.then(|| c.id.clone()),
    }
}

/// Refuses scopes the server would not grant, before any factor is spent (a wrong scope must not cost the user a
/// one-time code, a TOTP step, a recovery code or a nonce).
///
/// # Errors
/// 422 `invalid_scopes`.
pub(crate) fn check_scopes(requested: Option<&[TokenScope]>) -> Result<(), ApiError> {
    match requested {
        Some(scopes) if scopes.iter().any(|s| !s.is_known()) => Err(ApiError::unprocessable(
            stepup_proto::ErrorCode::InvalidScopes,
            "Requested scopes must be known token scopes",
        )),
        _ => Ok(()),
    }
}

/// Whether the user has a verified MFA method (a verified TOTP device or a passkey).
pub(crate) async fn has_mfa(state: &AppState, user_id: &str) -> Result<bool, ApiError> {
    Ok(state.store().totp_devices(user_id).await?.iter().any(|d| d.verified)
        || !state.store().passkeys(user_id).await?.is_empty())
}

/// The scope checks of a re-authentication (email, SMS, wallet) before its factor is spent: the scopes must be
/// known ([`check_scopes`]), and, per DESIGN §1, a user with verified MFA methods must use MFA instead.
///
/// # Errors
/// 422 `invalid_scopes`, or 422 `mfa_required` when scopes are requested by a user with MFA.
pub(crate) async fn check_reauthentication_scopes(
    state: &AppState,
    user_id: &str,
    requested: Option<&[TokenScope]>,
) -> Result<(), ApiError> {
    check_scopes(requested)?;
    if requested.is_some_and(|s| !s.is_empty()) && has_mfa(state, user_id).await? {
        return Err(ApiError::unprocessable(
            stepup_proto::ErrorCode::MfaRequired,
            "This user has MFA methods: step up with MFA, not re-authentication",
        ));
    }
    Ok(())
}

/// The answer to a step-up verification inside a session: the user, the session's expiry, and an elevated token
/// for `requested_scopes` (recording `amr`) when any were requested.
pub(crate) async fn step_up_response(
    state: &AppState,
    session: &crate::auth::Session,
    requested_scopes: Option<&[TokenScope]>,
    amr: &str,
) -> Result<VerifyResponse, ApiError> {
    verify_response(state, &session.env, &session.user_id, session.expires_at, None, requested_scopes, amr)
        .await
}

/// A `VerifyResponse` for a user, with an elevated token when scopes were requested.
pub(crate) async fn verify_response(
    state: &AppState,
    env: &Environment,
    user_id: &str,
    session_expires_at: u64,
    session_jwt: Option<stepup_core::Jwt>,
    requested_scopes: Option<&[TokenScope]>,
    amr: &str,
) -> Result<VerifyResponse, ApiError> {
    let elevated_access_token = match requested_scopes {
        Some(scopes) if !scopes.is_empty() => Some(state.issue_elevated(env, user_id, scopes, amr)?),
        _ => None,
    };
    let user =
        state.store().user(env.id(), user_id).await?.ok_or_else(|| ApiError::not_found("Unknown user"))?;
    let credentials = state.store().credentials(user_id).await?;
    Ok(VerifyResponse {
        jwt: session_jwt.clone(),
        minified_jwt: session_jwt,
        mfa_token: None,
        user: sdk_user(env, user_id, user.email, user.phone_number, &credentials),
        expires_at: session_expires_at,
        elevated_access_token,
    })
}
