//! The error body every failed call answers with: `{"error": "<human message>", "code": "<snake_case code>"}`.

use serde::{Deserialize, Serialize};

use crate::open_enum::open_enum;

open_enum! {
    /// The machine-readable `code` of an error body. Codes this version does not know are kept in `Unknown`.
    pub enum ErrorCode, expecting "an error code string" {
        /// 400: the request was malformed (bad JSON, wrong types, oversized body, invalid field).
        BadRequest => "bad_request",
        /// 401: no session, or the session JWT is invalid, expired or revoked.
        Unauthorized => "unauthorized",
        /// 403: the call needs an elevated access token (missing, expired, wrong scope or already used).
        ElevatedAccessTokenRequired => "elevated_access_token_required",
        /// 404: an id in the path or body names nothing.
        NotFound => "not_found",
        /// 422: the MFA code (TOTP or recovery) is wrong.
        MfaInvalidCode => "mfa_invalid_code",
        /// 422: the email one-time code is wrong.
        WrongEmailVerificationToken => "wrong_email_verification_token",
        /// 422: the SMS one-time code is wrong.
        WrongSmsVerificationToken => "wrong_sms_verification_token",
        /// 422: the verification cannot be used (expired, used, too many wrong codes, bad signature...).
        InvalidVerification => "invalid_verification",
        /// 422: a requested scope is not one the server grants.
        InvalidScopes => "invalid_scopes",
        /// 422: the MFA device id names no device of this user.
        MfaDeviceNotFound => "mfa_device_not_found",
        /// 422: too many failed MFA attempts in a row; the user is locked for a while.
        LockTooManyAttempts => "lock_too_many_attempts",
        /// 429: too many one-time codes sent to this address; see `Retry-After`.
        TooManyVerificationAttempts => "too_many_verification_attempts",
        /// 429: too many MFA attempts; see `Retry-After`.
        MfaRateLimited => "mfa_rate_limited",
        /// 422: the app backend's JWT for external-auth elevation was refused (signature, key, audience, expiry,
        /// lifetime, subject, replayed `jti`...; the message says which).
        InvalidExternalAuth => "invalid_external_auth",
        // --- Codes of the reference server beyond Dynamic's published list (docs/wire-protocol.md). ---
        /// 422: the user has verified MFA methods, so re-authentication (email, SMS, wallet) cannot step up.
        MfaRequired => "mfa_required",
        /// 422: the wallet is embedded in the app; only external wallets qualify for step-up.
        EmbeddedWalletNotAllowed => "embedded_wallet_not_allowed",
        /// 422: the signing wallet is not one of this user's wallets.
        WalletNotLinked => "wallet_not_linked",
        /// 422: the nonce was not issued by this server or has expired.
        InvalidNonce => "invalid_nonce",
        /// 422: the nonce was already used.
        NonceAlreadyUsed => "nonce_already_used",
        /// 422: the wallet signature is malformed, does not verify, or is by another address.
        InvalidSignature => "invalid_signature",
        /// 422: the wallet message is not an EIP-4361 message of the expected shape.
        InvalidMessage => "invalid_message",
        /// 422: the wallet message is for another domain.
        InvalidMessageDomain => "invalid_message_domain",
        /// 422: the wallet message's address is malformed or is not `publicWalletAddress`.
        InvalidMessageAddress => "invalid_message_address",
        /// 422: the wallet message is for another URI.
        InvalidMessageUri => "invalid_message_uri",
        /// 422: the wallet message's version is not 1.
        InvalidMessageVersion => "invalid_message_version",
        /// 422: the wallet message's Chain ID is not a decimal chain id.
        InvalidMessageChainId => "invalid_message_chain_id",
        /// 422: the wallet message is for another environment (Request ID).
        InvalidMessageRequestId => "invalid_message_request_id",
        /// 422: the wallet message's Issued At is malformed or too far from the server's time.
        InvalidMessageIssuedAt => "invalid_message_issued_at",
        /// 422: the passkey challenge is unknown, used or expired.
        PasskeyChallengeInvalid => "passkey_challenge_invalid",
        /// 422: the passkey was used at another origin.
        PasskeyOriginMismatch => "passkey_origin_mismatch",
        /// 422: the authenticator did not verify the user (PIN or biometrics).
        PasskeyUserNotVerified => "passkey_user_not_verified",
        /// 422: the passkey's signature counter went backwards: the credential may be cloned.
        PasskeyCounterRegression => "passkey_counter_regression",
        /// 422: the passkey response is not valid (bad signature, unknown credential...).
        PasskeyInvalid => "passkey_invalid",
        /// 403: the call needs a recent MFA verification of this session (RFC 9470 challenge with `max_age`).
        InsufficientUserAuthentication => "insufficient_user_authentication",
        /// 422: step-up is switched off for this environment, so no elevated token is issued.
        StepUpDisabled => "step_up_disabled",
        /// 422: this verification method is not enabled for step-up in this environment.
        MethodDisabled => "method_disabled",
        /// 422: the user already has a verified TOTP device (one per user, as Dynamic has it); delete it first.
        MfaDeviceAlreadyExists => "mfa_device_already_exists",
        /// 405: the path exists, the HTTP method does not.
        MethodNotAllowed => "method_not_allowed",
        /// 503: the app backend's signing keys (JWKS) could not be fetched; try again later.
        ExternalAuthUnavailable => "external_auth_unavailable",
        /// 503: an app backend's guard could not check the elevated token (the issuer's keys or the single-use
        /// store out of reach); nothing was let through. Try again later.
        ElevatedCheckUnavailable => "elevated_check_unavailable",
        /// 408: the request (its head and body, and the answer to it) took longer than the server allows.
        RequestTimeout => "request_timeout",
        /// 413: the request body is larger than the server accepts.
        PayloadTooLarge => "payload_too_large",
        /// 503: the server's database cannot be written (`/health`).
        DatabaseUnavailable => "database_unavailable",
        /// 429: a creation limit is reached (nonces per client, ceremonies per user); `Retry-After` says when.
        RateLimited => "rate_limited",
        /// 429: the user had recovery codes made too often this hour; `Retry-After` says when.
        RecoveryCodesRateLimited => "recovery_codes_rate_limited",
        /// 503: the code could not be sent (the mail relay or SMS gateway refused it or did not answer in
        /// time); nothing was stored and the send did not count. Try again later.
        DeliveryFailed => "delivery_failed",
        /// 503: this server has no way to send codes on this channel.
        DeliveryUnavailable => "delivery_unavailable",
    }
}

