//! MFA management: the user's factors — authenticator apps (TOTP devices), passkeys, recovery codes — listed,
//! added, made default and removed, mirroring Dynamic's MFA module (`getUserDevices`, `addDevice`,
//! `verifyDevice`, `deleteUserDevice`, `getRecoveryCodes`, `acknowledgeRecoveryCodes`, `registerPasskey`,
//! `deletePasskey`, `getMfaMethods`...).
//!
//! **Step-up on demand.** A call that changes a factor needs an elevated token (`credential:link` to add,
//! `credential:unlink` to remove) or a recent MFA (the recovery codes). No call here asks the app for one: each
//! goes through the engine's own [`StepUpMiddleware`](crate::StepUpMiddleware), tagged with its scope, so the
//! server's challenge makes the engine prompt through its front end — an ordinary step-up flow, which waits its
//! turn behind a running one — and the call is sent once more with the token. A cancelled prompt answers
//! [`StepUpError::Cancelled`] and changes nothing. Management is not a flow of its own: the flow machine only sees
//! the step-ups.
//!
//! **The flow follows the account.** After a factor is added or removed, the engine's view of the user's methods
//! is refreshed: a flow that knew the user's options asks the server again, so a user who now has MFA is routed
//! to it (re-authentication is refused, [`StepUpError::ReauthenticationNotAllowed`]), and a user whose last MFA
//! method is gone is offered re-authentication again.
//!
//! [`MfaManager`]'s guided calls (`enrol_totp`, `show_recovery_codes`, `show_new_recovery_codes`,
//! `remove_*_confirmed`) walk the person through a change with the front end, within the prompt timeout and one
//! request at a time with the flows' prompts; the others are for apps that draw their own screens
//! (`examples/custom_ui.rs`).

mod guided;

pub use guided::ShownRecoveryCodes;

use reqwest::Method as Http;
use serde::Serialize;
use serde::de::DeserializeOwned;
use stepup_core::{CredentialId, RecoveryCode, Scope, SecretString, StepUpError, TotpCode, UnixTime};
use stepup_proto::{
    MfaBackupCodeAcknowledgement, MfaDevice, MfaDevicesResponse, MfaMethodsResponse, RecoveryCodesResponse,
    TotpAuthRequest, TotpRegistration, UserPasskey, UserPasskeysResponse, VerifyResponse,
};

use crate::api::client::{error_from, read_json, transport_error};
use crate::api::endpoints::device_path;
use crate::facade::StepUpAuth;
use crate::middleware::{ElevatedRequestExt as _, MiddlewareError};

/// How a management call meets the server's guard: with the token for a scope, or with a recent authentication.
#[derive(Debug, Clone)]
enum Guarded {
    /// An elevated token for the scope (sent when held; stepped up for on a challenge).
    Token(Scope),
    /// A recent MFA of the session (RFC 9470 `max_age`): no token is sent; a challenge is answered with a fresh MFA
    /// verification, which also yields a token for the scope.
    RecentMfa(Scope),
}

/// An authenticator app (TOTP device) of the user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MfaDeviceInfo {
    /// The device's id.
    pub id: CredentialId,
    /// Whether its enrolment was finished (a first code was accepted). An unfinished one is no factor yet.
    pub verified: bool,
    /// Whether it is the user's default device (the one a code without a device id is for, and the one a prompt
    /// offers first).
    pub default: bool,
    /// When it was added.
    pub created_at: Option<UnixTime>,
    /// When its enrolment was finished.
    pub verified_at: Option<UnixTime>,
}

/// A passkey of the user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PasskeyInfo {
    /// The passkey's id (the server's record, not the WebAuthn credential id).
    pub id: CredentialId,
    /// When it was registered.
    pub created_at: Option<UnixTime>,
    /// The origin it was registered at.
    pub origin: Option<String>,
}

/// The user's MFA methods.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MfaMethods {
    /// Authenticator apps, verified or not.
    pub devices: Vec<MfaDeviceInfo>,
    /// Passkeys.
    pub passkeys: Vec<PasskeyInfo>,
    /// Whether the user has a verified MFA method (then step-up is by MFA only).
    pub has_verified_methods: bool,
}

