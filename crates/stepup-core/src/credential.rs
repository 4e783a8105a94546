//! `Credential` and `MethodOptions`: what a user can step up with.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::id::shared_id;
use stepup_proto::{
    CredentialFormat, StepUpCheckResponse, StepUpCredential, VerifiedCredential, WalletProvider,
};

use crate::error::StepUpError;
use crate::method::{Method, Route};

shared_id! {
    /// The server's id of a credential (verified credential, MFA device or passkey).
    CredentialId
}

/// Why a credential cannot be used for step-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// A wallet embedded in the app: it proves nothing the session does not already prove.
    #[error("embedded wallets cannot be used for step-up")]
    EmbeddedWallet,
    /// A format no step-up method verifies (OAuth, external user, or one this version does not know).
    #[error("credentials of format `{format}` cannot be used for step-up")]
    UnsupportedFormat {
        /// The credential's format.
        format: CredentialFormat,
    },
}

/// A credential the user can step up with, and the method that verifies it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Credential {
    /// The server's id.
    pub id: CredentialId,
    /// The method that verifies it.
    pub method: Method,
    /// A name to show (masked email, address, device alias).
    pub alias: Option<String>,
}

impl Credential {
    /// A credential of the given method.
    #[must_use]
    pub fn new(id: impl AsRef<str>, method: Method, alias: Option<String>) -> Self {
        Self { id: CredentialId::new(id), method, alias }
    }

    /// Reads a credential offered by `POST /stepUp/check`. For `blockchain`, `type` carries the wallet provider.
    ///
    /// # Errors
    /// [`CredentialError::EmbeddedWallet`] for an embedded wallet, [`CredentialError::UnsupportedFormat`] for a
    /// format no method verifies.
    pub fn from_step_up(credential: &StepUpCredential) -> Result<Self, CredentialError> {
        let embedded = credential.kind.as_deref() == Some(WalletProvider::EmbeddedWallet.as_str());
        // In a check, `externalUser` is the server offering elevation by the app's backend (external auth); a
        // verified credential of that format is an account, which no step-up verifies.
        let method = if credential.format == CredentialFormat::ExternalUser {
            Method::ExternalAuth
        } else {
            Method::for_format(&credential.format, embedded)?
        };
        Ok(Self { id: CredentialId::new(&credential.id), method, alias: credential.alias.clone() })
    }

    /// Reads one of the user's verified credentials (`SdkUser.verifiedCredentials`).
    ///
    /// # Errors
    /// As [`Credential::from_step_up`].
    pub fn from_verified(credential: &VerifiedCredential) -> Result<Self, CredentialError> {
        let method = Method::for_format(&credential.format, credential.is_embedded_wallet())?;
        let alias = credential
            .public_identifier
            .clone()
            .or_else(|| credential.email.clone())
            .or_else(|| credential.address.clone());
        Ok(Self { id: CredentialId::new(&credential.id), method, alias })
    }
}

/// The user's usable credentials, or "unknown" when the flow started without a check (a server challenge, a
/// direct verify call). Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MethodOptions(Option<Arc<[Credential]>>);

impl MethodOptions {
    /// Options not known (every method is allowed as far as the client can tell; the server decides).
    #[must_use]
    pub fn unknown() -> Self {
        Self(None)
    }

    /// Known options.
    #[must_use]
    pub fn known(credentials: impl IntoIterator<Item = Credential>) -> Self {
        Self(Some(credentials.into_iter().collect()))
    }

    /// The usable credentials of a step-up check; embedded wallets and unsupported formats are left out.
    #[must_use]
    pub fn from_check(check: &StepUpCheckResponse) -> Self {
        Self::known(check.credentials.iter().filter_map(|c| Credential::from_step_up(c).ok()))
    }

    /// Whether the options are known.
    #[must_use]
    pub fn is_known(&self) -> bool {
        self.0.is_some()
    }

    /// The credentials (empty when unknown).
    #[must_use]
    pub fn credentials(&self) -> &[Credential] {
        self.0.as_deref().unwrap_or(&[])
    }

    /// Whether `method` may be used: always when unknown; otherwise when a credential of that method is offered.
    /// Recovery codes back up MFA, so they are allowed whenever an MFA credential is offered.
    #[must_use]
    pub fn allows(&self, method: Method) -> bool {
        let Some(credentials) = &self.0 else { return true };
        credentials.iter().any(|c| c.method == method)
            || (method == Method::RecoveryCode && credentials.iter().any(|c| c.method.route() == Route::Mfa))
    }

