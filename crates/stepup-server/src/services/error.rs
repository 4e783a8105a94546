//! `ServiceError`: why a service refused a request, or failed — and the one place it becomes an HTTP answer
//! (`From<ServiceError> for ApiError`).
//!
//! The cases every method shares (policy, lockout, limits, the resource guard) are variants here; what only one
//! method can refuse (a wallet message for another domain, a passkey used at another origin) is that method's
//! own enum, which implements [`Refusal`] and travels as [`ServiceError::Refused`], so a new method adds its
//! refusals in its own module.

use stepup_core::{Method, Route};
use stepup_proto::{ErrorCode, TokenScope};

use crate::delivery::DeliveryError;
use crate::error::ApiError;
use crate::store::StoreError;

/// A method's own refusal of a proof: each method module has an enum of them, with the protocol's code for
/// each case. Its `Display` is the message the caller reads.
pub trait Refusal: std::error::Error + Send + Sync + 'static {
    /// The protocol's error code.
    fn code(&self) -> ErrorCode;

    /// Whether the server could not check the proof at all (503: a dependency is down), rather than the proof
    /// being wrong (422).
    fn unavailable(&self) -> bool {
        false
    }

    /// What the caller reads: the `Display` text, unless that holds what only the log may (a dependency's
    /// own error, naming internal hosts).
    fn message(&self) -> String {
        self.to_string()
    }
}

/// What an id named that is not there (404).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// A one-time code's verification.
    Verification,
    /// An MFA device of the user.
    MfaDevice,
    /// A verified MFA device of the user (making one the default).
    VerifiedMfaDevice,
    /// A passkey of the user.
    Passkey,
    /// Any passkey: the user has none.
    AnyPasskey,
}

impl Missing {
    fn message(self) -> &'static str {
        match self {
            Missing::Verification => "Unknown verification",
            Missing::MfaDevice => "No such MFA device",
            Missing::VerifiedMfaDevice => "No such verified MFA device",
            Missing::Passkey => "No such passkey",
            Missing::AnyPasskey => "The user has no passkey",
        }
    }
}

/// Which limit a request ran into (429), each with its code and message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// Codes requested from one client address.
    CodesFromClient,
    /// Codes sent to one address.
    CodesToAddress,
    /// Codes sent for one user, to all addresses.
    CodesForUser,
    /// Sign-in codes sent in the whole environment.
    SignInCodes,
    /// Enrolments and passkey ceremonies one user starts.
    Ceremonies,
    /// Recovery-code generations of one user.
    RecoveryCodes,
    /// Nonces one signed-in user asks for.
    NoncesForUser,
    /// Nonces asked for from one client address.
    NoncesFromClient,
    /// Nonces asked for in the whole environment.
    Nonces,
}

impl Limited {
    fn code(self) -> ErrorCode {
        match self {
            Limited::CodesFromClient
            | Limited::CodesToAddress
            | Limited::CodesForUser
            | Limited::SignInCodes => ErrorCode::TooManyVerificationAttempts,
            Limited::RecoveryCodes => ErrorCode::RecoveryCodesRateLimited,
            Limited::Ceremonies | Limited::NoncesForUser | Limited::NoncesFromClient | Limited::Nonces => {
                ErrorCode::RateLimited
            }
        }
    }

    fn message(self) -> &'static str {
        match self {
            Limited::CodesFromClient => "Too many codes requested from this address; try again later",
            Limited::CodesToAddress => "Too many codes sent to this address; try again later",
            Limited::CodesForUser => "Too many codes sent for this user; try again later",
            Limited::SignInCodes => "Too many sign-in codes are being sent; try again later",
            Limited::Ceremonies => "Too many enrolments and passkey ceremonies started; try again later",
            Limited::RecoveryCodes => "Recovery codes were made too often; try again later",
            Limited::NoncesForUser => "Too many nonces requested; try again later",
            Limited::NoncesFromClient => "Too many nonces requested from this address; try again later",
            Limited::Nonces => "Too many nonces are being requested; try again later",
        }
    }
}

