//! Passkeys (WebAuthn, webauthn-rs): step-up by an assertion (`GET /users/passkeys/authenticate` for the
//! options, `POST /users/mfa/auth/passkey`), the user's passkeys in the step-up offer, and the ceremony helpers
//! registration shares (`services::passkeys`).
//!
//! Ceremony states live in the database under their challenge and are deleted on first use, success or failure:
//! webauthn-rs keeps no memory between ceremonies, so a saved state would otherwise accept the same assertion
//! twice. After a successful assertion the stored passkey takes the new counter (`update_credential`), so a
//! counter that goes backwards is caught next time (`CredentialPossibleCompromise`).

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use stepup_core::Method;
use stepup_proto::{
    CredentialFormat, ErrorCode, PasskeyAuthRequest, StepUpCredential, TokenScope, UserPasskey,
    VerifyResponse,
};
use utoipa::openapi::HttpMethod;
use webauthn_rs::prelude::{Passkey, PasskeyAuthentication, PublicKeyCredential, WebauthnError};

use super::Served;
use crate::auth::{ApiJson, Session};
use crate::error::ApiError;
use crate::routes::openapi::{Caller, Document};
use crate::services::offer::Account;
use crate::services::{Missing, Refusal, ServiceError, lockout, step_up};
use crate::state::AppState;
use crate::store::{CeremonyKind, PasskeyRow, secs, time};

/// How long a ceremony may take.
pub(crate) const CEREMONY_SECS: u64 = 5 * 60;

pub(super) const SERVED: Served = Served {
    methods: &[Method::Passkey],
    routes,
    document,
    verifications: &[("/users/mfa/auth/passkey", "passkey")],
};

fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/users/passkeys/authenticate", get(authentication_options))
        .route("/users/mfa/auth/passkey", post(authenticate))
}

fn document(doc: &mut Document) {
    let options = "Passkey authentication options (WebAuthn)";
    doc.sdk(HttpMethod::Get, "/users/passkeys/authenticate", options, Caller::SignedIn)
        .answers_object()
        .add();
    doc.sdk(HttpMethod::Post, "/users/mfa/auth/passkey", "Step up by a passkey assertion", Caller::SignedIn)
        .body::<PasskeyAuthRequest>(false)
        .answers::<VerifyResponse>()
        .add();
}

/// The user's passkeys, oldest first.
pub(super) fn offer(account: &Account<'_>) -> Vec<StepUpCredential> {
    account
        .passkeys
        .iter()
        .map(|p| StepUpCredential {
            id: p.id.clone(),
            format: CredentialFormat::Passkey,
            kind: Some("passkey".into()),
            alias: Some("Passkey".into()),
        })
        .collect()
}

// ---- HTTP ----

/// `GET /users/passkeys/authenticate`: WebAuthn request options for the user's passkeys.
async fn authentication_options(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(start_authentication(&state, &session).await?))
}

/// `POST /users/mfa/auth/passkey`: a WebAuthn assertion plus `requestedScopes`.
async fn authenticate(
    State(state): State<AppState>,
    session: Session,
    ApiJson(mut body): ApiJson<serde_json::Map<String, Value>>,
) -> Result<Json<VerifyResponse>, ApiError> {
    let requested_scopes: Option<Vec<TokenScope>> = match body.remove("requestedScopes") {
        None | Some(Value::Null) => None,
        Some(scopes) => Some(
            serde_json::from_value(scopes)
                .map_err(|_| ApiError::bad_request("requestedScopes must be a list of scopes"))?,
        ),
    };
    Ok(Json(step_up(&state, &session, body, requested_scopes.as_deref()).await?))
}

// ---- The check ----

/// What a passkey ceremony refuses, each with its own code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasskeyRefusal {
    /// The challenge is unknown, used or expired (`passkey_challenge_invalid`).
    #[error("Unknown, used or expired passkey challenge")]
    ChallengeInvalid,
    /// The passkey was used at an origin the environment does not allow (`passkey_origin_mismatch`).
    #[error("The passkey was used at another origin")]
    OriginMismatch,
    /// The authenticator did not verify the user (`passkey_user_not_verified`).
    #[error("The authenticator did not verify the user")]
    UserNotVerified,
    /// The counter went backwards: the passkey may be cloned (`passkey_counter_regression`).
    #[error("The passkey's counter went backwards: it may be cloned")]
    CounterRegression,
    /// Anything else webauthn-rs refused (`passkey_invalid`).
    #[error("The passkey response is not valid: {0}")]
    Invalid(String),
}

impl Refusal for PasskeyRefusal {
    fn code(&self) -> ErrorCode {
        ErrorCode::Unknown(
            match self {
                PasskeyRefusal::ChallengeInvalid => "passkey_challenge_invalid",
                PasskeyRefusal::OriginMismatch => "passkey_origin_mismatch",
                PasskeyRefusal::UserNotVerified => "passkey_user_not_verified",
                PasskeyRefusal::CounterRegression => "passkey_counter_regression",
                PasskeyRefusal::Invalid(_) => "passkey_invalid",
            }
            .to_owned(),
        )
    }
}

impl From<WebauthnError> for PasskeyRefusal {
    fn from(error: WebauthnError) -> Self {
        match error {
            WebauthnError::InvalidRPOrigin => PasskeyRefusal::OriginMismatch,
            WebauthnError::UserNotVerified => PasskeyRefusal::UserNotVerified,
            WebauthnError::CredentialPossibleCompromise => PasskeyRefusal::CounterRegression,
            other => PasskeyRefusal::Invalid(other.to_string()),
        }
    }
}

