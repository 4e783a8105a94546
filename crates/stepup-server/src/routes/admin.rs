//! The admin API (`Authorization: Bearer <admin token>`; mounted only when a token is configured): seed users,
//! mint sessions, link wallets, read the OTP outbox. Used by tests and demos, and by the CLI.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use stepup_core::Jwt;
use stepup_proto::{CredentialFormat, SdkUser, TokenScope, VerifiedCredential, WalletProvider};

use super::{sdk_user, verified_credential};
use crate::auth::{Admin, ApiJson, OptionalJson};
use crate::error::ApiError;
use crate::random;
use crate::services::contact::{validate_email, validate_phone};
use crate::services::issuance;
use crate::state::{AppState, Environment};
use crate::store::{NewCredential, UserRow, secs};

/// Body of `POST /admin/environments/{env}/users`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateUserRequest {
    /// An email credential to create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// A phone credential to create (digits, without country code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// The phone's country calling code (default `1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_country_code: Option<String>,
    /// The phone's ISO country code (default `US`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iso_country_code: Option<String>,
}

/// Body of `POST /admin/environments/{env}/users/{userId}/sessions` (optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSessionRequest {
    /// Scopes of an elevated token to mint in the new session as well (`amr: ["admin"]`), for tests and API
    /// fuzzers that need to get past the guard; none by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elevated_scopes: Vec<TokenScope>,
}

/// Answer of `POST /admin/environments/{env}/users/{userId}/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminSession {
    /// The session JWT.
    #[schema(value_type = String)]
    pub jwt: Jwt,
    /// Its expiry, Unix seconds.
    pub expires_at: u64,
    /// The elevated token for `elevatedScopes`, bound to this session, when any were asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub elevated_access_token: Option<Jwt>,
}

/// Body of `POST /admin/environments/{env}/users/{userId}/wallets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkWalletRequest {
    /// The address (`0x` + 40 hex digits).
    pub address: String,
    /// The chain in either spelling, e.g. `EVM` or `eip155`; stored (and answered) as Dynamic's credential chain
    /// name, `eip155`.
    pub chain: String,
    /// The wallet's name, e.g. `metamask`.
    pub wallet_name: String,
    /// How it is connected.
    pub wallet_provider: WalletProvider,
    /// An embedded wallet (stored, never qualifies for step-up).
    #[serde(default)]
    pub embedded: bool,
}

/// One message of `GET /admin/environments/{env}/outbox`. `Debug` leaves the code out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboxMessage {
    /// The email address or `+<country code><number>`.
    pub to: String,
    /// `email` or `sms`.
    pub channel: String,
    /// The code.
    pub code: String,
    /// The verification it belongs to.
    #[serde(rename = "verificationUUID")]
    pub verification_uuid: String,
    /// When it was sent, Unix seconds.
    pub created_at: i64,
}

impl std::fmt::Debug for OutboxMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxMessage")
            .field("to", &self.to)
            .field("channel", &self.channel)
            .field("code", &stepup_core::secret::REDACTED)
            .field("verification_uuid", &self.verification_uuid)
            .finish_non_exhaustive()
    }
}

/// `?to=`.
#[derive(Debug, Deserialize)]
pub(crate) struct OutboxQuery {
    to: Option<String>,
}

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/environments/{environment_id}/users", post(create_user))
        .route("/environments/{environment_id}/users/{user_id}/sessions", post(create_session))
        .route("/environments/{environment_id}/users/{user_id}/wallets", post(link_wallet))
        .route("/environments/{environment_id}/outbox", get(outbox))
}

/// The environment an admin path names, or 404.
pub(super) fn environment(state: &AppState, id: &str) -> Result<std::sync::Arc<Environment>, ApiError> {
    state.environment(id).cloned().ok_or_else(|| ApiError::not_found("Unknown environment"))
}

async fn create_user(
    _: Admin,
    State(state): State<AppState>,
    Path(environment_id): Path<String>,
    ApiJson(request): ApiJson<CreateUserRequest>,
) -> Result<Json<SdkUser>, ApiError> {
    Ok(Json(create_user_op(&state, &environment_id, request).await?))
}

/// Creates a user with the given email and/or phone credentials (the admin API's and the CLI's operation).
///
/// # Errors
/// 404 for an unknown environment, 400 for a bad email or phone, 500 on storage failure.
pub async fn create_user_op(
    state: &AppState,
    environment_id: &str,
    request: CreateUserRequest,
) -> Result<SdkUser, ApiError> {
    let env = environment(state, environment_id)?;
    let internal = |_| ApiError::internal();
    let email = request.email.as_deref().map(validate_email).transpose()?;
    let phone = match &request.phone_number {
        Some(number) => {
            let cc = request.phone_country_code.clone().unwrap_or_else(|| "1".into());
            let iso = request.iso_country_code.clone().unwrap_or_else(|| "US".into());
            let destination = validate_phone(&cc, number, &iso)?;
            Some((number.clone(), cc, iso, destination))
        }
        None => None,
    };
    let user_id = random::uuid().map_err(internal)?;
    let now = secs(state.now());
    let user = UserRow {
        id: user_id.clone(),
        environment_id: env.id().to_owned(),
        email: email.clone(),
        phone_number: phone.as_ref().map(|p| p.3.clone()),
        mfa_backup_code_acknowledgement: None,
    };
    state.store().insert_user(&user, now).await?;
    if let Some(email) = email {
        let credential = NewCredential {
            email: Some(email),
            sign_in_enabled: true,
            ..NewCredential::new(random::uuid().map_err(internal)?, user_id.clone(), CredentialFormat::Email)
        };
        state.store().insert_credential(&credential, now).await?;
    }
    if let Some((number, cc, iso, _)) = phone {
        let credential = NewCredential {
            phone_number: Some(number),
            phone_country_code: Some(cc),
            iso_country_code: Some(iso),
            sign_in_enabled: true,
            ..NewCredential::new(
                random::uuid().map_err(internal)?,
                user_id.clone(),
                CredentialFormat::PhoneNumber,
            )
        };
        state.store().insert_credential(&credential, now).await?;
    }
    let credentials = state.store().credentials(&user_id).await?;
    Ok(sdk_user(&env, &user, &credentials))
}

