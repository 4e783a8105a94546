//! Passkey management: registration (options, then the attestation, behind `credential:link`), the user's
//! passkeys, and deletion (behind `credential:unlink`). Step-up by a passkey is the passkey method's
//! (`methods::passkey`), whose ceremony helpers this uses.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use stepup_core::Method;
use stepup_proto::{TokenScope, UserPasskey, VerifyResponse};
use webauthn_rs::prelude::{PasskeyRegistration, RegisterPublicKeyCredential, Uuid};

use super::{Missing, ServiceError, known_user, notify, step_up};
use crate::auth::Session;
use crate::delivery::SecurityEvent;
use crate::guard;
use crate::methods::passkey::{
    CEREMONY_SECS, PasskeyRefusal, challenge_of, stored_passkeys, to_json, user_passkey,
};
use crate::random;
use crate::state::AppState;
use crate::store::{CeremonyKind, PasskeyRow, secs};

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

/// The user's passkeys.
///
/// # Errors
/// [`ServiceError::Storage`].
pub async fn list(state: &AppState, user_id: &str) -> Result<Vec<UserPasskey>, ServiceError> {
    Ok(state.store().passkeys(user_id).await?.iter().map(user_passkey).collect())
}

/// WebAuthn creation options (user verification required; the user's passkeys excluded), the state stored
/// under the challenge.
///
/// # Errors
/// [`ServiceError::MethodDisabled`], [`ServiceError::TooMany`] over the ceremony limit,
/// [`ServiceError::UnknownUser`], [`ServiceError::Storage`].
pub async fn registration_options(state: &AppState, session: &Session) -> Result<Value, ServiceError> {
    step_up::require_method(&session.env, Method::Passkey)?;
    step_up::count_ceremony(state, session).await?;
    let user = known_user(state, &session.env, &session.user_id).await?;
    let existing = stored_passkeys(&state.store().passkeys(&session.user_id).await?);
    let exclude = existing.iter().map(|p| p.cred_id().clone()).collect();
    let name = user.email.unwrap_or_else(|| user.id.clone());
    let (options, registration) = session
        .env
        .webauthn
        .start_passkey_registration(user_handle(&user.id), &name, &name, Some(exclude))
        .map_err(|_| ServiceError::Internal { what: "starting a passkey registration" })?;
    let challenge = URL_SAFE_NO_PAD.encode(&options.public_key.challenge);
    let expires_at = secs(state.now().plus_secs(CEREMONY_SECS));
    let kind = CeremonyKind::Registration;
    state
        .store()
        .insert_challenge(&challenge, &session.user_id, kind, &to_json(&registration)?, expires_at)
        .await?;
    let mut options = serde_json::to_value(&options.public_key)
        .map_err(|_| ServiceError::Internal { what: "serialising options" })?;
    // Dynamic's client reads `excludeCredentials` and `pubKeyCredParams` as arrays that must be there, and
    // `attestation` and `authenticatorSelection` as present; webauthn-rs leaves out what is empty or default.
    if let Some(object) = options.as_object_mut() {
        object.entry("excludeCredentials").or_insert_with(|| Value::Array(vec![]));
        object.entry("attestation").or_insert_with(|| Value::String("none".into()));
        object
            .entry("authenticatorSelection")
            .or_insert_with(|| serde_json::json!({"userVerification": "required"}));
    }
    Ok(options)
}

/// The attestation of a `POST /users/passkeys/register` body, as webauthn-rs reads it: Dynamic's client writes
/// `response.clientDataJson` (its serializer's spelling) where WebAuthn says `clientDataJSON`; both are read.
/// Dynamic's `createMfaToken` is not part of the attestation and is dropped.
fn attestation(
    mut body: serde_json::Map<String, Value>,
) -> Result<RegisterPublicKeyCredential, ServiceError> {
    body.remove("createMfaToken");
    if let Some(Value::Object(response)) = body.get_mut("response")
        && !response.contains_key("clientDataJSON")
        && let Some(client_data) = response.remove("clientDataJson")
    {
        response.insert("clientDataJSON".to_owned(), client_data);
    }
    serde_json::from_value(Value::Object(body))
        .map_err(|e| ServiceError::BadInput(format!("Invalid attestation: {e}")))
}

