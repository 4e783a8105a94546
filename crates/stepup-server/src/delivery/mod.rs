//! Delivering one-time codes and security notices: email over SMTP, SMS through an HTTP gateway, and the
//! development outbox (codes in clear in the database, read through the admin API).
//!
//! A code send waits until the relay or gateway accepted the message (bounded by its timeout): the answer to
//! `/emailVerifications/create` means the code is on its way, and a failure is an error the caller sees, with
//! nothing stored and no send counted (see `routes::otp`). Security notices are sent in the background.

mod retry;
pub mod settings;
pub mod sms;
pub mod smtp;
pub mod template;

use std::sync::Arc;

use stepup_core::UnixTime;

use crate::config::{ConfigError, EnvironmentConfig, ServerConfig};
use settings::{CODE_FIELDS, NOTICE_FIELDS};
use sms::{Sms, SmsProvider};
use smtp::{Email, SmtpMailer};
use template::{Escape, render};

/// A delivery channel: core's one-time-code channel (`email` or `sms`, as stored and in metrics).
pub use stepup_core::OtpChannel as Channel;

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The channel has no relay or gateway and the outbox is off.
    #[error("no {channel} delivery is configured")]
    NotConfigured {
        /// `email` or `sms`.
        channel: &'static str,
    },
    /// The relay or gateway refused the message for good (SMTP 5xx, HTTP 4xx).
    #[error("the {channel} gateway refused the message: {reason}")]
    Refused {
        /// `email` or `sms`.
        channel: &'static str,
        /// Its answer.
        reason: String,
    },
    /// Every try failed (connection refused, 4xx SMTP, 5xx HTTP) until the time ran out.
    #[error("the {channel} gateway could not be reached: {reason}")]
    Failed {
        /// `email` or `sms`.
        channel: &'static str,
        /// The last failure.
        reason: String,
    },
    /// A try broke off after the request may have reached the gateway (a lost answer): the message may have
    /// gone out, so it is not tried again.
    #[error("the {channel} gateway's answer was lost: {reason}")]
    Interrupted {
        /// `email` or `sms`.
        channel: &'static str,
        /// What broke off.
        reason: String,
    },
    /// A try was still running when the send timeout ran out.
    #[error("the {channel} gateway did not accept the message within {timeout_ms} ms")]
    TimedOut {
        /// `email` or `sms`.
        channel: &'static str,
        /// The timeout.
        timeout_ms: u64,
    },
    /// The message could not be built (an address the mail library refuses).
    #[error("the message could not be built: {0}")]
    Message(String),
}

impl DeliveryError {
    /// Whether the message may have gone out anyway: an HTTP request to a gateway broke off after it may have
    /// arrived. An SMTP relay takes a message only with its final `250` after the data, which a timed-out
    /// client never saw (RFC 5321 §6.1), so an SMTP timeout sent nothing.
    #[must_use]
    pub fn may_have_been_delivered(&self) -> bool {
        matches!(self, DeliveryError::Interrupted { .. })
    }

    /// `not_configured`, `refused`, `failed`, `timed_out`, `interrupted` or `invalid_message`: the metrics label.
    #[must_use]
    pub fn outcome(&self) -> &'static str {
        match self {
            DeliveryError::NotConfigured { .. } => "not_configured",
            DeliveryError::Refused { .. } => "refused",
            DeliveryError::Failed { .. } => "failed",
            DeliveryError::TimedOut { .. } => "timed_out",
            DeliveryError::Interrupted { .. } => "interrupted",
            DeliveryError::Message(_) => "invalid_message",
        }
    }
}

/// Something that happened to a user's account that the user is told about by email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityEvent {
    /// An authenticator app (TOTP device) was verified.
    TotpAdded,
    /// An authenticator app was removed.
    TotpRemoved,
    /// A passkey was registered.
    PasskeyAdded,
    /// A passkey was removed.
    PasskeyRemoved,
    /// Recovery codes were regenerated (the old ones no longer work).
    RecoveryCodesRegenerated,
    /// An operator reset the account's MFA.
    MfaReset,
}

impl SecurityEvent {
    /// The sentence `{event}` is replaced with.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            SecurityEvent::TotpAdded => "An authenticator app was added",
            SecurityEvent::TotpRemoved => "An authenticator app was removed",
            SecurityEvent::PasskeyAdded => "A passkey was added",
            SecurityEvent::PasskeyRemoved => "A passkey was removed",
            SecurityEvent::RecoveryCodesRegenerated => "New recovery codes were generated",
            SecurityEvent::MfaReset => "Your multi-factor authentication was reset by an administrator",
        }
    }
}

