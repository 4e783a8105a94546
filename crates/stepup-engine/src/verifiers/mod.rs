//! The verifiers: one module per verification method, each holding the method's request type, its verifier (the
//! HTTP and signer work) and its prompt step (what the prompt driver asks the person).
//!
//! Each verifier is a plain struct implementing [`Verifier`], run inside the generic [`actor::VerifierActor`].
//! The coordinator finds verifiers through the [`registry::VerifierRegistry`], keyed by [`VerifierKind`], which
//! starts one the first time a flow needs it, linked to the coordinator; a verifier that dies (a signer that
//! panics, a bug) is forgotten, only the flow it was serving fails with `VerifierFailed`, and the next flow
//! starts a fresh one.
//!
//! A verifier runs one job at a time: while it waits on the network its mailbox queues, but the coordinator never
//! waits on it — results come back as `CoordinatorMsg::VerifierDone` casts.
//!
//! Adding a method: see `docs/adding-a-method.md`.

pub(crate) mod actor;
pub(crate) mod external_auth;
pub(crate) mod otp;
pub(crate) mod passkey;
pub(crate) mod recovery;
pub(crate) mod registry;
pub(crate) mod totp;
pub(crate) mod wallet;

use std::sync::Arc;

use ractor::ActorRef;
use stepup_core::{Jwt, Method, OtpVerification, ScopeSet, SharedClock, StepUpError};
use stepup_proto::TokenScope;
use tokio::sync::watch;

pub(crate) use requests::*;
pub use wallet::WalletMessageSettings;

/// Each method's public request type, in one list the crate root re-exports whole.
pub(crate) mod requests {
    pub use super::external_auth::ExternalAuthRequest;
    pub use super::otp::OtpRequest;
    pub use super::passkey::PasskeyRequest;
    pub use super::recovery::RecoveryCodeRequest;
    pub use super::totp::TotpRequest;
    pub use super::wallet::WalletRequest;
}

use crate::api::ApiClient;
use crate::coordinator::CoordinatorMsg;
use crate::signers::{PasskeyAuthenticator, WalletSigner};
use crate::timeouts::Timeouts;

/// A request to verify one proof, as the facade's verify calls make it: one variant per method, each holding
/// that method's request type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyRequest {
    /// The one-time code of the code sent last (`send_otp`).
    Otp(OtpRequest),
    /// A signature of the external wallet.
    Wallet(WalletRequest),
    /// A passkey assertion.
    Passkey(PasskeyRequest),
    /// A TOTP code.
    Totp(TotpRequest),
    /// One of the recovery codes.
    RecoveryCode(RecoveryCodeRequest),
    /// A JWT the app's backend signed for this user (external auth).
    ExternalAuth(ExternalAuthRequest),
}

impl VerifyRequest {
    /// The method that verifies this request; for a one-time code, the channel of the code that was sent.
    #[must_use]
    pub(crate) fn method(&self, pending_otp: Option<&OtpVerification>) -> Method {
        match self {
            VerifyRequest::Otp(_) => pending_otp.map_or(Method::EmailOtp, |otp| otp.channel.method()),
            VerifyRequest::Wallet(_) => Method::ExternalWallet,
            VerifyRequest::Passkey(_) => Method::Passkey,
            VerifyRequest::Totp(_) => Method::Totp,
            VerifyRequest::RecoveryCode(_) => Method::RecoveryCode,
            VerifyRequest::ExternalAuth(_) => Method::ExternalAuth,
        }
    }

    /// Which verifier runs it.
    #[must_use]
    pub(crate) fn kind(&self) -> VerifierKind {
        match self {
            VerifyRequest::Otp(_) => otp::OtpVerifier::KIND,
            VerifyRequest::Wallet(_) => wallet::WalletVerifier::KIND,
            VerifyRequest::Passkey(_) => passkey::PasskeyVerifier::KIND,
            VerifyRequest::Totp(_) => totp::TotpVerifier::KIND,
            VerifyRequest::RecoveryCode(_) => recovery::RecoveryVerifier::KIND,
            VerifyRequest::ExternalAuth(_) => external_auth::ExternalAuthVerifier::KIND,
        }
    }
}

/// Where a verification goes: its number, its scopes, and who hears the result.
#[derive(Debug)]
pub(crate) struct JobTicket {
    /// The verification's number (the machine's).
    pub(crate) attempt: stepup_core::AttemptId,
    /// The scopes to ask for.
    pub(crate) scopes: ScopeSet,
    /// For a one-time code: the sent code the proof answers (the machine's).
    pub(crate) otp: Option<OtpVerification>,
    /// Where the result goes.
    pub(crate) reply_to: ActorRef<CoordinatorMsg>,
}

impl JobTicket {
    fn job<R>(self, request: R) -> VerifyJob<R> {
        VerifyJob { attempt: self.attempt, scopes: self.scopes, request, reply_to: self.reply_to }
    }
}

