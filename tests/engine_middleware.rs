//! The middleware against the reference server's protected resource: tokens applied to tagged requests only,
//! challenges answered by one step-up and one retry, single flight for reusable scopes, one flow per request
//! for single-use scopes, and every way it can fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{TestServer, TestUser, next_prompt, pending_code};
use reqwest::StatusCode;
use stepup::engine::{
    ElevatedRequestExt, MiddlewareError, PromptReply, PromptRequest, StepUpAuth, StepUpMiddleware,
    StepUpState,
};
use stepup::{Scope, StepUpError};
use stepup_demo::AnswerCounter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// `POST /protected/{scope}` on the reference server as `user`, through the engine's middleware client.
fn protected(
    h: &TestServer,
    engine: &StepUpAuth,
    user: &TestUser,
    path_scope: &Scope,
) -> reqwest_middleware::RequestBuilder {
    let url = format!("{}/sdk/{}/protected/{}", h.base_url(), common::ENV, path_scope.as_str());
    engine.http_client().post(url).bearer_auth(&user.jwt)
}

/// The middleware's own error inside a client error.
fn middleware_error(error: &reqwest_middleware::Error) -> &MiddlewareError {
    MiddlewareError::from_error(error).unwrap_or_else(|| panic!("the middleware's own error, not {error:?}"))
}

/// The middleware met a challenge and tried to step up, which an engine without a front end refuses.
fn assert_tried_to_step_up(error: &reqwest_middleware::Error) {
    let middleware = middleware_error(error);
    assert!(
        matches!(middleware.step_up_error(), Some(StepUpError::NotConfigured { what: "front end" })),
        "it tried to step up: {middleware:?}"
    );
}

