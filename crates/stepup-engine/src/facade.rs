//! `StepUpAuth`: the engine's public face, mirroring Dynamic's `StepUpAuthModule` (docs/design.md §1).

use std::sync::Arc;
use std::time::Duration;

use ractor::RpcReplyPort;
use ractor::rpc::CallResult;
use stepup_core::{
    CredentialId, ElevatedToken, Jwt, MethodOptions, OtpCode, OtpVerification, RecoveryCode, Route, Scope,
    ScopeSet, SessionInfo, StepUpError, TokenCell, TokenId, TokenInfo, TotpCode,
};
use tokio::sync::watch;

use crate::api::ApiClient;
use crate::builder::StepUpAuthBuilder;
use crate::coordinator::{CoordinatorMsg, EngineSnapshot, OnDemand, StepUpState, VerifyCaller};
use crate::middleware::{StepUpFlights, StepUpMiddleware};
use crate::requests::EngineHandle;
use crate::timeouts::Timeouts;
use crate::verifiers::{
    ExternalAuthRequest, OtpRequest, PasskeyRequest, RecoveryCodeRequest, TotpRequest, VerifyRequest,
    WalletRequest,
};

/// Asks the server whether `scope` needs step-up, unless a stored token answers: the requirement, and whether the
/// server was asked (only its answers are reported to the flow machine).
pub(crate) async fn fetch_requirement(
    api: &ApiClient,
    tokens: &TokenCell,
    scope: &Scope,
) -> Result<(StepUpRequirement, bool), StepUpError> {
    if tokens.get(scope).is_some() {
        let held = StepUpRequirement {
            required: false,
            options: MethodOptions::unknown(),
            default_credential: None,
        };
        return Ok((held, false));
    }
    let answer = api.step_up_check(scope).await?;
    let requirement = StepUpRequirement {
        required: answer.is_required,
        options: MethodOptions::from_check(&answer),
        default_credential: answer.default_credential_id.as_deref().map(CredentialId::new),
    };
    Ok((requirement, true))
}

/// What a step-up check found: whether step-up is needed and with which credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpRequirement {
    /// Whether the scope needs step-up now.
    pub required: bool,
    /// The user's usable credentials (unknown when a stored token answered without asking the server).
    pub options: MethodOptions,
    /// The credential the server suggests.
    pub default_credential: Option<CredentialId>,
}

/// The step-up engine. Cheap to clone; every clone drives the same coordinator. The actors stop when the last
/// clone is dropped.
///
/// Verify and prompt calls return the stored token's public description ([`TokenInfo`]); the raw JWT stays in
/// the token cell, from where the HTTP layer applies it.
#[derive(Clone)]
pub struct StepUpAuth {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// Started on first use (`coordinator::OnDemand`; it stops when the engine is dropped).
    pub(crate) coordinator: OnDemand,
    pub(crate) api: ApiClient,
    pub(crate) tokens: TokenCell,
    pub(crate) state: watch::Receiver<StepUpState>,
    pub(crate) timeouts: Timeouts,
    /// Challenge-driven step-ups, one at a time per scope set (shared by every `StepUpMiddleware`).
    pub(crate) flights: StepUpFlights,
    /// The front end (MFA management's guided calls ask the person through it too).
    pub(crate) frontend: Option<crate::frontend::SharedFrontend>,
    /// The passkey authenticator (MFA management registers passkeys with it).
    pub(crate) passkey: Option<Arc<dyn crate::signers::PasskeyAuthenticator>>,
}

impl std::fmt::Debug for StepUpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepUpAuth")
            .field("api", &self.inner.api)
            .field("state", &self.inner.state.borrow().name())
            .finish_non_exhaustive()
    }
}

fn scope_set(scopes: &[Scope]) -> ScopeSet {
    scopes.iter().cloned().collect()
}

impl StepUpAuth {
    /// A builder for the engine of environment `environment_id` on the server at `base_url`:
    /// `StepUpAuth::builder(base_url, environment_id).session(..).build().await`.
    pub fn builder(base_url: impl Into<String>, environment_id: impl Into<String>) -> StepUpAuthBuilder {
        StepUpAuthBuilder::new(base_url, environment_id)
    }

