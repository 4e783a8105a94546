//! Step-up without any front end: an app with its own UI calls the verify methods itself.
//!
//! ```text
//! cargo run --example custom_ui
//! ```
//!
//! Every method, against the reference server embedded on loopback: an email code (`send_otp` + `verify_otp`), an
//! external wallet's signature (`verify_wallet`), an authenticator app's code (`verify_totp_mfa`), a passkey
//! (`verify_passkey_mfa`) and a recovery code (`verify_recovery_code`). After each, the protected call goes through
//! with the token the engine stored; the app never reads the token itself.
//!
//! Then MFA management on the app's own screens (`engine.mfa()`): Bob adds an authenticator app, lists it, reads
//! his recovery codes and removes the app again. Without a front end the engine cannot prompt, so the app steps up
//! first; each management call finds the token (or the recent MFA) it needs and sends it by itself.
#![allow(clippy::print_stdout)] // A demo that reports what it does.

use stepup::engine::StepUpAuth;
use stepup::{Method, Scope};
use stepup_demo::{DemoServer, Session, call_protected, totp_code, unix_now};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = DemoServer::start().await?;
    println!("Reference server on {}.", demo.base_url());

    // Bob has no MFA: he re-authenticates with an email code or his wallet.
    let bob = demo.seed_reauth_person("bob@example.com").await?;
    let engine = demo.engine_for(&bob.session).wallet_signer(bob.wallet.clone()).build().await?;

    let scope = Scope::WalletExport;
    let check = engine.check(scope.clone()).await?;
    println!(
        "\nBob wants {scope}: step-up required = {}, offered: {:?}",
        check.required,
        check.options.methods()
    );
    let sent = engine.send_otp(None).await?;
    println!("Email code sent to {}.", sent.destination_masked);
    // Bob reads his inbox (here: the server's outbox) and types the code into the app's own form.
    let code = demo.latest_code(&bob.session.email).await?;
    let info = engine.verify_otp(code.as_str(), std::slice::from_ref(&scope)).await?;
    report("verify_otp", &engine, &bob.session, &scope, info.single_use).await?;

    let scope = Scope::CredentialLink;
    let info = engine.verify_wallet(None, std::slice::from_ref(&scope)).await?;
    report("verify_wallet", &engine, &bob.session, &scope, info.single_use).await?;

    // MFA management on Bob's own screens. The credential:link token his wallet earned opens the enrolment.
    let mfa = engine.mfa();
    let enrolment = mfa.add_totp_device().await?;
    println!(
        "\nmfa.add_totp_device   -> device {}; the app shows its QR code (otpauth URI)",
        enrolment.device_id
    );
    // Bob's phone scans it; he types the code it shows.
    let code = totp_code(enrolment.secret.expose_secret(), unix_now())?;
    mfa.verify_totp_device(&enrolment.device_id, code.as_str()).await?;
    let devices = mfa.devices().await?;
    println!("mfa.verify_totp_device -> verified: {}", devices.iter().any(|d| d.verified));
    let offered = engine.check(Scope::WalletDelete).await?.options.methods();
    println!("Bob is now offered: {offered:?}");
    // The enrolment was an MFA verification: it opens his recovery codes, shown this once.
    let codes = mfa.recovery_codes().await?;
    mfa.acknowledge_recovery_codes().await?;
    println!("mfa.recovery_codes    -> {} codes, acknowledged", codes.codes.len());
    mfa.delete_device(&enrolment.device_id).await?;
    let offered = engine.check(Scope::WalletDelete).await?.options.methods();
    println!("mfa.delete_device     -> no MFA left; Bob is offered re-authentication again: {}", {
        offered.contains(&Method::EmailOtp)
    });

    // Alice has MFA: authenticator app, passkey, recovery codes.
    let alice = demo.seed_mfa_person("alice@example.com").await?;
    let engine = demo.engine_for(&alice.session).passkey_authenticator(alice.passkey.clone()).build().await?;

    let scope = Scope::WalletExport;
    let code = alice.totp.current_code()?;
    let info = engine
        .verify_totp_mfa(code.as_str(), Some(alice.totp.id.clone()), std::slice::from_ref(&scope))
        .await?;
    report("verify_totp_mfa", &engine, &alice.session, &scope, info.single_use).await?;

    let scope = Scope::UserDelete;
    let info = engine.verify_passkey_mfa(std::slice::from_ref(&scope)).await?;
    report("verify_passkey_mfa", &engine, &alice.session, &scope, info.single_use).await?;

    let scope = Scope::WalletDelete;
    let recovery = alice.recovery_codes.first().ok_or("no recovery codes")?;
    let info = engine.verify_recovery_code(recovery.expose_secret(), std::slice::from_ref(&scope)).await?;
    report("verify_recovery_code", &engine, &alice.session, &scope, info.single_use).await?;

    // A single-use token was spent by its call: the next call for that scope needs a new step-up.
    println!("\nAfter the calls, is step-up required again for wallet:export? {}", {
        engine.is_step_up_required(Scope::WalletExport).await?
    });
    demo.shutdown().await;
    Ok(())
}

/// Makes the protected call for `scope` and says how it went.
async fn report(
    method: &str,
    engine: &StepUpAuth,
    session: &Session,
    scope: &Scope,
    single_use: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let call = call_protected(engine, session, scope).await?;
    let kind = if single_use { "single-use" } else { "reusable" };
    println!("{method:<21} -> {kind} token for {scope}; protected call: HTTP {}", call.status);
    if !call.succeeded() {
        return Err(format!("the protected call for {scope} was refused: {}", call.body).into());
    }
    Ok(())
}