/// Why the resource guard asks for an elevated token (403 with the RFC 9470 challenge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardRefusal {
    /// No token came with the call.
    Missing,
    /// The token is not one of this environment's for this user (forged, unreadable, another user's).
    Invalid,
    /// The token was earned in another session.
    OtherSession,
    /// The token has expired.
    Expired,
    /// The token does not grant the scope.
    ScopeNotGranted,
    /// The single-use token was spent before.
    Spent,
    /// A first MFA method needs a re-authentication of the user (or every guarded scope).
    NeedsReauthentication,
    /// Changing the MFA methods of a user with MFA needs a token earned by MFA.
    NeedsMfa,
}

impl GuardRefusal {
    fn message(self) -> &'static str {
        match self {
            GuardRefusal::Missing => "An elevated access token is required for this scope",
            GuardRefusal::Invalid => "The elevated access token is invalid",
            GuardRefusal::OtherSession => "The elevated access token belongs to another session",
            GuardRefusal::Expired => "The elevated access token has expired",
            GuardRefusal::ScopeNotGranted => "The elevated access token does not grant this scope",
            GuardRefusal::Spent => "The elevated access token was already used",
            GuardRefusal::NeedsReauthentication => {
                "Adding a first MFA method needs a re-authentication (email, SMS or wallet)"
            }
            GuardRefusal::NeedsMfa => {
                "Changing the MFA methods of a user with MFA needs a token earned by MFA"
            }
        }
    }
}

/// Why a service refused a request, or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// Input that cannot be right (an email address, a phone number, a body); the message says which.
    #[error("{0}")]
    BadInput(String),
    /// Requested scopes that are empty where some are needed, or not this server's.
    #[error("requested scopes must be known token scopes")]
    InvalidScopes,
    /// A scope this server does not know (`/stepUp/check`: a typo must never read as "not required").
    #[error("unknown scope `{0}`")]
    UnknownScope(TokenScope),
    /// The verification completing an enrolment asked for more than the token that started it granted.
    #[error("completing an enrolment may ask for no more scopes than the token that started it granted")]
    EnrolmentScopesExceeded,
    /// No environment has this id.
    #[error("unknown environment")]
    UnknownEnvironment,
    /// The environment has no user with this id.
    #[error("unknown user")]
    UnknownUser,
    /// An id names nothing.
    #[error("{}", .0.message())]
    NotFound(Missing),
    /// Step-up is switched off for the environment.
    #[error("step-up is switched off for this environment")]
    StepUpDisabled,
    /// The method is switched off for the environment.
    #[error("{0} is not enabled for this environment")]
    MethodDisabled(Method),
    /// A user with MFA asked to step up by this route (re-authentication, or the app's backend where the
    /// environment does not allow it for MFA users).
    #[error("this user has MFA methods: no step-up by {0:?}")]
    MfaRequired(Route),
    /// A wrong TOTP or recovery code (counted towards the lockout).
    #[error("the {0} is not valid")]
    InvalidCode(Method),
    /// The user has no such MFA device.
    #[error("no such MFA device")]
    MfaDeviceNotFound,
    /// Recovery codes need an MFA method, and the user has none.
    #[error("recovery codes need an MFA method")]
    NoMfaMethod,
    /// The user has an authenticator app already.
    #[error("the user has an authenticator app already")]
    MfaDeviceAlreadyExists,
    /// MFA is locked after too many failures.
    #[error("MFA is locked for {retry_after_secs} seconds")]
    Locked {
        /// When to try again.
        retry_after_secs: u64,
    },
    /// A limit is reached.
    #[error("{}", .limit.message())]
    TooMany {
        /// Which.
        limit: Limited,
        /// When to try again.
        retry_after_secs: u64,
    },
    /// The call needs an elevated token for `scope`.
    #[error("{}", .why.message())]
    ElevatedRequired {
        /// The scope the call needs.
        scope: TokenScope,
        /// Why the token that came (if one did) is not enough.
        why: GuardRefusal,
    },
    /// The call needs an MFA verification of this session at most `max_age_secs` old.
    #[error("an MFA verification in the last {max_age_secs} seconds is required")]
    RecentMfaRequired {
        /// The policy's age.
        max_age_secs: u64,
    },
    /// A method refused the proof (its own enum, see [`Refusal`]).
    #[error("{0}")]
    Refused(Box<dyn Refusal>),
    /// A code could not be delivered.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// The outbox was asked for while it is off (it is a development channel).
    #[error("the outbox is off")]
    OutboxOff,
    /// The storage failed.
    #[error("storage failed")]
    Storage(#[from] StoreError),
    /// Randomness, signing or a worker failed.
    #[error("{what} failed")]
    Internal {
        /// What failed.
        what: &'static str,
    },
}

