//! The verifier actors: one per kind of proof (docs/design.md §5; external auth is the sixth).
//!
//! Each verifier is a plain struct implementing [`Verifier`] — the HTTP (and signer) work of one method — run
//! inside the generic [`VerifierActor`]. The coordinator spawns the five linked to itself; a verifier that panics
//! (a signer that crashes, a bug) is restarted by the coordinator, and only the flow it was serving fails with
//! `VerifierFailed`.
//!
//! A verifier runs one job at a time: while it waits on the network its mailbox queues, but the coordinator never
//! waits on it — results come back as [`CoordinatorMsg::VerifierDone`] casts.

mod external_auth;
mod otp;
mod passkey;
mod recovery;
mod totp;
mod wallet;

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use stepup_core::{
    AttemptId, CredentialId, ElevatedToken, Jwt, Method, OtpCode, OtpVerification, RecoveryCode, ScopeSet,
    SharedClock, StepUpError, TotpCode,
};
use stepup_proto::TokenScope;
use tokio::sync::watch;

pub(crate) use external_auth::ExternalAuthVerifier;
pub(crate) use otp::OtpVerifier;
pub(crate) use passkey::PasskeyVerifier;
pub(crate) use recovery::RecoveryVerifier;
pub(crate) use totp::TotpVerifier;
pub use wallet::WalletMessageSettings;
pub(crate) use wallet::WalletVerifier;

use crate::api::ApiClient;
use crate::coordinator::CoordinatorMsg;
use crate::signers::{PasskeyAuthenticator, WalletSigner};

/// A request to verify one proof, as the facade's verify calls make it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyRequest {
    /// The one-time code of the code sent last (`send_otp`).
    Otp {
        /// The code the user typed.
        code: OtpCode,
    },
    /// A signature of the external wallet; `wallet_id` names which of the user's wallets (checked against the
    /// signer's address), `None` means the signer's.
    Wallet {
        /// The user's wallet credential, if the app names one.
        wallet_id: Option<CredentialId>,
    },
    /// A passkey assertion.
    Passkey,
    /// A TOTP code, of `device_id` or the user's default device.
    Totp {
        /// The code.
        code: TotpCode,
        /// The device, if the user has several.
        device_id: Option<CredentialId>,
    },
    /// One of the recovery codes.
    RecoveryCode {
        /// The code.
        code: RecoveryCode,
    },
    /// A JWT the app's backend signed for this user (external auth).
    ExternalAuth {
        /// The backend's JWT.
        jwt: Jwt,
    },
}

impl VerifyRequest {
    /// The method that verifies this request; for a one-time code, the channel of the code that was sent.
    #[must_use]
    pub(crate) fn method(&self, pending_otp: Option<&OtpVerification>) -> Method {
        match self {
            VerifyRequest::Otp { .. } => pending_otp.map_or(Method::EmailOtp, |otp| otp.channel.method()),
            VerifyRequest::Wallet { .. } => Method::ExternalWallet,
            VerifyRequest::Passkey => Method::Passkey,
            VerifyRequest::Totp { .. } => Method::Totp,
            VerifyRequest::RecoveryCode { .. } => Method::RecoveryCode,
            VerifyRequest::ExternalAuth { .. } => Method::ExternalAuth,
        }
    }

    /// Which verifier actor runs it.
    #[must_use]
    pub(crate) fn kind(&self) -> VerifierKind {
        match self {
            VerifyRequest::Otp { .. } => VerifierKind::Otp,
            VerifyRequest::Wallet { .. } => VerifierKind::Wallet,
            VerifyRequest::Passkey => VerifierKind::Passkey,
            VerifyRequest::Totp { .. } => VerifierKind::Totp,
            VerifyRequest::RecoveryCode { .. } => VerifierKind::Recovery,
            VerifyRequest::ExternalAuth { .. } => VerifierKind::ExternalAuth,
        }
    }
}

/// The verifier actors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum VerifierKind {
    /// [`OtpVerifier`]: email and SMS one-time codes.
    Otp,
    /// [`WalletVerifier`]: external-wallet signatures.
    Wallet,
    /// [`PasskeyVerifier`]: WebAuthn assertions.
    Passkey,
    /// [`TotpVerifier`]: authenticator-app codes.
    Totp,
    /// [`RecoveryVerifier`]: recovery codes.
    Recovery,
    /// [`ExternalAuthVerifier`]: JWTs from the app's backend.
    ExternalAuth,
}