/// An authenticator app being added: show `uri` (a QR code) and finish with [`MfaManager::verify_totp_device`]
/// and the first code the app shows. `Debug` shows neither the secret nor the URI.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TotpEnrolment {
    /// The new device's id.
    pub device_id: CredentialId,
    /// The shared secret, base32 (for typing into an app by hand).
    pub secret: SecretString,
    /// The `otpauth://` URI (what the QR code carries; it contains the secret).
    pub uri: SecretString,
}

/// The user's recovery codes, as the server shows them: the codes themselves only right after they were made
/// (the first read, or a regeneration); later, how many are left.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryCodes {
    /// How many codes are left unused.
    pub unused: usize,
    /// The codes, when they were just made (each works once); empty otherwise.
    pub codes: Vec<RecoveryCode>,
}

/// The MFA module: see the [module docs](self). Get one from [`StepUpAuth::mfa`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct MfaManager {
    engine: StepUpAuth,
}

impl StepUpAuth {
    /// MFA management for the engine's user: list, add, make default and remove factors, each change behind
    /// step-up on demand.
    #[must_use]
    pub fn mfa(&self) -> MfaManager {
        MfaManager { engine: self.clone() }
    }
}

fn time(rfc3339: Option<&str>) -> Option<UnixTime> {
    rfc3339.and_then(|text| UnixTime::parse_rfc3339(text).ok())
}

fn device(device: MfaDevice) -> Option<MfaDeviceInfo> {
    Some(MfaDeviceInfo {
        id: CredentialId::new(device.id?),
        verified: device.verified.unwrap_or(false),
        default: device.default.unwrap_or(false),
        created_at: time(device.created_at.as_deref()),
        verified_at: time(device.verified_at.as_deref()),
    })
}

fn passkey(passkey: UserPasskey) -> PasskeyInfo {
    PasskeyInfo {
        id: CredentialId::new(passkey.id),
        created_at: time(Some(&passkey.created_at)),
        origin: passkey.origin,
    }
}

fn recovery_codes(answer: RecoveryCodesResponse) -> RecoveryCodes {
    let codes = answer.recovery_codes;
    RecoveryCodes { unused: if codes.is_empty() { answer.count } else { codes.len() }, codes }
}

/// Why a call through the middleware failed, as the engine's error: the step-up's own error (`Cancelled`...), or
/// the transport's.
fn through_middleware(error: reqwest_middleware::Error) -> StepUpError {
    if let Some(refused) = MiddlewareError::from_error(&error) {
        return match refused {
            MiddlewareError::StepUp { source, .. } => source.clone(),
            MiddlewareError::TokenLost { .. } => StepUpError::TokenLost,
            // Management bodies are bytes, which are always sent again; should one not be, say so.
            other => StepUpError::UnexpectedResponse { message: other.to_string() },
        };
    }
    match error {
        reqwest_middleware::Error::Reqwest(error) => transport_error(error),
        reqwest_middleware::Error::Middleware(error) => {
            StepUpError::UnexpectedResponse { message: format!("a middleware failed: {error}") }
        }
    }
}

impl MfaManager {
    /// The user's authenticator apps and passkeys, and whether any is a verified MFA method
    /// (`GET /users/mfa/methods`).
    ///
    /// # Errors
    /// [`StepUpError::Unauthorized`] without a valid session; [`StepUpError::Timeout`] or
    /// [`StepUpError::Transport`] when the server does not answer.
    pub async fn methods(&self) -> Result<MfaMethods, StepUpError> {
        let answer: MfaMethodsResponse = self.engine.api().mfa_methods().await?;
        Ok(MfaMethods {
            devices: answer.devices.into_iter().filter_map(device).collect(),
            passkeys: answer.passkeys.into_iter().map(passkey).collect(),
            has_verified_methods: answer.user_has_verified_mfa_methods,
        })
    }

