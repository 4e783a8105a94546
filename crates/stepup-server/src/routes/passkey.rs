//! Passkeys (WebAuthn, webauthn-rs): registration, authentication options, MFA assertion, deletion.
//!
//! Ceremony states live in the database under their challenge and are deleted on first use, success or failure:
//! webauthn-rs keeps no memory between ceremonies, so a saved state would otherwise accept the same assertion
//! twice. After a successful assertion the stored passkey takes the new counter (`update_credential`), so a
//! counter that goes backwards is caught next time (`CredentialPossibleCompromise`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;
use stepup_core::Method;
use stepup_proto::{ErrorCode, TokenScope, UserPasskey, UserPasskeysResponse, VerifyResponse};
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    Uuid, WebauthnError,
};

use super::{check_step_up_request, step_up_response};
use crate::auth::{ApiJson, Session};
use crate::delivery::SecurityEvent;
use crate::error::ApiError;
use crate::guard;
use crate::random;
use crate::state::AppState;
use crate::store::{CeremonyKind, PasskeyRow, secs, time};
use crate::verify::mfa_lock;

/// How long a ceremony may take.
const CEREMONY_SECS: u64 = 5 * 60;

fn refuse(code: &str, message: &str) -> ApiError {
    ApiError::unprocessable(ErrorCode::Unknown(code.to_owned()), message)
}

/// webauthn-rs wants a UUID per user; ours are UUIDs, anything else maps to a stable one.
fn user_handle(user_id: &str) -> Uuid {
    Uuid::parse_str(user_id).unwrap_or_else(|_| {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(user_id.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Uuid::from_bytes(bytes)
    })
}

/// The challenge a browser response answers, from its `clientDataJSON`.
fn challenge_of(client_data_json_b64: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(client_data_json_b64.trim_end_matches('=')).ok()?;
    let client_data: Value = serde_json::from_slice(&bytes).ok()?;
    client_data.get("challenge")?.as_str().map(str::to_owned)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|_| ApiError::internal())
}

