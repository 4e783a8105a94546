//! The kiosk: step-up authentication end to end on one machine, in a terminal.
//!
//! ```text
//! cargo run --example kiosk
//! ```
//!
//! It starts the reference server embedded on loopback (SQLite in memory), seeds two people, and lets whoever
//! stands at the kiosk run a sensitive action. The engine asks whether step-up is needed, runs the flow through
//! the built-in [`TerminalFrontend`] (arrow keys, masked codes, Esc to cancel), stores the elevated token, and the
//! protected call goes through with it.
//!
//! - **Alice** has MFA: an authenticator app (TOTP: scan the QR code, or read the code the kiosk shows), a passkey
//!   (a software authenticator) and recovery codes. A user with MFA steps up by MFA only.
//! - **Bob** has no MFA: an email code (the kiosk reads the demo outbox for him) or his external wallet (a local
//!   key signs the message).
//!
//! **Security settings** (the fourth action) manage the person's MFA through the engine (`engine.mfa()`): add an
//! authenticator app (a QR code, then the code the demo app shows), register a passkey, show or renew recovery
//! codes, remove an app or a passkey. Each change meets its step-up on demand: Bob verifies by email or wallet
//! before his first app is added, and from then on he is routed to MFA.
#![allow(clippy::print_stdout)] // A terminal program: printing is its job.

use std::io::BufRead;
use std::sync::{Arc, Mutex, PoisonError};

use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;
use stepup::engine::{Frontend, PromptReply, PromptRequest, SoftwarePasskey, StepUpAuth, TerminalFrontend};
use stepup::{Scope, SecretString, StepUpError};
use stepup_demo::{
    DEMO_ORIGIN, DemoServer, MfaPerson, ReauthPerson, Session, call_protected, step_up_summary, totp_code,
    unix_now,
};

/// The sensitive actions on offer, with the scope each needs.
const ACTIONS: [(&str, Scope); 3] = [
    ("Export the wallet's private key", Scope::WalletExport),
    ("Link a new credential", Scope::CredentialLink),
    ("Delete the account", Scope::UserDelete),
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("stepup kiosk: step-up authentication, end to end on this machine\n");
    let demo = Arc::new(DemoServer::start().await?);
    println!("Reference server on {} (SQLite in memory). Seeding the demo people...", demo.base_url());
    let alice = demo.seed_mfa_person("alice@example.com").await?;
    let bob = demo.seed_reauth_person("bob@example.com").await?;
    show_cheat_sheet(&alice, &bob)?;

    // One terminal UI for both engines; each person's hints (their outbox, their authenticator app) wrap it.
    let terminal = TerminalFrontend::new();
    let alice_engine = demo
        .engine_for(&alice.session)
        .passkey_authenticator(alice.passkey.clone())
        .frontend(Arc::new(DemoHints::new(terminal.clone(), &demo, Hint::Mfa(alice.clone()))))
        .build()
        .await?;
    // Bob's phone can hold a passkey too, once he registers one in the security settings.
    let bob_passkey = Arc::new(SoftwarePasskey::new(DEMO_ORIGIN)?);
    let bob_engine = demo
        .engine_for(&bob.session)
        .wallet_signer(bob.wallet.clone())
        .passkey_authenticator(bob_passkey)
        .frontend(Arc::new(DemoHints::new(terminal, &demo, Hint::Reauth(bob.clone()))))
        .build()
        .await?;
    // What the environment allows, as the server's /settings says (the kiosk offers only that).
    let settings = alice_engine.api().settings().await?;
    println!(
        "
Environment {}: {}.",
        alice_engine.api().environment_id(),
        step_up_summary(&settings)
    );

    loop {
        println!("\nWho is at the kiosk?");
        println!("  1) Alice (MFA: authenticator app, passkey, recovery codes)");
        println!("  2) Bob (no MFA to start with: email code, external wallet)");
        let Some(person) = ask("Choose 1-2, or q to quit: ", 2).await else { break };
        let (engine, session) =
            if person == 0 { (&alice_engine, &alice.session) } else { (&bob_engine, &bob.session) };

        println!("\nWhat do you want to do?");
        for (index, (label, scope)) in ACTIONS.iter().enumerate() {
            println!("  {}) {label} ({scope})", index + 1);
        }
        println!("  {}) Security settings (authenticator app, passkey, recovery codes)", ACTIONS.len() + 1);
        let Some(action) = ask("Choose 1-4, or q to quit: ", ACTIONS.len() + 1).await else { break };
        // A failure of one action (the server unreachable, say) is reported; the kiosk stays up.
        let Some((label, scope)) = ACTIONS.get(action) else {
            if let Err(error) = security_settings(engine).await {
                println!("✖ Security settings: {error}");
            }
            continue;
        };
        if let Err(error) = run_action(engine, session, label, scope).await {
            println!("✖ {label}: {error}");
        }
    }
    println!("Bye.");
    // The embedded server stops with the process.
    Ok(())
}