    /// The user's authenticator apps, oldest first (Dynamic's `getUserDevices`).
    ///
    /// # Errors
    /// As [`MfaManager::methods`].
    pub async fn devices(&self) -> Result<Vec<MfaDeviceInfo>, StepUpError> {
        let answer: MfaDevicesResponse = self.engine.api().mfa_devices().await?;
        Ok(answer.devices.into_iter().filter_map(device).collect())
    }

    /// The user's passkeys, oldest first (Dynamic's `getPasskeys`).
    ///
    /// # Errors
    /// As [`MfaManager::methods`].
    pub async fn passkeys(&self) -> Result<Vec<PasskeyInfo>, StepUpError> {
        let answer: UserPasskeysResponse = self.engine.api().passkeys().await?;
        Ok(answer.passkeys.into_iter().map(passkey).collect())
    }

    /// Starts adding an authenticator app (Dynamic's `addDevice("totp")`): a new, unverified device with its
    /// secret and `otpauth://` URI. Needs `credential:link` — stepped up on demand. Finish it with
    /// [`MfaManager::verify_totp_device`].
    ///
    /// # Errors
    /// [`StepUpError::MfaDeviceAlreadyExists`] when the user has an authenticator app already (one per user);
    /// [`StepUpError::MethodDisabled`] when the environment has TOTP off; [`StepUpError::Cancelled`] when the
    /// person cancels the step-up; [`StepUpError::NotConfigured`] when a step-up is needed and the engine has no
    /// front end; as [`MfaManager::methods`].
    pub async fn add_totp_device(&self) -> Result<TotpEnrolment, StepUpError> {
        let guard = Guarded::Token(Scope::CredentialLink);
        let registration: TotpRegistration =
            self.managed(Http::GET, "/users/mfa/register/totp", guard, None::<&()>).await?;
        Ok(TotpEnrolment {
            device_id: CredentialId::new(registration.id),
            secret: registration.secret,
            uri: registration.uri,
        })
    }

    /// Finishes adding an authenticator app with the first code it shows (Dynamic's `verifyDevice`). The device
    /// is then an MFA method, the session is re-signed with a fresh MFA time (adopted), and the flow follows the
    /// account (module docs).
    ///
    /// # Errors
    /// [`StepUpError::MfaInvalidCode`] for a wrong code (try the next one the app shows);
    /// [`StepUpError::MfaDeviceNotFound`] for an unknown device; [`StepUpError::MfaDeviceAlreadyExists`] when
    /// another app was verified first; [`StepUpError::Locked`] after 5 failed MFA tries in a row; as
    /// [`MfaManager::methods`].
    pub async fn verify_totp_device(
        &self,
        device: &CredentialId,
        code: impl Into<TotpCode>,
    ) -> Result<(), StepUpError> {
        let request = TotpAuthRequest {
            code: code.into(),
            id: Some(device.as_str().to_owned()),
            requested_scopes: None,
            create_mfa_token: None,
        };
        self.engine.api().totp_auth(&request).await?;
        self.account_changed().await;
        Ok(())
    }

    /// Makes a verified authenticator app the user's default device: codes without a device id are for it, and
    /// a prompt offers it first.
    ///
    /// # Errors
    /// [`StepUpError::NotFound`] for an id that names no verified device of the user (without a call for an id
    /// that cannot be one); as [`MfaManager::methods`].
    pub async fn set_default_device(&self, device: &CredentialId) -> Result<(), StepUpError> {
        self.engine.api().set_default_mfa_device(device.as_str()).await
    }

    /// Removes an authenticator app (Dynamic's `deleteUserDevice`). Needs `credential:unlink`, which for a user
    /// with MFA only an MFA proof (or a recent MFA) gives — stepped up on demand. Removing the user's last MFA
    /// method is allowed: the user is back to re-authentication (email, SMS, wallet).
    ///
    /// # Errors
    /// [`StepUpError::NotFound`] for an unknown device (without a call for an id that cannot be one);
    /// [`StepUpError::Cancelled`] when the person cancels the step-up (the device stays);
    /// as [`MfaManager::add_totp_device`].
    pub async fn delete_device(&self, device: &CredentialId) -> Result<(), StepUpError> {
        let path = device_path(device.as_str())?;
        self.managed_empty(Http::DELETE, &path, Guarded::Token(Scope::CredentialUnlink), None::<&()>).await?;
        self.account_changed().await;
        Ok(())
    }

