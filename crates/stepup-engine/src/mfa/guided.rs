//! MFA management walked through with the person: the front end shows a new authenticator app's QR code and
//! reads its first code, shows new recovery codes until the person says they are saved, and asks before a factor
//! is removed. Each change still meets its step-up on demand (`super`), through the same front end.

use stepup_core::{CredentialId, MAX_ATTEMPTS, StepUpError};

use super::{MfaDeviceInfo, MfaManager, PasskeyInfo, RecoveryCodes};
use crate::frontend::{PromptReply, PromptRequest, SharedFrontend};

impl MfaManager {
    fn frontend(&self) -> Result<SharedFrontend, StepUpError> {
        self.engine().frontend().cloned().ok_or(StepUpError::NotConfigured { what: "front end" })
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
        let frontend = self.frontend()?;
        let enrolment = self.add_totp_device().await?;
        let mut attempts_left = MAX_ATTEMPTS;
        loop {
            let code = match frontend.prompt(PromptRequest::EnrolTotp { enrolment: enrolment.clone() }).await
            {
                PromptReply::Code(code) => code,
                PromptReply::Cancel => return Err(StepUpError::Cancelled),
                // Anything else answers nothing: show the app again (a person at a terminal can always cancel).
                _ => continue,
            };
            match self.verify_totp_device(&enrolment.device_id, code.expose_secret()).await {
                Ok(()) => return Ok(enrolment.device_id),
                Err(StepUpError::MfaInvalidCode) if attempts_left > 1 => {
                    attempts_left -= 1;
                    let failed = PromptRequest::Failed { error: StepUpError::MfaInvalidCode, attempts_left };
                    if frontend.prompt(failed).await == PromptReply::Cancel {
                        return Err(StepUpError::Cancelled);
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Shows the person recovery codes: new ones (`regenerate`), or the user's first set when it is made by this
    /// read. [`PromptRequest::ShowRecoveryCodes`] shows them until the person confirms they are saved, and the
    /// server is told they are acknowledged. A read that makes no codes (they were shown before) shows nothing and
    /// says how many are left.
    ///
    /// # Errors
    /// [`StepUpError::NotConfigured`] without a front end; [`StepUpError::Cancelled`] when the person cancels
    /// (codes just made then exist, unacknowledged: see
    /// [`MfaManager::recovery_codes_acknowledgement_pending`]); as [`MfaManager::recovery_codes`].
    pub async fn show_recovery_codes(&self, regenerate: bool) -> Result<RecoveryCodes, StepUpError> {
        let frontend = self.frontend()?;
        let codes =
            if regenerate { self.regenerate_recovery_codes().await? } else { self.recovery_codes().await? };
        if codes.codes.is_empty() {
            return Ok(codes);
        }
        match frontend.prompt(PromptRequest::ShowRecoveryCodes { codes: codes.codes.clone() }).await {
            PromptReply::Confirm => {
                self.acknowledge_recovery_codes().await?;
                Ok(codes)
            }
            _ => Err(StepUpError::Cancelled),
        }
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
        match self.frontend()?.prompt(PromptRequest::ConfirmRemoval { what }).await {
            PromptReply::Confirm => Ok(()),
            _ => Err(StepUpError::Cancelled),
        }
    }
}

/// The date of `at`, `YYYY-MM-DD` (the first ten characters of its RFC 3339 form).
fn day(at: stepup_core::UnixTime) -> String {
    at.to_rfc3339().chars().take(10).collect()
}
