//! The retry loop every delivery channel shares: tries until the relay or gateway takes the message, refuses it
//! for good, or the send timeout runs out; transient failures back off (100 ms, doubling, at most 2 s).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::DeliveryError;

/// What one try came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// Taken.
    Accepted,
    /// Not taken, and the relay says so or was never reached (no connection, a 4xx SMTP answer, HTTP 429 or
    /// 5xx): another try cannot send the message twice.
    Transient(String),
    /// Refused for good (SMTP 5xx, HTTP 4xx): another try is refused again.
    Refused(String),
    /// The request may have reached the gateway (a lost answer): another try could send, and charge for, the
    /// message twice.
    Uncertain(String),
}

/// What a try still running when the timeout runs out is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CutOff {
    /// Nothing was sent: an SMTP relay takes a message only with its final `250`, which the client never saw
    /// (RFC 5321 §6.1). [`DeliveryError::TimedOut`].
    NotSent,
    /// The request may have arrived (HTTP). [`DeliveryError::Interrupted`].
    MaybeSent,
}

/// Runs `attempt` until it is accepted, refused or uncertain, or `timeout` runs out.
///
/// # Errors
/// [`DeliveryError::Refused`], [`DeliveryError::Interrupted`] (an uncertain try, or one cut off with
/// [`CutOff::MaybeSent`]), [`DeliveryError::TimedOut`] (cut off with [`CutOff::NotSent`]), or
/// [`DeliveryError::Failed`] with the last transient failure when no time is left for another try.
pub(crate) async fn until_accepted<F, Fut>(
    channel: &'static str,
    timeout: Duration,
    cut_off: CutOff,
    mut attempt: F,
) -> Result<(), DeliveryError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt>,
{
    let deadline = Instant::now() + timeout;
    let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let mut backoff = Duration::from_millis(100);
    loop {
        match tokio::time::timeout_at(deadline, attempt()).await {
            Err(_) => {
                return Err(match cut_off {
                    CutOff::NotSent => DeliveryError::TimedOut { channel, timeout_ms },
                    CutOff::MaybeSent => DeliveryError::Interrupted {
                        channel,
                        reason: format!("no answer within {timeout_ms} ms"),
                    },
                });
            }
            Ok(Attempt::Accepted) => return Ok(()),
            Ok(Attempt::Refused(reason)) => return Err(DeliveryError::Refused { channel, reason }),
            Ok(Attempt::Uncertain(reason)) => return Err(DeliveryError::Interrupted { channel, reason }),
            Ok(Attempt::Transient(reason)) => {
                if Instant::now() + backoff >= deadline {
                    return Err(DeliveryError::Failed { channel, reason });
                }
                tracing::debug!(channel, %reason, "delivery failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}
