//! `PromptProgress`: what a prompt remembers while the user works through it.

use crate::credential::MethodOptions;
use crate::error::StepUpError;
use crate::method::{Method, Route};
use crate::otp::OtpVerification;

/// Tries a prompt allows before it gives up and goes back to `required`.
pub const MAX_ATTEMPTS: u8 = 3;

/// The state a prompt carries into verification and back: the options, the tries left and the last error to
/// show. (A sent one-time code is not here: it outlives prompts, see [`crate::Flow::pending_otp`].)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptProgress {
    /// The user's options (all routes; the route in the state decides which apply).
    pub options: MethodOptions,
    /// Tries left, from [`MAX_ATTEMPTS`] down to 1.
    pub attempts_left: u8,
    /// The error of the last failed try, to show the user.
    pub last_error: Option<StepUpError>,
}

impl PromptProgress {
    /// A fresh prompt with these options.
    #[must_use]
    pub fn new(options: MethodOptions) -> Self {
        Self { options, attempts_left: MAX_ATTEMPTS, last_error: None }
    }

    /// Why verification may not start with `method` on `route`, if it may not: the route must allow it, the
    /// options offer it (when known), and an OTP method needs a code sent on its channel (`pending_otp`).
    #[must_use]
    pub fn refusal(
        &self,
        route: Route,
        method: Method,
        pending_otp: Option<&OtpVerification>,
    ) -> Option<StepUpError> {
        if !route.allows(method) || !self.options.allows(method) {
            return Some(StepUpError::MethodNotAvailable { method });
        }
        if method.is_otp() && pending_otp.is_none_or(|otp| otp.channel.method() != method) {
            return Some(StepUpError::OtpNotSent);
        }
        None
    }
}