/// The challenge a browser response answers, from its `clientDataJSON`.
///
/// # Errors
/// [`ServiceError::BadInput`] when there is none.
pub(crate) fn challenge_of(client_data_json: &[u8]) -> Result<String, ServiceError> {
    let no_challenge = || ServiceError::BadInput("clientDataJSON has no challenge".into());
    let client_data: Value = serde_json::from_slice(client_data_json).map_err(|_| no_challenge())?;
    client_data.get("challenge").and_then(Value::as_str).map(str::to_owned).ok_or_else(no_challenge)
}

/// A ceremony state or passkey as stored (JSON).
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, ServiceError> {
    serde_json::to_string(value)
        .map_err(|_| ServiceError::Internal { what: "serialising a passkey ceremony" })
}

/// The wire view of a stored passkey.
pub(crate) fn user_passkey(row: &PasskeyRow) -> UserPasskey {
    UserPasskey {
        id: row.id.clone(),
        credential_id: row.credential_id.clone(),
        created_at: time(row.created_at).to_rfc3339(),
        updated_at: Some(time(row.updated_at).to_rfc3339()),
        alias: None,
        user_agent: None,
        origin: row.origin.clone(),
    }
}

/// The user's passkeys as webauthn-rs keeps them (a row that no longer parses is skipped).
pub(crate) fn stored_passkeys(rows: &[PasskeyRow]) -> Vec<Passkey> {
    rows.iter().filter_map(|r| serde_json::from_str(&r.passkey).ok()).collect()
}

/// Starts an assertion ceremony for the user's passkeys: the WebAuthn request options, the state stored under
/// the challenge.
///
/// # Errors
/// [`ServiceError::NotFound`] when the user has no passkey, [`ServiceError::TooMany`] over the ceremony limit,
/// [`ServiceError::Storage`].
pub async fn start_authentication(state: &AppState, session: &Session) -> Result<Value, ServiceError> {
    let passkeys = stored_passkeys(&state.store().passkeys(&session.user_id).await?);
    if passkeys.is_empty() {
        return Err(ServiceError::NotFound(Missing::AnyPasskey));
    }
    step_up::count_ceremony(state, session).await?;
    let (options, authentication) = session
        .env
        .webauthn
        .start_passkey_authentication(&passkeys)
        .map_err(|_| ServiceError::Internal { what: "starting a passkey ceremony" })?;
    let challenge = URL_SAFE_NO_PAD.encode(&options.public_key.challenge);
    let expires_at = secs(state.now().plus_secs(CEREMONY_SECS));
    let ceremony = to_json(&authentication)?;
    let kind = CeremonyKind::Authentication;
    state.store().insert_challenge(&challenge, &session.user_id, kind, &ceremony, expires_at).await?;
    serde_json::to_value(&options.public_key)
        .map_err(|_| ServiceError::Internal { what: "serialising options" })
}

/// Step-up by an assertion (the body of `POST /users/mfa/auth/passkey` without `requestedScopes`, read after the
/// policy's checks): its challenge is taken (once, success or failure), webauthn-rs checks it, and the passkey
/// keeps its new counter.
///
/// # Errors
/// As [`step_up::check_request`]; [`ServiceError::BadInput`] for a body that is no assertion or one without a
/// challenge, [`ServiceError::Locked`], [`PasskeyRefusal`] (counted towards the lockout).
pub async fn step_up(
    state: &AppState,
    session: &Session,
    assertion: serde_json::Map<String, Value>,
    requested: Option<&[TokenScope]>,
) -> Result<VerifyResponse, ServiceError> {
    step_up::check_request(state, session, Method::Passkey, requested).await?;
    let assertion: PublicKeyCredential = serde_json::from_value(Value::Object(assertion))
        .map_err(|e| ServiceError::BadInput(format!("Invalid assertion: {e}")))?;
    let assertion = &assertion;
    let attempt = lockout::reserve(state, &session.user_id).await?;
    let challenge = challenge_of(assertion.response.client_data_json.as_ref())?;
    let kind = CeremonyKind::Authentication;
    let Some(ceremony) =
        state.store().take_challenge(&challenge, &session.user_id, kind, secs(state.now())).await?
    else {
        let refused = ServiceError::refused(PasskeyRefusal::ChallengeInvalid);
        return Err(lockout::failed(state, &session.user_id, attempt, refused).await);
    };
    let ceremony: PasskeyAuthentication = serde_json::from_str(&ceremony)
        .map_err(|_| ServiceError::Internal { what: "reading a passkey ceremony" })?;
    let result = match session.env.webauthn.finish_passkey_authentication(assertion, &ceremony) {
        Ok(result) => result,
        Err(error) => {
            let refused = ServiceError::refused(PasskeyRefusal::from(error));
            return Err(lockout::failed(state, &session.user_id, attempt, refused).await);
        }
    };
    // Keep the new counter, so a later assertion with an older one is caught.
    for row in state.store().passkeys(&session.user_id).await? {
        let Ok(mut passkey) = serde_json::from_str::<Passkey>(&row.passkey) else { continue };
        if passkey.update_credential(&result).is_some() {
            state.store().update_passkey(&row.id, &to_json(&passkey)?, secs(state.now())).await?;
        }
    }
    lockout::succeeded(state, &session.user_id).await?;
    step_up::respond(state, session, requested, Method::Passkey).await
}