async fn create_session(
    _: Admin,
    State(state): State<AppState>,
    Path((environment_id, user_id)): Path<(String, String)>,
    OptionalJson(request): OptionalJson<CreateSessionRequest>,
) -> Result<Json<AdminSession>, ApiError> {
    Ok(Json(session_with_token(&state, &environment_id, &user_id, &request.elevated_scopes).await?))
}

/// Mints a session for a user.
///
/// # Errors
/// 404 for an unknown environment or user, 500 on storage failure.
pub async fn create_session_op(
    state: &AppState,
    environment_id: &str,
    user_id: &str,
) -> Result<AdminSession, ApiError> {
    session_with_token(state, environment_id, user_id, &[]).await
}

/// A session for a user and, for `scopes` (when any), an elevated token bound to it.
async fn session_with_token(
    state: &AppState,
    environment_id: &str,
    user_id: &str,
    scopes: &[TokenScope],
) -> Result<AdminSession, ApiError> {
    let env = environment(state, environment_id)?;
    // Refused before a session row is made for nothing.
    if scopes.iter().any(|scope| !scope.is_known()) {
        return Err(ApiError::unprocessable(
            stepup_proto::ErrorCode::InvalidScopes,
            "Requested scopes must be known token scopes",
        ));
    }
    super::known_user(state, &env, user_id).await?;
    let (jwt, claims) = issuance::start_session(state, &env, user_id).await?;
    let elevated_access_token = if scopes.is_empty() {
        None
    } else {
        Some(issuance::elevated_token(state, &env, user_id, &claims.sid, scopes, "admin")?)
    };
    Ok(AdminSession { jwt, expires_at: claims.exp, elevated_access_token })
}

/// An EVM address: `0x` and 40 hex digits.
fn valid_address(address: &str) -> bool {
    address.len() == 42 && address.starts_with("0x") && address[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

async fn link_wallet(
    _: Admin,
    State(state): State<AppState>,
    Path((environment_id, user_id)): Path<(String, String)>,
    ApiJson(request): ApiJson<LinkWalletRequest>,
) -> Result<Json<VerifiedCredential>, ApiError> {
    Ok(Json(link_wallet_op(&state, &environment_id, &user_id, request).await?))
}

/// Links a wallet to a user (an embedded one is stored but never qualifies for step-up).
///
/// # Errors
/// 404 for an unknown environment or user, 400 for a bad address, chain or name, 500 on storage failure.
pub async fn link_wallet_op(
    state: &AppState,
    environment_id: &str,
    user_id: &str,
    request: LinkWalletRequest,
) -> Result<VerifiedCredential, ApiError> {
    let user_id = user_id.to_owned();
    let env = environment(state, environment_id)?;
    super::known_user(state, &env, &user_id).await?;
    if !valid_address(&request.address) || request.chain.is_empty() || request.wallet_name.is_empty() {
        return Err(ApiError::bad_request(
            "Invalid wallet: address must be 0x and 40 hex digits; chain and name are required",
        ));
    }
    // The wallet message and signature checks are EVM's (EIP-4361, EIP-191).
    let chain =
        stepup_proto::chain::credential_chain(&request.chain).filter(|chain| *chain == "eip155").ok_or_else(
            || ApiError::bad_request(format!("Unsupported chain `{}`: only EVM (eip155)", request.chain)),
        )?;
    let embedded = request.embedded || request.wallet_provider == WalletProvider::EmbeddedWallet;
    let id = random::uuid().map_err(|_| ApiError::internal())?;
    let credential = NewCredential {
        address: Some(request.address),
        chain: Some(chain.to_owned()),
        wallet_name: Some(request.wallet_name),
        wallet_provider: Some(request.wallet_provider.as_str().to_owned()),
        embedded,
        sign_in_enabled: !embedded,
        ..NewCredential::new(id, user_id, CredentialFormat::Blockchain)
    };
    state.store().insert_credential(&credential, secs(state.now())).await?;
    Ok(verified_credential(&credential))
}

async fn outbox(
    _: Admin,
    State(state): State<AppState>,
    Path(environment_id): Path<String>,
    Query(query): Query<OutboxQuery>,
) -> Result<Json<Vec<OutboxMessage>>, ApiError> {
    Ok(Json(outbox_op(&state, &environment_id, query.to.as_deref()).await?))
}

/// The outbox, newest first, optionally for one recipient.
///
/// # Errors
/// 404 for an unknown environment or when the outbox is off (it is a development channel), 500 on storage
/// failure.
pub async fn outbox_op(
    state: &AppState,
    environment_id: &str,
    to: Option<&str>,
) -> Result<Vec<OutboxMessage>, ApiError> {
    let env = environment(state, environment_id)?;
    if !state.delivery().outbox_enabled() {
        return Err(ApiError::not_found(
            "The outbox is off: it is a development channel (`--dev` or delivery.outbox)",
        ));
    }
    let rows = state.store().outbox(env.id(), to).await?;
    Ok(rows
        .into_iter()
        .map(|r| OutboxMessage {
            to: r.recipient,
            channel: r.channel,
            code: r.code,
            verification_uuid: r.verification_id,
            created_at: r.created_at,
        })
        .collect())
}