impl VerifierKind {
    /// All of them, in spawn order.
    pub(crate) const ALL: [VerifierKind; 6] = [
        VerifierKind::Otp,
        VerifierKind::Wallet,
        VerifierKind::Passkey,
        VerifierKind::Totp,
        VerifierKind::Recovery,
        VerifierKind::ExternalAuth,
    ];

    /// The actor's name in logs.
    #[must_use]
    pub(crate) fn name(self) -> &'static str {
        match self {
            VerifierKind::Otp => "OtpVerifier",
            VerifierKind::Wallet => "WalletVerifier",
            VerifierKind::Passkey => "PasskeyVerifier",
            VerifierKind::Totp => "TotpVerifier",
            VerifierKind::Recovery => "RecoveryVerifier",
            VerifierKind::ExternalAuth => "ExternalAuthVerifier",
        }
    }
}

/// One verification for a verifier: attempt number `attempt`, for `scopes`.
#[derive(Debug)]
pub(crate) struct VerifyJob {
    /// The verification's number; the result carries it back so stale results are dropped.
    pub(crate) attempt: AttemptId,
    /// The scopes to ask for.
    pub(crate) scopes: ScopeSet,
    /// What to verify.
    pub(crate) request: VerifyRequest,
    /// For one-time codes: the sent code the request answers.
    pub(crate) otp: Option<OtpVerification>,
    /// Where to send the result.
    pub(crate) reply_to: ActorRef<CoordinatorMsg>,
}

impl VerifyJob {
    fn requested_scopes(&self) -> Option<Vec<TokenScope>> {
        Some(self.scopes.as_slice().to_vec())
    }
}

/// A verifier actor's messages.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum VerifierMsg {
    /// Run one verification and cast [`CoordinatorMsg::VerifierDone`] back.
    Verify(VerifyJob),
    /// Send a one-time code ([`OtpVerifier`] only) and cast [`CoordinatorMsg::OtpSent`] back, which answers
    /// `reply`. If the verifier dies first, `reply` is dropped and the caller sees the failure.
    SendOtp {
        /// The email or phone credential; `None` picks the user's email, else phone.
        credential: Option<CredentialId>,
        /// The coordinator's reset count when it asked, echoed back: a code sent for a state since reset is
        /// not kept.
        epoch: u64,
        /// Where to send the result.
        reply_to: ActorRef<CoordinatorMsg>,
        /// The caller waiting for it.
        reply: RpcReplyPort<Result<OtpVerification, StepUpError>>,
    },
}

/// What every verifier shares: the API client, the clock, the collaborators and the wallet message settings.
#[derive(Clone)]
pub(crate) struct VerifierConfig {
    /// The API client.
    pub(crate) api: ApiClient,
    /// The engine's clock (token expiry, the wallet message's Issued At).
    pub(crate) clock: SharedClock,
    /// The external wallet, if the app has one.
    pub(crate) wallet: Option<Arc<dyn WalletSigner>>,
    /// The passkey authenticator, if the app has one.
    pub(crate) passkey: Option<Arc<dyn PasskeyAuthenticator>>,
    /// What goes into the wallet message besides the wallet's own fields.
    pub(crate) wallet_message: WalletMessageSettings,
    /// The time limits: a job (network and signer together) that runs past the verify timeout is dropped and
    /// fails with `Timeout`, so a signer that hangs cannot block its verifier for good.
    pub(crate) timeouts: crate::timeouts::Timeouts,
    /// The flow's published state. A job whose verification is no longer the one the machine is `verifying`
    /// when its turn comes is skipped: its caller has been answered, and running it would spend a code or ask
    /// the person to sign for nothing. (The coordinator publishes before it hands out a job.)
    pub(crate) state: watch::Receiver<stepup_core::FlowState>,
}

impl std::fmt::Debug for VerifierConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifierConfig")
            .field("api", &self.api)
            .field("has_wallet", &self.wallet.is_some())
            .field("has_passkey", &self.passkey.is_some())
            .field("wallet_message", &self.wallet_message)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

/// The work of one verification method, free of actor plumbing.
#[async_trait::async_trait]
pub(crate) trait Verifier: Send + Sync + 'static {
    /// Which actor this is.
    const KIND: VerifierKind;

    /// Builds the verifier from the shared configuration.
    fn new(config: &VerifierConfig) -> Self;

    /// Runs one verification and returns the elevated token the server answered with, if it did (the actor
    /// reads it).
    ///
    /// # Errors
    /// The server's refusal, a transport failure, or the collaborator's failure, as [`StepUpError`].
    async fn verify(&self, job: &VerifyJob) -> Result<Option<Jwt>, StepUpError>;

    /// Sends a one-time code. Only [`OtpVerifier`] does; the others answer `MethodNotAvailable`.
    ///
    /// # Errors
    /// As [`Verifier::verify`].
    async fn send_otp(&self, credential: Option<&CredentialId>) -> Result<OtpVerification, StepUpError> {
        let _ = credential;
        Err(StepUpError::MethodNotAvailable { method: Method::EmailOtp })
    }
}