    pub(crate) fn from_inner(inner: Inner) -> Self {
        Self { inner: Arc::new(inner) }
    }

    /// Whether `scope` needs step-up. `false` at once, without a network call, while a stored token covers it;
    /// otherwise the server decides (`POST /stepUp/check`) and the answer moves the flow machine.
    ///
    /// # Errors
    /// [`StepUpError::Unauthorized`] without a valid session; [`StepUpError::Timeout`] or
    /// [`StepUpError::Transport`] when the server does not answer.
    pub async fn is_step_up_required(&self, scope: Scope) -> Result<bool, StepUpError> {
        Ok(self.check(scope).await?.required)
    }

    /// As [`StepUpAuth::is_step_up_required`], with the user's usable credentials.
    ///
    /// # Errors
    /// As [`StepUpAuth::is_step_up_required`].
    pub async fn check(&self, scope: Scope) -> Result<StepUpRequirement, StepUpError> {
        // One path for the facade and apps that send messages: the coordinator asks and takes the answer in,
        // so when this returns `state()` already shows it.
        let timeout = self.inner.timeouts.verify_call();
        self.call(|reply| CoordinatorMsg::Check { scope, reply }, timeout, StepUpError::EngineStopped).await?
    }

    /// The coordinator, as apps may address it: the public [`EngineRequest`]s only (`ractor::call!` /
    /// `ractor::cast!` on it); the state is on [`StepUpAuth::subscribe`]. See `examples/actor_messages.rs`.
    /// Starts the coordinator if the engine has not been asked anything yet.
    ///
    /// # Errors
    /// [`StepUpError::EngineStopped`] if the coordinator cannot start.
    pub fn handle(&self) -> Result<EngineHandle, StepUpError> {
        Ok(EngineHandle::new(self.inner.coordinator.get()?.get_derived()))
    }

    /// Whether the coordinator has started (it starts on first use).
    #[cfg(test)]
    pub(crate) fn coordinator_started(&self) -> bool {
        self.inner.coordinator.running().is_some()
    }

    /// The coordinator itself, reports and all: the engine's own parts only.
    #[cfg(test)]
    pub(crate) fn coordinator_actor(&self) -> &ractor::ActorRef<CoordinatorMsg> {
        #[allow(clippy::expect_used)]
        self.inner.coordinator.get().expect("the coordinator starts")
    }

    /// Sends a one-time code to the user's email or phone (`credential`, or the email, else the phone). The
    /// next [`StepUpAuth::verify_otp`] checks the code against it.
    ///
    /// # Errors
    /// [`StepUpError::TooManyVerificationAttempts`] after too many sends; [`StepUpError::NoMethodsAvailable`]
    /// when the user has no email or phone; [`StepUpError::NotFound`] or [`StepUpError::UnsupportedCredential`]
    /// for a `credential` that is not the user's email or phone; [`StepUpError::VerifierFailed`] if the OTP
    /// verifier crashed; [`StepUpError::Timeout`] or [`StepUpError::Transport`] when the server does not answer.
    pub async fn send_otp(&self, credential: Option<CredentialId>) -> Result<OtpVerification, StepUpError> {
        let dropped = StepUpError::VerifierFailed { method: stepup_core::Method::EmailOtp };
        let timeout = self.inner.timeouts.verify_call();
        self.call(
            |reply| CoordinatorMsg::SendOtp { credential, prompt: None, reuse_code_for: None, reply },
            timeout,
            dropped,
        )
        .await?
    }

    /// Checks the one-time code (Dynamic's `verificationToken`) of the code sent last and stores the token for
    /// `scopes`.
    ///
    /// # Errors
    /// [`StepUpError::OtpNotSent`] without a sent code; [`StepUpError::WrongVerificationToken`] for a wrong code;
    /// [`StepUpError::InvalidVerification`] once the code is used up or expired;
    /// [`StepUpError::ReauthenticationNotAllowed`] for a user with MFA methods.
    pub async fn verify_otp(
        &self,
        code: impl Into<OtpCode>,
        scopes: &[Scope],
    ) -> Result<TokenInfo, StepUpError> {
        self.verify(OtpRequest { code: code.into() }.into(), scopes).await
    }