impl ServiceError {
    /// A method's refusal.
    pub fn refused(refusal: impl Refusal) -> Self {
        ServiceError::Refused(Box::new(refusal))
    }

    /// Randomness failed.
    #[must_use]
    pub fn randomness() -> Self {
        ServiceError::Internal { what: "randomness" }
    }
}

/// The one place a service's answer becomes an HTTP answer.
impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        let unprocessable = |code: ErrorCode, message: &str| ApiError::unprocessable(code, message);
        match error {
            ServiceError::BadInput(message) => ApiError::bad_request(message),
            ServiceError::InvalidScopes => {
                unprocessable(ErrorCode::InvalidScopes, "Requested scopes must be known token scopes")
            }
            ServiceError::UnknownScope(scope) => {
                unprocessable(ErrorCode::InvalidScopes, &format!("Unknown scope `{}`", scope.as_str()))
            }
            ServiceError::EnrolmentScopesExceeded => unprocessable(
                ErrorCode::InvalidScopes,
                "Completing an enrolment may ask for no more scopes than the token that started it granted",
            ),
            ServiceError::UnknownEnvironment => ApiError::not_found("Unknown environment"),
            ServiceError::UnknownUser => ApiError::not_found("Unknown user"),
            ServiceError::NotFound(missing) => ApiError::not_found(missing.message()),
            ServiceError::StepUpDisabled => {
                unprocessable(ErrorCode::StepUpDisabled, "Step-up is switched off for this environment")
            }
            ServiceError::MethodDisabled(method) => {
                // Named as the configuration names it (`enabled_methods`), so an operator knows what to switch on.
                let setting = crate::methods::setting_name(method).unwrap_or(method.amr());
                let message = format!("{} (`{setting}`) is not enabled for this environment", method.label());
                unprocessable(ErrorCode::MethodDisabled, &message)
            }
            ServiceError::MfaRequired(Route::External) => unprocessable(
                ErrorCode::MfaRequired,
                "This user has MFA methods: this environment does not elevate them by external auth",
            ),
            ServiceError::MfaRequired(_) => unprocessable(
                ErrorCode::MfaRequired,
                "This user has MFA methods: step up with MFA, not re-authentication",
            ),
            ServiceError::InvalidCode(Method::RecoveryCode) => {
                unprocessable(ErrorCode::MfaInvalidCode, "The recovery code is not valid")
            }
            ServiceError::InvalidCode(_) => unprocessable(ErrorCode::MfaInvalidCode, "The code is not valid"),
            ServiceError::MfaDeviceNotFound => {
                unprocessable(ErrorCode::MfaDeviceNotFound, "No such MFA device")
            }
            ServiceError::NoMfaMethod => {
                unprocessable(ErrorCode::MfaDeviceNotFound, "Recovery codes need an MFA method")
            }
            ServiceError::MfaDeviceAlreadyExists => unprocessable(
                ErrorCode::MfaDeviceAlreadyExists,
                "The user has an authenticator app already; delete it before registering another",
            ),
            ServiceError::Locked { retry_after_secs } => ApiError::locked(retry_after_secs),
            ServiceError::TooMany { limit, retry_after_secs } => {
                ApiError::too_many(limit.code(), limit.message(), retry_after_secs)
            }
            ServiceError::ElevatedRequired { scope, why } => {
                ApiError::elevated_required(vec![scope], why.message())
            }
            ServiceError::RecentMfaRequired { max_age_secs } => ApiError::recent_mfa_required(max_age_secs),
            ServiceError::Refused(refusal) if refusal.unavailable() => {
                // The reason (a TLS or DNS error, say) goes to the log, not to the caller.
                tracing::warn!(reason = %refusal, "a method's dependency is unavailable");
                ApiError::unavailable(refusal.code(), refusal.message())
            }
            ServiceError::Refused(refusal) => unprocessable(refusal.code(), &refusal.message()),
            ServiceError::Delivery(DeliveryError::NotConfigured { channel }) => ApiError::unavailable(
                ErrorCode::DeliveryUnavailable,
                format!("This server cannot send {channel} codes"),
            ),
            // The relay's own words stay in the log: they may name internal hosts.
            ServiceError::Delivery(other) => {
                tracing::warn!(error = %other, "delivery failed");
                ApiError::unavailable(
                    ErrorCode::DeliveryFailed,
                    "The code could not be sent; try again later",
                )
            }
            ServiceError::OutboxOff => ApiError::not_found(
                "The outbox is off: it is a development channel (`--dev` or delivery.outbox)",
            ),
            ServiceError::Storage(error) => ApiError::from(error),
            ServiceError::Internal { what } => {
                tracing::error!(what, "internal failure");
                ApiError::internal()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::methods::otp::OtpRefusal;

    /// Each case leaves with its status and protocol code: the table clients and tests read.
    #[test]
    fn every_case_has_its_status_and_code() {
        let scope = TokenScope::WalletExport;
        let cases: Vec<(ServiceError, StatusCode, &str)> = vec![
            (ServiceError::BadInput("x".into()), StatusCode::BAD_REQUEST, "bad_request"),
            (ServiceError::InvalidScopes, StatusCode::UNPROCESSABLE_ENTITY, "invalid_scopes"),
            (ServiceError::UnknownScope(scope.clone()), StatusCode::UNPROCESSABLE_ENTITY, "invalid_scopes"),
            (ServiceError::EnrolmentScopesExceeded, StatusCode::UNPROCESSABLE_ENTITY, "invalid_scopes"),
            (ServiceError::UnknownUser, StatusCode::NOT_FOUND, "not_found"),
            (ServiceError::NotFound(Missing::Passkey), StatusCode::NOT_FOUND, "not_found"),
            (ServiceError::StepUpDisabled, StatusCode::UNPROCESSABLE_ENTITY, "step_up_disabled"),
            (ServiceError::MethodDisabled(Method::Totp), StatusCode::UNPROCESSABLE_ENTITY, "method_disabled"),
            (
                ServiceError::MfaRequired(Route::Reauthenticate),
                StatusCode::UNPROCESSABLE_ENTITY,
                "mfa_required",
            ),
            (ServiceError::InvalidCode(Method::Totp), StatusCode::UNPROCESSABLE_ENTITY, "mfa_invalid_code"),
            (ServiceError::NoMfaMethod, StatusCode::UNPROCESSABLE_ENTITY, "mfa_device_not_found"),
            (
                ServiceError::MfaDeviceAlreadyExists,
                StatusCode::UNPROCESSABLE_ENTITY,
                "mfa_device_already_exists",
            ),
            (
                ServiceError::Locked { retry_after_secs: 9 },
                StatusCode::UNPROCESSABLE_ENTITY,
                "lock_too_many_attempts",
            ),
            (
                ServiceError::TooMany { limit: Limited::RecoveryCodes, retry_after_secs: 9 },
                StatusCode::TOO_MANY_REQUESTS,
                "recovery_codes_rate_limited",
            ),
            (
                ServiceError::ElevatedRequired { scope, why: GuardRefusal::Spent },
                StatusCode::FORBIDDEN,
                "elevated_access_token_required",
            ),
            (
                ServiceError::RecentMfaRequired { max_age_secs: 60 },
                StatusCode::FORBIDDEN,
                "insufficient_user_authentication",
            ),
            (
                ServiceError::refused(OtpRefusal::WrongCode(stepup_core::OtpChannel::Sms)),
                StatusCode::UNPROCESSABLE_ENTITY,
                "wrong_sms_verification_token",
            ),
            (ServiceError::OutboxOff, StatusCode::NOT_FOUND, "not_found"),
            (ServiceError::randomness(), StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        ];
        for (error, status, code) in cases {
            let shown = format!("{error:?}");
            let answer = ApiError::from(error);
            assert_eq!((answer.status(), answer.code().as_str()), (status, code), "{shown}");
        }
    }

    /// A dependency's own words (a refusal marked unavailable) stay in the log: the caller reads the refusal's
    /// public message, with a 503.
    #[test]
    fn an_unavailable_refusal_is_a_503_with_its_public_message() {
        let keys = crate::methods::external_auth::ExternalAuthError::KeysUnavailable {
            reason: "tls handshake with http://10.0.0.7 failed".into(),
        };
        let answer = ApiError::from(ServiceError::refused(keys));
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.code().as_str(), "external_auth_unavailable");
        assert!(!answer.message().contains("10.0.0.7"), "{}", answer.message());
    }
}