    /// Registers a new passkey with the engine's [`PasskeyAuthenticator`](crate::PasskeyAuthenticator)
    /// (Dynamic's `registerPasskey`). Needs `credential:link` — stepped up on demand. Registering a passkey with
    /// user verification is an MFA verification: the session is re-signed (adopted).
    ///
    /// # Errors
    /// [`StepUpError::NotConfigured`] without a passkey authenticator (or, when a step-up is needed, without a
    /// front end); [`StepUpError::Cancelled`] when the person cancels the step-up (asked first, before the
    /// authenticator makes anything) or declines at the authenticator; [`StepUpError::SignerFailed`] when the authenticator
    /// fails; the `Passkey*` variants when the server refuses the attestation; [`StepUpError::MethodDisabled`]
    /// when the environment has passkeys off; as [`MfaManager::methods`].
    pub async fn register_passkey(&self) -> Result<(), StepUpError> {
        let authenticator = self
            .engine
            .passkey_authenticator()
            .ok_or(StepUpError::NotConfigured { what: "passkey authenticator" })?;
        // Stepped up before the authenticator is asked: a challenge on the upload would have the person make a
        // passkey, then verify, then see the same attestation sent again.
        if self.engine.check(Scope::CredentialLink).await?.required {
            self.engine.prompt_in_turn(&[Scope::CredentialLink], None, false).await?;
        }
        let options = self.engine.api().passkey_registration_options().await?;
        let attestation =
            authenticator.register(&options).await.map_err(crate::verifiers::passkey::passkey_error)?;
        let answer: VerifyResponse = self
            .managed(
                Http::POST,
                "/users/passkeys/register",
                Guarded::Token(Scope::CredentialLink),
                Some(&attestation),
            )
            .await?;
        self.engine.api().adopt_session(&answer);
        self.account_changed().await;
        Ok(())
    }

    /// Removes a passkey (Dynamic's `deletePasskey`). Needs `credential:unlink`, as
    /// [`MfaManager::delete_device`].
    ///
    /// # Errors
    /// [`StepUpError::NotFound`] for an unknown passkey; as [`MfaManager::delete_device`].
    pub async fn delete_passkey(&self, passkey: &CredentialId) -> Result<(), StepUpError> {
        let body = serde_json::json!({ "passkeyId": passkey.as_str() });
        self.managed_empty(
            Http::DELETE,
            "/users/passkeys",
            Guarded::Token(Scope::CredentialUnlink),
            Some(&body),
        )
        .await?;
        self.account_changed().await;
        Ok(())
    }

    /// The user's recovery codes (Dynamic's `getRecoveryCodes(false)`): made on the first read, and shown then
    /// only; later reads say how many are left. Needs a recent MFA of the session — when it is too old the
    /// server's challenge (RFC 9470 `max_age`) makes the engine run an MFA prompt first.
    ///
    /// # Errors
    /// [`StepUpError::MethodDisabled`] when the environment has recovery codes off; [`StepUpError::Cancelled`]
    /// when the person cancels the MFA prompt; [`StepUpError::TooManyRequests`] when codes were made too often;
    /// as [`MfaManager::methods`].
    pub async fn recovery_codes(&self) -> Result<RecoveryCodes, StepUpError> {
        let guard = Guarded::RecentMfa(Scope::CredentialUpdate);
        let answer = self.managed(Http::GET, "/users/mfa/recovery", guard, None::<&()>).await?;
        Ok(recovery_codes(answer))
    }

    /// Replaces every recovery code with ten new ones, shown this once (Dynamic's `getRecoveryCodes(true)`). The
    /// user is emailed; until [`MfaManager::acknowledge_recovery_codes`], acknowledgement is pending.
    ///
    /// # Errors
    /// As [`MfaManager::recovery_codes`].
    pub async fn regenerate_recovery_codes(&self) -> Result<RecoveryCodes, StepUpError> {
        let body = serde_json::Value::Null;
        let guard = Guarded::RecentMfa(Scope::CredentialUpdate);
        let answer = self.managed(Http::POST, "/users/mfa/recovery", guard, Some(&body)).await?;
        Ok(recovery_codes(answer))
    }

