//! The middleware itself: tag in, token on, challenge answered by one step-up per scope set, one retry.

use std::sync::Arc;

use bytes::Bytes;
use http::Extensions;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Request, Response, ResponseBuilderExt, StatusCode, Url, Version};
use reqwest_middleware::{Middleware, Next};
use stepup_core::{ElevatedToken, Jwt, Route, Scope, ScopeSet, SessionInfo, TokenId};
use stepup_proto::headers::ELEVATED_ACCESS_TOKEN;

use super::challenge::{Challenge, challenge_in, challenge_in_body};
use super::flights::{FlightLog, ProbeOutcome, ProbeTurn};
use super::{ElevatedScope, MiddlewareError, StepUpOnChallenge};
use crate::facade::StepUpAuth;
use tokio::sync::MutexGuard;

/// How many flows one challenged request may run when each flow's token is gone before the retry (taken by a
/// request sent during the flow, or expired at once).
const MAX_FLOWS: usize = 3;

/// The largest 403 body read to look for the challenge code; a bigger one is not a challenge body.
const MAX_CHALLENGE_BODY: u64 = 16 * 1024;

/// Applies elevated tokens to tagged requests and answers step-up challenges (docs/design.md §7).
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
/// On a challenge it asks the engine for step-up for the challenged scopes (the front end prompts; while another
/// prompt or verification runs, it waits its turn), then sends the request once more with the new token.
/// Step-ups for one scope set run one at a time: a thousand requests that meet the same challenge cause one
/// prompt, and all retry with its token when it is reusable; for a single-use scope each request gets a flow, and
/// a token, of its own, one after another.
///
/// A tagged request with no token goes out first and alone for its tag; the tag's other tokenless requests wait
/// for it, and for its step-up if it meets a challenge, then go out with the token it left (or fail with its
/// failure: a cancel answers them all at once). A thousand concurrent requests that would all meet one challenge
/// thus meet it once. A tag whose request succeeded without a challenge is remembered, and its requests go out at
/// once.
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

    /// Waits for the engine's step-up turn. A flow for these scopes that ended while this request waited and
    /// failed (the person cancelled, say) is this request's answer too: asking again would prompt once per waiting
    /// request.
    async fn turn(&self, scopes: &ScopeSet) -> Result<MutexGuard<'_, FlightLog>, MiddlewareError> {
        let flights = self.engine.flights();
        let seen = flights.finished();
        let log = flights.turn().await;
        match log.failed_since(scopes, seen) {
            Some(source) => Err(MiddlewareError::StepUp { scopes: scopes.clone(), source }),
            None => Ok(log),
        }
    }

    /// A token for `scopes` to retry with, after the server refused `sent` (or the request carried none) with a
    /// challenge that named `named`.
    async fn token_after_challenge(
        &self,
        scopes: &ScopeSet,
        named: &ScopeSet,
        tag: &Scope,
        sent: Option<&Arc<ElevatedToken>>,
    ) -> Result<Arc<ElevatedToken>, MiddlewareError> {
        let step_up_failed = |source| MiddlewareError::StepUp { scopes: scopes.clone(), source };
        let flights = self.engine.flights();
        let mut log = self.turn(scopes).await?;
        let sent_id = sent.map(|token| token.id().clone());
        // If it succeeded, a reusable token it left is good here.
        if let Some(token) = self.fresh_token(scopes, tag, sent_id.as_ref()) {
            return Ok(token);
        }
        // The server refused a token that covers what it asked for: it is no good, whatever the engine thought
        // (revoked, or expired by the server's clock). Dropped, or the step-up would hand it straight back. A token
        // that merely lacks a scope the challenge named stays: it is still good for its own scopes.
        let asked = if named.is_empty() { ScopeSet::one(tag.clone()) } else { named.clone() };
        if let Some(refused) = sent.filter(|token| token.covers_all(&asked)) {
            self.engine.discard_token(refused.id());
        }
        for _ in 0..MAX_FLOWS {
            let outcome = self.engine.prompt_in_turn(scopes.as_slice(), None, false).await;
            flights.record(&mut log, scopes, outcome.as_ref().map(|_| ()));
            let info = outcome.map_err(step_up_failed)?;
            // The flow's own token, by id. A request sent during the flow may have taken a single-use one at send
            // time (it then went out with it, rightly): this request needs a flow of its own.
            if let Some(token) = self.engine.take_token(&info.id) {
                return Ok(token);
            }
        }
        Err(MiddlewareError::TokenLost { scopes: scopes.clone() })
    }

    /// The answer to a challenge with `max_age` (RFC 9470): an MFA verification made now, even while a token for
    /// `scopes` is held. It re-issues the session (the reference server records the MFA time in it), which the
    /// retry then carries; the token it yields goes along. Requests that met the same challenge and waited get the
    /// verification another request made meanwhile: the session changed since they were sent.
    async fn fresh_verification(
        &self,
        scopes: &ScopeSet,
        tag: &Scope,
        session_sent: Option<&Jwt>,
    ) -> Result<Option<Arc<ElevatedToken>>, MiddlewareError> {
        let step_up_failed = |source| MiddlewareError::StepUp { scopes: scopes.clone(), source };
        let flights = self.engine.flights();
        let mut log = self.turn(scopes).await?;
        // Another request's fresh MFA re-issued the session while this one waited: that MFA is as recent.
        let mfa_time =
            |session: Option<&Jwt>| session.and_then(|jwt| SessionInfo::parse(jwt).ok()?.mfa_auth_time);
        if mfa_time(self.engine.session().as_ref()) > mfa_time(session_sent) {
            return Ok(self.fresh_token(scopes, tag, None));
        }
        let outcome = self.engine.prompt_in_turn(scopes.as_slice(), Some(Route::Mfa), true).await;
        flights.record(&mut log, scopes, outcome.as_ref().map(|_| ()));
        let info = outcome.map_err(step_up_failed)?;
        Ok(self.engine.take_token(&info.id))
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

/// Puts the engine's current session in a request that carried the one it held when the request was sent (and
/// only then: a request with the app's own authorization keeps it), when the current one is that same session
/// re-issued (same user and session id, an MFA time no older): a session the app set meanwhile — another user's,
/// after an account switch — never goes out on a request made under the old one. Returns whether it did.
fn renew_session(request: &mut Request, sent: Option<&Jwt>, current: Option<&Jwt>) -> bool {
    let (Some(sent), Some(current)) = (sent, current) else { return false };
    if sent == current {
        return false;
    }
    let (Ok(held), Ok(offered)) = (SessionInfo::parse(sent), SessionInfo::parse(current)) else {
        return false;
    };
    if !offered.renews(&held) {
        return false;
    }
    let carried = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .is_some_and(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("bearer") && token.trim() == sent.expose_secret()
        });
    if !carried {
        return false;
    }
    match HeaderValue::from_str(&format!("Bearer {}", current.expose_secret())) {
        Ok(mut value) => {
            value.set_sensitive(true);
            request.headers_mut().insert(AUTHORIZATION, value);
            true
        }
        Err(_) => false,
    }
}