/// Steps up if the action needs it, then makes the protected call with the engine's token.
async fn run_action(
    engine: &StepUpAuth,
    session: &Session,
    label: &str,
    scope: &Scope,
) -> Result<(), Box<dyn std::error::Error>> {
    if engine.is_step_up_required(scope.clone()).await? {
        println!("\n“{label}” is sensitive: verify it's you first.");
        match engine.prompt_step_up_auth(std::slice::from_ref(scope)).await {
            Ok(info) => {
                let lifetime = if info.single_use { "single use" } else { "reusable" };
                println!("✔ Verified. Elevated token for {} ({lifetime}).", info.scopes);
            }
            Err(StepUpError::Cancelled) => {
                println!("✖ Cancelled. Nothing was done.");
                return Ok(());
            }
            Err(error) => {
                println!("✖ Step-up failed: {error}.");
                return Ok(());
            }
        }
    } else {
        println!("\nA token for {scope} is still held: no need to verify again.");
    }
    let call = call_protected(engine, session, scope).await?;
    if call.succeeded() {
        println!("✔ {label}: the protected call succeeded (HTTP {}, token applied).", call.status);
    } else {
        println!("✖ {label}: the server refused (HTTP {}): {}", call.status, call.body);
    }
    Ok(())
}

/// The security settings: MFA managed through the engine, each change behind step-up on demand (the engine
/// prompts through the same terminal when the server asks for it).
async fn security_settings(engine: &StepUpAuth) -> Result<(), StepUpError> {
    let mfa = engine.mfa();
    let methods = mfa.methods().await?;
    let verified = methods.devices.iter().filter(|d| d.verified).count();
    println!("\nSecurity settings: {verified} authenticator app(s), {} passkey(s).", methods.passkeys.len());
    println!("  1) Add an authenticator app");
    println!("  2) Register a passkey");
    println!("  3) Show recovery codes");
    println!("  4) New recovery codes");
    println!("  5) Remove an authenticator app or a passkey");
    let Some(choice) = ask("Choose 1-5, or q to go back: ", 5).await else { return Ok(()) };
    let outcome = match choice {
        0 => mfa
            .enrol_totp()
            .await
            .map(|_| "Authenticator app added. Sensitive actions now ask for MFA.".to_owned()),
        1 => mfa.register_passkey().await.map(|()| "Passkey registered.".to_owned()),
        2 | 3 => {
            let shown = if choice == 2 {
                mfa.show_recovery_codes().await
            } else {
                mfa.show_new_recovery_codes().await
            };
            shown.map(|shown| match (shown.acknowledged, shown.codes.codes.is_empty()) {
                (true, _) => "Recovery codes saved.".to_owned(),
                (false, true) => format!(
                    "{} recovery codes left (they are shown once; ask for new ones to see codes).",
                    shown.codes.unused
                ),
                (false, false) => {
                    "Recovery codes not confirmed as saved: choose 4 for new ones when you can save them."
                        .to_owned()
                }
            })
        }
        _ => remove_factor(&mfa, methods).await,
    };
    match outcome {
        Ok(done) => println!("✔ {done}"),
        Err(StepUpError::Cancelled) => println!("✖ Cancelled. Nothing was changed."),
        Err(error) => println!("✖ That did not work: {error}."),
    }
    Ok(())
}

/// Removes an authenticator app or a passkey the person picks (and confirms).
async fn remove_factor(
    mfa: &stepup::engine::MfaManager,
    methods: stepup::engine::MfaMethods,
) -> Result<String, StepUpError> {
    let devices: Vec<_> = methods.devices.into_iter().filter(|d| d.verified).collect();
    if devices.is_empty() && methods.passkeys.is_empty() {
        return Ok("No authenticator app or passkey to remove.".to_owned());
    }
    for (index, _) in devices.iter().enumerate() {
        println!("  {}) Authenticator app", index + 1);
    }
    for (index, _) in methods.passkeys.iter().enumerate() {
        println!("  {}) Passkey", devices.len() + index + 1);
    }
    let count = devices.len() + methods.passkeys.len();
    let Some(pick) = ask("Remove which one? Choose a number, or q to go back: ", count).await else {
        return Err(StepUpError::Cancelled);
    };
    match devices.get(pick) {
        Some(device) => {
            mfa.remove_device_confirmed(device).await.map(|()| "Authenticator app removed.".to_owned())
        }
        None => {
            let passkey = &methods.passkeys[pick - devices.len()];
            mfa.remove_passkey_confirmed(passkey).await.map(|()| "Passkey removed.".to_owned())
        }
    }
}

