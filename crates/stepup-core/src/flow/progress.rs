//! `PromptProgress`: what a prompt remembers while the user works through it.

use crate::credential::MethodOptions;
use crate::error::StepUpError;
use crate::method::{Method, Route};
use crate::otp::OtpVerification;

/// Tries a prompt allows before it gives up and goes back to `required`.
pub const MAX_ATTEMPTS: u8 = 3;

/// The state a prompt carries into verification and back: the options, a sent one-time code, the tries left and
/// the last error to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptProgress {
    /// The user's options (all routes; the route in the state decides which apply).
    pub options: MethodOptions,
    /// A one-time code that was sent and awaits its code.
    pub pending_otp: Option<OtpVerification>,
    /// Tries left, from [`MAX_ATTEMPTS`] down to 1.
    pub attempts_left: u8,
    /// The error of the last failed try, to show the user.
    pub last_error: Option<StepUpError>,
}

impl PromptProgress {
    /// A fresh prompt with these options.
    #[must_use]
    pub fn new(options: MethodOptions) -> Self {
        Self { options, pending_otp: None, attempts_left: MAX_ATTEMPTS, last_error: None }
    }

    /// Whether verification may start with `method` on `route`: the route allows it, the options offer it (when
    /// known), and an OTP method has a code sent on its channel.
    #[must_use]
    pub fn can_verify(&self, route: Route, method: Method) -> bool {
        route.allows(method)
            && self.options.allows(method)
            && (!method.is_otp()
                || self.pending_otp.as_ref().is_some_and(|otp| otp.channel.method() == method))
    }

    /// Whether a code sent for `method` belongs in this prompt.
    #[must_use]
    pub fn can_send_otp(&self, route: Route, method: Method) -> bool {
        method.is_otp() && route.allows(method) && self.options.allows(method)
    }
}