    /// The user has saved the recovery codes shown last (Dynamic's `acknowledgeRecoveryCodes`).
    ///
    /// # Errors
    /// As [`MfaManager::methods`].
    pub async fn acknowledge_recovery_codes(&self) -> Result<(), StepUpError> {
        self.engine.api().acknowledge_recovery_codes().await.map(|_| ())
    }

    /// Whether recovery codes were shown and not acknowledged yet (Dynamic's
    /// `isPendingRecoveryCodesAcknowledgment`).
    ///
    /// # Errors
    /// As [`MfaManager::methods`].
    pub async fn recovery_codes_acknowledgement_pending(&self) -> Result<bool, StepUpError> {
        let user = self.engine.api().user().await?;
        Ok(user.mfa_backup_code_acknowledgement == Some(MfaBackupCodeAcknowledgement::Pending))
    }

    /// The engine.
    pub(crate) fn engine(&self) -> &StepUpAuth {
        &self.engine
    }

    /// A call that may need step-up: through the engine's middleware, tagged as `guard` says; its JSON answer.
    async fn managed<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Http,
        path: &str,
        guard: Guarded,
        body: Option<&B>,
    ) -> Result<T, StepUpError> {
        read_json(self.send(method, path, guard, body).await?).await
    }

    /// As [`MfaManager::managed`], for a call that answers no body (204).
    async fn managed_empty<B: Serialize + ?Sized>(
        &self,
        method: Http,
        path: &str,
        guard: Guarded,
        body: Option<&B>,
    ) -> Result<(), StepUpError> {
        let response = self.send(method, path, guard, body).await?;
        if response.status().is_success() { Ok(()) } else { Err(error_from(response).await) }
    }

    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Http,
        path: &str,
        guard: Guarded,
        body: Option<&B>,
    ) -> Result<reqwest::Response, StepUpError> {
        let client = self.engine.http_client();
        let request = self.engine.api().request_via(&client, method, path);
        let mut request = match guard {
            Guarded::Token(scope) => request.elevated(scope),
            // A token the app holds for the scope is not sent (nor, if single-use, spent) for a call it cannot open.
            Guarded::RecentMfa(scope) => request.step_up_on_challenge(scope),
        };
        if let Some(body) = body {
            // As bytes, so the middleware can send it again after a step-up.
            let json = serde_json::to_vec(body).map_err(|error| StepUpError::UnexpectedResponse {
                message: format!("a request body: {error}"),
            })?;
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(json);
        }
        request.send().await.map_err(through_middleware)
    }

    /// A factor was added or removed: a flow that knew the user's options asks the server again, so the next
    /// step routes by the account as it is now (a prompt asks anyway when it opens).
    async fn account_changed(&self) {
        let state = self.engine.state();
        if !matches!(state, stepup_core::FlowState::Required { .. }) {
            return;
        }
        if let Some(scope) = state.scopes().iter().next().cloned() {
            // The change is made; a failed refresh only leaves the flow's old view, which the server corrects.
            if let Err(error) = self.engine.check(scope).await {
                tracing::debug!(%error, "refreshing the flow's view of the account failed");
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use stepup_core::ScopeSet;

    use super::*;

    #[test]
    fn the_middlewares_refusals_read_as_the_engines_errors() {
        let scopes = ScopeSet::one(Scope::CredentialUnlink);
        let cancelled = MiddlewareError::StepUp { scopes: scopes.clone(), source: StepUpError::Cancelled };
        assert_eq!(through_middleware(cancelled.into()), StepUpError::Cancelled);
        let lost = MiddlewareError::TokenLost { scopes: scopes.clone() };
        assert_eq!(through_middleware(lost.into()), StepUpError::TokenLost);
        let streamed = through_middleware(MiddlewareError::BodyNotReplayable { scopes }.into());
        assert!(matches!(streamed, StepUpError::UnexpectedResponse { .. }), "{streamed:?}");
    }
}
