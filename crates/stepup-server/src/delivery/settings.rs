//! The delivery settings of the configuration file: the SMTP relay and SMS gateway (`[delivery]`, server-wide)
//! and each environment's sender and templates (`[environments.email]`, `[environments.sms]`).

use serde::Deserialize;
use stepup_core::SecretString;

use super::template::{Template, TemplateError};

/// `[delivery]`: how codes and notices leave the server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Keep every code in the outbox table too, readable through the admin API: a development channel that
    /// holds codes in clear. Default: on with `--dev`, off otherwise.
    #[serde(default)]
    pub outbox: Option<bool>,
    /// Email over SMTP; without it, email codes go only to the outbox (or are refused when it is off).
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    /// SMS through an HTTP gateway; without it, SMS codes go only to the outbox (or are refused).
    #[serde(default)]
    pub sms: Option<SmsGatewayConfig>,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which the server must offer (port 587). The default.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
    /// No TLS: only for a relay on a loopback address (a local MTA or a test server).
    None,
}

/// `[delivery.smtp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// The relay's host name (checked against its certificate).
    pub host: String,
    /// The port; default 587 (STARTTLS), 465 (implicit TLS), 25 (none).
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (default), `implicit` or `none`.
    #[serde(default)]
    pub tls: SmtpTls,
    /// The user name to authenticate with; no authentication when absent.
    #[serde(default)]
    pub username: Option<String>,
    /// The password; also `STEPUP_SMTP_PASSWORD`.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// How long a send may take in all — connection, TLS, retries of transient failures — milliseconds.
    /// The request that asked for the code waits for it. Default 10 000.
    #[serde(default = "default_send_timeout_ms")]
    pub timeout_ms: u64,
}

impl SmtpConfig {
    /// The port: the configured one or the TLS mode's usual one.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Implicit => 465,
            SmtpTls::None => 25,
        })
    }
}

/// `[delivery.sms]`: the gateway SMS go through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, tag = "provider", rename_all = "snake_case")]
pub enum SmsGatewayConfig {
    /// Twilio's Messages resource (and the many gateways that copy its shape): a form-encoded POST of `To`,
    /// `From` and `Body` to `{base_url}/2010-04-01/Accounts/{account_sid}/Messages.json`, basic auth.
    Twilio {
        /// The account SID (basic-auth user).
        account_sid: String,
        /// The auth token (basic-auth password); also `STEPUP_SMS_AUTH_TOKEN`.
        #[serde(default)]
        auth_token: Option<SecretString>,
        /// The API's base URL; default `https://api.twilio.com`.
        #[serde(default = "default_twilio_url")]
        base_url: String,
        /// Milliseconds a send may take in all, retries included. Default 10 000.
        #[serde(default = "default_send_timeout_ms")]
        timeout_ms: u64,
    },
    /// A POST of JSON `{channel, to, from, body, environmentId}` to any URL, signed with HMAC-SHA256 in the
    /// `X-Stepup-Signature` header (`t=<unix seconds>,v1=<hex HMAC of "<t>.<body>">`).
    Webhook {
        /// Where to POST.
        url: String,
        /// The HMAC key; also `STEPUP_SMS_WEBHOOK_SECRET`.
        #[serde(default)]
        secret: Option<SecretString>,
        /// Milliseconds a send may take in all, retries included. Default 10 000.
        #[serde(default = "default_send_timeout_ms")]
        timeout_ms: u64,
    },
}

impl SmsGatewayConfig {
    /// The send timeout, milliseconds.
    #[must_use]
    pub fn timeout_ms(&self) -> u64 {
        match self {
            SmsGatewayConfig::Twilio { timeout_ms, .. } | SmsGatewayConfig::Webhook { timeout_ms, .. } => {
                *timeout_ms
            }
        }
    }
}

fn default_send_timeout_ms() -> u64 {
    10_000
}

fn default_twilio_url() -> String {
    "https://api.twilio.com".to_owned()
}

