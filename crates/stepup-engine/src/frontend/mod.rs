//! The `Frontend` trait: how the engine talks to the person during a prompt flow (docs/design.md §6).
//!
//! The coordinator's prompt driver sends a [`PromptRequest`] and waits for the [`PromptReply`]. A front end draws
//! whatever fits its platform: a terminal, a game's own UI, a test script. Built in: [`ChannelFrontend`] (requests
//! as messages, for UIs that draw themselves) and, with feature `terminal`, `TerminalFrontend`.

mod channel;
#[cfg(feature = "terminal")]
mod terminal;

pub use channel::{ChannelFrontend, FrontendEvent, FrontendInbox, PendingPrompt};
#[cfg(feature = "terminal")]
pub use terminal::TerminalFrontend;

use std::sync::Arc;

use stepup_core::{
    Credential, CredentialId, Method, MethodOptions, RecoveryCode, Route, SecretString, StepUpError,
    TokenInfo,
};

use crate::mfa::TotpEnrolment;

/// What the engine asks of the person.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PromptRequest {
    /// Pick one of these credentials for `route` (skipped when there is only one). Match it with `..`: it may
    /// grow fields.
    #[non_exhaustive]
    ChooseMethod {
        /// MFA or re-authentication.
        route: Route,
        /// The usable credentials, in the server's order.
        options: MethodOptions,
        /// The one to offer first (highlight it; the person may pick another): the server's
        /// `defaultCredentialId` — the user's default device, else the MFA method they set up last (Dynamic's
        /// routing rule) — when it is among `options`.
        preselected: Option<CredentialId>,
    },
    /// Type the one-time code sent to `destination_masked`.
    EnterOtp {
        /// Where the code went, mostly hidden (`a***@example.com`).
        destination_masked: String,
        /// Whether [`PromptReply::Resend`] is accepted.
        can_resend: bool,
    },
    /// Type the code the authenticator app shows.
    EnterTotp,
    /// Type one of the recovery codes.
    EnterRecoveryCode,
    /// Confirm signing `message` with the wallet `address`.
    ConfirmWallet {
        /// The wallet's address.
        address: String,
        /// The message's statement (what the person agrees to). The full EIP-4361 text, with a fresh nonce and
        /// time, is built and signed after the confirmation.
        message: String,
    },
    /// Use the passkey (touch the key, look at the camera...). Answer [`PromptReply::Confirm`] to go on.
    UsePasskey,
    /// MFA management: add this authenticator app. Show `enrolment.uri` (as a QR code; the secret for typing in
    /// by hand is in it) and answer with the code the app then shows ([`PromptReply::Code`]), or Cancel.
    EnrolTotp {
        /// The new device: its id, secret and `otpauth://` URI (redacted in `Debug`).
        enrolment: TotpEnrolment,
    },
    /// MFA management: new recovery codes, shown this once. Answer [`PromptReply::Confirm`] once the person has
    /// saved them (the server is told they are acknowledged), or Cancel (they stay unacknowledged).
    ShowRecoveryCodes {
        /// The codes (each works once).
        codes: Vec<RecoveryCode>,
    },
    /// MFA management: remove this factor? [`PromptReply::Confirm`] removes it, Cancel keeps it.
    ConfirmRemoval {
        /// What would be removed, in words ("Authenticator app added 2026-12-07").
        what: String,
    },
    /// The last try failed, or a code could not be sent again (the one sent before stays good). Any reply but
    /// [`PromptReply::Cancel`] goes on.
    Failed {
        /// Why.
        error: StepUpError,
        /// Tries left in this prompt.
        attempts_left: u8,
    },
}

/// What the person answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PromptReply {
    /// This credential (an answer to [`PromptRequest::ChooseMethod`]).
    Choose(Credential),
    /// This code (an answer to the `Enter*` requests and to `EnrolTotp`).
    Code(SecretString),
    /// Send the one-time code again.
    Resend,
    /// Go on (an answer to confirmations and notices).
    Confirm,
    /// Stop the flow: every caller waiting on it gets `Cancelled`.
    Cancel,
}

impl PromptReply {
    /// The method a [`PromptReply::Choose`] picked.
    #[must_use]
    pub fn chosen_method(&self) -> Option<Method> {
        match self {
            PromptReply::Choose(credential) => Some(credential.method),
            _ => None,
        }
    }
}

/// A user interface for prompt flows. A request left unanswered is not an error of the front end: the engine's
/// prompt timeout ends the flow (and drops the pending `prompt` future), as do `cancel` and `reset_state`.
#[async_trait::async_trait]
pub trait Frontend: Send + Sync {
    /// Shows `request` and waits for the answer.
    async fn prompt(&self, request: PromptRequest) -> PromptReply;

    /// The flow ended, however it ended: elevated with this token, failed, cancelled, reset or timed out. Called
    /// after the waiting callers are answered, on a task of its own. The default does nothing.
    async fn finished(&self, outcome: &Result<TokenInfo, StepUpError>) {
        let _ = outcome;
    }
}

/// A shared front end.
pub type SharedFrontend = Arc<dyn Frontend>;

/// The app's front end as the engine uses it: one request out at a time, whoever asks (a flow's prompt driver, MFA
/// management's guided calls), so a front end that shows one dialog at a time (`ChannelFrontend` in a game loop)
/// never has a second request arrive over the first.
pub(crate) struct SerialFrontend {
    inner: SharedFrontend,
    turn: tokio::sync::Mutex<()>,
}

impl SerialFrontend {
    /// `frontend`, one request at a time.
    pub(crate) fn wrap(frontend: SharedFrontend) -> SharedFrontend {
        Arc::new(Self { inner: frontend, turn: tokio::sync::Mutex::new(()) })
    }
}

#[async_trait::async_trait]
impl Frontend for SerialFrontend {
    async fn prompt(&self, request: PromptRequest) -> PromptReply {
        let _turn = self.turn.lock().await;
        self.inner.prompt(request).await
    }

    async fn finished(&self, outcome: &Result<TokenInfo, StepUpError>) {
        self.inner.finished(outcome).await;
    }
}
