//! Driving the engine by messages: an embedding app (a game runtime, a kiosk shell, another actor system)
//! sends the coordinator its public requests with `ractor::call!` / `ractor::cast!` through an `EngineHandle`,
//! and reads the flow's state from the watch channel. Every step-up request goes through the handle; the
//! protected call is the app's own HTTP call (through the engine's middleware, which attaches the token).
//!
//! ```text
//! cargo run --example actor_messages
//! ```
//!
//! Bob checks `wallet:export` (required), has an email code sent, verifies it, and the protected call goes
//! through with the token the engine stored (single-use: the call spends it). Then the app inspects the
//! engine, cancels, and a reset empties it.
#![allow(clippy::print_stdout)] // A demo that reports what it does.

use stepup::engine::ractor::{call, cast};
use stepup::engine::{EngineRequest, OtpRequest, VerifyRequest};
use stepup::{Scope, ScopeSet};
use stepup_demo::{DemoServer, call_protected};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = DemoServer::start().await?;
    let bob = demo.seed_reauth_person("bob@example.com").await?;
    let engine = demo.engine_for(&bob.session).build().await?;
    let handle = engine.handle()?;
    let mut state = engine.subscribe();
    println!("Reference server on {}. State: {:?}", demo.base_url(), *state.borrow_and_update());

    let scope = Scope::WalletExport;
    let requirement = call!(handle, |reply| EngineRequest::Check { scope: scope.clone(), reply })??;
    println!(
        "Check {scope}: required = {}, offered: {:?}",
        requirement.required,
        requirement.options.methods()
    );
    println!("State: {}", describe(&state.borrow_and_update()));

    let sent = call!(handle, |reply| EngineRequest::SendOtp { credential: None, reply })??;
    println!("Code sent to {}.", sent.destination_masked);
    let code = demo.latest_code(&bob.session.email).await?;
    let scopes = ScopeSet::one(scope.clone());
    let request = VerifyRequest::Otp(OtpRequest { code: code.as_str().into() });
    let token = call!(handle, |reply| EngineRequest::Verify { scopes, request, reply })??;
    println!("Verified: a token for {} (single use: {}).", token.scopes, token.single_use);
    println!("State: {}", describe(&state.borrow_and_update()));

    let call = call_protected(&engine, &bob.session, &scope).await?;
    println!("Protected call for {scope}: HTTP {}", call.status);

    let snapshot = call!(handle, |reply| EngineRequest::Inspect { reply })?;
    println!("Inspect: {} and {} stored token(s).", describe(&snapshot.state), snapshot.tokens.len());
    cast!(handle, EngineRequest::Cancel)?;
    call!(handle, |reply| EngineRequest::Reset { reply: Some(reply) })?;
    println!("After reset: {}", describe(&state.borrow_and_update()));
    demo.shutdown().await;
    Ok(())
}

fn describe(state: &stepup::engine::StepUpState) -> &'static str {
    state.name()
}