    /// The distinct methods offered, in [`Method::ALL`] order (recovery codes included when MFA is offered).
    #[must_use]
    pub fn methods(&self) -> Vec<Method> {
        if !self.is_known() {
            return Vec::new();
        }
        Method::ALL.into_iter().filter(|m| self.allows(*m)).collect()
    }

    /// The route a person takes with these options: MFA if any MFA credential is offered, else
    /// re-authentication if one of its credentials is, else none (external auth asks no person).
    #[must_use]
    pub fn route(&self) -> Option<Route> {
        let credentials = self.credentials();
        let offers = |route| credentials.iter().any(|c| c.method.route() == route);
        if offers(Route::Mfa) {
            Some(Route::Mfa)
        } else if offers(Route::Reauthenticate) {
            Some(Route::Reauthenticate)
        } else {
            None
        }
    }

    /// Whether a prompt on `route` could be finished with these options.
    ///
    /// # Errors
    /// [`StepUpError::ReauthenticationNotAllowed`] for re-authentication when MFA credentials are offered (a user
    /// with MFA must use it); [`StepUpError::NoMethodsAvailable`] when the options are known and offer no method of
    /// the route.
    pub fn check_route(&self, route: Route) -> Result<(), StepUpError> {
        if route == Route::Reauthenticate && self.route() == Some(Route::Mfa) {
            return Err(StepUpError::ReauthenticationNotAllowed);
        }
        if self.is_known() && !route.methods().any(|m| self.allows(m)) {
            return Err(StepUpError::NoMethodsAvailable { route: Some(route) });
        }
        Ok(())
    }

    /// Only the credentials of `route` (unknown stays unknown).
    #[must_use]
    pub fn for_route(&self, route: Route) -> MethodOptions {
        match &self.0 {
            None => Self(None),
            Some(credentials) => {
                Self::known(credentials.iter().filter(|c| c.method.route() == route).cloned())
            }
        }
    }
}

