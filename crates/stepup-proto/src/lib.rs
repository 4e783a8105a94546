//! Wire types of the step-up SDK API: the JSON bodies of every call, the error body, header names, and
//! [`TokenScope`].
//!
//! Names follow Dynamic's SDK API exactly (camelCase JSON, with Dynamic's few snake_case keys on verified
//! credentials). All calls live under `/sdk/{environmentId}`; see `docs/wire-protocol.md` for the table.
//! String enums are *open*: a value this version does not know is kept, not refused, so newer servers work with
//! older clients.

mod open_enum;

pub mod chain;
pub mod environment;
pub mod error;
pub mod external_auth;
pub mod headers;
pub mod mfa;
pub mod otp;
pub mod passkey;
pub mod scope;
pub mod secret;
pub mod step_up;
pub mod user;
pub mod wallet;

pub use environment::{Jwk, JwksResponse, ProjectSettings};
pub use error::{ErrorBody, ErrorCode};
pub use external_auth::{ExternalAuthResponse, ExternalAuthVerifyRequest};
pub use mfa::{
    CreateMfaToken, MfaDevice, MfaDeviceType, MfaDevicesResponse, MfaMethodsResponse, MfaUpdateDeviceRequest,
    RecoveryAuthRequest, RecoveryCodesResponse, TotpAuthRequest, TotpRegistration, UserPasskey,
    UserPasskeysResponse,
};
pub use otp::{
    EmailVerificationCreateRequest, EmailVerificationCreateResponse, OtpVerifyRequest,
    SmsVerificationCreateRequest, SmsVerificationCreateResponse,
};
pub use passkey::{
    AuthenticatorAssertionResponse, AuthenticatorAttestationResponse, AuthenticatorSelection,
    PasskeyAllowCredential, PasskeyAuthRequest, PasskeyAuthenticationOptions, PasskeyRegisterRequest,
    PasskeyRegistrationOptions, PasskeyUser, PubKeyCredParam, RelyingParty, UserVerification,
};
pub use scope::TokenScope;
pub use secret::{Jwt, OtpCode, RecoveryCode, SecretString, TotpCode};
pub use step_up::{StepUpCheckRequest, StepUpCheckResponse, StepUpCredential};
pub use user::{
    CredentialFormat, MfaBackupCodeAcknowledgement, NextView, SdkUser, UpdateSelfResponse, UserFields,
    VerifiedCredential, VerifyResponse, WalletProvider,
};
pub use wallet::{NoncesResponse, WalletMessage, WalletMessageError, WalletVerifyRequest};
