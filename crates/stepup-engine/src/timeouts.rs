//! `Timeouts`: the engine's time limits, set once by the builder and read from here by the facade, the
//! coordinator and the verifiers. (The HTTP timeouts are the API client's, in `ApiConfig`.)

use std::time::Duration;

/// Default time one verification may take, signers included (a person approving in a wallet).
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time a prompt flow may take (a person reading an email).
pub const DEFAULT_PROMPT_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a caller waits for the coordinator beyond the limit the coordinator itself enforces: the
/// coordinator answers at its limit, and this covers the answer's way back. Also the whole wait for calls
/// the coordinator answers at once (reset, inspect).
const ANSWER_MARGIN: Duration = Duration::from_secs(5);

/// The engine's time limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// How long one verification (network and signer together) or one code send may take; then it fails with
    /// `Timeout`.
    pub(crate) verify: Duration,
    /// How long a prompt flow may wait on the person; then every caller waiting on it gets `Timeout`.
    pub(crate) prompt: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { verify: DEFAULT_VERIFY_TIMEOUT, prompt: DEFAULT_PROMPT_TIMEOUT }
    }
}

impl Timeouts {
    /// How long a facade call that starts a verification (or a check, or a send) waits for its answer.
    pub(crate) fn verify_call(self) -> Duration {
        self.verify + ANSWER_MARGIN
    }

    /// How long a facade call that runs a prompt waits for its answer.
    pub(crate) fn prompt_call(self) -> Duration {
        self.prompt + ANSWER_MARGIN
    }

    /// How long a facade call the coordinator answers at once waits.
    pub(crate) fn immediate_call(self) -> Duration {
        ANSWER_MARGIN
    }
}