fn user_passkey(row: &PasskeyRow) -> UserPasskey {
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
async fn stored_passkeys(state: &AppState, user_id: &str) -> Result<Vec<Passkey>, ApiError> {
    Ok(state
        .store()
        .passkeys(user_id)
        .await?
        .iter()
        .filter_map(|r| serde_json::from_str(&r.passkey).ok())
        .collect())
}

/// `GET /users/passkeys/register`: WebAuthn creation options (user verification required).
pub(crate) async fn registration_options(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<Value>, ApiError> {
    super::require_method(&session, Method::Passkey)?;
    super::count_ceremony(&state, &session).await?;
    let user = state
        .store()
        .user(session.env.id(), &session.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Unknown user"))?;
    let existing = stored_passkeys(&state, &session.user_id).await?;
    let exclude = existing.iter().map(|p| p.cred_id().clone()).collect();
    let name = user.email.unwrap_or_else(|| user.id.clone());
    let (options, registration) = session
        .env
        .webauthn
        .start_passkey_registration(user_handle(&user.id), &name, &name, Some(exclude))
        .map_err(|_| ApiError::internal())?;
    let challenge = URL_SAFE_NO_PAD.encode(&options.public_key.challenge);
    let expires_at = secs(state.now().plus_secs(CEREMONY_SECS));
    state
        .store()
        .insert_challenge(
            &challenge,
            &session.user_id,
            CeremonyKind::Registration,
            &to_json(&registration)?,
            expires_at,
        )
        .await?;
    let mut options = serde_json::to_value(&options.public_key).map_err(|_| ApiError::internal())?;
    // Dynamic's client reads `excludeCredentials` and `pubKeyCredParams` as arrays that must be there, and
    // `attestation` and `authenticatorSelection` as present; webauthn-rs leaves out what is empty or default.
    if let Some(object) = options.as_object_mut() {
        object.entry("excludeCredentials").or_insert_with(|| Value::Array(vec![]));
        object.entry("attestation").or_insert_with(|| Value::String("none".into()));
        object
            .entry("authenticatorSelection")
            .or_insert_with(|| serde_json::json!({"userVerification": "required"}));
    }
    Ok(Json(options))
}

/// The attestation of a `POST /users/passkeys/register` body, as webauthn-rs reads it: Dynamic's client writes
/// `response.clientDataJson` (its serializer's spelling) where WebAuthn says `clientDataJSON`; both are read.
/// Dynamic's `createMfaToken` is not part of the attestation and is dropped.
fn attestation(mut body: serde_json::Map<String, Value>) -> Result<RegisterPublicKeyCredential, ApiError> {
    body.remove("createMfaToken");
    if let Some(Value::Object(response)) = body.get_mut("response")
        && !response.contains_key("clientDataJSON")
        && let Some(client_data) = response.remove("clientDataJson")
    {
        response.insert("clientDataJSON".to_owned(), client_data);
    }
    serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::bad_request(format!("Invalid attestation: {e}")))
}

/// `POST /users/passkeys/register`: the attestation. Needs `credential:link` (for a user with MFA, earned by MFA,
/// or a recent MFA: `guard::check_factor_change`), and passkeys enabled. Answers a VerifyResponse (the
/// user, and the session re-signed: registering a passkey with user verification is an MFA verification), as
/// Dynamic's client expects.
pub(crate) async fn register(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    ApiJson(body): ApiJson<serde_json::Map<String, Value>>,
) -> Result<Json<VerifyResponse>, ApiError> {
    super::require_method(&session, Method::Passkey)?;
    guard::check_factor_change(&state, &session, &headers, &TokenScope::CredentialLink).await?;
    let credential = attestation(body)?;
    let client_data = URL_SAFE_NO_PAD.encode(&credential.response.client_data_json);
    let challenge =
        challenge_of(&client_data).ok_or_else(|| ApiError::bad_request("clientDataJSON has no challenge"))?;
    let registration = state
        .store()
        .take_challenge(&challenge, &session.user_id, CeremonyKind::Registration, secs(state.now()))
        .await?
        .ok_or_else(|| refuse("passkey_challenge_invalid", "Unknown, used or expired passkey challenge"))?;
    let registration: PasskeyRegistration =
        serde_json::from_str(&registration).map_err(|_| ApiError::internal())?;
    let passkey = session
        .env
        .webauthn
        .finish_passkey_registration(&credential, &registration)
        .map_err(webauthn_refusal)?;
    let now = secs(state.now());
    let row = PasskeyRow {
        id: random::uuid().map_err(|_| ApiError::internal())?,
        user_id: session.user_id.clone(),
        credential_id: URL_SAFE_NO_PAD.encode(passkey.cred_id()),
        passkey: to_json(&passkey)?,
        origin: client_data_origin(&credential),
        created_at: now,
        updated_at: now,
    };
    state.store().insert_passkey(&row).await?;
    let response = step_up_response(&state, &session, None, Method::Passkey).await?;
    crate::services::notify::security_event(
        &state,
        &session.env,
        &session.user_id,
        SecurityEvent::PasskeyAdded,
    )
    .await;
    Ok(Json(response))
}

/// `GET /users/passkeys`: the user's passkeys (`{count, passkeys}`).
pub(crate) async fn passkeys(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<UserPasskeysResponse>, ApiError> {
    let passkeys = list(&state, &session.user_id).await?;
    Ok(Json(UserPasskeysResponse { count: passkeys.len(), passkeys }))
}

/// `GET /users/passkeys/authenticate`: WebAuthn request options for the user's passkeys.
pub(crate) async fn authentication_options(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<Value>, ApiError> {
    let passkeys = stored_passkeys(&state, &session.user_id).await?;
    if passkeys.is_empty() {
        return Err(ApiError::not_found("The user has no passkey"));
    }
    super::count_ceremony(&state, &session).await?;
    let (options, authentication) =
        session.env.webauthn.start_passkey_authentication(&passkeys).map_err(|_| ApiError::internal())?;
    let challenge = URL_SAFE_NO_PAD.encode(&options.public_key.challenge);
    let expires_at = secs(state.now().plus_secs(CEREMONY_SECS));
    state
        .store()
        .insert_challenge(
            &challenge,
            &session.user_id,
            CeremonyKind::Authentication,
            &to_json(&authentication)?,
            expires_at,
        )
        .await?;
    serde_json::to_value(&options.public_key).map(Json).map_err(|_| ApiError::internal())
}

/// The origin the authenticator's client stated (webauthn-rs checked it against the allowed ones), kept with
/// the passkey.
fn client_data_origin(credential: &RegisterPublicKeyCredential) -> Option<String> {
    let client_data: Value = serde_json::from_slice(credential.response.client_data_json.as_ref()).ok()?;
    client_data.get("origin")?.as_str().map(str::to_owned)
}

fn webauthn_refusal(error: WebauthnError) -> ApiError {
    match error {
        WebauthnError::InvalidRPOrigin => {
            refuse("passkey_origin_mismatch", "The passkey was used at another origin")
        }
        WebauthnError::UserNotVerified => {
            refuse("passkey_user_not_verified", "The authenticator did not verify the user")
        }
        WebauthnError::CredentialPossibleCompromise => {
            refuse("passkey_counter_regression", "The passkey's counter went backwards: it may be cloned")
        }
        other => refuse("passkey_invalid", &format!("The passkey response is not valid: {other}")),
    }
}

/// `POST /users/mfa/auth/passkey`: a WebAuthn assertion plus `requestedScopes`.
pub(crate) async fn authenticate(
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
    check_step_up_request(&state, &session, Method::Passkey, requested_scopes.as_deref()).await?;
    let credential: PublicKeyCredential = serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::bad_request(format!("Invalid assertion: {e}")))?;
    let attempt = mfa_lock::reserve(&state, &session.user_id).await?;
    let client_data = URL_SAFE_NO_PAD.encode(&credential.response.client_data_json);
    let challenge =
        challenge_of(&client_data).ok_or_else(|| ApiError::bad_request("clientDataJSON has no challenge"))?;
    let Some(authentication) = state
        .store()
        .take_challenge(&challenge, &session.user_id, CeremonyKind::Authentication, secs(state.now()))
        .await?
    else {
        let error = refuse("passkey_challenge_invalid", "Unknown, used or expired passkey challenge");
        return Err(mfa_lock::failed(&state, &session.user_id, attempt, error).await);
    };
    let authentication: PasskeyAuthentication =
        serde_json::from_str(&authentication).map_err(|_| ApiError::internal())?;
    let result = match session.env.webauthn.finish_passkey_authentication(&credential, &authentication) {
        Ok(result) => result,
        Err(error) => {
            return Err(mfa_lock::failed(&state, &session.user_id, attempt, webauthn_refusal(error)).await);
        }
    };
    // Keep the new counter, so a later assertion with an older one is caught.
    for row in state.store().passkeys(&session.user_id).await? {
        let Ok(mut passkey) = serde_json::from_str::<Passkey>(&row.passkey) else { continue };
        if passkey.update_credential(&result).is_some() {
            state.store().update_passkey(&row.id, &to_json(&passkey)?, secs(state.now())).await?;
        }
    }
    mfa_lock::succeeded(&state, &session.user_id).await?;
    let response = step_up_response(&state, &session, requested_scopes.as_deref(), Method::Passkey).await?;
    Ok(Json(response))
}

/// Body of `DELETE /users/passkeys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeletePasskey {
    passkey_id: String,
}

/// `DELETE /users/passkeys`: removes a passkey. Needs `credential:unlink` (for a user with MFA, earned by MFA,
/// or a recent MFA).
pub(crate) async fn delete(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    ApiJson(request): ApiJson<DeletePasskey>,
) -> Result<StatusCode, ApiError> {
    guard::check_factor_change(&state, &session, &headers, &TokenScope::CredentialUnlink).await?;
    if state.store().delete_passkey(&session.user_id, &request.passkey_id).await? {
        crate::services::notify::security_event(
            &state,
            &session.env,
            &session.user_id,
            SecurityEvent::PasskeyRemoved,
        )
        .await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("No such passkey"))
    }
}

/// The user's passkeys for `GET /users/mfa/methods` and the step-up check.
pub(crate) async fn list(state: &AppState, user_id: &str) -> Result<Vec<UserPasskey>, ApiError> {
    Ok(state.store().passkeys(user_id).await?.iter().map(user_passkey).collect())
}
