//! `StepUpError`: every way a step-up can fail, as one typed enum.

use std::time::Duration;

use stepup_proto::{ErrorBody, ErrorCode};

use crate::cause::Cause;
use crate::method::{Method, Route};
use crate::otp::OtpChannel;
use crate::scope::ScopeSet;
use crate::token::TokenError;

/// Why a step-up call failed.
///
/// Server answers map one code to one variant ([`StepUpError::from_response`]); the rest are the engine's own
/// outcomes. `Clone + Eq` so the flow machine can keep the last error in its state and tests can assert it exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StepUpError {
    // --- Server answers (docs/design.md §8) ---
    /// 400: the server refused the request as malformed.
    #[error("the server refused the request as malformed: {message}")]
    BadRequest {
        /// The server's message.
        message: String,
    },
    /// 401: no session, or the session is invalid, expired or revoked.
    #[error("the session is missing, invalid, expired or revoked")]
    Unauthorized,
    /// 403 `elevated_access_token_required`: the call needs an elevated token (missing, expired, wrong scope, used).
    #[error("the call needs an elevated access token")]
    ElevatedAccessTokenRequired,
    /// 404: an id names nothing.
    #[error("not found: {message}")]
    NotFound {
        /// The server's message.
        message: String,
    },
    /// 422 `mfa_invalid_code`: the TOTP or recovery code is wrong.
    #[error("the code is not valid")]
    MfaInvalidCode,
    /// 422 `wrong_email_verification_token` / `wrong_sms_verification_token`: the one-time code is wrong.
    #[error("the one-time code is wrong")]
    WrongVerificationToken {
        /// Which code: email or SMS.
        channel: OtpChannel,
    },
    /// 422 `invalid_verification`: the verification cannot be used (expired, used up, bad signature...).
    #[error("the verification is not valid: {message}")]
    InvalidVerification {
        /// The server's message.
        message: String,
    },
    /// 422 `invalid_scopes`: a requested scope is not granted by the server (the server's answer only).
    #[error("the server does not grant the requested scopes")]
    InvalidScopes,
    /// A verification or prompt was asked for no scopes at all; refused before any call (not a server answer).
    #[error("no scopes were asked for")]
    NoScopes,
    /// 422 `mfa_device_not_found`: the MFA device id names no device of this user.
    #[error("no such MFA device")]
    MfaDeviceNotFound,
    /// 422 `lock_too_many_attempts`: too many failed MFA attempts in a row; locked for a while.
    #[error("too many failed attempts; locked{}", retry_hint(*.retry_after))]
    Locked {
        /// How long until the lock ends, if the server said.
        retry_after: Option<Duration>,
    },
    /// 429 `too_many_verification_attempts`: too many codes sent to this address.
    #[error("too many codes sent; try again later{}", retry_hint(*.retry_after))]
    TooManyVerificationAttempts {
        /// How long to wait, from `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// 429 `mfa_rate_limited`: too many MFA attempts.
    #[error("too many MFA attempts; try again later{}", retry_hint(*.retry_after))]
    MfaRateLimited {
        /// How long to wait, from `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// 422 `wallet_not_linked`: the signing wallet is not one of this user's wallets.
    #[error("this wallet is not linked to the user")]
    WalletNotLinked,
    /// 422 `invalid_nonce`: the wallet message's nonce was not issued by the server or has expired.
    #[error("the wallet message's nonce is unknown or expired")]
    InvalidNonce,
    /// 422 `nonce_already_used`: the wallet message's nonce was used before.
    #[error("the wallet message's nonce was already used")]
    NonceAlreadyUsed,
    /// 422 `invalid_signature`: the wallet signature is malformed, does not verify, or is by another address.
    #[error("the wallet signature is not valid: {message}")]
    InvalidSignature {
        /// The server's message.
        message: String,
    },
    /// 422 `invalid_message` or `invalid_message_<field>`: the server refused the wallet message; `code` names
    /// the field (domain, address, uri, version, chain id, request id, issued at).
    #[error("the wallet message was refused ({code}): {message}")]
    InvalidWalletMessage {
        /// The exact code.
        code: ErrorCode,
        /// The server's message.
        message: String,
    },
    /// 422 `passkey_challenge_invalid`: the passkey challenge is unknown, used or expired.
    #[error("the passkey challenge is unknown, used or expired")]
    PasskeyChallengeInvalid,
    /// 422 `passkey_origin_mismatch`: the assertion was made for another origin.
    #[error("the passkey was used at another origin")]
    PasskeyOriginMismatch,
    /// 422 `passkey_user_not_verified`: the authenticator did not verify the user.
    #[error("the authenticator did not verify the user")]
    PasskeyUserNotVerified,
    /// 422 `passkey_counter_regression`: the signature counter went backwards (a cloned credential?).
    #[error("the passkey's signature counter went backwards; it may be cloned")]
    PasskeyCounterRegression,
    /// 422 `passkey_invalid`: the passkey response is not valid.
    #[error("the passkey response is not valid: {message}")]
    PasskeyInvalid {
        /// The server's message.
        message: String,
    },
    /// 403 `insufficient_user_authentication`: the call needs a recent MFA verification of the session (an RFC 9470
    /// challenge with `max_age`); an MFA step-up re-issues the session with one.
    #[error("the call needs a recent MFA verification")]
    RecentMfaRequired,
    /// 422 `invalid_external_auth`: the app backend's JWT was refused; the message says why.
    #[error("the backend's external-auth token was refused: {message}")]
    InvalidExternalAuth {
        /// The server's message.
        message: String,
    },
    /// 503 `external_auth_unavailable`: the server could not fetch the app backend's keys.
    #[error("the server cannot check external-auth tokens right now: {message}")]
    ExternalAuthUnavailable {
        /// The server's message.
        message: String,
    },
    /// 503 `delivery_failed`: the server's mail relay or SMS gateway did not take the code; nothing was sent
    /// and the send did not count. Asking again later may work.
    #[error("the code could not be sent: {message}")]
    DeliveryFailed {
        /// The server's message.
        message: String,
    },
    /// 503 `delivery_unavailable`: the server cannot send codes on this channel at all.
    #[error("the server cannot send codes this way: {message}")]
    DeliveryUnavailable {
        /// The server's message.
        message: String,
    },
    /// 422 `mfa_device_already_exists`: the user has a verified TOTP device already (one per user).
    #[error("the user has an authenticator app already; remove it first")]
    MfaDeviceAlreadyExists,
    /// 422 `step_up_disabled`: step-up is switched off for the environment; no token is issued.
    #[error("step-up is switched off for this environment")]
    StepUpDisabled,
    /// 422 `method_disabled`: the environment does not enable this verification method for step-up.
    #[error("this verification method is not enabled: {message}")]
    MethodDisabled {
        /// The server's message.
        message: String,
    },
    /// 405 `method_not_allowed`: the path does not take this HTTP method (a client bug, or another server).
    #[error("the server does not take this HTTP method here: {message}")]
    MethodNotAllowed {
        /// The server's message.
        message: String,
    },
    /// 408 `request_timeout`: the request (body upload included) took longer than the server allows; the
    /// connection is closed. Sending it again may succeed.
    #[error("the server stopped waiting for the request")]
    RequestTimeout,
    /// 413 `payload_too_large`: the request body is larger than the server accepts.
    #[error("the request body is too large: {message}")]
    PayloadTooLarge {
        /// The server's message.
        message: String,
    },
    /// 429 with a code this version does not know.
    #[error("too many requests; try again later{}", retry_hint(*.retry_after))]
    TooManyRequests {
        /// How long to wait, from `Retry-After`.
        retry_after: Option<Duration>,
        /// The body's code.
        code: ErrorCode,
    },
    /// Any other error answer (an unknown code or an unexpected status).
    #[error("the server answered {status} `{code}`: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The body's code (or `unknown` if the body was not an error body).
        code: ErrorCode,
        /// The body's message.
        message: String,
    },

    // --- The engine's own outcomes ---
    /// The user or the app cancelled the flow, or `reset_state` ended it.
    #[error("step-up was cancelled")]
    Cancelled,
    /// Another flow is running and this call cannot join it.
    #[error("another step-up flow is running")]
    Busy,
    /// The user has no usable method for this route.
    #[error("no verification method is available{}", route.map(|r| format!(" for {r}")).unwrap_or_default())]
    NoMethodsAvailable {
        /// The route that had none, if one was asked for.
        route: Option<Route>,
    },
    /// The chosen method is not among the user's options or not allowed on this route.
    #[error("{method} is not available here")]
    MethodNotAvailable {
        /// The method asked for.
        method: Method,
    },
    /// Passkey MFA was asked for but the user has no registered passkey.
    #[error("the user has no registered passkey")]
    NoPasskeyCredentials,
    /// Wallet verification was asked for with an embedded wallet; only external wallets qualify.
    #[error("embedded wallets cannot be used for step-up")]
    EmbeddedWalletNotAllowed,
    /// A credential of a format no step-up method verifies.
    #[error("credentials of format `{format}` cannot be used for step-up")]
    UnsupportedCredential {
        /// The credential's format.
        format: stepup_proto::CredentialFormat,
    },
    /// The engine has stopped (its coordinator actor is gone); build a new one.
    #[error("the step-up engine has stopped")]
    EngineStopped,
    /// A one-time code was to be checked, but none was sent in this flow (call `send_otp` first).
    #[error("no one-time code was sent; send one first")]
    OtpNotSent,
    /// The method needs a collaborator the engine was built without (a wallet signer, a passkey authenticator,
    /// a front end).
    #[error("no {what} is configured")]
    NotConfigured {
        /// What is missing.
        what: &'static str,
    },
    /// The wallet or the passkey authenticator failed (not a refusal by the user, which is `Cancelled`).
    #[error("the {what} failed")]
    SignerFailed {
        /// `wallet` or `passkey authenticator`.
        what: &'static str,
        /// The signer's error (its `source()`), without secrets.
        #[source]
        cause: Cause,
    },
    /// The user has verified MFA methods, so re-authentication is refused (the server's 422 `mfa_required`, or
    /// known before asking it).
    #[error("the user has MFA methods; re-authentication is not allowed")]
    ReauthenticationNotAllowed,
    /// The verifier actor for this method crashed; only this flow failed and the engine goes on.
    #[error("the {method} verifier failed")]
    VerifierFailed {
        /// The method whose verifier failed.
        method: Method,
    },
    /// An RPC or a user prompt took longer than its timeout.
    #[error("timed out")]
    Timeout,
    /// The request never got an answer (connection refused, reset, DNS...).
    #[error("transport error: {what}")]
    Transport {
        /// `connection failed` or `request failed`.
        what: &'static str,
        /// The HTTP client's error, without the URL (its `source()` chain says why).
        #[source]
        cause: Cause,
    },
    /// The server's answer could not be read (not the expected JSON).
    #[error("unexpected answer from the server: {message}")]
    UnexpectedResponse {
        /// What was wrong with it.
        message: String,
    },
    /// The elevated token in an answer is unusable.
    #[error("the elevated token is unusable: {0}")]
    InvalidToken(#[from] TokenError),
    /// The answer carried no elevated token although scopes were requested.
    #[error("the answer carried no elevated access token")]
    MissingToken,
    /// A step-up for a call succeeded, but its token was gone before the call could be sent again (a single-use
    /// token taken by another request sent meanwhile, three times over, or a token expired at once).
    #[error("the step-up's token was gone before the call could be sent again")]
    TokenLost,
    /// The token does not grant every requested scope.
    #[error("the token grants {granted}, not every scope of {requested}")]
    ScopesNotGranted {
        /// What was asked for.
        requested: ScopeSet,
        /// What the token grants.
        granted: ScopeSet,
    },
}

fn retry_hint(retry_after: Option<Duration>) -> String {
    retry_after.map(|d| format!(" (retry after {} s)", d.as_secs())).unwrap_or_default()
}

impl StepUpError {
    /// Maps a server error answer to its variant: one code, one variant; an unknown code or status gives
    /// [`StepUpError::Server`]. `body` is `None` when the answer had no readable error body.
    #[must_use]
    pub fn from_response(status: u16, body: Option<ErrorBody>, retry_after: Option<Duration>) -> Self {
        let (code, message) = match body {
            Some(ErrorBody { code, error }) => (code, error),
            None => (ErrorCode::Unknown("unknown".to_owned()), String::new()),
        };
        match (status, &code) {
            (_, ErrorCode::ElevatedAccessTokenRequired) => StepUpError::ElevatedAccessTokenRequired,
            (_, ErrorCode::MfaInvalidCode) => StepUpError::MfaInvalidCode,
            (_, ErrorCode::WrongEmailVerificationToken) => {
                StepUpError::WrongVerificationToken { channel: OtpChannel::Email }
            }
            (_, ErrorCode::WrongSmsVerificationToken) => {
                StepUpError::WrongVerificationToken { channel: OtpChannel::Sms }
            }
            (_, ErrorCode::InvalidVerification) => StepUpError::InvalidVerification { message },
            (_, ErrorCode::InvalidScopes) => StepUpError::InvalidScopes,
            (_, ErrorCode::MfaDeviceNotFound) => StepUpError::MfaDeviceNotFound,
            (_, ErrorCode::LockTooManyAttempts) => StepUpError::Locked { retry_after },
            (_, ErrorCode::TooManyVerificationAttempts) => {
                StepUpError::TooManyVerificationAttempts { retry_after }
            }
            (_, ErrorCode::MfaRateLimited) => StepUpError::MfaRateLimited { retry_after },
            (_, ErrorCode::MfaRequired) => StepUpError::ReauthenticationNotAllowed,
            (_, ErrorCode::EmbeddedWalletNotAllowed) => StepUpError::EmbeddedWalletNotAllowed,
            (_, ErrorCode::WalletNotLinked) => StepUpError::WalletNotLinked,
            (_, ErrorCode::InvalidNonce) => StepUpError::InvalidNonce,
            (_, ErrorCode::NonceAlreadyUsed) => StepUpError::NonceAlreadyUsed,
            (_, ErrorCode::InvalidSignature) => StepUpError::InvalidSignature { message },
            (
                _,
                ErrorCode::InvalidMessage
                | ErrorCode::InvalidMessageDomain
                | ErrorCode::InvalidMessageAddress
                | ErrorCode::InvalidMessageUri
                | ErrorCode::InvalidMessageVersion
                | ErrorCode::InvalidMessageChainId
                | ErrorCode::InvalidMessageRequestId
                | ErrorCode::InvalidMessageIssuedAt,
            ) => StepUpError::InvalidWalletMessage { code, message },
            (_, ErrorCode::PasskeyChallengeInvalid) => StepUpError::PasskeyChallengeInvalid,
            (_, ErrorCode::PasskeyOriginMismatch) => StepUpError::PasskeyOriginMismatch,
            (_, ErrorCode::PasskeyUserNotVerified) => StepUpError::PasskeyUserNotVerified,
            (_, ErrorCode::PasskeyCounterRegression) => StepUpError::PasskeyCounterRegression,
            (_, ErrorCode::PasskeyInvalid) => StepUpError::PasskeyInvalid { message },
            (_, ErrorCode::InsufficientUserAuthentication) => StepUpError::RecentMfaRequired,
            (_, ErrorCode::InvalidExternalAuth) => StepUpError::InvalidExternalAuth { message },
            (_, ErrorCode::ExternalAuthUnavailable) => StepUpError::ExternalAuthUnavailable { message },
            (_, ErrorCode::DeliveryFailed) => StepUpError::DeliveryFailed { message },
            (_, ErrorCode::DeliveryUnavailable) => StepUpError::DeliveryUnavailable { message },
            (_, ErrorCode::StepUpDisabled) => StepUpError::StepUpDisabled,
            (_, ErrorCode::MfaDeviceAlreadyExists) => StepUpError::MfaDeviceAlreadyExists,
            (_, ErrorCode::MethodDisabled) => StepUpError::MethodDisabled { message },
            (_, ErrorCode::MethodNotAllowed) => StepUpError::MethodNotAllowed { message },
            (_, ErrorCode::RequestTimeout) => StepUpError::RequestTimeout,
            (_, ErrorCode::PayloadTooLarge) => StepUpError::PayloadTooLarge { message },
            (400, _) | (413, _) => StepUpError::BadRequest { message },
            (401, _) => StepUpError::Unauthorized,
            (429, _) => StepUpError::TooManyRequests { retry_after, code },
            (404, _) => StepUpError::NotFound { message },
            _ => StepUpError::Server { status, code, message },
        }
    }

    /// Whether the user may try again within the same prompt (a wrong code, a refused signature, a used
    /// challenge, a network hiccup). Everything else ends the prompt.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StepUpError::MfaInvalidCode
                | StepUpError::WrongVerificationToken { .. }
                | StepUpError::InvalidVerification { .. }
                | StepUpError::InvalidNonce
                | StepUpError::NonceAlreadyUsed
                | StepUpError::InvalidSignature { .. }
                | StepUpError::PasskeyChallengeInvalid
                | StepUpError::PasskeyUserNotVerified
                | StepUpError::Timeout
                | StepUpError::RequestTimeout
                | StepUpError::Transport { .. }
        )
    }

    /// The wire code, for errors that came from (or mirror) a server code.
    #[must_use]
    pub fn code(&self) -> Option<ErrorCode> {
        Some(match self {
            StepUpError::BadRequest { .. } => ErrorCode::BadRequest,
            StepUpError::Unauthorized => ErrorCode::Unauthorized,
            StepUpError::ElevatedAccessTokenRequired => ErrorCode::ElevatedAccessTokenRequired,
            StepUpError::NotFound { .. } => ErrorCode::NotFound,
            StepUpError::MfaInvalidCode => ErrorCode::MfaInvalidCode,
            StepUpError::WrongVerificationToken { channel: OtpChannel::Email } => {
                ErrorCode::WrongEmailVerificationToken
            }
            StepUpError::WrongVerificationToken { channel: OtpChannel::Sms } => {
                ErrorCode::WrongSmsVerificationToken
            }
            StepUpError::InvalidVerification { .. } => ErrorCode::InvalidVerification,
            StepUpError::InvalidScopes => ErrorCode::InvalidScopes,
            StepUpError::MfaDeviceNotFound => ErrorCode::MfaDeviceNotFound,
            StepUpError::Locked { .. } => ErrorCode::LockTooManyAttempts,
            StepUpError::TooManyVerificationAttempts { .. } => ErrorCode::TooManyVerificationAttempts,
            StepUpError::MfaRateLimited { .. } => ErrorCode::MfaRateLimited,
            StepUpError::ReauthenticationNotAllowed => ErrorCode::MfaRequired,
            StepUpError::EmbeddedWalletNotAllowed => ErrorCode::EmbeddedWalletNotAllowed,
            StepUpError::WalletNotLinked => ErrorCode::WalletNotLinked,
            StepUpError::InvalidNonce => ErrorCode::InvalidNonce,
            StepUpError::NonceAlreadyUsed => ErrorCode::NonceAlreadyUsed,
            StepUpError::InvalidSignature { .. } => ErrorCode::InvalidSignature,
            StepUpError::PasskeyChallengeInvalid => ErrorCode::PasskeyChallengeInvalid,
            StepUpError::PasskeyOriginMismatch => ErrorCode::PasskeyOriginMismatch,
            StepUpError::PasskeyUserNotVerified => ErrorCode::PasskeyUserNotVerified,
            StepUpError::PasskeyCounterRegression => ErrorCode::PasskeyCounterRegression,
            StepUpError::PasskeyInvalid { .. } => ErrorCode::PasskeyInvalid,
            StepUpError::RecentMfaRequired => ErrorCode::InsufficientUserAuthentication,
            StepUpError::InvalidExternalAuth { .. } => ErrorCode::InvalidExternalAuth,
            StepUpError::ExternalAuthUnavailable { .. } => ErrorCode::ExternalAuthUnavailable,
            StepUpError::DeliveryFailed { .. } => ErrorCode::DeliveryFailed,
            StepUpError::DeliveryUnavailable { .. } => ErrorCode::DeliveryUnavailable,
            StepUpError::StepUpDisabled => ErrorCode::StepUpDisabled,
            StepUpError::MfaDeviceAlreadyExists => ErrorCode::MfaDeviceAlreadyExists,
            StepUpError::MethodDisabled { .. } => ErrorCode::MethodDisabled,
            StepUpError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            StepUpError::RequestTimeout => ErrorCode::RequestTimeout,
            StepUpError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            StepUpError::InvalidWalletMessage { code, .. }
            | StepUpError::Server { code, .. }
            | StepUpError::TooManyRequests { code, .. } => code.clone(),
            _ => return None,
        })
    }
}