/// Registers the passkey of an attestation (the body of `POST /users/passkeys/register`, read after the guard
/// answered). Needs `credential:link` (for a user with MFA, earned by MFA, or a
/// recent MFA: `guard::check_factor_change`), and passkeys enabled. Answers a VerifyResponse (the user, and the
/// session re-signed: registering a passkey with user verification is an MFA verification), as Dynamic's client
/// expects.
///
/// # Errors
/// [`ServiceError::MethodDisabled`], [`ServiceError::ElevatedRequired`], [`ServiceError::BadInput`] for a body
/// that is no attestation or one without a challenge, [`PasskeyRefusal`], [`ServiceError::Storage`].
pub async fn register(
    state: &AppState,
    session: &Session,
    elevated: Option<&str>,
    body: serde_json::Map<String, Value>,
) -> Result<VerifyResponse, ServiceError> {
    step_up::require_method(&session.env, Method::Passkey)?;
    guard::check_factor_change(state, session, elevated, &TokenScope::CredentialLink).await?;
    let attestation = &attestation(body)?;
    let challenge = challenge_of(attestation.response.client_data_json.as_ref())?;
    let kind = CeremonyKind::Registration;
    let registration = state
        .store()
        .take_challenge(&challenge, &session.user_id, kind, secs(state.now()))
        .await?
        .ok_or(ServiceError::refused(PasskeyRefusal::ChallengeInvalid))?;
    let registration: PasskeyRegistration = serde_json::from_str(&registration)
        .map_err(|_| ServiceError::Internal { what: "reading a passkey ceremony" })?;
    let passkey = session
        .env
        .webauthn
        .finish_passkey_registration(attestation, &registration)
        .map_err(|error| ServiceError::refused(PasskeyRefusal::from(error)))?;
    let now = secs(state.now());
    let row = PasskeyRow {
        id: random::uuid().map_err(|_| ServiceError::randomness())?,
        user_id: session.user_id.clone(),
        credential_id: URL_SAFE_NO_PAD.encode(passkey.cred_id()),
        passkey: to_json(&passkey)?,
        origin: client_data_origin(attestation),
        created_at: now,
        updated_at: now,
    };
    state.store().insert_passkey(&row).await?;
    let response = step_up::respond(state, session, None, Method::Passkey).await?;
    notify::security_event(state, &session.env, &session.user_id, SecurityEvent::PasskeyAdded).await;
    Ok(response)
}

/// The origin the authenticator's client stated (webauthn-rs checked it against the allowed ones), kept with
/// the passkey.
fn client_data_origin(credential: &RegisterPublicKeyCredential) -> Option<String> {
    let client_data: Value = serde_json::from_slice(credential.response.client_data_json.as_ref()).ok()?;
    client_data.get("origin")?.as_str().map(str::to_owned)
}

/// Deletes a passkey. Needs `credential:unlink` (for a user with MFA, earned by MFA, or a recent MFA).
///
/// # Errors
/// [`ServiceError::ElevatedRequired`], [`ServiceError::NotFound`], [`ServiceError::Storage`].
pub async fn delete(
    state: &AppState,
    session: &Session,
    elevated: Option<&str>,
    passkey_id: &str,
) -> Result<(), ServiceError> {
    guard::check_factor_change(state, session, elevated, &TokenScope::CredentialUnlink).await?;
    if !state.store().delete_passkey(&session.user_id, passkey_id).await? {
        return Err(ServiceError::NotFound(Missing::Passkey));
    }
    notify::security_event(state, &session.env, &session.user_id, SecurityEvent::PasskeyRemoved).await;
    Ok(())
}