/// Whether a response could carry the challenge code in its body: a 403 with a small JSON body.
fn may_be_challenge_body(response: &Response) -> bool {
    let json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.to_ascii_lowercase().contains("json"));
    response.status() == StatusCode::FORBIDDEN
        && json
        && response.content_length().is_some_and(|length| length <= MAX_CHALLENGE_BODY)
}

/// Rebuilds a response whose body was read to look for a challenge code, with the original's URL and version.
fn rebuilt(status: StatusCode, version: Version, url: Url, headers: HeaderMap, body: Bytes) -> Response {
    let mut builder = http::Response::builder().status(status).version(version).url(url);
    if let Some(all) = builder.headers_mut() {
        *all = headers;
    }
    match builder.body(body.clone()) {
        Ok(response) => Response::from(response),
        // Status, version and headers came from a response, so the builder accepts them; should it not, the body
        // still reaches the caller.
        Err(_) => Response::from(http::Response::new(body)),
    }
}

#[async_trait::async_trait]
impl Middleware for StepUpMiddleware {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let flights = self.engine.flights();
        // The session as it was when the request left: a fresh MFA re-issues it, and the retry carries the new one.
        let mut session_sent = self.engine.session();
        let mut probe = None;
        let (tag, sent) = if let Some(ElevatedScope(tag)) = extensions.get::<ElevatedScope>().cloned() {
            // Taken at send time: a single-use token goes to exactly this request.
            let mut sent = self.engine.token_for(&tag);
            if sent.is_none() {
                // No token: go out first for the tag, or wait for the request that did (flights.rs).
                match flights.probe(&tag) {
                    ProbeTurn::Lead(lead) => probe = Some(lead),
                    ProbeTurn::Wait(mut running) => {
                        let outcome = running.wait_for(|outcome| *outcome != ProbeOutcome::Running).await;
                        if let Ok(outcome) = outcome
                            && let ProbeOutcome::Failed { scopes, error } = &*outcome
                        {
                            let failed =
                                MiddlewareError::StepUp { scopes: scopes.clone(), source: error.clone() };
                            return Err(failed.into());
                        }
                        sent = self.engine.token_for(&tag);
                        // The probe's step-up may have been a fresh MFA, which re-issued the session: this request
                        // goes out with the new one, as a retry would.
                        let current = self.engine.session();
                        if renew_session(&mut request, session_sent.as_ref(), current.as_ref()) {
                            session_sent = current;
                        }
                    }
                    ProbeTurn::Free => {}
                }
            }
            (tag, sent)
        } else if let Some(StepUpOnChallenge(tag)) = extensions.get::<StepUpOnChallenge>().cloned() {
            // Guarded by a recent authentication, not a token: nothing goes out until the server asks.
            (tag, None)
        } else {
            return next.run(request, extensions).await;
        };
        if let Some(token) = &sent {
            apply(&mut request, token);
        }
        // Cloned before sending: after a challenge the first request is gone.
        let retry = request.try_clone();
        let response = next.clone().run(request, extensions).await?;