impl VerifyRequest {
    /// Hands the request to its verifier (started if it is not running), as the job `ticket` describes.
    /// Returns whether the verifier took it: `false` when it could not start or is stopping (its caller then
    /// fails with `VerifierFailed`).
    pub(crate) async fn dispatch(
        self,
        ticket: JobTicket,
        verifiers: &mut registry::VerifierRegistry,
    ) -> bool {
        match self {
            VerifyRequest::Otp(OtpRequest { code }) => match ticket.otp.clone() {
                Some(sent) => {
                    verifiers.verify::<otp::OtpVerifier>(ticket.job(otp::OtpProof { code, sent })).await
                }
                // The machine starts no code verification without a sent code.
                None => false,
            },
            VerifyRequest::Wallet(request) => {
                verifiers.verify::<wallet::WalletVerifier>(ticket.job(request)).await
            }
            VerifyRequest::Passkey(request) => {
                verifiers.verify::<passkey::PasskeyVerifier>(ticket.job(request)).await
            }
            VerifyRequest::Totp(request) => verifiers.verify::<totp::TotpVerifier>(ticket.job(request)).await,
            VerifyRequest::RecoveryCode(request) => {
                verifiers.verify::<recovery::RecoveryVerifier>(ticket.job(request)).await
            }
            VerifyRequest::ExternalAuth(request) => {
                verifiers.verify::<external_auth::ExternalAuthVerifier>(ticket.job(request)).await
            }
        }
    }
}

/// The prompt step of `credential`'s method: what the person is asked, and the request their answer makes
/// (`None` when they want another method). For a one-time code, `new_code` says whether to send one.
pub(crate) async fn read_proof(
    task: &crate::prompt::PromptTask,
    credential: &stepup_core::Credential,
    new_code: &mut bool,
    attempts_left: u8,
) -> Result<Option<VerifyRequest>, StepUpError> {
    match credential.method {
        Method::EmailOtp | Method::SmsOtp => otp::read_proof(task, credential, new_code, attempts_left).await,
        Method::ExternalWallet => wallet::read_proof(task, credential).await,
        Method::Passkey => passkey::read_proof(task).await,
        Method::Totp => totp::read_proof(task, credential).await,
        Method::RecoveryCode => recovery::read_proof(task).await,
        // Never among a person's routes' credentials (the driver refuses the external route); no one could
        // type it.
        Method::ExternalAuth => Err(StepUpError::MethodNotAvailable { method: Method::ExternalAuth }),
    }
}

/// The verifiers, as the registry knows them (one per kind of proof: one OTP verifier serves email and SMS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum VerifierKind {
    /// Email and SMS one-time codes.
    Otp,
    /// External-wallet signatures.
    Wallet,
    /// WebAuthn assertions.
    Passkey,
    /// Authenticator-app codes.
    Totp,
    /// Recovery codes.
    Recovery,
    /// JWTs from the app's backend.
    ExternalAuth,
}

impl VerifierKind {
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

/// One verification for a verifier: attempt number `attempt`, for `scopes`, with the verifier's own request.
#[derive(Debug)]
pub(crate) struct VerifyJob<R> {
    /// The verification's number; the result carries it back so stale results are dropped.
    pub(crate) attempt: stepup_core::AttemptId,
    /// The scopes to ask for.
    pub(crate) scopes: ScopeSet,
    /// What to verify.
    pub(crate) request: R,
    /// Where to send the result.
    pub(crate) reply_to: ActorRef<CoordinatorMsg>,
}

impl<R> VerifyJob<R> {
    fn requested_scopes(&self) -> Option<Vec<TokenScope>> {
        Some(self.scopes.as_slice().to_vec())
    }
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
    pub(crate) timeouts: Timeouts,
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

/// A verifier that takes no commands besides verifying (its [`Verifier::Command`]).
#[derive(Debug)]
pub(crate) enum NoCommand {}

/// The work of one verification method, free of actor plumbing.
#[async_trait::async_trait]
pub(crate) trait Verifier: Send + Sync + 'static {
    /// Which verifier this is, in the registry.
    const KIND: VerifierKind;

    /// What one verification needs: the method's request, with what the flow adds (the sent code for a
    /// one-time code). The type says it, so no verifier checks for a request of another method.
    type Request: std::fmt::Debug + Send + Sync + 'static;

    /// What else the verifier does, beside verifying ([`NoCommand`] for most; the OTP verifier sends codes).
    type Command: std::fmt::Debug + Send + 'static;

    /// Builds the verifier from the shared configuration.
    fn new(config: &VerifierConfig) -> Self;

    /// Runs one verification and returns the elevated token the server answered with, if it did (the actor
    /// reads it).
    ///
    /// # Errors
    /// The server's refusal, a transport failure, or the collaborator's failure, as [`StepUpError`].
    async fn verify(&self, job: &VerifyJob<Self::Request>) -> Result<Option<Jwt>, StepUpError>;

    /// Runs one command, within the verify timeout (`timeout` says how long; the verifier answers its caller).
    async fn command(&self, command: Self::Command, timeout: std::time::Duration);
}
