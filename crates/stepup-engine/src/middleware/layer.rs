//! The middleware itself: tag in, token on, challenge answered by one step-up per scope set, one retry.

use std::sync::Arc;

use http::Extensions;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Request, Response, StatusCode};
use reqwest_middleware::{Middleware, Next};
use stepup_core::{ElevatedToken, Scope, ScopeSet, StepUpError, TokenId};
use stepup_proto::headers::ELEVATED_ACCESS_TOKEN;

use super::challenge::{challenge_in, is_challenge_body};
use super::{ElevatedScope, MiddlewareError};
use crate::coordinator::CoordinatorMsg;
use crate::facade::StepUpAuth;

/// Applies elevated tokens to tagged requests and answers step-up challenges (DESIGN §7).
///
/// Add it to a `reqwest_middleware` client stack, or let [`StepUpAuth::http_client`] build one:
///
/// ```no_run
/// # async fn run(engine: stepup_engine::StepUpAuth) -> Result<(), Box<dyn std::error::Error>> {
/// use stepup_core::Scope;
/// use stepup_engine::middleware::ElevatedRequestExt;
///
/// let client = engine.http_client();
/// let response = client
///     .post("https://api.example.com/wallet/export")
///     .elevated(Scope::WalletExport)
///     .send()
///     .await?;
/// # let _ = response;
/// # Ok(())
/// # }
/// ```
///
/// On a challenge it asks the engine for step-up for the challenged scopes (the front end prompts), then sends
/// the request once more with the new token. Step-ups for one scope set run one at a time: a thousand requests
/// that meet the same challenge cause one prompt, and all retry with its token when it is reusable; for a
/// single-use scope each request gets a flow, and a token, of its own, one after another.
#[derive(Debug, Clone)]
pub struct StepUpMiddleware {
    engine: StepUpAuth,
}

impl StepUpMiddleware {
    /// A middleware for `engine`'s tokens and prompts. Every middleware of one engine shares its single flight.
    #[must_use]
    pub fn new(engine: StepUpAuth) -> Self {
        Self { engine }
    }

    /// A token for `scopes` that is not `sent` (the one the server just refused), stepping up when there is none.
    async fn token_after_challenge(
        &self,
        scopes: &ScopeSet,
        tag: &Scope,
        sent: Option<&TokenId>,
    ) -> Result<Arc<ElevatedToken>, StepUpError> {
        let turn = self.engine.flights().turn(scopes);
        let _turn = turn.lock().await;
        // While this request waited its turn, another may have stepped up: a reusable token it left is good here.
        if let Some(token) = self.fresh_token(scopes, tag, sent) {
            return Ok(token);
        }
        // The server refused the token this request carried: it is no good, whatever the engine thought (revoked,
        // or expired by the server's clock). Dropped, or the step-up would hand it straight back.
        if let Some(refused) = sent {
            self.engine.discard_token(refused);
        }
        let _ = self.engine.coordinator().cast(CoordinatorMsg::Challenged { scopes: scopes.clone() });
        let info = self.engine.prompt_step_up_auth(scopes.as_slice()).await?;
        // This flow's own token, by id: a request sent meanwhile may not take a single-use token meant for this one.
        self.engine.take_token(&info.id).ok_or(StepUpError::Cancelled)
    }

    /// A token covering `scopes` (and the tag) other than `sent`, taken as `token_for` takes it.
    fn fresh_token(
        &self,
        scopes: &ScopeSet,
        tag: &Scope,
        sent: Option<&TokenId>,
    ) -> Option<Arc<ElevatedToken>> {
        let current = self.engine.tokens().get_covering(scopes)?;
        let token = current.to_arc();
        if Some(token.id()) == sent || !token.covers(tag) {
            return None;
        }
        self.engine.take_token(token.id())
    }
}

/// Puts `token` in the request's elevated-token header.
fn apply(request: &mut Request, token: &ElevatedToken) {
    // A JWT is base64url and dots: always a valid header value. Should it not be, the request goes without it
    // and the server's challenge says so.
    if let Ok(mut value) = HeaderValue::from_str(token.raw().expose_secret()) {
        value.set_sensitive(true);
        request.headers_mut().insert(HeaderName::from_static(ELEVATED_ACCESS_TOKEN), value);
    }
}

/// Rebuilds a response whose body was read to look for a challenge code.
fn rebuilt(status: StatusCode, headers: reqwest::header::HeaderMap, body: Vec<u8>) -> Response {
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Response::from(response)
}

#[async_trait::async_trait]
impl Middleware for StepUpMiddleware {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let Some(ElevatedScope(tag)) = extensions.get::<ElevatedScope>().cloned() else {
            return next.run(request, extensions).await;
        };
        // Taken at send time: a single-use token goes to exactly this request.
        let sent = self.engine.token_for(&tag);
        if let Some(token) = &sent {
            apply(&mut request, token);
        }
        // Cloned before sending: after a challenge the first request is gone.
        let retry = request.try_clone();
        let response = next.clone().run(request, extensions).await?;

        let status = response.status();
        let named = if let Some(challenge) = challenge_in(status, response.headers()) {
            challenge.scopes
        } else if status == StatusCode::FORBIDDEN {
            // No header: Dynamic's API says it in the body's code. Read it; hand the response back if it is not.
            let headers = response.headers().clone();
            let body = response.bytes().await?.to_vec();
            if !is_challenge_body(&body) {
                return Ok(rebuilt(status, headers, body));
            }
            ScopeSet::empty()
        } else {
            return Ok(response);
        };
        // The challenge's scopes when it names any, with the tag (the token goes out under the tag's name).
        let scopes = named.union(&ScopeSet::one(tag.clone()));
        let Some(mut retry) = retry else {
            return Err(MiddlewareError::BodyNotReplayable { scopes }.into());
        };
        let sent_id = sent.as_ref().map(|token| token.id().clone());
        let token = self
            .token_after_challenge(&scopes, &tag, sent_id.as_ref())
            .await
            .map_err(|source| MiddlewareError::StepUp { scopes: scopes.clone(), source })?;
        apply(&mut retry, &token);
        // Once: a second challenge goes back to the caller as the server sent it.
        next.run(retry, extensions).await
    }
}
