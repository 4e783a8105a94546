//! `OtpVerification`: a one-time code that was sent and awaits its code.

use serde::{Deserialize, Serialize};

use crate::id::shared_id;

/// Where a one-time code went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OtpChannel {
    /// By email.
    Email,
    /// By SMS.
    Sms,
}

impl OtpChannel {
    /// `email` or `sms`: the channel's name where it is stored, counted or logged.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            OtpChannel::Email => "email",
            OtpChannel::Sms => "sms",
        }
    }

    /// The channel named `name` (as [`OtpChannel::as_str`] writes it), if it is one.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "email" => Some(OtpChannel::Email),
            "sms" => Some(OtpChannel::Sms),
            _ => None,
        }
    }

    /// The method that verifies a code sent on this channel.
    #[must_use]
    pub fn method(self) -> crate::Method {
        match self {
            OtpChannel::Email => crate::Method::EmailOtp,
            OtpChannel::Sms => crate::Method::SmsOtp,
        }
    }
}

/// A channel name that is none of [`OtpChannel`]'s (a stored row written by something else, say).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown one-time code channel `{0}`")]
pub struct UnknownChannel(pub String);

impl TryFrom<String> for OtpChannel {
    type Error = UnknownChannel;

    /// The channel named `name`, as [`OtpChannel::from_name`] reads it.
    fn try_from(name: String) -> Result<Self, UnknownChannel> {
        Self::from_name(&name).ok_or(UnknownChannel(name))
    }
}

shared_id! {
    /// The server's id for a sent code (`verificationUUID`). Not a secret on its own: it is useless without the
    /// code.
    VerificationId
}

/// A sent one-time code, waiting for the user to type it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OtpVerification {
    /// The server's id for this code.
    pub id: VerificationId,
    /// Where it went.
    pub channel: OtpChannel,
    /// The destination with most of it hidden (`a***@example.com`, `*******4567`), safe to show and log.
    pub destination_masked: String,
}

/// Masks an email address for display: first character of the local part, then `***`, then the domain.
#[must_use]
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// Masks a phone number for display: only its digits are kept, and all but the last four become `*` (a number of
/// four digits or fewer is shown as it is: there is nothing left to hide).
#[must_use]
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let keep = digits.len().saturating_sub(4);
    digits.iter().enumerate().map(|(i, d)| if i < keep { '*' } else { *d }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_hide_most_of_the_destination() {
        assert_eq!(mask_email("alice@example.com"), "a***@example.com");
        assert_eq!(mask_email("no-at-sign"), "***");
        assert_eq!(mask_phone("+1 (555) 123-4567"), "*******4567");
        assert_eq!(mask_phone("12"), "12");
    }

    #[test]
    fn a_channel_reads_back_by_name_and_another_name_is_an_unknown_channel() {
        for channel in [OtpChannel::Email, OtpChannel::Sms] {
            assert_eq!(OtpChannel::try_from(channel.as_str().to_owned()), Ok(channel));
        }
        assert_eq!(OtpChannel::try_from("fax".to_owned()), Err(UnknownChannel("fax".into())));
        assert_eq!(UnknownChannel("fax".into()).to_string(), "unknown one-time code channel `fax`");
    }
}
