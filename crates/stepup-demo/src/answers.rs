//! `AnswerCounter`: counts what the network answered, below `StepUpMiddleware` in a client stack.

use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest_middleware::{Middleware, Next};

/// A middleware that counts responses by status. Placed after (below) `StepUpMiddleware`, it sees every first
/// try and every retry, so a test or benchmark can tell how many requests met a challenge.
#[derive(Debug, Default)]
pub struct AnswerCounter {
    sent: AtomicUsize,
    forbidden: AtomicUsize,
    ok: AtomicUsize,
}

impl AnswerCounter {
    /// How many requests passed this layer on their way out (counted before they are sent: above
    /// `StepUpMiddleware` it counts the calls made, below it the requests that went out).
    #[must_use]
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }

    /// How many answers were 403.
    #[must_use]
    pub fn forbidden(&self) -> usize {
        self.forbidden.load(Ordering::SeqCst)
    }

    /// How many answers were 200.
    #[must_use]
    pub fn ok(&self) -> usize {
        self.ok.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl Middleware for AnswerCounter {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        let response = next.run(request, extensions).await?;
        match response.status() {
            reqwest::StatusCode::FORBIDDEN => self.forbidden.fetch_add(1, Ordering::SeqCst),
            reqwest::StatusCode::OK => self.ok.fetch_add(1, Ordering::SeqCst),
            _ => 0,
        };
        Ok(response)
    }
}
