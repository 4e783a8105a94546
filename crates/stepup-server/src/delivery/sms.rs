//! SMS through an HTTP gateway: the [`SmsProvider`] trait, Twilio's Messages API (whose shape many gateways
//! copy) and a signed webhook for everything else.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use stepup_core::SecretString;

use super::DeliveryError;
use super::retry::{Attempt, CutOff, until_accepted};
use super::settings::SmsGatewayConfig;
use crate::config::ConfigError;

/// One SMS to send. `Debug` leaves out the text (it holds the code).
#[derive(Clone, Copy)]
pub struct Sms<'a> {
    /// The environment it is sent for.
    pub environment_id: &'a str,
    /// The destination, `+<country code><number>`.
    pub to: &'a str,
    /// The sender, when the environment names one.
    pub from: Option<&'a str>,
    /// The text (it holds the code: never logged).
    pub body: &'a str,
}

impl std::fmt::Debug for Sms<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sms")
            .field("environment_id", &self.environment_id)
            .field("to", &self.to)
            .field("from", &self.from)
            .field("body", &stepup_core::secret::REDACTED)
            .finish()
    }
}

/// A boxed send future.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>>;

/// An SMS gateway. Implementations wait until the gateway accepted the message, within their own time bound.
pub trait SmsProvider: Send + Sync + std::fmt::Debug {
    /// Sends one message.
    ///
    /// # Errors
    /// [`DeliveryError`] when the gateway refuses it or does not answer in time.
    fn send<'a>(&'a self, sms: Sms<'a>) -> SendFuture<'a>;
}

/// Builds the configured provider.
///
/// # Errors
/// [`ConfigError::Invalid`] for a missing secret, a bad URL or a zero timeout.
pub fn provider(config: &SmsGatewayConfig, dev: bool) -> Result<Arc<dyn SmsProvider>, ConfigError> {
    let invalid = |why: &str| ConfigError::Invalid(format!("delivery.sms: {why}"));
    let checked_url = |url: &str| {
        let allowed = url.starts_with("https://") || (dev && url.starts_with("http://"));
        if allowed {
            Ok(url.trim_end_matches('/').to_owned())
        } else {
            Err(invalid(&format!("`{url}` must be https:// (http:// only with --dev)")))
        }
    };
    let timeout = |ms: u64| {
        if ms == 0 { Err(invalid("timeout_ms must be positive")) } else { Ok(Duration::from_millis(ms)) }
    };
    let client = crate::http_client::client().map_err(|e| invalid(&e))?;
    Ok(match config {
        SmsGatewayConfig::Twilio { account_sid, auth_token, base_url, timeout_ms } => {
            let auth_token = auth_token
                .clone()
                .ok_or_else(|| invalid("twilio needs auth_token (or STEPUP_SMS_AUTH_TOKEN)"))?;
            if account_sid.is_empty() || !account_sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid("account_sid must be letters and digits"));
            }
            Arc::new(Twilio {
                client,
                url: format!("{}/2010-04-01/Accounts/{account_sid}/Messages.json", checked_url(base_url)?),
                account_sid: account_sid.clone(),
                auth_token,
                timeout: timeout(*timeout_ms)?,
            })
        }
        SmsGatewayConfig::Webhook { url, secret, timeout_ms } => {
            let secret = secret
                .clone()
                .ok_or_else(|| invalid("webhook needs secret (or STEPUP_SMS_WEBHOOK_SECRET)"))?;
            if secret.expose_secret().len() < 16 {
                return Err(invalid("the webhook secret must be at least 16 characters"));
            }
            Arc::new(Webhook { client, url: checked_url(url)?, secret, timeout: timeout(*timeout_ms)? })
        }
    })
}

async fn classify(response: Result<reqwest::Response, reqwest::Error>) -> Attempt {
    match response {
        Err(error) if error.is_connect() => Attempt::Transient(without_url(&error)),
        Err(error) => Attempt::Uncertain(without_url(&error)),
        Ok(response) if response.status().is_success() => Attempt::Accepted,
        Ok(response) => {
            let status = response.status();
            // The gateway's error code, not its message: Twilio's `{"code":21211,"message":"The 'To' number
            // +1555... is not valid"}` names the phone number, which stays out of the log.
            let body = response.text().await.unwrap_or_default();
            let detail = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("code").and_then(serde_json::Value::as_i64))
                .map_or_else(String::new, |code| format!(" (gateway code {code})"));
            let reason = format!("HTTP {status}{detail}");
            if status.as_u16() == 429 || status.is_server_error() {
                Attempt::Transient(reason)
            } else {
                Attempt::Refused(reason)
            }
        }
    }
}

/// reqwest's error text names the URL, which for a webhook may carry a token: leave it out.
fn without_url(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    kind.to_owned()
}

/// Twilio's `POST /2010-04-01/Accounts/{sid}/Messages.json`.
struct Twilio {
    client: &'static reqwest::Client,
    url: String,
    account_sid: String,
    auth_token: SecretString,
    timeout: Duration,
}

impl std::fmt::Debug for Twilio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Twilio").field("url", &self.url).finish_non_exhaustive()
    }
}

impl SmsProvider for Twilio {
    fn send<'a>(&'a self, sms: Sms<'a>) -> SendFuture<'a> {
        Box::pin(until_accepted("sms", self.timeout, CutOff::MaybeSent, move || {
            let mut form = vec![("To", sms.to), ("Body", sms.body)];
            if let Some(from) = sms.from {
                form.push(("From", from));
            }
            let request = self
                .client
                .post(&self.url)
                .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
                .timeout(self.timeout)
                .form(&form);
            async move { classify(request.send().await).await }
        }))
    }
}

/// A signed JSON POST.
struct Webhook {
    client: &'static reqwest::Client,
    url: String,
    secret: SecretString,
    timeout: Duration,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook").finish_non_exhaustive()
    }
}

/// The header a webhook request is signed in.
pub const SIGNATURE_HEADER: &str = "x-stepup-signature";

/// `t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`: the timestamp is signed with the body, so a
/// receiver that refuses old timestamps cannot be replayed to.
#[must_use]
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return String::new() };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", crate::random::hex(&mac.finalize().into_bytes()))
}

impl SmsProvider for Webhook {
    fn send<'a>(&'a self, sms: Sms<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let body = serde_json::to_vec(&serde_json::json!({
                "channel": "sms",
                "environmentId": sms.environment_id,
                "to": sms.to,
                "from": sms.from,
                "body": sms.body,
            }))
            .map_err(|e| DeliveryError::Message(e.to_string()))?;
            until_accepted("sms", self.timeout, CutOff::MaybeSent, || {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let request = self
                    .client
                    .post(&self.url)
                    .header("content-type", "application/json")
                    .header(SIGNATURE_HEADER, signature(self.secret.expose_secret().as_bytes(), now, &body))
                    .timeout(self.timeout)
                    .body(body.clone());
                async move { classify(request.send().await).await }
            })
            .await
        })
    }
}