        let status = response.status();
        let challenge: Challenge = if let Some(challenge) = challenge_in(status, response.headers()) {
            challenge
        } else if may_be_challenge_body(&response) {
            // No header: Dynamic's API says it in the body's code. Read it (it is small, and JSON); hand the
            // response back, rebuilt, when it is something else.
            let (url, version, headers) =
                (response.url().clone(), response.version(), response.headers().clone());
            let body = response.bytes().await?;
            match challenge_in_body(&body) {
                Some(challenge) => challenge,
                // A 403 that is no challenge: the waiters are released (the probe is dropped), nothing learned.
                None => return Ok(rebuilt(status, version, url, headers, body)),
            }
        } else {
            // Only a success says the tag goes through without a token; any other answer just releases the
            // waiters (the probe is dropped), which then go out on their own.
            if let Some(probe) = probe.filter(|_| status.is_success()) {
                probe.unchallenged();
            }
            return Ok(response);
        };
        flights.challenged(&tag);
        let named = challenge.scopes.clone();
        // The challenge's scopes when it names any, with the tag (the token goes out under the tag's name).
        let scopes = named.union(&ScopeSet::one(tag.clone()));
        let Some(mut retry) = retry else {
            return Err(MiddlewareError::BodyNotReplayable { scopes }.into());
        };
        let earned = if challenge.needs_fresh_verification() {
            self.fresh_verification(&scopes, &tag, session_sent.as_ref()).await
        } else {
            self.token_after_challenge(&scopes, &named, &tag, sent.as_ref()).await.map(Some)
        };
        // The requests that waited for this one learn how its step-up went (a success leaves a reusable token in
        // the cell for them; this request has taken its own).
        if let Some(probe) = probe {
            match &earned {
                Err(MiddlewareError::StepUp { scopes, source }) => {
                    probe.settle(ProbeOutcome::Failed { scopes: scopes.clone(), error: source.clone() });
                }
                _ => probe.settle(ProbeOutcome::Settled),
            }
        }
        if let Some(token) = earned? {
            apply(&mut retry, &token);
        }
        if challenge.needs_fresh_verification() {
            renew_session(&mut retry, session_sent.as_ref(), self.engine.session().as_ref());
        }
        // Once: a second challenge goes back to the caller as the server sent it.
        next.run(retry, extensions).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    /// An unsigned JWT with these claims (the client reads claims, it never checks signatures).
    fn jwt(claims: &serde_json::Value) -> Jwt {
        let part = |value: &[u8]| URL_SAFE_NO_PAD.encode(value);
        let raw = format!(
            "{}.{}.{}",
            part(br#"{"alg":"EdDSA"}"#),
            part(claims.to_string().as_bytes()),
            part(b"sig")
        );
        Jwt::new(raw)
    }

    fn request_with(session: &Jwt) -> Request {
        let mut request = Request::new(reqwest::Method::GET, Url::parse("http://127.0.0.1:9/x").unwrap());
        let value = HeaderValue::from_str(&format!("Bearer {}", session.expose_secret())).unwrap();
        request.headers_mut().insert(AUTHORIZATION, value);
        request
    }

    fn bearer(request: &Request) -> &str {
        request.headers()[AUTHORIZATION].to_str().unwrap().trim_start_matches("Bearer ")
    }

    /// A request made under one session goes out under the same session re-issued (a fresh MFA), and never under
    /// another session the app set meanwhile (an account switch while it waited for a probe or a step-up).
    #[test]
    fn only_the_same_session_re_issued_replaces_the_one_a_request_carries() {
        let sent = jwt(&serde_json::json!({"sub": "alice", "sid": "s1"}));
        let fresh = jwt(&serde_json::json!({"sub": "alice", "sid": "s1", "mfa_auth_time": 1_700_000_000}));
        let older = jwt(&serde_json::json!({"sub": "alice", "sid": "s1", "mfa_auth_time": 1_600_000_000}));
        let other_user = jwt(&serde_json::json!({"sub": "bob", "sid": "s9", "mfa_auth_time": 1_700_000_000}));
        let other_session = jwt(&serde_json::json!({"sub": "alice", "sid": "s2"}));

        let mut request = request_with(&sent);
        assert!(renew_session(&mut request, Some(&sent), Some(&fresh)));
        assert_eq!(bearer(&request), fresh.expose_secret());

        for current in [&other_user, &other_session] {
            let mut request = request_with(&sent);
            assert!(!renew_session(&mut request, Some(&sent), Some(current)));
            assert_eq!(
                bearer(&request),
                sent.expose_secret(),
                "the request keeps the session it was made under"
            );
        }
        let mut request = request_with(&fresh);
        assert!(!renew_session(&mut request, Some(&fresh), Some(&older)), "an older MFA time is no renewal");
        // A request with the app's own authorization keeps it.
        let mut request = request_with(&other_user);
        assert!(!renew_session(&mut request, Some(&sent), Some(&fresh)));
        assert_eq!(bearer(&request), other_user.expose_secret());
    }
}