    /// Signs a fresh EIP-4361 message with the external wallet and stores the token for `scopes`.
    /// `wallet_id` names one of the user's wallets (it must be the signer's); `None` uses the signer's.
    ///
    /// # Errors
    /// [`StepUpError::EmbeddedWalletNotAllowed`] for an embedded wallet (before anything is signed when the
    /// signer says it is embedded or `wallet_id` names an embedded wallet; by the server otherwise);
    /// [`StepUpError::NotConfigured`] without a wallet signer; [`StepUpError::WalletNotLinked`] for a wallet
    /// that is not the user's; [`StepUpError::Cancelled`] when the user declines to sign.
    pub async fn verify_wallet(
        &self,
        wallet_id: Option<CredentialId>,
        scopes: &[Scope],
    ) -> Result<TokenInfo, StepUpError> {
        self.verify(WalletRequest { wallet_id }.into(), scopes).await
    }

    /// Runs a passkey assertion with the authenticator and stores the token for `scopes`.
    ///
    /// # Errors
    /// [`StepUpError::NoPasskeyCredentials`] when the user has no passkey; the `Passkey*` variants when the
    /// server refuses the assertion; [`StepUpError::NotConfigured`] without an authenticator;
    /// [`StepUpError::Cancelled`] when the person declines; [`StepUpError::SignerFailed`] when the authenticator
    /// fails. As every verification: `Busy`, `Timeout`, `Transport`.
    pub async fn verify_passkey_mfa(&self, scopes: &[Scope]) -> Result<TokenInfo, StepUpError> {
        self.verify(PasskeyRequest.into(), scopes).await
    }

    /// Checks a TOTP code (of `device_id`, or the default device) and stores the token for `scopes`.
    ///
    /// # Errors
    /// [`StepUpError::MfaInvalidCode`] for a wrong or reused code; [`StepUpError::Locked`] after 5 failures in a
    /// row; [`StepUpError::MfaDeviceNotFound`] for an unknown device.
    pub async fn verify_totp_mfa(
        &self,
        code: impl Into<TotpCode>,
        device_id: Option<CredentialId>,
        scopes: &[Scope],
    ) -> Result<TokenInfo, StepUpError> {
        self.verify(TotpRequest { code: code.into(), device_id }.into(), scopes).await
    }

    /// Spends a recovery code and stores the token for `scopes`.
    ///
    /// # Errors
    /// [`StepUpError::MfaInvalidCode`] for a wrong or used code; [`StepUpError::Locked`] after 5 failures.
    pub async fn verify_recovery_code(
        &self,
        code: impl Into<RecoveryCode>,
        scopes: &[Scope],
    ) -> Result<TokenInfo, StepUpError> {
        self.verify(RecoveryCodeRequest { code: code.into() }.into(), scopes).await
    }

    /// Elevates by a JWT the app's own backend signed for this user (Dynamic's
    /// `requestExternalAuthElevatedToken`): the server checks it against the keys the environment trusts and
    /// answers a token for the scopes the JWT names, which must cover `scopes`. No person is asked. It runs
    /// through the flow machine on its own route (external auth): a check that did not offer it (the server's
    /// policy, e.g. for users with MFA) refuses it before any call; a running prompt makes it `Busy`.
    ///
    /// # Errors
    /// [`StepUpError::InvalidExternalAuth`] for a JWT the server refuses (the message says why: signature, key,
    /// audience, expiry, lifetime, subject, a `jti` used before...); [`StepUpError::ScopesNotGranted`] when its
    /// scopes do not cover `scopes`; [`StepUpError::ReauthenticationNotAllowed`] for a user with MFA where the
    /// environment does not allow it; [`StepUpError::NoMethodsAvailable`] when the last check did not offer
    /// external auth; [`StepUpError::ExternalAuthUnavailable`] when the server cannot fetch the backend's keys.
    pub async fn verify_external_auth(
        &self,
        backend_jwt: impl Into<Jwt>,
        scopes: &[Scope],
    ) -> Result<TokenInfo, StepUpError> {
        self.verify(ExternalAuthRequest { jwt: backend_jwt.into() }.into(), scopes).await
    }

