//! `ChannelFrontend`: the engine's prompt requests as messages, for UIs that draw themselves.
//!
//! A game loop polls [`FrontendInbox::try_next`] once a frame and never blocks; a UI task awaits
//! [`FrontendInbox::next`]. Each request arrives as a [`PendingPrompt`] that is answered exactly once, from
//! whichever thread or frame suits the UI. Nothing here can hang a flow: a prompt dropped unanswered, or an inbox
//! dropped altogether (the UI went away), answers [`PromptReply::Cancel`], and the flow ends `Cancelled` for
//! every caller waiting on it.

use std::sync::Arc;

use stepup_core::{StepUpError, TokenInfo};
use tokio::sync::{mpsc, oneshot};

use crate::frontend::{Frontend, PromptReply, PromptRequest};

/// What the engine tells a channel-driven UI.
#[derive(Debug)]
#[non_exhaustive]
pub enum FrontendEvent {
    /// The person must answer this request.
    Prompt(PendingPrompt),
    /// A prompt flow ended, however it ended (elevated, failed, cancelled, reset or timed out): a UI clears its
    /// dialog here, including a request that was shown but never answered.
    Finished(Result<TokenInfo, StepUpError>),
}

/// One request waiting for the person's answer.
#[derive(Debug)]
pub struct PendingPrompt {
    request: PromptRequest,
    reply: oneshot::Sender<PromptReply>,
}

impl PendingPrompt {
    /// What the engine asks.
    #[must_use]
    pub fn request(&self) -> &PromptRequest {
        &self.request
    }

    /// Whether the flow still waits for this answer (it does not once it was cancelled, reset or timed out).
    #[must_use]
    pub fn is_open(&self) -> bool {
        !self.reply.is_closed()
    }

    /// Answers the request. Returns whether the flow took the answer (`false` when it had already ended).
    pub fn answer(self, reply: PromptReply) -> bool {
        self.reply.send(reply).is_ok()
    }
}

/// The UI's end of a [`ChannelFrontend`]. Dropping it cancels any flow that asks for the person from then on.
#[derive(Debug)]
pub struct FrontendInbox {
    events: mpsc::UnboundedReceiver<FrontendEvent>,
}

impl FrontendInbox {
    /// The next event if one is waiting; never blocks (for game loops that poll once a frame).
    pub fn try_next(&mut self) -> Option<FrontendEvent> {
        self.events.try_recv().ok()
    }

    /// Waits for the next event. `None` once the engine and every clone of its [`ChannelFrontend`] are gone.
    pub async fn next(&mut self) -> Option<FrontendEvent> {
        self.events.recv().await
    }

    /// Whether the engine side is gone (no event will ever arrive again).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.events.is_closed() && self.events.is_empty()
    }
}

/// A [`Frontend`] that turns requests into [`FrontendEvent`]s on a channel (docs/design.md §6).
///
/// ```
/// use stepup_engine::frontend::{ChannelFrontend, FrontendEvent};
/// use stepup_engine::PromptReply;
///
/// let (frontend, mut inbox) = ChannelFrontend::new();
/// // let engine = StepUpAuth::builder(base_url, environment_id).frontend(frontend).build().await?;
/// # drop(frontend);
/// // Once a frame:
/// while let Some(event) = inbox.try_next() {
///     match event {
///         FrontendEvent::Prompt(prompt) => {
///             // Draw `prompt.request()`; answer now or keep `prompt` until the person has typed.
///             prompt.answer(PromptReply::Cancel);
///         }
///         FrontendEvent::Finished(outcome) => println!("flow ended: {}", outcome.is_ok()),
///         _ => {}
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct ChannelFrontend {
    events: mpsc::UnboundedSender<FrontendEvent>,
}

impl ChannelFrontend {
    /// A front end and the inbox the UI reads. Hand the front end to
    /// [`StepUpAuthBuilder::frontend`](crate::StepUpAuthBuilder::frontend).
    #[must_use]
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> (Arc<Self>, FrontendInbox) {
        // Unbounded on purpose: a flow has at most one request out at a time (the driver awaits each answer), so
        // the queue holds one request plus the flows' end notices; a bound would only add a way to block.
        let (events, receiver) = mpsc::unbounded_channel();
        (Arc::new(Self { events }), FrontendInbox { events: receiver })
    }
}

#[async_trait::async_trait]
impl Frontend for ChannelFrontend {
    async fn prompt(&self, request: PromptRequest) -> PromptReply {
        let (reply, answer) = oneshot::channel();
        if self.events.send(FrontendEvent::Prompt(PendingPrompt { request, reply })).is_err() {
            // The UI dropped its inbox: nobody will ever answer.
            return PromptReply::Cancel;
        }
        // A prompt dropped unanswered counts as the person walking away.
        answer.await.unwrap_or(PromptReply::Cancel)
    }

    async fn finished(&self, outcome: &Result<TokenInfo, StepUpError>) {
        let _ = self.events.send(FrontendEvent::Finished(outcome.clone()));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_is_answered_through_the_inbox() {
        let (frontend, mut inbox) = ChannelFrontend::new();
        assert!(inbox.try_next().is_none(), "nothing asked yet");
        let asking = tokio::spawn(async move { frontend.prompt(PromptRequest::EnterTotp).await });
        let Some(FrontendEvent::Prompt(prompt)) = inbox.next().await else { panic!("a prompt") };
        assert_eq!(prompt.request(), &PromptRequest::EnterTotp);
        assert!(prompt.is_open());
        assert!(prompt.answer(PromptReply::Code("123456".into())));
        assert_eq!(asking.await.unwrap(), PromptReply::Code("123456".into()));
    }

    #[tokio::test]
    async fn a_dropped_prompt_or_inbox_cancels() {
        let (frontend, mut inbox) = ChannelFrontend::new();
        let asking = {
            let frontend = frontend.clone();
            tokio::spawn(async move { frontend.prompt(PromptRequest::EnterTotp).await })
        };
        let Some(FrontendEvent::Prompt(prompt)) = inbox.next().await else { panic!("a prompt") };
        drop(prompt);
        assert_eq!(asking.await.unwrap(), PromptReply::Cancel);

        drop(inbox);
        assert_eq!(frontend.prompt(PromptRequest::UsePasskey).await, PromptReply::Cancel);
    }

    #[tokio::test]
    async fn an_answer_after_the_flow_ended_is_not_taken() {
        let (frontend, mut inbox) = ChannelFrontend::new();
        let asking = tokio::spawn(async move { frontend.prompt(PromptRequest::EnterRecoveryCode).await });
        let Some(FrontendEvent::Prompt(prompt)) = inbox.next().await else { panic!("a prompt") };
        // The engine gave up on the request (cancel, reset or timeout abort the prompt's task).
        asking.abort();
        let _ = asking.await;
        assert!(!prompt.is_open());
        assert!(!prompt.answer(PromptReply::Confirm));
        assert!(inbox.is_closed(), "the only front end is gone with the aborted task");
    }

    #[tokio::test]
    async fn finished_flows_are_reported() {
        let (frontend, mut inbox) = ChannelFrontend::new();
        frontend.finished(&Err(StepUpError::Cancelled)).await;
        let Some(FrontendEvent::Finished(outcome)) = inbox.try_next() else { panic!("an end notice") };
        assert_eq!(outcome, Err(StepUpError::Cancelled));
    }
}
