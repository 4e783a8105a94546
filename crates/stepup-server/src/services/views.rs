//! The wire views of stored rows: a user as `SdkUser`, a credential as `VerifiedCredential`.

use stepup_proto::{SdkUser, VerifiedCredential, WalletProvider};

use crate::environment::Environment;
use crate::store::{CredentialRow, UserRow};

/// The `SdkUser` view of a user and their credentials.
pub(crate) fn sdk_user(env: &Environment, user: &UserRow, credentials: &[CredentialRow]) -> SdkUser {
    SdkUser {
        id: user.id.clone(),
        project_environment_id: env.id().to_owned(),
        email: user.email.clone(),
        phone_number: user.phone_number.clone(),
        username: None,
        session_id: None,
        last_verified_credential_id: None,
        verified_credentials: credentials.iter().map(verified_credential).collect(),
        mfa_backup_code_acknowledgement: user
            .mfa_backup_code_acknowledgement
            .as_deref()
            .map(stepup_proto::MfaBackupCodeAcknowledgement::parse),
    }
}

/// The wire view of a stored credential.
pub(crate) fn verified_credential(c: &CredentialRow) -> VerifiedCredential {
    VerifiedCredential {
        id: c.id.clone(),
        format: c.format.clone(),
        address: c.address.clone(),
        // Dynamic's credential chain name (`eip155`), also for rows stored before it was (`EVM`).
        chain: c.chain.as_deref().map(|chain| {
            stepup_proto::chain::credential_chain(chain).map_or_else(|| chain.to_owned(), str::to_owned)
        }),
        email: c.email.clone(),
        phone_number: c.phone_number.clone(),
        phone_country_code: c.phone_country_code.clone(),
        iso_country_code: c.iso_country_code.clone(),
        public_identifier: c.email.clone().or_else(|| c.address.clone()).or_else(|| {
            c.phone_number.as_ref().map(|n| format!("+{}{n}", c.phone_country_code.as_deref().unwrap_or("")))
        }),
        wallet_name: c.wallet_name.clone(),
        wallet_provider: c.wallet_provider.as_deref().map(WalletProvider::parse),
        sign_in_enabled: c.sign_in_enabled,
        embedded_wallet_id: c.embedded.then(|| c.id.clone()),
    }
}
