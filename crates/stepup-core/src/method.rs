//! `Method` and `Route`: how a user can prove it is still them.

use std::fmt;

use serde::{Deserialize, Serialize};
use stepup_proto::CredentialFormat;

use crate::credential::CredentialError;

/// The ways through step-up. A person steps up by MFA or re-authentication: a user with verified MFA methods must
/// use MFA, and re-authentication is refused. The third way involves no person: the app's own backend vouches for
/// the user (external auth), when the server offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Route {
    /// Multi-factor: passkey, TOTP or a recovery code.
    Mfa,
    /// Re-authentication: an email or SMS one-time code, or an external wallet's signature.
    Reauthenticate,
    /// Elevation granted by the app's backend (a JWT it signed). Never prompted: the app calls
    /// `verify_external_auth` itself. Whether a user with MFA may take it is the server's policy, which the
    /// step-up check says by offering it or not.
    External,
}

impl Route {
    /// The methods this route allows, in [`Method::ALL`] order (from [`Method::route`]: one table says where a
    /// method belongs).
    pub fn methods(self) -> impl Iterator<Item = Method> {
        Method::ALL.into_iter().filter(move |method| method.route() == self)
    }

    /// Whether a person is asked on this route (MFA, re-authentication); external auth asks nobody.
    #[must_use]
    pub fn prompts_a_person(self) -> bool {
        !matches!(self, Route::External)
    }

    /// Whether `method` belongs to this route.
    #[must_use]
    pub fn allows(self, method: Method) -> bool {
        method.route() == self
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Route::Mfa => "MFA",
            Route::Reauthenticate => "re-authentication",
            Route::External => "external auth",
        })
    }
}

/// One way to verify the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Method {
    /// A one-time code sent to the user's email address.
    EmailOtp,
    /// A one-time code sent by SMS to the user's phone number.
    SmsOtp,
    /// A signature (EIP-191 `personal_sign`) by one of the user's external wallets. Embedded wallets never qualify.
    ExternalWallet,
    /// A WebAuthn assertion from one of the user's passkeys, with user verification.
    Passkey,
    /// A TOTP code from an authenticator app.
    Totp,
    /// One of the user's single-use recovery codes.
    RecoveryCode,
    /// A JWT signed by the app's own backend for this user and these scopes (Dynamic's
    /// `requestExternalAuthElevatedToken`).
    ExternalAuth,
}

impl Method {
    /// Every method, re-authentication first, external auth last.
    pub const ALL: [Method; 7] = [
        Method::EmailOtp,
        Method::SmsOtp,
        Method::ExternalWallet,
        Method::Passkey,
        Method::Totp,
        Method::RecoveryCode,
        Method::ExternalAuth,
    ];

    /// The route this method belongs to.
    #[must_use]
    pub fn route(self) -> Route {
        match self {
            Method::EmailOtp | Method::SmsOtp | Method::ExternalWallet => Route::Reauthenticate,
            Method::Passkey | Method::Totp | Method::RecoveryCode => Route::Mfa,
            Method::ExternalAuth => Route::External,
        }
    }

    /// The method that verifies a credential of `format` (a check's offer, or one of the user's verified
    /// credentials). Embedded wallets never qualify.
    ///
    /// # Errors
    /// [`CredentialError::EmbeddedWallet`] for an embedded wallet, [`CredentialError::UnsupportedFormat`] for a
    /// format no method verifies.
    pub fn for_format(format: &CredentialFormat, embedded_wallet: bool) -> Result<Method, CredentialError> {
        match format {
            CredentialFormat::Email => Ok(Method::EmailOtp),
            CredentialFormat::PhoneNumber => Ok(Method::SmsOtp),
            CredentialFormat::Blockchain if embedded_wallet => Err(CredentialError::EmbeddedWallet),
            CredentialFormat::Blockchain => Ok(Method::ExternalWallet),
            CredentialFormat::Passkey => Ok(Method::Passkey),
            CredentialFormat::Totp => Ok(Method::Totp),
            CredentialFormat::RecoveryCode => Ok(Method::RecoveryCode),
            CredentialFormat::Oauth | CredentialFormat::ExternalUser | CredentialFormat::Unknown(_) => {
                Err(CredentialError::UnsupportedFormat { format: format.clone() })
            }
        }
    }

    /// Whether the method starts by sending a one-time code.
    #[must_use]
    pub fn is_otp(self) -> bool {
        matches!(self, Method::EmailOtp | Method::SmsOtp)
    }

    /// The method's name in a menu of choices ("Authenticator app (TOTP)"); `Display` is the name inside a
    /// sentence ("authenticator app code").
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Method::EmailOtp => "Email code",
            Method::SmsOtp => "SMS code",
            Method::ExternalWallet => "Wallet signature",
            Method::Passkey => "Passkey",
            Method::Totp => "Authenticator app (TOTP)",
            Method::RecoveryCode => "Recovery code",
            // Never offered to a person (the prompt driver keeps to the person's routes); named all the same.
            Method::ExternalAuth => "The app's backend",
        }
    }

    /// The value of the JWT `amr` claim for a token obtained with this method.
    #[must_use]
    pub fn amr(self) -> &'static str {
        match self {
            Method::EmailOtp => "email",
            Method::SmsOtp => "sms",
            Method::ExternalWallet => "wallet",
            Method::Passkey => "passkey",
            Method::Totp => "totp",
            Method::RecoveryCode => "recovery",
            Method::ExternalAuth => "external",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::EmailOtp => "email code",
            Method::SmsOtp => "SMS code",
            Method::ExternalWallet => "wallet signature",
            Method::Passkey => "passkey",
            Method::Totp => "authenticator app code",
            Method::RecoveryCode => "recovery code",
            Method::ExternalAuth => "the app's backend",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_is_in_exactly_its_route() {
        for method in Method::ALL {
            assert!(method.route().methods().any(|m| m == method));
            assert!(method.route().allows(method));
            for other in [Route::Mfa, Route::Reauthenticate, Route::External] {
                assert_eq!(other.allows(method), other == method.route());
            }
        }
    }
}