/// Runs a [`Verifier`] as a ractor actor.
#[derive(Debug)]
pub(crate) struct VerifierActor<V>(std::marker::PhantomData<fn() -> V>);

impl<V> Default for VerifierActor<V> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

/// A verifier actor's state: the verifier, the clock, the verify timeout (from `Timeouts`) and the flow's
/// published state.
pub(crate) struct VerifierState<V> {
    verifier: V,
    clock: SharedClock,
    verify_timeout: std::time::Duration,
    state: watch::Receiver<stepup_core::FlowState>,
}

impl<V: Verifier> Actor for VerifierActor<V> {
    type Msg = VerifierMsg;
    type State = VerifierState<V>;
    type Arguments = VerifierConfig;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        config: VerifierConfig,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(VerifierState {
            verifier: V::new(&config),
            clock: config.clock.clone(),
            verify_timeout: config.timeouts.verify,
            state: config.state.clone(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            VerifierMsg::Verify(job) => {
                let current = matches!(
                    &*state.state.borrow(),
                    stepup_core::FlowState::Verifying { attempt, .. } if *attempt == job.attempt
                );
                if !current {
                    tracing::debug!(attempt = %job.attempt, verifier = V::KIND.name(), "skipping a stale job");
                    return Ok(());
                }
                let result =
                    match tokio::time::timeout(state.verify_timeout, state.verifier.verify(&job)).await {
                        Ok(Ok(token)) => elevated_token(token, &job.scopes, &state.clock),
                        Ok(Err(error)) => Err(error),
                        Err(_elapsed) => Err(StepUpError::Timeout),
                    };
                // The coordinator may be gone (engine dropped): then nobody needs the answer.
                let _ = job.reply_to.cast(CoordinatorMsg::VerifierDone { attempt: job.attempt, result });
            }
            VerifierMsg::SendOtp { credential, epoch, reply_to, reply } => {
                let sending = state.verifier.send_otp(credential.as_ref());
                let result = tokio::time::timeout(state.verify_timeout, sending)
                    .await
                    .unwrap_or(Err(StepUpError::Timeout));
                let _ = reply_to.cast(CoordinatorMsg::OtpSent { result, epoch, reply });
            }
        }
        Ok(())
    }
}

/// Reads the elevated token of a verify answer. Scopes were asked for, so an answer without a token is an
/// error, not a sign-in.
fn elevated_token(
    raw: Option<Jwt>,
    scopes: &ScopeSet,
    clock: &SharedClock,
) -> Result<Arc<ElevatedToken>, StepUpError> {
    let raw = raw.ok_or(StepUpError::MissingToken)?;
    let token = ElevatedToken::parse(raw, clock.now())?;
    if !token.covers_all(scopes) {
        return Err(StepUpError::ScopesNotGranted {
            requested: scopes.clone(),
            granted: token.scopes().clone(),
        });
    }
    Ok(Arc::new(token))
}

/// Spawns the verifier `kind`, linked to `supervisor`.
pub(crate) async fn spawn(
    kind: VerifierKind,
    config: VerifierConfig,
    supervisor: ractor::ActorCell,
) -> Result<ActorRef<VerifierMsg>, ractor::SpawnErr> {
    async fn linked<V: Verifier>(
        config: VerifierConfig,
        supervisor: ractor::ActorCell,
    ) -> Result<ActorRef<VerifierMsg>, ractor::SpawnErr> {
        let (actor, _join) =
            Actor::spawn_linked(None, VerifierActor::<V>::default(), config, supervisor).await?;
        Ok(actor)
    }
    match kind {
        VerifierKind::Otp => linked::<OtpVerifier>(config, supervisor).await,
        VerifierKind::Wallet => linked::<WalletVerifier>(config, supervisor).await,
        VerifierKind::Passkey => linked::<PasskeyVerifier>(config, supervisor).await,
        VerifierKind::Totp => linked::<TotpVerifier>(config, supervisor).await,
        VerifierKind::Recovery => linked::<RecoveryVerifier>(config, supervisor).await,
        VerifierKind::ExternalAuth => linked::<ExternalAuthVerifier>(config, supervisor).await,
    }
}