/// `[environments.email]`: the sender and templates of an environment's email. Templates take `{app_name}`,
/// and `{code}` and `{minutes}` (codes) or `{event}` and `{time}` (security notices).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailSettings {
    /// The `From:` mailbox, `Name <address>` or an address; needed when SMTP is configured.
    pub from: Option<String>,
    /// The subject of a code email.
    pub code_subject: String,
    /// Its plain-text body.
    pub code_text: String,
    /// Its HTML body (values are HTML-escaped).
    pub code_html: String,
    /// The subject of a security notice (an MFA method added or removed, recovery codes regenerated).
    pub notice_subject: String,
    /// Its plain-text body.
    pub notice_text: String,
    /// Its HTML body.
    pub notice_html: String,
}

impl Default for EmailSettings {
    fn default() -> Self {
        Self {
            from: None,
            // No code in the subject: subjects show in lock-screen previews and in relays' logs.
            code_subject: "Your {app_name} verification code".into(),
            code_text: "Your {app_name} verification code is {code}.\n\nIt expires in {minutes} minutes. If you \
                        did not ask for it, you can ignore this message."
                .into(),
            code_html: "<p>Your {app_name} verification code is <strong>{code}</strong>.</p>\n<p>It expires in \
                        {minutes} minutes. If you did not ask for it, you can ignore this message.</p>"
                .into(),
            notice_subject: "Security alert for your {app_name} account".into(),
            notice_text: "{event} on your {app_name} account ({time}).\n\nIf this was you, there is nothing to do. \
                          If it was not, secure your account and contact support right away."
                .into(),
            notice_html: "<p>{event} on your {app_name} account ({time}).</p>\n<p>If this was you, there is \
                          nothing to do. If it was not, secure your account and contact support right away.</p>"
                .into(),
        }
    }
}

/// `[environments.sms]`: the sender and template of an environment's SMS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsSettings {
    /// The sender (`From`): a phone number or an alphanumeric sender id; the gateway's default when absent.
    pub from: Option<String>,
    /// The text of a code SMS (`{code}`, `{app_name}`, `{minutes}`).
    pub code_text: String,
}

impl Default for SmsSettings {
    fn default() -> Self {
        Self {
            from: None,
            code_text: "{code} is your {app_name} verification code. It expires in {minutes} minutes.".into(),
        }
    }
}

/// The placeholders a code template may use.
pub const CODE_FIELDS: [&str; 3] = ["code", "app_name", "minutes"];
/// The placeholders a notice template may use.
pub const NOTICE_FIELDS: [&str; 3] = ["event", "app_name", "time"];

impl EmailSettings {
    /// Checks every template: known placeholders only, and the code in each code template.
    ///
    /// # Errors
    /// [`TemplateError`] naming the template.
    pub fn validate(&self) -> Result<(), TemplateError> {
        for (name, text) in [
            ("email.code_subject", &self.code_subject),
            ("email.code_text", &self.code_text),
            ("email.code_html", &self.code_html),
        ] {
            Template::parse(name, text, &CODE_FIELDS)?;
        }
        for (name, text) in [("email.code_text", &self.code_text), ("email.code_html", &self.code_html)] {
            Template::parse(name, text, &CODE_FIELDS)?.require(name, "code")?;
        }
        for (name, text) in [
            ("email.notice_subject", &self.notice_subject),
            ("email.notice_text", &self.notice_text),
            ("email.notice_html", &self.notice_html),
        ] {
            Template::parse(name, text, &NOTICE_FIELDS)?;
        }
        Ok(())
    }
}

impl SmsSettings {
    /// Checks the template.
    ///
    /// # Errors
    /// [`TemplateError`].
    pub fn validate(&self) -> Result<(), TemplateError> {
        Template::parse("sms.code_text", &self.code_text, &CODE_FIELDS)?
            .require("sms.code_text", "code")
            .map(|_| ())
    }
}
