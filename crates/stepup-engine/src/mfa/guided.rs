//! MFA management walked through with the person: the front end shows a new authenticator app's QR code and
//! reads its first code, shows new recovery codes until the person says they are saved, and asks before a factor
//! is removed. Each change still meets its step-up on demand (`super`), through the same front end.

use stepup_core::{CredentialId, MAX_ATTEMPTS, StepUpError};

use super::{MfaDeviceInfo, MfaManager, PasskeyInfo, RecoveryCodes};
use crate::frontend::{PromptReply, PromptRequest};

/// What [`MfaManager::show_recovery_codes`] and [`MfaManager::show_new_recovery_codes`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShownRecoveryCodes {
    /// The codes as the server answered (new ones, or the count left when they were shown before).
    pub codes: RecoveryCodes,
    /// Whether the person said they saved new codes (the server was told). `false` when they cancelled (the codes
    /// exist, unacknowledged: the app may show `codes` again and call
    /// [`MfaManager::acknowledge_recovery_codes`]) or when there was nothing to show.
    pub acknowledged: bool,
}

impl MfaManager {
    /// Asks the person through the engine's front end, within the prompt timeout (one request out at a time,
    /// shared with the flows' prompts).
    async fn ask(&self, request: PromptRequest) -> Result<PromptReply, StepUpError> {
        let frontend =
            self.engine().frontend().cloned().ok_or(StepUpError::NotConfigured { what: "front end" })?;
        let timeout = self.engine().timeouts().prompt;
        tokio::time::timeout(timeout, frontend.prompt(request)).await.map_err(|_| StepUpError::Timeout)
    }

    fn require_frontend(&self) -> Result<(), StepUpError> {
        self.engine().frontend().map(|_| ()).ok_or(StepUpError::NotConfigured { what: "front end" })
    }

    /// Adds an authenticator app with the person: the step-up `credential:link` takes (if any), then
    /// [`PromptRequest::EnrolTotp`] shows the app's QR code and reads the first code it shows; a wrong code is
    /// shown ([`PromptRequest::Failed`]) and asked again, three tries in all. Returns the new device's id.
    ///
    /// # Errors
    /// [`StepUpError::NotConfigured`] without a front end; [`StepUpError::Cancelled`] when the person cancels
    /// (an unfinished device is no factor, and the next enrolment replaces it); [`StepUpError::MfaInvalidCode`]
    /// after the third wrong code; as [`MfaManager::add_totp_device`] and [`MfaManager::verify_totp_device`].
    pub async fn enrol_totp(&self) -> Result<CredentialId, StepUpError> {
        self.require_frontend()?;
        let enrolment = self.add_totp_device().await?;
        let mut attempts_left = MAX_ATTEMPTS;
        loop {
            let code = match self.ask(PromptRequest::EnrolTotp { enrolment: enrolment.clone() }).await? {
                PromptReply::Code(code) => code,
                // A cancel, or an answer that is no code (a front end that did not understand the step): the
                // enrolment stops, unfinished.
                _ => return Err(StepUpError::Cancelled),
            };
            match self.verify_totp_device(&enrolment.device_id, code.expose_secret()).await {
                Ok(()) => return Ok(enrolment.device_id),
                Err(StepUpError::MfaInvalidCode) if attempts_left > 1 => {
                    attempts_left -= 1;
                    let failed = PromptRequest::Failed { error: StepUpError::MfaInvalidCode, attempts_left };
                    if self.ask(failed).await? == PromptReply::Cancel {
                        return Err(StepUpError::Cancelled);
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Shows the person their recovery codes when this read makes them (the user's first set): through
    /// [`PromptRequest::ShowRecoveryCodes`], until the person says they are saved; then the server is told they are
    /// acknowledged. Codes shown before are not shown again: the answer says how many are left.
    ///
    /// # Errors
    /// [`StepUpError::NotConfigured`] without a front end; [`StepUpError::Timeout`] when the front end does not
    /// answer within the prompt timeout; as [`MfaManager::recovery_codes`] and
    /// [`MfaManager::acknowledge_recovery_codes`]. A person who cancels is no error: see
    /// [`ShownRecoveryCodes::acknowledged`].
    pub async fn show_recovery_codes(&self) -> Result<ShownRecoveryCodes, StepUpError> {
        self.require_frontend()?;
        let codes = self.recovery_codes().await?;
        self.show(codes).await
    }

    /// Makes ten new recovery codes (the old ones stop working; the user is emailed) and shows them as
    /// [`MfaManager::show_recovery_codes`] does.
    ///
    /// # Errors
    /// As [`MfaManager::show_recovery_codes`] and [`MfaManager::regenerate_recovery_codes`].
    pub async fn show_new_recovery_codes(&self) -> Result<ShownRecoveryCodes, StepUpError> {
        self.require_frontend()?;
        let codes = self.regenerate_recovery_codes().await?;
        self.show(codes).await
    }

    async fn show(&self, codes: RecoveryCodes) -> Result<ShownRecoveryCodes, StepUpError> {
        if codes.codes.is_empty() {
            return Ok(ShownRecoveryCodes { codes, acknowledged: false });
        }
        let reply = self.ask(PromptRequest::ShowRecoveryCodes { codes: codes.codes.clone() }).await?;
        let acknowledged = reply == PromptReply::Confirm;
        if acknowledged {
            self.acknowledge_recovery_codes().await?;
        }
        Ok(ShownRecoveryCodes { codes, acknowledged })
    }

    /// Removes an authenticator app once the person confirms ([`PromptRequest::ConfirmRemoval`]).
    ///
    /// # Errors
    /// [`StepUpError::NotConfigured`] without a front end; [`StepUpError::Cancelled`] when the person keeps it; as
    /// [`MfaManager::delete_device`].
    pub async fn remove_device_confirmed(&self, device: &MfaDeviceInfo) -> Result<(), StepUpError> {
        let what = match device.created_at {
            Some(at) => format!("Authenticator app added {}", day(at)),
            None => "Authenticator app".to_owned(),
        };
        self.confirm(what).await?;
        self.delete_device(&device.id).await
    }

    /// Removes a passkey once the person confirms ([`PromptRequest::ConfirmRemoval`]).
    ///
    /// # Errors
    /// As [`MfaManager::remove_device_confirmed`], and [`MfaManager::delete_passkey`].
    pub async fn remove_passkey_confirmed(&self, passkey: &PasskeyInfo) -> Result<(), StepUpError> {
        let what = match passkey.created_at {
            Some(at) => format!("Passkey added {}", day(at)),
            None => "Passkey".to_owned(),
        };
        self.confirm(what).await?;
        self.delete_passkey(&passkey.id).await
    }

    async fn confirm(&self, what: String) -> Result<(), StepUpError> {
        match self.ask(PromptRequest::ConfirmRemoval { what }).await? {
            PromptReply::Confirm => Ok(()),
            _ => Err(StepUpError::Cancelled),
        }
    }
}

/// The date of `at`, `YYYY-MM-DD` (the first ten characters of its RFC 3339 form).
fn day(at: stepup_core::UnixTime) -> String {
    at.to_rfc3339().chars().take(10).collect()
}