    /// Runs any verification: the message form of the `verify_*` methods.
    ///
    /// # Errors
    /// As the `verify_*` method of the request; [`StepUpError::Busy`] while another verification runs;
    /// [`StepUpError::NoScopes`] for no scopes; [`StepUpError::VerifierFailed`] if the verifier crashed;
    /// [`StepUpError::Cancelled`] if the flow was cancelled or reset meanwhile; [`StepUpError::Timeout`] after the
    /// verify timeout (signer included) and [`StepUpError::Transport`] when the server does not answer. Every
    /// `verify_*` method can also fail in these ways.
    pub async fn verify(&self, request: VerifyRequest, scopes: &[Scope]) -> Result<TokenInfo, StepUpError> {
        let method = request.method(None);
        let scopes = scope_set(scopes);
        let timeout = self.inner.timeouts.verify_call();
        let dropped = StepUpError::VerifierFailed { method };
        self.call(
            |reply| CoordinatorMsg::Verify { scopes, request, caller: VerifyCaller::App(reply) },
            timeout,
            dropped,
        )
        .await?
    }

    /// Runs a prompt flow through the front end: MFA if the user has MFA methods, else re-authentication.
    /// Concurrent prompts for scopes the running flow covers join it (one prompt, one verification).
    ///
    /// # Errors
    /// [`StepUpError::Cancelled`] when the person cancels or the state is reset; [`StepUpError::NotConfigured`]
    /// without a front end; [`StepUpError::Busy`] while a flow for other scopes runs; the last verification's
    /// error when the tries run out; [`StepUpError::Timeout`] after the prompt timeout.
    pub async fn prompt_step_up_auth(&self, scopes: &[Scope]) -> Result<TokenInfo, StepUpError> {
        self.prompt(scopes, None).await
    }

    /// As [`StepUpAuth::prompt_step_up_auth`], MFA only (passkey, TOTP, recovery code).
    ///
    /// # Errors
    /// As [`StepUpAuth::prompt_step_up_auth`]; [`StepUpError::NoMethodsAvailable`] without MFA methods.
    pub async fn prompt_mfa(&self, scopes: &[Scope]) -> Result<TokenInfo, StepUpError> {
        self.prompt(scopes, Some(Route::Mfa)).await
    }

    /// As [`StepUpAuth::prompt_step_up_auth`], re-authentication only (email, SMS, external wallet).
    ///
    /// # Errors
    /// As [`StepUpAuth::prompt_step_up_auth`]; [`StepUpError::ReauthenticationNotAllowed`] for a user with MFA.
    pub async fn prompt_reauthenticate(&self, scopes: &[Scope]) -> Result<TokenInfo, StepUpError> {
        self.prompt(scopes, Some(Route::Reauthenticate)).await
    }

    async fn prompt(&self, scopes: &[Scope], route: Option<Route>) -> Result<TokenInfo, StepUpError> {
        self.prompt_with(scopes, route, false).await
    }

    /// A prompt that verifies afresh even when a stored token covers `scopes` (the middleware's answer to a
    /// challenge with `max_age`).
    pub(crate) async fn prompt_with(
        &self,
        scopes: &[Scope],
        route: Option<Route>,
        fresh: bool,
    ) -> Result<TokenInfo, StepUpError> {
        let scopes = scope_set(scopes);
        // The coordinator ends the prompt at the prompt timeout; the margin covers its answer.
        let timeout = self.inner.timeouts.prompt_call();
        let message = |reply| CoordinatorMsg::Prompt { scopes, route, fresh, reply };
        self.call(message, timeout, StepUpError::EngineStopped).await?
    }

    /// A prompt that waits its turn instead of answering `Busy` while a prompt or a verification for other scopes
    /// runs (a step-up the middleware or MFA management needs: the request behind it waits, as it would for a
    /// slow server), bounded by the prompt timeout.
    pub(crate) async fn prompt_in_turn(
        &self,
        scopes: &[Scope],
        route: Option<Route>,
        fresh: bool,
    ) -> Result<TokenInfo, StepUpError> {
        let deadline = tokio::time::Instant::now() + self.inner.timeouts.prompt_call();
        let mut state = self.subscribe();
        loop {
            // Seen before asking: a change after this is one the wait below hears of.
            state.borrow_and_update();
            match self.prompt_with(scopes, route, fresh).await {
                Err(StepUpError::Busy) => loop {
                    match tokio::time::timeout_at(deadline, state.changed()).await {
                        Err(_elapsed) => return Err(StepUpError::Timeout),
                        Ok(Err(_closed)) => return Err(StepUpError::EngineStopped),
                        // Still a prompt or a verification: wait for the next change.
                        Ok(Ok(())) if state.borrow().is_running() => {}
                        Ok(Ok(())) => break,
                    }
                },
                other => return other,
            }
        }
    }

