//! Email over SMTP (lettre, rustls on ring): one pooled transport per server, a send bounded by the configured
//! timeout with transient failures retried inside it.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use super::DeliveryError;
use super::retry::{Attempt, CutOff, until_accepted};
use super::settings::{SmtpConfig, SmtpTls};
use crate::config::ConfigError;

/// An email ready to go. `Debug` leaves out the subject and bodies (they may hold a code).
#[derive(Clone)]
pub struct Email {
    /// `From:` (`Name <address>` or an address).
    pub from: String,
    /// The recipient's address.
    pub to: String,
    /// The subject.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("subject", &stepup_core::secret::REDACTED)
            .finish_non_exhaustive()
    }
}

/// The SMTP relay.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    timeout: Duration,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl SmtpMailer {
    /// Builds the transport (no connection is made until the first send).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for `tls = "none"` to a host that is not loopback, a password without a user
    /// name, a zero timeout, or TLS parameters rustls refuses.
    pub fn new(config: &SmtpConfig) -> Result<Self, ConfigError> {
        let invalid = |why: String| ConfigError::Invalid(format!("delivery.smtp: {why}"));
        if config.host.trim().is_empty() {
            return Err(invalid("host must not be empty".into()));
        }
        if config.tls == SmtpTls::None && !is_loopback(&config.host) {
            return Err(invalid(format!(
                "tls = \"none\" sends codes and the password in clear; it is allowed only to a loopback relay, not `{}`",
                config.host
            )));
        }
        if config.timeout_ms == 0 {
            return Err(invalid("timeout_ms must be positive".into()));
        }
        let tls_parameters =
            || TlsParameters::new(config.host.clone()).map_err(|e| invalid(format!("TLS: {e}")));
        let tls = match config.tls {
            SmtpTls::Starttls => Tls::Required(tls_parameters()?),
            SmtpTls::Implicit => Tls::Wrapper(tls_parameters()?),
            SmtpTls::None => Tls::None,
        };
        let timeout = Duration::from_millis(config.timeout_ms);
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.clone())
            .port(config.port())
            .tls(tls)
            .timeout(Some(timeout));
        match (&config.username, &config.password) {
            (Some(user), Some(password)) => {
                builder =
                    builder.credentials(Credentials::new(user.clone(), password.expose_secret().to_owned()));
            }
            (Some(_), None) => {
                return Err(invalid("username is set but no password (or STEPUP_SMTP_PASSWORD)".into()));
            }
            (None, Some(_)) => return Err(invalid("password is set but no username".into())),
            (None, None) => {}
        }
        Ok(Self { transport: builder.build(), timeout })
    }

    /// Sends `email` and waits until the relay accepts it: transient failures (a lost connection, a 4xx
    /// answer) are retried with backoff until the timeout runs out; a permanent refusal (5xx) is not.
    ///
    /// # Errors
    /// [`DeliveryError::Message`] for an address lettre cannot parse, [`DeliveryError::Refused`] for a 5xx
    /// answer, [`DeliveryError::Failed`] when the last try failed as the time ran out,
    /// [`DeliveryError::TimedOut`] when a try was still running.
    pub async fn send(&self, email: &Email) -> Result<(), DeliveryError> {
        let message = build(email)?;
        until_accepted("email", self.timeout, CutOff::NotSent, || async {
            match self.transport.send(message.clone()).await {
                Ok(_) => Attempt::Accepted,
                Err(error) if error.is_permanent() => Attempt::Refused(error.to_string()),
                Err(error) => Attempt::Transient(error.to_string()),
            }
        })
        .await
    }
}

fn build(email: &Email) -> Result<Message, DeliveryError> {
    let from =
        email.from.parse::<Mailbox>().map_err(|e| DeliveryError::Message(format!("from address: {e}")))?;
    // The recipient is a bare address (never a display name a caller chose), and stays out of error texts.
    let to = email
        .to
        .parse::<lettre::Address>()
        .map_err(|_| DeliveryError::Message("recipient: not an address".into()))?;
    Message::builder()
        .from(from)
        .to(Mailbox::new(None, to))
        .subject(email.subject.clone())
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(email.text.clone()))
                .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(email.html.clone())),
        )
        .map_err(|e| DeliveryError::Message(e.to_string()))
}

/// Checks a `From:` value parses as a mailbox.
///
/// # Errors
/// The parser's message.
pub fn check_mailbox(text: &str) -> Result<(), String> {
    text.parse::<Mailbox>().map(|_| ()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_leaves_out_what_may_hold_a_code() {
        let email = super::Email {
            from: "a@example.com".into(),
            to: "b@example.com".into(),
            subject: "123456 is your code".into(),
            text: "123456".into(),
            html: "<b>123456</b>".into(),
        };
        assert!(!format!("{email:?}").contains("123456"));
    }
}
