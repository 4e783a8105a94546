//! One typed method per SDK API call the client makes (docs/design.md §8).

use reqwest::Method;
use serde::Serialize;
use stepup_core::{Scope, StepUpError};
use stepup_proto::{
    EmailVerificationCreateRequest, EmailVerificationCreateResponse, ExternalAuthResponse,
    ExternalAuthVerifyRequest, JwksResponse, Jwt, MfaBackupCodeAcknowledgement, MfaDevicesResponse,
    MfaMethodsResponse, NoncesResponse, OtpVerifyRequest, PasskeyAuthRequest, PasskeyAuthenticationOptions,
    PasskeyRegisterRequest, PasskeyRegistrationOptions, ProjectSettings, RecoveryAuthRequest,
    RecoveryCodesResponse, SdkUser, SmsVerificationCreateRequest, SmsVerificationCreateResponse,
    StepUpCheckRequest, StepUpCheckResponse, TotpAuthRequest, TotpRegistration, UpdateSelfResponse,
    UserFields, UserPasskeysResponse, VerifyResponse, WalletVerifyRequest,
};

use super::client::ApiClient;

/// The most nonces one call may ask for (the server's limit).
pub const MAX_NONCES: u8 = 5;

// Every method's errors are the same: the server's refusal as its `StepUpError` variant, `Timeout` or
// `Transport` when no answer came, `UnexpectedResponse` when the answer was not the expected JSON. The doc
// comments below say `# Errors` once per method for rustdoc's lint and name what is specific to the call.
//
// Calls whose answer is a VerifyResponse (or an UpdateSelfResponse) go through `post_verify`: the answer carries
// the session, re-signed when its claims changed, and the client adopts it (docs/design.md §8).
impl ApiClient {
    /// POST a verify call and adopt the session its answer carries.
    pub(crate) async fn post_verify<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
        elevated: Option<&Jwt>,
    ) -> Result<VerifyResponse, StepUpError> {
        let answer: VerifyResponse = self.post(path, body, elevated).await?;
        self.adopt_session(&answer);
        Ok(answer)
    }

    /// As [`ApiClient::post_verify`], for calls that answer an UpdateSelfResponse.
    async fn post_update_self<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<UpdateSelfResponse, StepUpError> {
        let response = self
            .request(method, path, None)
            .json(body)
            .send()
            .await
            .map_err(super::client::transport_error)?;
        let answer: UpdateSelfResponse = super::client::read_json(response).await?;
        self.adopt_session(&answer.verify);
        Ok(answer)
    }

    /// `POST /stepUp/check`: whether `scope` needs step-up, and the user's credentials.
    ///
    /// # Errors
    /// [`StepUpError::Unauthorized`] without a valid session; otherwise as every call.
    pub async fn step_up_check(&self, scope: &Scope) -> Result<StepUpCheckResponse, StepUpError> {
        self.post("/stepUp/check", &StepUpCheckRequest { scope: scope.clone() }, None).await
    }

    /// `POST /emailVerifications/create`: sends a one-time code to `email`.
    ///
    /// # Errors
    /// [`StepUpError::TooManyVerificationAttempts`] after too many sends to this address.
    pub async fn create_email_verification(
        &self,
        email: &str,
    ) -> Result<EmailVerificationCreateResponse, StepUpError> {
        let body = EmailVerificationCreateRequest { email: email.to_owned(), captcha_token: None };
        self.post("/emailVerifications/create", &body, None).await
    }

    /// `POST /smsVerifications/create`: sends a one-time code by SMS.
    ///
    /// # Errors
    /// [`StepUpError::TooManyVerificationAttempts`] after too many sends to this number.
    pub async fn create_sms_verification(
        &self,
        request: &SmsVerificationCreateRequest,
    ) -> Result<SmsVerificationCreateResponse, StepUpError> {
        self.post("/smsVerifications/create", request, None).await
    }

    /// `POST /emailVerifications/verify`: checks an email code and, with scopes, returns an elevated token.
    ///
    /// # Errors
    /// [`StepUpError::WrongVerificationToken`] for a wrong code, [`StepUpError::InvalidVerification`] for a code
    /// that is expired or used up.
    pub async fn verify_email(&self, request: &OtpVerifyRequest) -> Result<UpdateSelfResponse, StepUpError> {
        self.post_update_self(Method::POST, "/emailVerifications/verify", request).await
    }

    /// `POST /smsVerifications/verify`: as [`ApiClient::verify_email`], for SMS codes.
    ///
    /// # Errors
    /// As [`ApiClient::verify_email`].
    pub async fn verify_sms(&self, request: &OtpVerifyRequest) -> Result<UpdateSelfResponse, StepUpError> {
        self.post_update_self(Method::POST, "/smsVerifications/verify", request).await
    }

    /// `GET /nonces?count=`: nonces for wallet messages (1 to [`MAX_NONCES`]).
    ///
    /// # Errors
    /// [`StepUpError::BadRequest`] for a count the server refuses.
    pub async fn nonces(&self, count: u8) -> Result<NoncesResponse, StepUpError> {
        self.get(&format!("/nonces?count={count}"), None).await
    }

    /// `POST /wallets/verify`: checks a signed wallet message and, with scopes, returns an elevated token.
    ///
    /// # Errors
    /// [`StepUpError::InvalidSignature`], [`StepUpError::InvalidWalletMessage`], [`StepUpError::InvalidNonce`],
    /// [`StepUpError::NonceAlreadyUsed`], [`StepUpError::WalletNotLinked`],
    /// [`StepUpError::EmbeddedWalletNotAllowed`], [`StepUpError::ReauthenticationNotAllowed`].
    pub async fn verify_wallet(&self, request: &WalletVerifyRequest) -> Result<VerifyResponse, StepUpError> {
        self.post_verify("/wallets/verify", request, None).await
    }

    /// `GET /users/passkeys/authenticate`: a WebAuthn assertion challenge for the user's passkeys.
    ///
    /// # Errors
    /// [`StepUpError::NotFound`] when the user has no passkey.
    pub async fn passkey_authentication_options(&self) -> Result<PasskeyAuthenticationOptions, StepUpError> {
        self.get("/users/passkeys/authenticate", None).await
    }

    /// `POST /users/mfa/auth/passkey`: checks a WebAuthn assertion and returns an elevated token.
    ///
    /// # Errors
    /// The `Passkey*` variants of [`StepUpError`] for each way the server refuses an assertion,
    /// [`StepUpError::Locked`] after too many failures.
    pub async fn passkey_auth(&self, request: &PasskeyAuthRequest) -> Result<VerifyResponse, StepUpError> {
        self.post_verify("/users/mfa/auth/passkey", request, None).await
    }

    /// `POST /users/mfa/auth/totp`: checks a TOTP code and returns an elevated token.
    ///
    /// # Errors
    /// [`StepUpError::MfaInvalidCode`], [`StepUpError::MfaDeviceNotFound`], [`StepUpError::Locked`].
    pub async fn totp_auth(&self, request: &TotpAuthRequest) -> Result<VerifyResponse, StepUpError> {
        self.post_verify("/users/mfa/auth/totp", request, None).await
    }

    /// `POST /users/mfa/auth/recovery`: spends a recovery code and returns an elevated token.
    ///
    /// # Errors
    /// [`StepUpError::MfaInvalidCode`], [`StepUpError::Locked`]; [`StepUpError::MfaDeviceNotFound`] for a user with no
    /// MFA method (recovery codes back up a method, they are not one).
    pub async fn recovery_auth(&self, request: &RecoveryAuthRequest) -> Result<VerifyResponse, StepUpError> {
        self.post_verify("/users/mfa/auth/recovery", request, None).await
    }

    /// `GET /users/mfa/methods`: the user's MFA devices and passkeys.
    ///
    /// # Errors
    /// As every call.
    pub async fn mfa_methods(&self) -> Result<MfaMethodsResponse, StepUpError> {
        self.get("/users/mfa/methods", None).await
    }

    /// `GET /users/mfa/register/totp`: starts a TOTP device (needs a `credential:link` token). Finish it with a
    /// first [`ApiClient::totp_auth`] naming the device id.
    ///
    /// # Errors
    /// [`StepUpError::ElevatedAccessTokenRequired`] without a valid `credential:link` token.
    pub async fn register_totp(&self, link_token: Option<&Jwt>) -> Result<TotpRegistration, StepUpError> {
        self.get("/users/mfa/register/totp", link_token).await
    }

    /// `GET /users/passkeys/register`: WebAuthn registration options.
    ///
    /// # Errors
    /// As every call.
    pub async fn passkey_registration_options(&self) -> Result<PasskeyRegistrationOptions, StepUpError> {
        self.get("/users/passkeys/register", None).await
    }

    /// `POST /users/passkeys/register`: saves a new passkey (needs a `credential:link` token). The answer is a
    /// VerifyResponse: registering a passkey is an MFA verification, and the re-signed session is adopted.
    ///
    /// # Errors
    /// [`StepUpError::ElevatedAccessTokenRequired`] without a valid `credential:link` token; the `Passkey*`
    /// variants for a refused attestation.
    pub async fn register_passkey(
        &self,
        request: &PasskeyRegisterRequest,
        link_token: Option<&Jwt>,
    ) -> Result<VerifyResponse, StepUpError> {
        self.post_verify("/users/passkeys/register", request, link_token).await
    }

    /// `GET /users/passkeys`: the user's passkeys.
    ///
    /// # Errors
    /// As every call.
    pub async fn passkeys(&self) -> Result<UserPasskeysResponse, StepUpError> {
        self.get("/users/passkeys", None).await
    }

    /// `GET /users/mfa/recovery`: the user's recovery codes, created if there are none. The session must have
    /// passed an MFA verification recently (an MFA verify answer re-signs it, and the client adopts that). The
    /// server shows codes once: later calls answer with the count and no codes.
    ///
    /// # Errors
    /// [`StepUpError::RecentMfaRequired`] when the session's last MFA is too old (the server's RFC 9470
    /// challenge with `max_age`; `StepUpMiddleware` answers it by itself for calls made through it);
    /// [`StepUpError::MethodDisabled`] when the environment has recovery codes off.
    pub async fn recovery_codes(&self) -> Result<RecoveryCodesResponse, StepUpError> {
        self.get("/users/mfa/recovery", None).await
    }

    /// `POST /users/mfa/recovery`: replaces every recovery code with 10 new ones (a recent MFA, as
    /// [`ApiClient::recovery_codes`]).
    ///
    /// # Errors
    /// As [`ApiClient::recovery_codes`].
    pub async fn regenerate_recovery_codes(&self) -> Result<RecoveryCodesResponse, StepUpError> {
        self.post("/users/mfa/recovery", &serde_json::Value::Null, None).await
    }

    /// `PUT /users` `{mfaBackupCodeAcknowledgement: "complete"}`: the user has saved the recovery codes
    /// (`SdkUser.mfaBackupCodeAcknowledgement` was `pending` since they were shown).
    ///
    /// # Errors
    /// As every call.
    pub async fn acknowledge_recovery_codes(&self) -> Result<UpdateSelfResponse, StepUpError> {
        let fields =
            UserFields { mfa_backup_code_acknowledgement: Some(MfaBackupCodeAcknowledgement::Complete) };
        self.post_update_self(Method::PUT, "/users", &fields).await
    }

    /// `GET /users/mfa`: the user's MFA devices.
    ///
    /// # Errors
    /// As every call.
    pub async fn mfa_devices(&self) -> Result<MfaDevicesResponse, StepUpError> {
        self.get("/users/mfa", None).await
    }

    /// `PUT /users/mfa/{id}`: makes a verified device the default one (a TOTP code without a device id is for it).
    ///
    /// # Errors
    /// [`StepUpError::NotFound`] for an id that names no verified device of the user (without a call for an id
    /// that is not a plain path segment).
    pub async fn set_default_mfa_device(&self, device_id: &str) -> Result<(), StepUpError> {
        let body = stepup_proto::MfaUpdateDeviceRequest { default: true };
        self.send_json_empty(Method::PUT, &device_path(device_id)?, &body, None).await
    }

    /// `POST /externalAuth/verify`: elevation by a JWT the app's backend signed for this user; the answer's
    /// elevated token carries the scopes the JWT names.
    ///
    /// # Errors
    /// [`StepUpError::InvalidExternalAuth`] for a JWT the server refuses (the message says why);
    /// [`StepUpError::ReauthenticationNotAllowed`] for a user with MFA where the environment does not allow it;
    /// [`StepUpError::ExternalAuthUnavailable`] when the server cannot fetch the backend's keys.
    pub async fn external_auth(&self, backend_jwt: &Jwt) -> Result<ExternalAuthResponse, StepUpError> {
        let body = ExternalAuthVerifyRequest { jwt: backend_jwt.clone(), session_public_key: None };
        let answer: ExternalAuthResponse = self.post("/externalAuth/verify", &body, None).await?;
        self.adopt(answer.minified_jwt.as_ref().or(answer.jwt.as_ref()));
        Ok(answer)
    }

    /// `DELETE /users/mfa/{id}`: removes an MFA device (needs a `credential:unlink` token).
    ///
    /// # Errors
    /// [`StepUpError::ElevatedAccessTokenRequired`] without a valid token; [`StepUpError::NotFound`] for an
    /// unknown id (without a call for an id that is not a plain path segment).
    pub async fn delete_mfa_device(
        &self,
        device_id: &str,
        unlink_token: Option<&Jwt>,
    ) -> Result<(), StepUpError> {
        self.send_empty(Method::DELETE, &device_path(device_id)?, unlink_token).await
    }

    /// `DELETE /users/passkeys` `{passkeyId}`: removes a passkey of the user (needs a `credential:unlink` token).
    /// `MfaManager::delete_passkey` does the same with step-up on demand.
    ///
    /// # Errors
    /// [`StepUpError::ElevatedAccessTokenRequired`] without a valid token; [`StepUpError::NotFound`] for an
    /// unknown passkey.
    pub async fn delete_passkey(
        &self,
        passkey_id: &str,
        unlink_token: Option<&Jwt>,
    ) -> Result<(), StepUpError> {
        let body = serde_json::json!({ "passkeyId": passkey_id });
        self.send_json_empty(Method::DELETE, "/users/passkeys", &body, unlink_token).await
    }

    /// `GET /users`: the signed-in user.
    ///
    /// # Errors
    /// [`StepUpError::Unauthorized`] without a valid session.
    pub async fn user(&self) -> Result<SdkUser, StepUpError> {
        self.get("/users", None).await
    }

    /// `GET /settings`: the project settings.
    ///
    /// # Errors
    /// As every call.
    pub async fn settings(&self) -> Result<ProjectSettings, StepUpError> {
        self.get("/settings", None).await
    }

    /// `GET /.well-known/jwks`: the environment's public signing keys.
    ///
    /// # Errors
    /// As every call.
    pub async fn jwks(&self) -> Result<JwksResponse, StepUpError> {
        self.get("/.well-known/jwks", None).await
    }

    /// `POST /revoke`: ends the session; its JWT is refused afterwards.
    ///
    /// # Errors
    /// [`StepUpError::Unauthorized`] when the session is already invalid.
    pub async fn revoke(&self) -> Result<(), StepUpError> {
        self.send_empty(Method::POST, "/revoke", None).await
    }
}

/// `/users/mfa/{id}` for an id that is a plain path segment.
///
/// # Errors
/// [`StepUpError::NotFound`], as the server answers an unknown id, for an id that cannot be a device's (it is
/// never sent).
pub(crate) fn device_path(device_id: &str) -> Result<String, StepUpError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_');
    if device_id.is_empty() || !device_id.chars().all(plain) {
        return Err(StepUpError::NotFound { message: "No such MFA device".into() });
    }
    Ok(format!("/users/mfa/{device_id}"))
}
