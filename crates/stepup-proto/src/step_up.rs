//! `POST /stepUp/check`: does this scope need step-up, and with which credentials?

use serde::{Deserialize, Serialize};

use crate::TokenScope;
use crate::user::CredentialFormat;

/// Body of `POST /sdk/{env}/stepUp/check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepUpCheckRequest {
    /// The scope the app is about to use.
    pub scope: TokenScope,
}

/// Answer of `POST /sdk/{env}/stepUp/check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct StepUpCheckResponse {
    /// Whether the scope needs an elevated token now.
    pub is_required: bool,
    /// The credentials the user can step up with: MFA methods if the user has verified ones, otherwise the
    /// sign-in-enabled email, phone and external wallets.
    pub credentials: Vec<StepUpCredential>,
    /// The credential to offer first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_credential_id: Option<String>,
}

/// One credential offered for step-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepUpCredential {
    /// The credential's id (a verified credential, MFA device or passkey id).
    pub id: String,
    /// What kind of credential it is.
    pub format: CredentialFormat,
    /// A refinement of the format: for `blockchain`, the wallet provider (`browserExtension`,
    /// `embeddedWallet`, ...); for MFA, the device type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// A name to show (the masked email, the wallet address, the device's alias).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}