    /// Cancels the running flow; every waiting caller gets [`StepUpError::Cancelled`]. Tokens are kept.
    ///
    /// # Errors
    /// [`StepUpError::EngineStopped`] when the engine has stopped.
    pub fn cancel(&self) -> Result<(), StepUpError> {
        // A coordinator that never started runs no flow: nothing to cancel.
        match self.inner.coordinator.running() {
            Some(coordinator) => {
                coordinator.cast(CoordinatorMsg::Cancel).map_err(|_| StepUpError::EngineStopped)
            }
            None => Ok(()),
        }
    }

    /// Forgets everything: every token, the running flow, the sent code. Waiting callers get
    /// [`StepUpError::Cancelled`]; a verification that finishes later never elevates.
    ///
    /// # Errors
    /// [`StepUpError::EngineStopped`] when the engine has stopped.
    pub async fn reset_state(&self) -> Result<(), StepUpError> {
        let reply = |reply| CoordinatorMsg::Reset { reply: Some(reply) };
        self.call(reply, self.inner.timeouts.immediate_call(), StepUpError::EngineStopped).await
    }

    /// The session JWT the engine sends now. Verify answers carry the session, re-signed when its claims change
    /// (after an MFA verification), and the engine adopts it when it is for the same user: persist this one (or
    /// watch [`StepUpAuth::subscribe_session`]) to resume with it.
    #[must_use]
    pub fn session(&self) -> Option<Jwt> {
        self.inner.api.session()
    }

    /// The readable claims of the current session (user, session id, expiry, last MFA), if it is a JWT.
    #[must_use]
    pub fn session_info(&self) -> Option<SessionInfo> {
        self.session().and_then(|jwt| SessionInfo::parse(&jwt).ok())
    }

    /// A receiver that sees every change of the session JWT.
    #[must_use]
    pub fn subscribe_session(&self) -> watch::Receiver<Option<Jwt>> {
        self.inner.api.subscribe_session()
    }

    /// Replaces the session JWT, for apps that refresh the session themselves; `None` signs out. Another
    /// session (another user's, or a new session of the same user: another `sid`), or none, also resets the
    /// engine, as [`StepUpAuth::reset_state`] does: elevated tokens are bound to the session that earned them, so
    /// the stored ones would be refused (and another user must never send them). A re-signed JWT of the same
    /// session keeps them.
    ///
    /// # Errors
    /// [`StepUpError::EngineStopped`] when the engine has stopped (the session is replaced all the same).
    pub async fn set_session(&self, session: Option<Jwt>) -> Result<(), StepUpError> {
        let same_session = match (self.inner.api.session(), session.as_ref()) {
            (Some(held), Some(new)) => SessionInfo::same_session(&held, new),
            _ => false,
        };
        // Another session's: the previous session's tokens go first, so none of them goes out with the new one.
        let reset = if same_session { Ok(()) } else { self.reset_state().await };
        self.inner.api.set_session(session);
        reset
    }

    /// The current state of the flow.
    #[must_use]
    pub fn state(&self) -> StepUpState {
        self.inner.state.borrow().clone()
    }

    /// The state and the stored tokens as one consistent pair, read by the coordinator between two messages
    /// (`state()` and `tokens()` are read separately and may straddle a change).
    ///
    /// # Errors
    /// [`StepUpError::EngineStopped`] when the engine has stopped.
    pub async fn snapshot(&self) -> Result<EngineSnapshot, StepUpError> {
        let inspect = |reply| CoordinatorMsg::Inspect { reply };
        self.call(inspect, self.inner.timeouts.immediate_call(), StepUpError::EngineStopped).await
    }

    /// A receiver that sees every state change (for UIs).
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<StepUpState> {
        self.inner.state.clone()
    }