/// The JSON body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// A human-readable message. Never contains a secret.
    pub error: String,
    /// The machine-readable code. Dynamic's own clients read a missing code as `unknown_error`; so does this.
    #[serde(default = "unknown_error")]
    pub code: ErrorCode,
}

fn unknown_error() -> ErrorCode {
    ErrorCode::Unknown("unknown_error".to_owned())
}

impl ErrorBody {
    /// An error body with the given code and message.
    #[must_use]
    pub fn new(code: ErrorCode, error: impl Into<String>) -> Self {
        Self { error: error.into(), code }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_exact_field_names() {
        let body = ErrorBody::new(ErrorCode::MfaInvalidCode, "Invalid code");
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json, serde_json::json!({"error": "Invalid code", "code": "mfa_invalid_code"}));
        assert_eq!(serde_json::from_value::<ErrorBody>(json).unwrap(), body);
    }

    #[test]
    fn every_known_code_round_trips_and_unknown_codes_survive() {
        for code in ErrorCode::KNOWN {
            assert_eq!(&ErrorCode::parse(code.as_str()), code);
        }
        let body: ErrorBody = serde_json::from_str(r#"{"error":"x","code":"brand_new_code"}"#).unwrap();
        assert_eq!(body.code, ErrorCode::Unknown("brand_new_code".into()));
    }

    #[test]
    fn missing_code_reads_as_unknown_error_missing_message_is_an_error() {
        let body: ErrorBody = serde_json::from_str(r#"{"error":"x"}"#).unwrap();
        assert_eq!(body.code, ErrorCode::parse("unknown_error"));
        assert!(serde_json::from_str::<ErrorBody>(r#"{"code":"x"}"#).is_err());
    }
}
