//! The admin operations — seed users, mint sessions, link wallets, read the OTP outbox — for the admin API, the
//! CLI (`main.rs`) and the demo crate alike.

use serde::{Deserialize, Serialize};
use stepup_core::Jwt;
use stepup_proto::{CredentialFormat, SdkUser, TokenScope, VerifiedCredential, WalletProvider};

use super::contact::{validate_email, validate_phone};
use super::views::{sdk_user, verified_credential};
use super::{ServiceError, environment, issuance};
use crate::random;
use crate::state::AppState;
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

/// Creates a user with the given email and/or phone credentials (the admin API's and the CLI's operation).
///
/// # Errors
/// [`ServiceError::UnknownEnvironment`], [`ServiceError::BadInput`] for a bad email or phone,
/// [`ServiceError::Storage`].
pub async fn create_user(
    state: &AppState,
    environment_id: &str,
    request: CreateUserRequest,
) -> Result<SdkUser, ServiceError> {
    let env = environment(state, environment_id)?;
    let internal = |_| ServiceError::Internal { what: "randomness" };
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

/// Mints a session for a user.
///
/// # Errors
/// [`ServiceError::UnknownEnvironment`], [`ServiceError::UnknownUser`], [`ServiceError::Storage`].
pub async fn create_session(
    state: &AppState,
    environment_id: &str,
    user_id: &str,
) -> Result<AdminSession, ServiceError> {
    session_with_token(state, environment_id, user_id, &[]).await
}

/// A session for a user and, for `scopes` (when any), an elevated token bound to it.
///
/// # Errors
/// [`ServiceError::InvalidScopes`] for a scope the server does not know (before a session is made),
/// [`ServiceError::UnknownEnvironment`], [`ServiceError::UnknownUser`], [`ServiceError::Storage`].
pub async fn session_with_token(
    state: &AppState,
    environment_id: &str,
    user_id: &str,
    scopes: &[TokenScope],
) -> Result<AdminSession, ServiceError> {
    let env = environment(state, environment_id)?;
    // Refused before a session row is made for nothing.
    if scopes.iter().any(|scope| !scope.is_known()) {
        return Err(ServiceError::InvalidScopes);
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

/// Links a wallet to a user (an embedded one is stored but never qualifies for step-up).
///
/// # Errors
/// [`ServiceError::UnknownEnvironment`], [`ServiceError::UnknownUser`], [`ServiceError::BadInput`] for a bad
/// address, chain or name, [`ServiceError::Storage`].
pub async fn link_wallet(
    state: &AppState,
    environment_id: &str,
    user_id: &str,
    request: LinkWalletRequest,
) -> Result<VerifiedCredential, ServiceError> {
    let user_id = user_id.to_owned();
    let env = environment(state, environment_id)?;
    super::known_user(state, &env, &user_id).await?;
    if !valid_address(&request.address) || request.chain.is_empty() || request.wallet_name.is_empty() {
        return Err(ServiceError::BadInput(
            "Invalid wallet: address must be 0x and 40 hex digits; chain and name are required".into(),
        ));
    }
    // The wallet message and signature checks are EVM's (EIP-4361, EIP-191).
    let chain =
        stepup_proto::chain::credential_chain(&request.chain).filter(|chain| *chain == "eip155").ok_or_else(
            || ServiceError::BadInput(format!("Unsupported chain `{}`: only EVM (eip155)", request.chain)),
        )?;
    let embedded = request.embedded || request.wallet_provider == WalletProvider::EmbeddedWallet;
    let id = random::uuid().map_err(|_| ServiceError::Internal { what: "randomness" })?;
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

/// The outbox, newest first, optionally for one recipient.
///
/// # Errors
/// [`ServiceError::UnknownEnvironment`], [`ServiceError::OutboxOff`] (it is a development channel),
/// [`ServiceError::Storage`].
pub async fn outbox(
    state: &AppState,
    environment_id: &str,
    to: Option<&str>,
) -> Result<Vec<OutboxMessage>, ServiceError> {
    let env = environment(state, environment_id)?;
    if !state.delivery().outbox_enabled() {
        return Err(ServiceError::OutboxOff);
    }
    let rows = state.store().outbox(env.id(), to).await?;
    Ok(rows
        .into_iter()
        .map(|r| OutboxMessage {
            to: r.recipient,
            channel: r.channel.as_str().to_owned(),
            code: r.code,
            verification_uuid: r.verification_id,
            created_at: r.created_at,
        })
        .collect())
}