/// `Result` with [`StepUpError`].
pub type Result<T, E = StepUpError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: &str) -> Option<ErrorBody> {
        Some(ErrorBody::new(ErrorCode::parse(code), "msg"))
    }

    #[test]
    fn every_known_server_code_maps_to_its_own_variant_and_back() {
        let secs = Some(Duration::from_secs(60));
        let cases = [
            (400, "bad_request", StepUpError::BadRequest { message: "msg".into() }),
            (401, "unauthorized", StepUpError::Unauthorized),
            (403, "elevated_access_token_required", StepUpError::ElevatedAccessTokenRequired),
            (404, "not_found", StepUpError::NotFound { message: "msg".into() }),
            (422, "mfa_invalid_code", StepUpError::MfaInvalidCode),
            (
                422,
                "wrong_email_verification_token",
                StepUpError::WrongVerificationToken { channel: OtpChannel::Email },
            ),
            (
                422,
                "wrong_sms_verification_token",
                StepUpError::WrongVerificationToken { channel: OtpChannel::Sms },
            ),
            (422, "invalid_verification", StepUpError::InvalidVerification { message: "msg".into() }),
            (422, "invalid_scopes", StepUpError::InvalidScopes),
            (422, "mfa_device_not_found", StepUpError::MfaDeviceNotFound),
            (422, "lock_too_many_attempts", StepUpError::Locked { retry_after: secs }),
            (
                429,
                "too_many_verification_attempts",
                StepUpError::TooManyVerificationAttempts { retry_after: secs },
            ),
            (429, "mfa_rate_limited", StepUpError::MfaRateLimited { retry_after: secs }),
            (422, "mfa_required", StepUpError::ReauthenticationNotAllowed),
            (422, "embedded_wallet_not_allowed", StepUpError::EmbeddedWalletNotAllowed),
            (422, "wallet_not_linked", StepUpError::WalletNotLinked),
            (422, "invalid_nonce", StepUpError::InvalidNonce),
            (422, "nonce_already_used", StepUpError::NonceAlreadyUsed),
            (422, "invalid_signature", StepUpError::InvalidSignature { message: "msg".into() }),
            (422, "passkey_challenge_invalid", StepUpError::PasskeyChallengeInvalid),
            (422, "passkey_origin_mismatch", StepUpError::PasskeyOriginMismatch),
            (422, "passkey_user_not_verified", StepUpError::PasskeyUserNotVerified),
            (422, "passkey_counter_regression", StepUpError::PasskeyCounterRegression),
            (422, "passkey_invalid", StepUpError::PasskeyInvalid { message: "msg".into() }),
            (403, "insufficient_user_authentication", StepUpError::RecentMfaRequired),
            (422, "invalid_external_auth", StepUpError::InvalidExternalAuth { message: "msg".into() }),
            (
                503,
                "external_auth_unavailable",
                StepUpError::ExternalAuthUnavailable { message: "msg".into() },
            ),
            (422, "step_up_disabled", StepUpError::StepUpDisabled),
            (503, "delivery_failed", StepUpError::DeliveryFailed { message: "msg".into() }),
            (503, "delivery_unavailable", StepUpError::DeliveryUnavailable { message: "msg".into() }),
            (422, "mfa_device_already_exists", StepUpError::MfaDeviceAlreadyExists),
            (422, "method_disabled", StepUpError::MethodDisabled { message: "msg".into() }),
            (405, "method_not_allowed", StepUpError::MethodNotAllowed { message: "msg".into() }),
            (408, "request_timeout", StepUpError::RequestTimeout),
            (413, "payload_too_large", StepUpError::PayloadTooLarge { message: "msg".into() }),
            (
                503,
                "database_unavailable",
                StepUpError::Server {
                    status: 503,
                    code: ErrorCode::DatabaseUnavailable,
                    message: "msg".into(),
                },
            ),
            (
                503,
                "elevated_check_unavailable",
                StepUpError::Server {
                    status: 503,
                    code: ErrorCode::ElevatedCheckUnavailable,
                    message: "msg".into(),
                },
            ),
            (
                429,
                "rate_limited",
                StepUpError::TooManyRequests { retry_after: secs, code: ErrorCode::RateLimited },
            ),
            (
                429,
                "recovery_codes_rate_limited",
                StepUpError::TooManyRequests { retry_after: secs, code: ErrorCode::RecoveryCodesRateLimited },
            ),
        ];
        let wallet_message_codes =
            ErrorCode::KNOWN.iter().filter(|c| c.as_str().starts_with("invalid_message"));
        let mut wallet_message_count = 0;
        for code in wallet_message_codes {
            wallet_message_count += 1;
            let error = StepUpError::from_response(422, body(code.as_str()), None);
            assert_eq!(
                error,
                StepUpError::InvalidWalletMessage { code: code.clone(), message: "msg".into() }
            );
            assert_eq!(error.code().as_ref(), Some(code));
        }
        assert_eq!(wallet_message_count, 8);
        let cases: Vec<_> = cases.into_iter().collect();
        assert_eq!(cases.len() + wallet_message_count, ErrorCode::KNOWN.len());
        for (status, code, expected) in cases {
            let error = StepUpError::from_response(status, body(code), secs);
            assert_eq!(error, expected, "{code}");
            assert_eq!(error.code(), Some(ErrorCode::parse(code)));
        }
    }

    #[test]
    fn unknown_codes_and_bodiless_answers_keep_what_is_known() {
        assert_eq!(
            StepUpError::from_response(500, body("db_down"), None),
            StepUpError::Server { status: 500, code: ErrorCode::parse("db_down"), message: "msg".into() }
        );
        assert_eq!(StepUpError::from_response(401, None, None), StepUpError::Unauthorized);
        assert_eq!(
            StepUpError::from_response(413, None, None),
            StepUpError::BadRequest { message: String::new() }
        );
        assert!(matches!(
            StepUpError::from_response(502, None, None),
            StepUpError::Server { status: 502, .. }
        ));
    }

    #[test]
    fn wrong_codes_are_retryable_locks_are_not() {
        assert!(StepUpError::MfaInvalidCode.is_retryable());
        assert!(StepUpError::WrongVerificationToken { channel: OtpChannel::Sms }.is_retryable());
        assert!(!StepUpError::Locked { retry_after: None }.is_retryable());
        assert!(!StepUpError::Cancelled.is_retryable());
        assert!(!StepUpError::VerifierFailed { method: Method::Totp }.is_retryable());
    }

    #[test]
    fn messages_are_human() {
        assert_eq!(
            StepUpError::Locked { retry_after: Some(Duration::from_secs(900)) }.to_string(),
            "too many failed attempts; locked (retry after 900 s)"
        );
        assert_eq!(
            StepUpError::NoMethodsAvailable { route: Some(Route::Mfa) }.to_string(),
            "no verification method is available for MFA"
        );
    }
}
