//! The signed-in user (`SdkUser`), its verified credentials, and the answers of verify calls.

use serde::{Deserialize, Serialize};

use crate::open_enum::open_enum;
use crate::otp::{EmailVerificationCreateResponse, SmsVerificationCreateResponse};
use crate::secret::Jwt;

open_enum! {
    /// The format of a verified credential (`JwtVerifiedCredentialFormatEnum`), plus this server's
    /// `recoveryCode` in step-up checks.
    pub enum CredentialFormat, expecting "a credential format string" {
        /// A wallet address on some chain.
        Blockchain => "blockchain",
        /// An email address.
        Email => "email",
        /// A social (OAuth) account.
        Oauth => "oauth",
        /// A passkey.
        Passkey => "passkey",
        /// A phone number.
        PhoneNumber => "phoneNumber",
        /// An account from an external auth provider.
        ExternalUser => "externalUser",
        /// A TOTP authenticator.
        Totp => "totp",
        /// The user's recovery codes (offered in step-up checks when the user has unused ones).
        RecoveryCode => "recoveryCode",
    }
}

open_enum! {
    /// How a wallet is connected (`WalletProviderEnum`).
    pub enum WalletProvider, expecting "a wallet provider string" {
        /// A browser extension such as MetaMask.
        BrowserExtension => "browserExtension",
        /// A custodial service.
        CustodialService => "custodialService",
        /// WalletConnect.
        WalletConnect => "walletConnect",
        /// A QR code.
        QrCode => "qrCode",
        /// A deep link.
        DeepLink => "deepLink",
        /// A wallet embedded in the app (never qualifies for step-up).
        EmbeddedWallet => "embeddedWallet",
        /// A smart-contract wallet.
        SmartContractWallet => "smartContractWallet",
    }
}

open_enum! {
    /// What the client should show next after an update-self call (`NextViewEnum`).
    pub enum NextView, expecting "a next view string" {
        /// Nothing more to do.
        Done => "done",
        /// An email address must be verified.
        VerifyEmail => "verify-email",
        /// Verified, and a credential moved to this user.
        VerifiedAndTransferred => "verified-and-transferred",
        /// A phone number must be verified.
        VerifySms => "verify-sms",
    }
}

open_enum! {
    /// Whether the user still has to confirm having saved their recovery codes (`MfaBackupCodeAcknowledgement`).
    pub enum MfaBackupCodeAcknowledgement, expecting "a backup code acknowledgement" {
        /// Codes were shown and not yet acknowledged.
        Pending => "pending",
        /// The user said the codes are saved.
        Complete => "complete",
    }
}

/// A credential the user has proven (`JwtVerifiedCredential`). Note Dynamic's snake_case keys
/// (`public_identifier`, `wallet_name`, `wallet_provider`, `embedded_wallet_id`) beside camelCase ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VerifiedCredential {
    /// The credential's id.
    pub id: String,
    /// What kind of credential it is.
    pub format: CredentialFormat,
    /// Wallet address (`blockchain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Chain of a wallet, as Dynamic's credential chain name: `eip155` for EVM (see [`crate::chain`]; Dynamic's
    /// client skips a wallet whose chain name it does not know, and `EVM` is not one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    /// Email address (`email`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone number without country code (`phoneNumber`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// Phone country calling code, e.g. `1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_country_code: Option<String>,
    /// ISO 3166 country code of the phone, e.g. `US`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iso_country_code: Option<String>,
    /// A display identifier (address, email...).
    #[serde(rename = "public_identifier", default, skip_serializing_if = "Option::is_none")]
    pub public_identifier: Option<String>,
    /// Wallet name, e.g. `metamask`.
    #[serde(rename = "wallet_name", default, skip_serializing_if = "Option::is_none")]
    pub wallet_name: Option<String>,
    /// How the wallet is connected.
    #[serde(rename = "wallet_provider", default, skip_serializing_if = "Option::is_none")]
    pub wallet_provider: Option<WalletProvider>,
    /// Whether the user can sign in with this credential.
    pub sign_in_enabled: bool,
    /// The embedded wallet's id, for embedded wallets.
    #[serde(rename = "embedded_wallet_id", default, skip_serializing_if = "Option::is_none")]
    pub embedded_wallet_id: Option<String>,
}

impl VerifiedCredential {
    /// Whether this is a wallet embedded in the app (such wallets never qualify for step-up).
    #[must_use]
    pub fn is_embedded_wallet(&self) -> bool {
        self.embedded_wallet_id.is_some() || self.wallet_provider == Some(WalletProvider::EmbeddedWallet)
    }
}

/// The signed-in user (`SdkUser`), with the fields this protocol uses; other fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SdkUser {
    /// The user's id.
    pub id: String,
    /// The environment the user belongs to.
    pub project_environment_id: String,
    /// The user's email, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's phone number, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// The user's username, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The session's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The credential the user verified last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verified_credential_id: Option<String>,
    /// The user's verified credentials.
    pub verified_credentials: Vec<VerifiedCredential>,
    /// `pending` from when recovery codes are shown until the user acknowledges them (`PUT /users`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_backup_code_acknowledgement: Option<MfaBackupCodeAcknowledgement>,
}

/// Body of `PUT /users` (Dynamic's `UserFields`). The reference server updates only
/// `mfaBackupCodeAcknowledgement`; the other fields Dynamic defines are refused there when set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UserFields {
    /// `complete` acknowledges the recovery codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_backup_code_acknowledgement: Option<MfaBackupCodeAcknowledgement>,
}

/// Answer of sign-in and MFA/step-up verify calls (`VerifyResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// The session JWT: a new session on sign-in, the caller's session (re-signed when its claims changed, e.g.
    /// after an MFA verification) on every other verify answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<Jwt>,
    /// The same session JWT. Dynamic's clients replace their session with this field (`minifiedJwt ?? null`),
    /// so an answer without it signs them out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minified_jwt: Option<Jwt>,
    /// An MFA token, when one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_token: Option<Jwt>,
    /// The user.
    pub user: SdkUser,
    /// When the session expires, in Unix seconds.
    pub expires_at: u64,
    /// The elevated access token for the requested scopes, when scopes were requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elevated_access_token: Option<Jwt>,
}

/// Answer of `emailVerifications/verify` and `smsVerifications/verify` (`UpdateSelfResponse`): a
/// [`VerifyResponse`] plus what to show next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UpdateSelfResponse {
    /// The verify answer's fields.
    #[serde(flatten)]
    pub verify: VerifyResponse,
    /// What the client should show next.
    pub next_view: NextView,
    /// A pending email verification, if one was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verification: Option<EmailVerificationCreateResponse>,
    /// A pending SMS verification, if one was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_verification: Option<SmsVerificationCreateResponse>,
}