/// The `jti` the protected resource saw (the token that let the call through).
async fn jti_of(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    body["jti"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagged_requests_get_the_token_and_untagged_ones_pass_untouched() {
    let h = TestServer::live().await;
    let user = h.user().await;
    // No front end: any step-up attempt would fail with `NotConfigured`, so nothing here may start one.
    let engine = h.engine(&user).await;
    common::elevate_by_email(&h, &engine, &user, &[Scope::CredentialLink]).await;

    let tagged = protected(&h, &engine, &user, &Scope::CredentialLink).elevated(Scope::CredentialLink);
    let jti = jti_of(tagged.send().await.unwrap()).await;
    assert_eq!(jti, engine.tokens().get(&Scope::CredentialLink).unwrap().id().as_str());

    // Untagged: no token goes out, and the server's challenge comes back to the caller as it was sent.
    let untagged = protected(&h, &engine, &user, &Scope::CredentialLink).send().await.unwrap();
    assert_eq!(untagged.status(), StatusCode::FORBIDDEN);
    let challenge = untagged.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("insufficient_user_authentication"), "{challenge}");
    let body: serde_json::Value = untagged.json().await.unwrap();
    assert_eq!(body["code"], "elevated_access_token_required");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_prompts_and_the_request_is_retried_once_with_the_new_token() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;

    let request = protected(&h, &engine, &user, &Scope::WalletExport).elevated(Scope::WalletExport);
    let call = tokio::spawn(async move { request.send().await });
    let (request, reply) = next_prompt(&mut inbox).await;
    assert!(matches!(request, PromptRequest::EnterOtp { .. }), "{request:?}");
    let code = pending_code(&h, &engine, &user.email).await;
    assert!(reply.answer(PromptReply::Code(code.as_str().into())));

    let response = call.await.unwrap().unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["ok"], true);
    assert_eq!(body["singleUse"], true, "wallet:export is single-use by the server's policy");
    // The single-use token went to the retried request and is spent.
    assert!(engine.tokens().get(&Scope::WalletExport).is_none());
    assert!(!matches!(engine.state(), StepUpState::Elevated { .. }), "{:?}", engine.state());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_step_up_gives_the_caller_cancelled() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;

    let request = protected(&h, &engine, &user, &Scope::CredentialLink).elevated(Scope::CredentialLink);
    let call = tokio::spawn(async move { request.send().await });
    let (_request, reply) = next_prompt(&mut inbox).await;
    assert!(reply.answer(PromptReply::Cancel));
    let error = call.await.unwrap().unwrap_err();
    let middleware = middleware_error(&error);
    assert_eq!(middleware.step_up_error(), Some(&StepUpError::Cancelled), "{middleware:?}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_front_end_a_challenge_is_a_typed_error() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let engine = h.engine(&user).await;
    let error = protected(&h, &engine, &user, &Scope::CredentialLink)
        .elevated(Scope::CredentialLink)
        .send()
        .await
        .unwrap_err();
    assert_tried_to_step_up(&error);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_body_is_not_retried_and_no_step_up_starts() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;

    let body = reqwest::Body::wrap(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")));
    let error = protected(&h, &engine, &user, &Scope::CredentialLink)
        .elevated(Scope::CredentialLink)
        .body(body)
        .send()
        .await
        .unwrap_err();
    let middleware = middleware_error(&error);
    assert!(matches!(middleware, MiddlewareError::BodyNotReplayable { .. }), "{middleware:?}");
    assert!(inbox.try_next_prompt().is_none(), "nobody was asked");
    h.shutdown().await;
}

/// An upstream API outside this repo that challenges every request, whatever token it carries: for the one
/// case the reference server never produces (a retried request challenged again).
struct AlwaysChallenges {
    url: String,
    requests: Arc<AtomicUsize>,
}

impl AlwaysChallenges {
    async fn start(response: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/resource", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counter = counter.clone();
                let response = response.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buffer = [0_u8; 1024];
                    loop {
                        let Ok(read) = socket.read(&mut buffer).await else { return };
                        if read == 0 {
                            return;
                        }
                        head.extend_from_slice(&buffer[..read]);
                        if head.windows(4).any(|w| w == b"\r\n\r\n") {
                            counter.fetch_add(1, Ordering::SeqCst);
                            head.clear();
                            if socket.write_all(response.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        Self { url, requests }
    }
}

/// A 403 with a JSON body and no challenge header.
fn json_403(body: &str) -> String {
    format!(
        "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_challenge_after_the_retry_goes_back_to_the_caller() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;
    let upstream = AlwaysChallenges::start(
        concat!(
            "HTTP/1.1 403 Forbidden\r\n",
            "www-authenticate: Bearer error=\"insufficient_user_authentication\", scope=\"credential:link\"\r\n",
            "content-length: 0\r\n\r\n"
        )
        .to_owned(),
    )
    .await;

    let request = engine.http_client().get(&upstream.url).elevated(Scope::CredentialLink);
    let call = tokio::spawn(async move { request.send().await });
    let (_request, reply) = next_prompt(&mut inbox).await;
    let code = pending_code(&h, &engine, &user.email).await;
    assert!(reply.answer(PromptReply::Code(code.as_str().into())));
    let response = call.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "the second challenge, as the server sent it");
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 2, "one request, one retry, no loop");
    assert!(inbox.try_next_prompt().is_none(), "one prompt");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_in_the_body_only_is_recognised_and_other_403s_pass_through() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let engine = h.engine(&user).await;
    common::elevate_by_email(&h, &engine, &user, &[Scope::CredentialLink]).await;
    // Dynamic's API may answer with the code alone. With a reusable token already sent and refused, the
    // middleware must step up (here: fail, as there is no front end) rather than return the 403.
    let body_only =
        AlwaysChallenges::start(json_403(r#"{"error":"step up","code":"elevated_access_token_required"}"#))
            .await;
    let error =
        engine.http_client().get(&body_only.url).elevated(Scope::CredentialLink).send().await.unwrap_err();
    assert_tried_to_step_up(&error);
    assert!(engine.tokens().get(&Scope::CredentialLink).is_none(), "the refused token was dropped");

    // Any other 403 comes back whole, body included.
    let other = AlwaysChallenges::start(json_403(r#"{"error":"no","code":"forbidden"}"#)).await;
    let response = engine.http_client().get(&other.url).elevated(Scope::CredentialLink).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.url().as_str(), other.url, "the response keeps its URL");
    assert!(response.text().await.unwrap().contains("\"forbidden\""));
    assert_eq!(other.requests.load(Ordering::SeqCst), 1);
    h.shutdown().await;
}

/// The engine's middleware over a counter of the network's answers.
fn counted_client(engine: &StepUpAuth) -> (reqwest_middleware::ClientWithMiddleware, Arc<AnswerCounter>) {
    let answers = Arc::new(AnswerCounter::default());
    let client = reqwest_middleware::ClientBuilder::new(engine.api().http().clone())
        .with(StepUpMiddleware::new(engine.clone()))
        .with_arc(answers.clone())
        .build();
    (client, answers)
}

/// `count` concurrent tagged calls to the protected resource for `scope`.
fn spawn_calls(
    h: &TestServer,
    client: &reqwest_middleware::ClientWithMiddleware,
    user: &TestUser,
    scope: &Scope,
    count: usize,
) -> Vec<tokio::task::JoinHandle<reqwest_middleware::Result<reqwest::Response>>> {
    let url = format!("{}/sdk/{}/protected/{}", h.base_url(), common::ENV, scope.as_str());
    (0..count)
        .map(|_| {
            let request = client.post(&url).bearer_auth(&user.jwt).elevated(scope.clone());
            tokio::spawn(async move { request.send().await })
        })
        .collect()
}

/// A client whose calls are counted as they enter (above the middleware) and whose network answers are counted
/// below it: `(client, calls, answers)`.
fn storm_client(
    engine: &StepUpAuth,
) -> (reqwest_middleware::ClientWithMiddleware, Arc<AnswerCounter>, Arc<AnswerCounter>) {
    let (calls, answers) = (Arc::new(AnswerCounter::default()), Arc::new(AnswerCounter::default()));
    let client = reqwest_middleware::ClientBuilder::new(engine.api().http().clone())
        .with_arc(calls.clone())
        .with(StepUpMiddleware::new(engine.clone()))
        .with_arc(answers.clone())
        .build();
    (client, calls, answers)
}

/// Waits (up to 30 s) until `count` calls have entered the middleware, and a little more for the last ones to
/// settle into waiting.
async fn until_called(calls: &AnswerCounter, count: usize) {
    for _ in 0..3000 {
        if calls.sent() >= count {
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("only {} of {count} calls were made", calls.sent());
}

/// The challenge storm (issue 18): a thousand concurrent calls that would all meet one challenge. The first goes
/// out alone and meets it; the rest wait for its step-up instead of going out to be refused, then go out once,
/// with its token. One prompt, one code, one token, at most 100 refusals (one, unless the machine is so slow
/// that the first step-up ends before every call was made).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_challenged_requests_cause_one_prompt_and_one_verification() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;
    let (client, calls, answers) = storm_client(&engine);

    // credential:link is reusable: one token serves every retry.
    let pending = spawn_calls(&h, &client, &user, &Scope::CredentialLink, 1000);
    let (request, reply) = next_prompt(&mut inbox).await;
    assert!(matches!(request, PromptRequest::EnterOtp { .. }), "{request:?}");
    // The person answers only once every call has been made.
    until_called(&calls, 1000).await;
    let code = pending_code(&h, &engine, &user.email).await;
    assert!(reply.answer(PromptReply::Code(code.as_str().into())));

    let mut tokens = HashSet::new();
    for call in pending {
        tokens.insert(jti_of(call.await.unwrap().unwrap()).await);
    }
    let refused = answers.forbidden();
    assert!((1..=100).contains(&refused), "{refused} of 1,000 requests met the challenge");
    assert_eq!(answers.ok(), 1000, "every call ended in success");
    assert_eq!(answers.sent(), 1000 + refused, "one retry per refusal, nothing else went out");
    assert_eq!(tokens.len(), 1, "one token let all 1,000 through");
    // One verification: one code sent, one flow ended, one prompt.
    assert_eq!(h.outbox_len(&user.email).await, 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(inbox.try_next_prompt().is_none(), "one prompt");
    assert_eq!(inbox.outcomes.len(), 1, "one flow: {:?}", inbox.outcomes);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_one_prompt_answers_every_queued_request_with_cancelled() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;
    let (client, calls, answers) = storm_client(&engine);

    let pending = spawn_calls(&h, &client, &user, &Scope::CredentialLink, 50);
    let (_request, reply) = next_prompt(&mut inbox).await;
    until_called(&calls, 50).await;
    assert!(reply.answer(PromptReply::Cancel));
    for call in pending {
        let error = call.await.unwrap().unwrap_err();
        let why = middleware_error(&error);
        assert_eq!(why.step_up_error(), Some(&StepUpError::Cancelled), "{why:?}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(inbox.try_next_prompt().is_none(), "the person was not asked again");
    assert_eq!(answers.ok(), 0);
    assert_eq!(answers.sent(), 1, "the calls that waited for the first one's step-up never went out");
    h.shutdown().await;
}

/// Once a tagged call went through without a challenge (the server did not ask for a token), its tag's
/// tokenless calls go out at once, without waiting for one another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_that_met_no_challenge_sends_its_calls_at_once() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let (engine, _inbox) = h.prompted_engine(&user).await;
    let (client, calls, answers) = storm_client(&engine);
    // An endpoint that needs no token, called tagged.
    let url = format!("{}/sdk/{}/users", h.base_url(), common::ENV);
    let first = client.get(&url).bearer_auth(&user.jwt).elevated(Scope::CredentialLink).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let pending: Vec<_> = (0..20)
        .map(|_| {
            let request = client.get(&url).bearer_auth(&user.jwt).elevated(Scope::CredentialLink);
            tokio::spawn(async move { request.send().await })
        })
        .collect();
    for call in pending {
        assert_eq!(call.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    assert_eq!((calls.sent(), answers.sent(), answers.ok()), (21, 21, 21));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_for_different_scopes_take_turns_instead_of_failing_busy() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;
    let (client, _answers) = counted_client(&engine);

    let mut calls = spawn_calls(&h, &client, &user, &Scope::CredentialLink, 5);
    calls.extend(spawn_calls(&h, &client, &user, &Scope::UserUpdate, 5));
    for _ in 0..2 {
        let (request, reply) = next_prompt(&mut inbox).await;
        assert!(matches!(request, PromptRequest::EnterOtp { .. }), "{request:?}");
        let code = pending_code(&h, &engine, &user.email).await;
        assert!(reply.answer(PromptReply::Code(code.as_str().into())));
    }
    for call in calls {
        let response = call.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_for_another_scope_steps_up_for_both_and_keeps_the_token_it_had() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let (engine, mut inbox) = h.prompted_engine(&user).await;
    common::elevate_by_email(&h, &engine, &user, &[Scope::CredentialLink]).await;
    let kept = engine.tokens().get(&Scope::CredentialLink).unwrap().to_arc();

    // Tagged credential:link, but the resource wants wallet:export: the server's challenge names it.
    let request = protected(&h, &engine, &user, &Scope::WalletExport).elevated(Scope::CredentialLink);
    let call = tokio::spawn(async move { request.send().await });
    let (_request, reply) = next_prompt(&mut inbox).await;
    let code = pending_code(&h, &engine, &user.email).await;
    assert!(reply.answer(PromptReply::Code(code.as_str().into())));
    let response = call.await.unwrap().unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["ok"], true, "{body}");
    assert_ne!(body["jti"], kept.id().as_str(), "the retry carried the new token, for both scopes");
    assert!(
        engine.tokens().snapshot().by_id(kept.id()).is_some(),
        "the credential:link token was still good"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_use_challenges_run_one_flow_per_request_one_after_another() {
    let h = TestServer::live().await;
    let (_registering, user, passkey) = common::passkey_engine(&h).await;
    let (frontend, mut inbox) = common::frontend();
    let engine = h.engine_for(&user).frontend(frontend).passkey_authenticator(passkey).build().await.unwrap();

    // wallet:export is single-use: each request needs a token of its own.
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let request = protected(&h, &engine, &user, &Scope::WalletExport).elevated(Scope::WalletExport);
            tokio::spawn(async move { request.send().await })
        })
        .collect();
    for _ in 0..4 {
        let (request, reply) = next_prompt(&mut inbox).await;
        assert_eq!(request, PromptRequest::UsePasskey);
        // One at a time: nothing else is asked while this one is open.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(inbox.try_next_prompt().is_none(), "a second prompt while one is open");
        assert!(reply.answer(PromptReply::Confirm));
    }
    let mut tokens = HashSet::new();
    for call in calls {
        tokens.insert(jti_of(call.await.unwrap().unwrap()).await);
    }
    assert_eq!(tokens.len(), 4, "four requests, four flows, four single-use tokens");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(inbox.try_next_prompt().is_none(), "four prompts, no more");
    assert_eq!(inbox.outcomes.len(), 4, "four flows: {:?}", inbox.outcomes);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_with_an_rfc_9470_challenge_is_a_challenge_too() {
    let h = TestServer::live().await;
    let user = h.user().await;
    let engine = h.engine(&user).await;
    let upstream = AlwaysChallenges::start(
        concat!(
            "HTTP/1.1 401 Unauthorized\r\n",
            "www-authenticate: Bearer error=\"insufficient_user_authentication\"\r\n",
            "content-length: 0\r\n\r\n"
        )
        .to_owned(),
    )
    .await;
    let error = engine.http_client().get(&upstream.url).elevated(Scope::UserUpdate).send().await.unwrap_err();
    assert_tried_to_step_up(&error);
    assert_eq!(upstream.requests.load(Ordering::SeqCst), 1);
    h.shutdown().await;
}

/// A route guarded by a recent authentication, not a token (the recovery codes), tagged `step_up_on_challenge`:
/// no token goes out with it, so a held single-use token is not spent on a call it cannot open. Tagged
/// `elevated`, the same call takes the token at send time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_up_on_challenge_request_sends_no_token_and_spends_none() {
    let h = TestServer::live().await;
    let (engine, _, _, secret) = common::totp_engine(&h).await;
    let code = common::totp_code(&secret, common::unix_now());
    engine.verify_totp_mfa(code.as_str(), None, &[Scope::WalletExport]).await.unwrap();
    assert!(engine.tokens().get(&Scope::WalletExport).is_some());
    let recovery = || {
        let url = format!("{}/sdk/{}/users/mfa/recovery", h.base_url(), common::ENV);
        let session = engine.session().unwrap();
        engine.http_client().get(url).bearer_auth(session.expose_secret())
    };
    // The MFA just made is recent: the server answers without a challenge.
    let response = recovery().step_up_on_challenge(Scope::WalletExport).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(engine.tokens().get(&Scope::WalletExport).is_some(), "the single-use token is still held");
    let response = recovery().elevated(Scope::WalletExport).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(engine.tokens().get(&Scope::WalletExport).is_none(), "an elevated call takes it");
    h.shutdown().await;
}
