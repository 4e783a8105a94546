//! The verification methods as the server serves them, one module per method: its endpoints (HTTP in and out),
//! its check, its credentials in the step-up offer, its part of the OpenAPI document and its metrics label. This
//! file is the one table that lists them; adding a method is a module and its entries here
//! (docs/adding-a-method.md).
//!
//! What every method shares — the policy checked before a factor is spent, the lockout, the limits, the answer
//! a proof earns — is in `services`.

pub mod external_auth;
pub mod otp;
pub mod passkey;
pub mod recovery;
pub mod totp;
pub mod wallet;

use axum::Router;
use stepup_core::Method;
use stepup_proto::StepUpCredential;

use crate::routes::openapi::Document;
use crate::services::ServiceError;
use crate::services::offer::Account;
use crate::state::AppState;

/// What the server serves of one method module.
pub(crate) struct Served {
    /// Core's methods it verifies (one module serves email and SMS codes), in the order the offer lists them.
    pub(crate) methods: &'static [Method],
    /// Mounts its endpoints on the SDK router (paths under `/sdk/{environment_id}`).
    pub(crate) routes: fn(Router<AppState>) -> Router<AppState>,
    /// Adds its endpoints to the OpenAPI document.
    pub(crate) document: fn(&mut Document),
    /// Its verification endpoints (route templates under `/sdk/{environment_id}`), each with the method label
    /// the verification metrics count it under.
    pub(crate) verifications: &'static [(&'static str, &'static str)],
}

/// Every method module, in the order the step-up offer lists their credentials: re-authentication (email,
/// phone, wallets), MFA (authenticator apps, passkeys, recovery codes), the app's backend last.
const SERVED: [Served; 6] =
    [otp::SERVED, wallet::SERVED, totp::SERVED, passkey::SERVED, recovery::SERVED, external_auth::SERVED];

/// Mounts every method's endpoints.
pub(crate) fn routes(router: Router<AppState>) -> Router<AppState> {
    SERVED.iter().fold(router, |router, served| (served.routes)(router))
}

/// Adds every method's endpoints to the OpenAPI document.
pub(crate) fn document(doc: &mut Document) {
    for served in &SERVED {
        (served.document)(doc);
    }
}

/// The verification metrics label of a route template, if it is a verification endpoint.
pub(crate) fn verification_label(route: &str) -> Option<&'static str> {
    let route = route.strip_prefix("/sdk/{environment_id}")?;
    SERVED
        .iter()
        .flat_map(|served| served.verifications)
        .find(|(path, _)| *path == route)
        .map(|(_, label)| *label)
}

/// Every method the server serves, in offer order.
pub(crate) fn offer_order() -> impl Iterator<Item = Method> {
    SERVED.iter().flat_map(|served| served.methods.iter().copied())
}

/// `method`'s credentials of the user in the step-up offer (the offer's policy has chosen the method).
///
/// # Errors
/// [`ServiceError::Storage`].
pub(crate) async fn offer(
    method: Method,
    account: &Account<'_>,
) -> Result<Vec<StepUpCredential>, ServiceError> {
    match method {
        Method::EmailOtp | Method::SmsOtp => otp::offer(account, method).await,
        Method::ExternalWallet => wallet::offer(account).await,
        Method::Totp => Ok(totp::offer(account)),
        Method::Passkey => Ok(passkey::offer(account)),
        Method::RecoveryCode => recovery::offer(account).await,
        Method::ExternalAuth => Ok(external_auth::offer(account)),
    }
}

/// A method's name in configuration files (`enabled_methods`) and in `/settings`; `None` for external auth,
/// which no setting switches (it is on when the environment trusts a backend).
#[must_use]
pub fn setting_name(method: Method) -> Option<&'static str> {
    match method {
        Method::EmailOtp => Some("email"),
        Method::SmsOtp => Some("sms"),
        Method::ExternalWallet => Some("wallet"),
        Method::Passkey => Some("passkey"),
        Method::Totp => Some("totp"),
        Method::RecoveryCode => Some("recovery_code"),
        Method::ExternalAuth => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_is_served_once_and_labelled() {
        let served: Vec<Method> = offer_order().collect();
        for method in Method::ALL {
            assert_eq!(served.iter().filter(|m| **m == method).count(), 1, "{method:?}");
        }
        assert_eq!(verification_label("/sdk/{environment_id}/users/mfa/auth/totp"), Some("totp"));
        assert_eq!(verification_label("/sdk/{environment_id}/emailVerifications/signin"), Some("signin"));
        assert_eq!(verification_label("/sdk/{environment_id}/users"), None);
        assert_eq!(verification_label("/users/mfa/auth/totp"), None);
    }

    /// The offer lists credentials in this order (and the first is the default when no default device is
    /// offered): re-authentication by email, phone, wallet; MFA by authenticator app, passkey, recovery code; the
    /// app's backend last. Reordering the table changes what clients pre-select.
    #[test]
    fn the_offer_order_is_pinned() {
        let order: Vec<Method> = offer_order().collect();
        assert_eq!(
            order,
            [
                Method::EmailOtp,
                Method::SmsOtp,
                Method::ExternalWallet,
                Method::Totp,
                Method::Passkey,
                Method::RecoveryCode,
                Method::ExternalAuth,
            ]
        );
    }
}