/// The most code deliveries one server runs at once; more wait (within their request's timeout). A flood of
/// sends then holds a bounded number of relay connections, not one per request.
pub const MAX_DELIVERIES_IN_FLIGHT: usize = 64;

/// The server's delivery channels.
#[derive(Debug, Clone)]
pub struct Delivery {
    outbox: bool,
    smtp: Option<Arc<SmtpMailer>>,
    sms: Option<Arc<dyn SmsProvider>>,
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl Delivery {
    /// Builds the channels `config.delivery` names (no connection is made yet).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for unusable settings.
    pub fn new(config: &ServerConfig) -> Result<Self, ConfigError> {
        let delivery = &config.delivery;
        Ok(Self {
            outbox: delivery.outbox.unwrap_or(config.dev),
            smtp: delivery.smtp.as_ref().map(SmtpMailer::new).transpose()?.map(Arc::new),
            sms: delivery.sms.as_ref().map(|sms| sms::provider(sms, config.dev)).transpose()?,
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_DELIVERIES_IN_FLIGHT)),
        })
    }

    /// Whether codes are also kept in the outbox.
    #[must_use]
    pub fn outbox_enabled(&self) -> bool {
        self.outbox
    }

    /// Whether email goes out over SMTP.
    #[must_use]
    pub fn has_smtp(&self) -> bool {
        self.smtp.is_some()
    }

    /// Delivers a one-time code through the channel's relay or gateway and waits until it is accepted. With no
    /// relay or gateway for the channel, the outbox alone delivers it (the caller stores it there).
    ///
    /// # Errors
    /// [`DeliveryError`]: not configured (no gateway, outbox off), refused, failed or timed out.
    pub async fn deliver_code(
        &self,
        env: &EnvironmentConfig,
        channel: Channel,
        to: &str,
        code: &str,
        minutes: u64,
    ) -> Result<(), DeliveryError> {
        // The semaphore is never closed, so acquiring fails only if it were.
        let Ok(_permit) = self.in_flight.acquire().await else {
            return Err(DeliveryError::NotConfigured { channel: channel.as_str() });
        };
        let minutes = minutes.to_string();
        let values = [("code", code), ("app_name", env.app_name.as_str()), ("minutes", minutes.as_str())];
        match channel {
            Channel::Email => match &self.smtp {
                Some(smtp) => {
                    let email = &env.email;
                    let from = email.from.clone().ok_or(DeliveryError::NotConfigured { channel: "email" })?;
                    smtp.send(&Email {
                        from,
                        to: to.to_owned(),
                        subject: render(&email.code_subject, &CODE_FIELDS, &values, Escape::None),
                        text: render(&email.code_text, &CODE_FIELDS, &values, Escape::None),
                        html: render(&email.code_html, &CODE_FIELDS, &values, Escape::Html),
                    })
                    .await
                }
                None if self.outbox => Ok(()),
                None => Err(DeliveryError::NotConfigured { channel: "email" }),
            },
            Channel::Sms => match &self.sms {
                Some(gateway) => {
                    let body = render(&env.sms.code_text, &CODE_FIELDS, &values, Escape::None);
                    gateway
                        .send(Sms { environment_id: &env.id, to, from: env.sms.from.as_deref(), body: &body })
                        .await
                }
                None if self.outbox => Ok(()),
                None => Err(DeliveryError::NotConfigured { channel: "sms" }),
            },
        }
    }

    /// Emails `to` about `event` (at `time`). Nothing is sent without SMTP.
    ///
    /// # Errors
    /// [`DeliveryError`] from the relay.
    pub async fn notify(
        &self,
        env: &EnvironmentConfig,
        to: &str,
        event: SecurityEvent,
        time: UnixTime,
    ) -> Result<(), DeliveryError> {
        let (Some(smtp), Some(from)) = (&self.smtp, &env.email.from) else { return Ok(()) };
        let time = time.to_rfc3339();
        let values =
            [("event", event.describe()), ("app_name", env.app_name.as_str()), ("time", time.as_str())];
        let email = &env.email;
        smtp.send(&Email {
            from: from.clone(),
            to: to.to_owned(),
            subject: render(&email.notice_subject, &NOTICE_FIELDS, &values, Escape::None),
            text: render(&email.notice_text, &NOTICE_FIELDS, &values, Escape::None),
            html: render(&email.notice_html, &NOTICE_FIELDS, &values, Escape::Html),
        })
        .await
    }
}