    /// The token cell: lock-free reads of the stored tokens.
    #[must_use]
    pub fn tokens(&self) -> &TokenCell {
        &self.inner.tokens
    }

    /// The token to send with a request that needs `scope`: a multi-use token is returned and kept; a
    /// single-use token is taken out of the cell (exactly once, whatever the concurrency) and the flow machine
    /// is told it is spent. `None` when no unexpired token covers the scope.
    #[must_use]
    pub fn token_for(&self, scope: &Scope) -> Option<Arc<ElevatedToken>> {
        let token = self.inner.tokens.claim(scope)?;
        if token.is_single_use() {
            let spent = CoordinatorMsg::TokenConsumed { token_id: token.id().clone() };
            // If the engine stopped (or never ran a flow) there is no machine to tell.
            if let Some(coordinator) = self.inner.coordinator.running() {
                let _ = coordinator.cast(spent);
            }
        }
        Some(token)
    }

    /// The token with this id, taken as [`StepUpAuth::token_for`] takes one: a single-use token is removed (and
    /// the engine told), so of racing callers exactly one gets it. `None` when it is gone or expired.
    pub(crate) fn take_token(&self, id: &TokenId) -> Option<Arc<ElevatedToken>> {
        let tokens = &self.inner.tokens;
        let token = Arc::clone(tokens.snapshot().by_id(id)?);
        if token.is_expired_at(tokens.now()) {
            return None;
        }
        if token.is_single_use() {
            if !tokens.remove(id) {
                return None;
            }
            self.tell_spent(id);
        }
        Some(token)
    }

    /// Drops a token the server refused, and tells the coordinator it is gone.
    pub(crate) fn discard_token(&self, id: &TokenId) {
        if self.inner.tokens.remove(id) {
            self.tell_spent(id);
        }
    }

    /// Tells the flow machine that a token is gone, if it runs (one that never ran a flow holds no token).
    fn tell_spent(&self, id: &TokenId) {
        if let Some(coordinator) = self.inner.coordinator.running() {
            let _ = coordinator.cast(CoordinatorMsg::TokenConsumed { token_id: id.clone() });
        }
    }

    /// The middleware's single-flight locks.
    pub(crate) fn flights(&self) -> &StepUpFlights {
        &self.inner.flights
    }

    /// The front end, if the engine has one (one request out at a time, shared with the flows).
    pub(crate) fn frontend(&self) -> Option<&crate::frontend::SharedFrontend> {
        self.inner.frontend.as_ref()
    }

    /// The engine's time limits.
    pub(crate) fn timeouts(&self) -> crate::timeouts::Timeouts {
        self.inner.timeouts
    }

    /// The passkey authenticator, if the engine has one.
    pub(crate) fn passkey_authenticator(&self) -> Option<Arc<dyn crate::signers::PasskeyAuthenticator>> {
        self.inner.passkey.clone()
    }

    /// An HTTP client for the app's own calls, with [`StepUpMiddleware`] in its stack: requests tagged with
    /// `.elevated(scope)` get the token, and step-up challenges are answered (docs/design.md §7). It shares the engine's
    /// connection pool, TLS setup and timeouts; it sends no session (the app adds its own authorization).
    #[must_use]
    pub fn http_client(&self) -> reqwest_middleware::ClientWithMiddleware {
        reqwest_middleware::ClientBuilder::new(self.api().http().clone())
            .with(StepUpMiddleware::new(self.clone()))
            .build()
    }

    /// The API client (shared connection pool and session).
    #[must_use]
    pub fn api(&self) -> &ApiClient {
        &self.inner.api
    }

    async fn call<T: Send + 'static>(
        &self,
        message: impl FnOnce(RpcReplyPort<T>) -> CoordinatorMsg,
        timeout: Duration,
        dropped: StepUpError,
    ) -> Result<T, StepUpError> {
        match self.inner.coordinator.get()?.call(message, Some(timeout)).await {
            Ok(CallResult::Success(answer)) => Ok(answer),
            Ok(CallResult::Timeout) => Err(StepUpError::Timeout),
            Ok(CallResult::SenderError) => Err(dropped),
            Err(_) => Err(StepUpError::EngineStopped),
        }
    }
}