/// Prints what a person would carry: Alice's authenticator QR code and recovery codes, Bob's wallet.
fn show_cheat_sheet(alice: &MfaPerson, bob: &ReauthPerson) -> Result<(), Box<dyn std::error::Error>> {
    let uri = alice.totp.uri.expose_secret();
    let qr = QrCode::new(uri.as_bytes())?;
    let image = qr
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    println!("\nAlice's authenticator app: scan this with any TOTP app (or use the code the kiosk shows).");
    println!("{image}");
    println!("  {uri}");
    let codes: Vec<&str> = alice.recovery_codes.iter().map(|code| code.expose_secret()).collect();
    println!("Alice's recovery codes (each works once): {}", codes.join("  "));
    println!(
        "Bob's external wallet: {} (a local key; it signs when Bob confirms).",
        stepup::engine::WalletSigner::address(bob.wallet.as_ref())
    );
    println!("Emails go to the server's outbox; the kiosk shows Bob each code as it arrives.");
    Ok(())
}

/// Reads a choice of `1..=count`; `None` for `q` or the end of input.
async fn ask(question: &'static str, count: usize) -> Option<usize> {
    loop {
        print!("{question}");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let line = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map(|read| (read > 0).then_some(line))
        })
        .await
        .ok()?
        .ok()??;
        let answer = line.trim();
        if answer.eq_ignore_ascii_case("q") {
            return None;
        }
        match answer.parse::<usize>() {
            Ok(choice @ 1..) if choice <= count => return Some(choice - 1),
            _ => println!("Please type a number from 1 to {count}."),
        }
    }
}

/// Whose hints to show.
enum Hint {
    Mfa(MfaPerson),
    Reauth(ReauthPerson),
}

/// The terminal UI plus what the person would see elsewhere: the email in their inbox, the code on their phone.
struct DemoHints {
    terminal: Arc<TerminalFrontend>,
    demo: Arc<DemoServer>,
    person: Hint,
    /// An authenticator app added at the kiosk: the demo phone's secret (Alice's seeded one is in her hint).
    added_app: Mutex<Option<SecretString>>,
}

impl DemoHints {
    fn new(terminal: Arc<TerminalFrontend>, demo: &Arc<DemoServer>, person: Hint) -> Self {
        Self { terminal, demo: demo.clone(), person, added_app: Mutex::new(None) }
    }

    /// The demo phone's authenticator app: the secret it holds, if any.
    fn app_secret(&self) -> Option<SecretString> {
        let added = self.added_app.lock().unwrap_or_else(PoisonError::into_inner).clone();
        added.or_else(|| match &self.person {
            Hint::Mfa(alice) => Some(alice.totp.secret.clone()),
            Hint::Reauth(_) => None,
        })
    }
}

#[async_trait::async_trait]
impl Frontend for DemoHints {
    async fn prompt(&self, request: PromptRequest) -> PromptReply {
        let note = self.note(&request).await;
        // Shown with the dialog: on the alternate screen with a QR code, where a line printed before would be hidden.
        self.terminal.prompt_with_notes(request, note.into_iter().collect()).await
    }
}

impl DemoHints {
    /// What the demo's outbox or phone shows for `request`, if anything.
    async fn note(&self, request: &PromptRequest) -> Option<String> {
        match (request, &self.person) {
            (PromptRequest::EnterOtp { .. }, Hint::Reauth(bob)) => {
                Some(match self.demo.latest_code(&bob.session.email).await {
                    Ok(code) => {
                        format!("📬 Demo outbox: the email to {} says your code is {code}", bob.session.email)
                    }
                    Err(error) => format!("📬 Demo outbox: {error}"),
                })
            }
            (PromptRequest::EnterTotp, _) => Some(match self.app_secret() {
                // Like a real app's, a code is good once: after a success, the next one comes within 30 s.
                Some(secret) => match totp_code(secret.expose_secret(), unix_now()) {
                    Ok(code) => {
                        format!(
                            "📱 Demo authenticator app: the current code is {code} (each code works once)"
                        )
                    }
                    Err(error) => format!("📱 Demo authenticator app: {error}"),
                },
                None => "📱 No authenticator app on this demo phone yet.".to_owned(),
            }),
            (PromptRequest::EnrolTotp { enrolment }, _) => {
                *self.added_app.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(enrolment.secret.clone());
                // The demo app takes the QR code at once. It shows the previous 30-second step's code (the server
                // takes one step either side), so the current step is still fresh for the next step-up.
                Some(match totp_code(enrolment.secret.expose_secret(), unix_now().saturating_sub(30)) {
                    Ok(code) => format!("📱 Demo authenticator app: scanned; it shows the code {code}"),
                    Err(error) => format!("📱 Demo authenticator app: {error}"),
                })
            }
            (PromptRequest::EnterRecoveryCode, Hint::Mfa(_)) => {
                Some("🗒  Use one of the recovery codes printed above.".to_owned())
            }
            _ => None,
        }
    }
}