impl From<CredentialError> for StepUpError {
    fn from(error: CredentialError) -> Self {
        match error {
            CredentialError::EmbeddedWallet => StepUpError::EmbeddedWalletNotAllowed,
            CredentialError::UnsupportedFormat { format } => StepUpError::UnsupportedCredential { format },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_errors_become_step_up_errors() {
        assert_eq!(StepUpError::from(CredentialError::EmbeddedWallet), StepUpError::EmbeddedWalletNotAllowed);
        assert_eq!(
            StepUpError::from(CredentialError::UnsupportedFormat { format: CredentialFormat::Oauth }),
            StepUpError::UnsupportedCredential { format: CredentialFormat::Oauth }
        );
    }

    #[test]
    fn external_auth_is_offered_by_the_server_and_asks_no_person() {
        let reauth_and_external = MethodOptions::known([
            Credential::new("e", Method::EmailOtp, None),
            Credential::new("external-auth", Method::ExternalAuth, None),
        ]);
        assert_eq!(reauth_and_external.route(), Some(Route::Reauthenticate));
        assert_eq!(reauth_and_external.check_route(Route::External), Ok(()));
        // Offered to an MFA user (the environment allows it): the MFA rule is about people re-authenticating.
        let mfa_and_external = MethodOptions::known([
            Credential::new("t", Method::Totp, None),
            Credential::new("external-auth", Method::ExternalAuth, None),
        ]);
        assert_eq!(mfa_and_external.route(), Some(Route::Mfa));
        assert_eq!(mfa_and_external.check_route(Route::External), Ok(()));
        let only_external = MethodOptions::known([Credential::new("x", Method::ExternalAuth, None)]);
        assert_eq!(only_external.route(), None, "no person can be prompted");
        let not_offered = MethodOptions::known([Credential::new("t", Method::Totp, None)]);
        assert_eq!(
            not_offered.check_route(Route::External),
            Err(StepUpError::NoMethodsAvailable { route: Some(Route::External) })
        );
        assert_eq!(MethodOptions::unknown().check_route(Route::External), Ok(()));
        // A verified credential of format `externalUser` is an account, not a way to step up.
        let mut account = offered("externalUser", None);
        account.id = "acct".into();
        let verified = VerifiedCredential {
            id: "acct".into(),
            format: CredentialFormat::ExternalUser,
            address: None,
            chain: None,
            email: None,
            phone_number: None,
            phone_country_code: None,
            iso_country_code: None,
            public_identifier: None,
            wallet_name: None,
            wallet_provider: None,
            sign_in_enabled: true,
            embedded_wallet_id: None,
        };
        assert!(Credential::from_verified(&verified).is_err());
        assert_eq!(Credential::from_step_up(&account).unwrap().method, Method::ExternalAuth);
    }

    #[test]
    fn routes_are_refused_when_the_options_rule_them_out() {
        let mfa = MethodOptions::known([
            Credential::new("t", Method::Totp, None),
            Credential::new("e", Method::EmailOtp, None),
        ]);
        assert_eq!(mfa.check_route(Route::Reauthenticate), Err(StepUpError::ReauthenticationNotAllowed));
        assert_eq!(mfa.check_route(Route::Mfa), Ok(()));
        let reauth = MethodOptions::known([Credential::new("e", Method::EmailOtp, None)]);
        assert_eq!(
            reauth.check_route(Route::Mfa),
            Err(StepUpError::NoMethodsAvailable { route: Some(Route::Mfa) })
        );
        assert_eq!(reauth.check_route(Route::Reauthenticate), Ok(()));
        assert_eq!(
            MethodOptions::known([]).check_route(Route::Reauthenticate),
            Err(StepUpError::NoMethodsAvailable { route: Some(Route::Reauthenticate) })
        );
        assert_eq!(MethodOptions::unknown().check_route(Route::Mfa), Ok(()));
    }

    fn offered(format: &str, kind: Option<&str>) -> StepUpCredential {
        StepUpCredential {
            id: format!("{format}-1"),
            format: CredentialFormat::parse(format),
            kind: kind.map(str::to_owned),
            alias: None,
        }
    }

    #[test]
    fn each_format_maps_to_its_method() {
        let cases = [
            ("email", Method::EmailOtp),
            ("phoneNumber", Method::SmsOtp),
            ("blockchain", Method::ExternalWallet),
            ("passkey", Method::Passkey),
            ("totp", Method::Totp),
            ("recoveryCode", Method::RecoveryCode),
            ("externalUser", Method::ExternalAuth),
        ];
        for (format, method) in cases {
            assert_eq!(Credential::from_step_up(&offered(format, None)).unwrap().method, method);
        }
    }

    #[test]
    fn embedded_wallets_and_unsupported_formats_are_refused() {
        assert_eq!(
            Credential::from_step_up(&offered("blockchain", Some("embeddedWallet"))),
            Err(CredentialError::EmbeddedWallet)
        );
        assert_eq!(
            Credential::from_step_up(&offered("oauth", None)),
            Err(CredentialError::UnsupportedFormat { format: CredentialFormat::Oauth })
        );
        assert_eq!(
            Credential::from_step_up(&offered("smoke-signal", None)),
            Err(CredentialError::UnsupportedFormat { format: CredentialFormat::parse("smoke-signal") })
        );
    }

    #[test]
    fn verified_embedded_wallet_is_refused_by_id_or_provider() {
        let mut wallet = VerifiedCredential {
            id: "w".into(),
            format: CredentialFormat::Blockchain,
            address: Some("0xabc".into()),
            chain: Some("eip155".into()),
            email: None,
            phone_number: None,
            phone_country_code: None,
            iso_country_code: None,
            public_identifier: None,
            wallet_name: Some("metamask".into()),
            wallet_provider: Some(WalletProvider::BrowserExtension),
            sign_in_enabled: true,
            embedded_wallet_id: None,
        };
        assert_eq!(Credential::from_verified(&wallet).unwrap().alias.as_deref(), Some("0xabc"));
        wallet.embedded_wallet_id = Some("emb-1".into());
        assert_eq!(Credential::from_verified(&wallet), Err(CredentialError::EmbeddedWallet));
        wallet.embedded_wallet_id = None;
        wallet.wallet_provider = Some(WalletProvider::EmbeddedWallet);
        assert_eq!(Credential::from_verified(&wallet), Err(CredentialError::EmbeddedWallet));
    }

    #[test]
    fn options_allow_offered_methods_and_recovery_with_mfa() {
        let check = StepUpCheckResponse {
            is_required: true,
            credentials: vec![offered("totp", None), offered("blockchain", Some("embeddedWallet"))],
            default_credential_id: None,
        };
        let options = MethodOptions::from_check(&check);
        assert_eq!(options.credentials().len(), 1);
        assert_eq!(options.methods(), vec![Method::Totp, Method::RecoveryCode]);
        assert!(!options.allows(Method::Passkey));
        assert!(!options.allows(Method::ExternalWallet));
        assert_eq!(options.route(), Some(Route::Mfa));
        assert!(MethodOptions::unknown().allows(Method::Passkey));
        assert_eq!(MethodOptions::known([]).route(), None);
        let reauth = MethodOptions::known([Credential::new("e", Method::EmailOtp, None)]);
        assert_eq!(reauth.route(), Some(Route::Reauthenticate));
        assert!(!reauth.allows(Method::RecoveryCode));
        assert!(reauth.for_route(Route::Mfa).credentials().is_empty());
    }
}
