//! The app never handles a token: it tags its sensitive calls, and the middleware does the rest.
//!
//! ```text
//! cargo run --example elevated_request
//! ```
//!
//! The app's HTTP client comes from `engine.http_client()` (or add `StepUpMiddleware` to your own
//! `reqwest_middleware` stack). A call tagged `.elevated(scope)` carries the engine's token for the scope; when
//! there is none, the server answers 403 with a step-up challenge, the middleware runs the flow through the
//! engine's front end, and sends the call once more with the new token. Twenty calls that meet the same challenge
//! share one flow. The person is scripted here (a task that reads the demo outbox); in an app it is a real UI.
#![allow(clippy::print_stdout)] // A demo that reports what it does.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use stepup::engine::{
    ChannelFrontend, ElevatedRequestExt, FrontendEvent, FrontendInbox, PromptReply, PromptRequest,
};
use stepup::{Method, Scope};
use stepup_demo::{DemoServer, ReauthPerson};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = Arc::new(DemoServer::start().await?);
    let bob = demo.seed_reauth_person("bob@example.com").await?;
    let (frontend, inbox) = ChannelFrontend::new();
    let engine = demo.engine_for(&bob.session).frontend(frontend).build().await?;
    let prompts = Arc::new(AtomicUsize::new(0));
    tokio::spawn(person(inbox, demo.clone(), bob.clone(), prompts.clone()));

    let client = engine.http_client();
    let url = format!("{}/protected/{}", engine.api().sdk_base(), Scope::CredentialLink.as_str());
    let call =
        || client.post(&url).bearer_auth(bob.session.jwt.expose_secret()).elevated(Scope::CredentialLink);

    println!("1. One call, no token yet: the server challenges, the middleware steps up and retries.");
    let response = call().send().await?;
    println!("   HTTP {} after {} prompt(s)", response.status(), prompts.load(Ordering::SeqCst));

    println!("2. The same call again: the reusable token is applied, nobody is asked.");
    let response = call().send().await?;
    println!("   HTTP {} after {} prompt(s)", response.status(), prompts.load(Ordering::SeqCst));

    println!("3. Tokens forgotten (reset_state), then 20 calls at once: one flow serves them all.");
    engine.reset_state().await?;
    let calls: Vec<_> = (0..20).map(|_| tokio::spawn(call().send())).collect();
    let mut ok = 0;
    for call in calls {
        if call.await?.is_ok_and(|response| response.status().is_success()) {
            ok += 1;
        }
    }
    println!("   {ok} of 20 succeeded after {} prompt(s) in all", prompts.load(Ordering::SeqCst));
    if ok != 20 || prompts.load(Ordering::SeqCst) != 2 {
        return Err("expected 20 successes and two prompts in all".into());
    }
    Ok(())
}

/// The scripted person: picks the email code, reads it from the demo outbox, types it.
async fn person(
    mut inbox: FrontendInbox,
    demo: Arc<DemoServer>,
    bob: ReauthPerson,
    prompts: Arc<AtomicUsize>,
) {
    while let Some(event) = inbox.next().await {
        let FrontendEvent::Prompt(prompt) = event else { continue };
        let reply = match prompt.request() {
            PromptRequest::ChooseMethod { options, .. } => {
                prompts.fetch_add(1, Ordering::SeqCst);
                let email = options.credentials().iter().find(|c| c.method == Method::EmailOtp).cloned();
                email.map_or(PromptReply::Cancel, PromptReply::Choose)
            }
            PromptRequest::EnterOtp { destination_masked, .. } => {
                match demo.latest_code(&bob.session.email).await {
                    Ok(code) => {
                        println!("   (the person types the code sent to {destination_masked})");
                        PromptReply::Code(code.as_str().into())
                    }
                    Err(_) => PromptReply::Cancel,
                }
            }
            _ => PromptReply::Cancel,
        };
        prompt.answer(reply);
    }
}
