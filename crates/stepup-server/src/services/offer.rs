//! The step-up offer (`POST /stepUp/check`): whether a scope needs step-up, and with which of the user's
//! credentials. The policy is here — MFA methods for a user who has them (re-authentication is then not
//! offered), otherwise re-authentication; only methods the environment enables; the app's backend beside either
//! when the method allows it — and each method module lists its own credentials (`methods::offer`).

use stepup_core::Route;
use stepup_proto::{StepUpCheckResponse, StepUpCredential, TokenScope};
use tokio::sync::OnceCell;

use super::ServiceError;
use crate::environment::Environment;
use crate::methods;
use crate::state::AppState;
use crate::store::{CredentialRow, MfaDeviceRow, PasskeyRow};

/// What the offer knows of a user's account, read once for every method: the MFA factors (which decide the
/// route), and the verified credentials when a re-authentication method first asks for them.
#[derive(Debug)]
pub struct Account<'a> {
    /// The server.
    pub state: &'a AppState,
    /// The environment.
    pub env: &'a Environment,
    /// The user.
    pub user_id: &'a str,
    /// The user's TOTP devices, verified or not.
    pub devices: Vec<MfaDeviceRow>,
    /// The user's passkeys.
    pub passkeys: Vec<PasskeyRow>,
    credentials: OnceCell<Vec<CredentialRow>>,
}

impl<'a> Account<'a> {
    /// Reads the user's MFA factors.
    ///
    /// # Errors
    /// [`ServiceError::Storage`].
    pub async fn load(
        state: &'a AppState,
        env: &'a Environment,
        user_id: &'a str,
    ) -> Result<Self, ServiceError> {
        let devices = state.store().totp_devices(user_id).await?;
        let passkeys = state.store().passkeys(user_id).await?;
        Ok(Self { state, env, user_id, devices, passkeys, credentials: OnceCell::new() })
    }

    /// Whether the user has a verified MFA method.
    #[must_use]
    pub fn has_mfa(&self) -> bool {
        self.devices.iter().any(|d| d.verified) || !self.passkeys.is_empty()
    }

    /// The user's verified credentials (email addresses, phone numbers, wallets), oldest first; read on first use.
    ///
    /// # Errors
    /// [`ServiceError::Storage`].
    pub async fn credentials(&self) -> Result<&[CredentialRow], ServiceError> {
        let credentials = self
            .credentials
            .get_or_try_init(|| async { self.state.store().credentials(self.user_id).await })
            .await?;
        Ok(credentials)
    }
}

/// The answer to `POST /stepUp/check` for `scope`: required if step-up is on and the environment's policy lists
/// the scope, with the user's credentials and the default one.
///
/// # Errors
/// [`ServiceError::UnknownScope`] for a scope this server does not know (a typo must never read as "no step-up
/// needed"); [`ServiceError::Storage`].
pub async fn check(
    state: &AppState,
    env: &Environment,
    user_id: &str,
    scope: &TokenScope,
) -> Result<StepUpCheckResponse, ServiceError> {
    if !scope.is_known() {
        return Err(ServiceError::UnknownScope(scope.clone()));
    }
    let required = env.config.policy.requires_step_up(scope);
    state.metrics().step_up_check(required);
    if !required {
        return Ok(StepUpCheckResponse {
            is_required: false,
            credentials: vec![],
            default_credential_id: None,
        });
    }
    let account = Account::load(state, env, user_id).await?;
    let credentials = credentials(&account).await?;
    let default_credential_id = default_credential(&account, &credentials).map(str::to_owned);
    Ok(StepUpCheckResponse { is_required: true, credentials, default_credential_id })
}

/// The credential a client pre-selects (Dynamic's routing rule): the user's default device when one is set and
/// offered; else, among the MFA methods offered, the most recently created — for an authenticator app, when its
/// enrolment was finished (a passkey added after an authenticator app is the one the person last set up; of two
/// made in the same second, the later in the offer); else the first credential offered.
#[must_use]
pub fn default_credential<'a>(account: &Account<'_>, offered: &'a [StepUpCredential]) -> Option<&'a str> {
    let offered_id = |id: &str| offered.iter().find(|c| c.id == id).map(|c| c.id.as_str());
    let default_device = account.devices.iter().find(|d| d.verified && d.is_default);
    if let Some(id) = default_device.and_then(|d| offered_id(&d.id)) {
        return Some(id);
    }
    // A device is a method from its verification on (an app added, left unverified and finished after a passkey
    // was registered is the one set up last).
    let devices = account
        .devices
        .iter()
        .filter(|d| d.verified)
        .map(|d| (d.verified_at.unwrap_or(d.created_at), d.id.as_str()));
    let passkeys = account.passkeys.iter().map(|p| (p.created_at, p.id.as_str()));
    devices
        .chain(passkeys)
        .filter_map(|(created_at, id)| Some((created_at, offered_id(id)?)))
        // `max_by_key` keeps the last of equals: the later in the offer wins a tie.
        .max_by_key(|(created_at, _)| *created_at)
        .map(|(_, id)| id)
        .or_else(|| offered.first().map(|c| c.id.as_str()))
}

/// The credentials `account` can step up with, in the methods' table order: a user with MFA
/// is offered MFA methods, anyone else re-authentication; the app's backend where its method allows; only
/// methods the environment enables.
///
/// # Errors
/// [`ServiceError::Storage`].
pub async fn credentials(account: &Account<'_>) -> Result<Vec<StepUpCredential>, ServiceError> {
    let route = if account.has_mfa() { Route::Mfa } else { Route::Reauthenticate };
    let policy = &account.env.config.policy;
    let mut offered = Vec::new();
    for method in methods::offer_order() {
        if (method.route() == route || method.route() == Route::External) && policy.method_enabled(method) {
            offered.extend(methods::offer(method, account).await?);
        }
    }
    Ok(offered)
}
