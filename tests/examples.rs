//! The examples run as a person runs them: their binaries, started as processes, their output read. The kiosk
//! runs in a real pseudo-terminal, with keys typed and the screen read.
//!
//! `cargo test` builds the examples before it runs the tests, so the binaries are next to this test's own
//! (`target/<profile>/examples/`). Run alone (`cargo test --test examples`), build them first with
//! `cargo build --examples`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;
use std::process::Command;

fn example_binary(name: &str) -> PathBuf {
    let test_binary = std::env::current_exe().unwrap();
    // target/<profile>/deps/examples-<hash> -> target/<profile>/examples/<name>
    let profile_dir = test_binary.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile_dir.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(binary.exists(), "{} is missing: build it with `cargo build --example {name}`", binary.display());
    binary
}

/// Runs an example to its end: its output, after checking it succeeded.
fn run_example(name: &str) -> String {
    let output = Command::new(example_binary(name)).env_remove("RUST_LOG").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{name} failed ({}):\n{stdout}\n{stderr}", output.status);
    stdout
}

#[test]
fn the_game_loop_runs_a_scripted_session_through_the_channel_front_end_to_elevated() {
    let out = run_example("game_loop");
    // The request was drawn by the game itself, the code typed a key per frame, and the flow ended elevated.
    assert!(out.contains("The chest is locked (MFA needed). Methods: authenticator app code"), "{out}");
    assert!(out.contains("Authenticator code: ******"), "{out}");
    assert!(out.contains("Verified: elevated."), "{out}");
    assert!(out.contains("The chest opens: the protected call returned HTTP 200."), "{out}");
    assert!(out.contains("ms of its 16.7 ms budget"), "{out}");
}

#[test]
fn custom_ui_runs_every_verify_method_and_each_protected_call_succeeds() {
    let out = run_example("custom_ui");
    for method in
        ["verify_otp", "verify_wallet", "verify_totp_mfa", "verify_passkey_mfa", "verify_recovery_code"]
    {
        let line =
            out.lines().find(|line| line.starts_with(method)).unwrap_or_else(|| panic!("{method}: {out}"));
        assert!(line.ends_with("protected call: HTTP 200"), "{line}");
    }
    assert!(out.contains("is step-up required again for wallet:export? true"), "{out}");
    // MFA management without a front end.
    assert!(out.contains("mfa.verify_totp_device -> verified: true"), "{out}");
    assert!(out.contains("Bob is now offered: [Totp, RecoveryCode]"), "{out}");
    assert!(out.contains("mfa.recovery_codes    -> 10 codes, acknowledged"), "{out}");
    assert!(out.contains("Bob is offered re-authentication again: true"), "{out}");
}

#[test]
fn actor_messages_steps_up_by_messages_alone() {
    let out = run_example("actor_messages");
    assert!(out.contains("Check wallet:export: required = true"), "{out}");
    assert!(out.contains("Code sent to "), "{out}");
    assert!(out.contains("Verified: a token for wallet:export (single use: true)."), "{out}");
    assert!(out.contains("State: elevated"), "{out}");
    assert!(out.contains("Protected call for wallet:export: HTTP 200"), "{out}");
    assert!(out.contains("After reset: idle"), "{out}");
}

#[test]
fn elevated_request_steps_up_on_the_challenge_and_shares_one_flow() {
    let out = run_example("elevated_request");
    assert!(out.contains("HTTP 200 OK after 1 prompt(s)"), "{out}");
    assert!(out.contains("20 of 20 succeeded after 2 prompt(s) in all"), "{out}");
}

/// The whole backend story: engine -> backend replica A -> 403 challenge -> step-up through a front end ->
/// retry -> 200; the single-use token replayed to replica B is refused. Needs Redis (`STEPUP_TEST_REDIS_URL`,
/// which `.ci/run` sets); without it the test says it was skipped, in CI it fails.
#[test]
fn backend_guards_its_call_and_a_replayed_single_use_token_is_refused_by_the_other_replica() {
    let redis = match std::env::var("STEPUP_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "STEPUP_TEST_REDIS_URL must be set in CI");
            #[allow(clippy::print_stderr)]
            {
                eprintln!("skipped: STEPUP_TEST_REDIS_URL is not set (the backend example needs Redis)");
            }
            return;
        }
    };
    let output = Command::new(example_binary("backend"))
        .env_remove("RUST_LOG")
        .env("STEPUP_REDIS_URL", redis)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "backend failed:\n{out}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(out.contains("A answered [403, 200]; the app saw HTTP 200 after 1 prompt(s)."), "{out}");
    assert!(
        out.contains(r#"B answered HTTP 403 "elevated_access_token_required": "The elevated access token was already used""#),
        "{out}"
    );
}

/// The kiosk in a pseudo-terminal (Unix: `rexpect` drives a real PTY).
#[cfg(unix)]
mod kiosk {
    use rexpect::session::{PtySession, spawn_command};

    use super::*;

    /// Generous: a cold debug build seeds the people with argon2 and WebAuthn on a loaded 2-core machine.
    const TIMEOUT_MS: u64 = 60_000;

    fn start_kiosk() -> PtySession {
        let mut command = Command::new(example_binary("kiosk"));
        command.env("TERM", "xterm").env_remove("RUST_LOG");
        let mut kiosk =
            spawn_command(command, Some(TIMEOUT_MS)).expect("the kiosk starts in a pseudo-terminal");
        // The environment's settings, as its /settings says them.
        kiosk
            .exp_string("Environment demo: step-up on, by email code, SMS code, external wallet, passkey, authenticator app, recovery code.")
            .expect("the kiosk shows what its environment allows");
        kiosk.exp_string("Who is at the kiosk?").expect("the kiosk seeds its people and shows the menu");
        kiosk
    }

    /// Types `keys` as raw bytes (what a terminal sends for Esc, arrows, Enter in raw mode).
    fn press(kiosk: &mut PtySession, keys: &str) {
        kiosk.send(keys).unwrap();
        kiosk.flush().unwrap();
    }

    /// Chooses person and action from the kiosk's line menus.
    fn choose(kiosk: &mut PtySession, person: &str, action: &str) {
        kiosk.exp_string("Choose 1-2, or q to quit: ").unwrap();
        kiosk.send_line(person).unwrap();
        kiosk.exp_string("Choose 1-4, or q to quit: ").unwrap();
        kiosk.send_line(action).unwrap();
    }

    /// Reads the code the demo authenticator app shows, and waits for the code dialog to take keys.
    fn authenticator_code(kiosk: &mut PtySession) -> String {
        let (_, shown) = kiosk.exp_regex("current code is [0-9]{6}").unwrap();
        kiosk.exp_string("Enter submit").unwrap();
        shown.rsplit(' ').next().unwrap().to_owned()
    }

    fn quit(mut kiosk: PtySession) {
        kiosk.exp_string("Choose 1-2, or q to quit: ").unwrap();
        kiosk.send_line("q").unwrap();
        kiosk.exp_string("Bye.").unwrap();
        kiosk.exp_eof().unwrap();
    }

    #[test]
    fn a_person_picks_totp_types_a_wrong_code_then_the_right_one_and_the_protected_call_succeeds() {
        let mut kiosk = start_kiosk();
        // Alice (MFA), export the wallet key.
        choose(&mut kiosk, "1", "1");
        kiosk.exp_string("Choose a method:").unwrap();
        // The server suggests Alice's newest method, the passkey: it is highlighted first (the other two rows are
        // drawn without the pointer; rexpect reads the pointer's UTF-8 bytes one by one, so the plain rows are
        // what is matched).
        kiosk.exp_string("    1. Authenticator app (TOTP)").unwrap();
        kiosk.exp_string("2. Passkey").unwrap();
        kiosk.exp_string("    3. Recovery code").unwrap();
        kiosk.exp_string("Enter choose").unwrap();
        // Down and up again: the arrow keys move the selection; up once more, and Enter takes TOTP.
        press(&mut kiosk, "\x1b[B");
        press(&mut kiosk, "\x1b[A");
        press(&mut kiosk, "\x1b[A");
        press(&mut kiosk, "\r");

        let code = authenticator_code(&mut kiosk);
        let wrong = if code == "000000" { "111111" } else { "000000" };
        press(&mut kiosk, wrong);
        press(&mut kiosk, "\r");
        kiosk.exp_string("That did not work: the code is not valid. 2 tries left.").unwrap();

        let code = authenticator_code(&mut kiosk);
        press(&mut kiosk, &code);
        press(&mut kiosk, "\r");
        kiosk.exp_string("Verified. Elevated token for wallet:export (single use).").unwrap();
        kiosk.exp_string("the protected call succeeded (HTTP 200, token applied)").unwrap();
        quit(kiosk);
    }

    #[test]
    fn a_person_picks_the_email_code_and_cancels_with_esc() {
        let mut kiosk = start_kiosk();
        // Bob (no MFA), link a credential: email code or wallet signature.
        choose(&mut kiosk, "2", "2");
        kiosk.exp_string("Email code").unwrap();
        kiosk.exp_string("Wallet signature").unwrap();
        kiosk.exp_string("Enter choose").unwrap();
        press(&mut kiosk, "1");
        // The demo outbox shows the code that was really sent; the dialog masks the destination.
        kiosk.exp_regex("the email to bob@example.com says your code is [0-9]{6}").unwrap();
        kiosk.exp_string("Enter the code sent to b***@example.com:").unwrap();
        kiosk.exp_string("Ctrl-R resend code").unwrap();
        press(&mut kiosk, "12");
        press(&mut kiosk, "\x1b");
        kiosk.exp_string("(cancelled)").unwrap();
        kiosk.exp_string("Cancelled. Nothing was done.").unwrap();

        // The kiosk is usable again at once: Bob signs with his wallet instead.
        choose(&mut kiosk, "2", "2");
        kiosk.exp_string("Enter choose").unwrap();
        press(&mut kiosk, "2");
        kiosk.exp_string("Sign with wallet 0x").unwrap();
        kiosk.exp_string("Enter continue").unwrap();
        press(&mut kiosk, "\r");
        kiosk.exp_string("Verified. Elevated token for credential:link (reusable).").unwrap();
        kiosk.exp_string("the protected call succeeded (HTTP 200, token applied)").unwrap();
        quit(kiosk);
    }

    #[test]
    fn ctrl_r_sends_a_new_code_that_works_and_ctrl_c_cancels() {
        let mut kiosk = start_kiosk();
        // Bob links a credential (a reusable scope), by email.
        choose(&mut kiosk, "2", "2");
        kiosk.exp_string("Enter choose").unwrap();
        press(&mut kiosk, "1");
        let (_, first) = kiosk.exp_regex("your code is [0-9]{6}").unwrap();
        kiosk.exp_string("Ctrl-R resend code").unwrap();
        press(&mut kiosk, "\x12"); // Ctrl-R
        kiosk.exp_string("(sending a new code)").unwrap();
        let (_, second) = kiosk.exp_regex("your code is [0-9]{6}").unwrap();
        kiosk.exp_string("Ctrl-R resend code").unwrap();
        let code = second.rsplit(' ').next().unwrap().to_owned();
        assert_ne!(first, second, "the hint shows the new code");
        press(&mut kiosk, &code);
        press(&mut kiosk, "\r");
        kiosk.exp_string("Verified. Elevated token for credential:link (reusable).").unwrap();
        kiosk.exp_string("the protected call succeeded (HTTP 200, token applied)").unwrap();

        // Alice, delete the account: Ctrl-C in the method menu cancels.
        choose(&mut kiosk, "1", "3");
        kiosk.exp_string("Enter choose").unwrap();
        press(&mut kiosk, "\x03"); // Ctrl-C: raw mode, so a key, not a signal
        kiosk.exp_string("(cancelled)").unwrap();
        kiosk.exp_string("Cancelled. Nothing was done.").unwrap();
        quit(kiosk);
    }

    /// The terminal's switch to its alternate screen (xterm's `?1049`), where secrets are shown, and back.
    const ENTER_ALTERNATE_SCREEN: &str = "\x1b[?1049h";
    const LEAVE_ALTERNATE_SCREEN: &str = "\x1b[?1049l";

    /// MFA in the kiosk's security settings: Bob (no MFA) adds an authenticator app behind a re-authentication,
    /// is routed to MFA on his next sensitive action, saves his recovery codes and removes the app again, which
    /// gives him re-authentication back.
    #[test]
    fn bob_adds_an_authenticator_app_and_is_then_routed_to_mfa_until_he_removes_it() {
        let mut kiosk = start_kiosk();
        choose(&mut kiosk, "2", "4");
        kiosk.exp_string("Security settings: 0 authenticator app(s), 0 passkey(s).").unwrap();
        kiosk.exp_string("Choose 1-5, or q to go back: ").unwrap();
        kiosk.send_line("1").unwrap();
        // Adding a factor needs credential:link: Bob verifies first, by an email code.
        kiosk.exp_string("Email code").unwrap();
        kiosk.exp_string("Enter choose").unwrap();
        press(&mut kiosk, "1");
        let (_, hint) = kiosk.exp_regex("says your code is [0-9]{6}").unwrap();
        kiosk.exp_string("Ctrl-R resend code").unwrap();
        press(&mut kiosk, hint.rsplit(' ').next().unwrap());
        press(&mut kiosk, "\r");
        // The QR code and the key, on the alternate screen; the demo phone scans it and shows a code; Bob types it.
        kiosk.exp_string(ENTER_ALTERNATE_SCREEN).unwrap();
        kiosk.exp_string("Add an authenticator app: scan this QR code with it.").unwrap();
        kiosk.exp_string("Or type this key into the app:").unwrap();
        let (_, shown) = kiosk.exp_regex("it shows the code [0-9]{6}").unwrap();
        kiosk.exp_string("Enter submit").unwrap();
        press(&mut kiosk, shown.rsplit(' ').next().unwrap());
        press(&mut kiosk, "\r");
        // The secret leaves the shared screen with the dialog.
        kiosk.exp_string(LEAVE_ALTERNATE_SCREEN).unwrap();
        kiosk.exp_string("Authenticator app added. Sensitive actions now ask for MFA.").unwrap();

        // Bob's next sensitive action asks for his new app's code: MFA now, no email code.
        choose(&mut kiosk, "2", "1");
        let code = authenticator_code(&mut kiosk);
        press(&mut kiosk, &code);
        press(&mut kiosk, "\r");
        kiosk.exp_string("Verified. Elevated token for wallet:export (single use).").unwrap();
        kiosk.exp_string("the protected call succeeded (HTTP 200, token applied)").unwrap();

        // His recovery codes: shown once (the MFA he just did is recent), saved.
        choose(&mut kiosk, "2", "4");
        kiosk.exp_string("Security settings: 1 authenticator app(s), 0 passkey(s).").unwrap();
        kiosk.exp_string("Choose 1-5, or q to go back: ").unwrap();
        kiosk.send_line("3").unwrap();
        kiosk.exp_string(ENTER_ALTERNATE_SCREEN).unwrap();
        kiosk.exp_string("Your recovery codes. Each works once; keep them somewhere safe:").unwrap();
        kiosk.exp_regex("[a-z0-9]{5}-[a-z0-9]{5}").unwrap();
        kiosk.exp_string("Enter continue").unwrap();
        press(&mut kiosk, "\r");
        kiosk.exp_string(LEAVE_ALTERNATE_SCREEN).unwrap();
        kiosk.exp_string("Recovery codes saved.").unwrap();

        // He removes the app (confirmed; his recent MFA opens it), and re-authentication is back.
        choose(&mut kiosk, "2", "4");
        kiosk.exp_string("Choose 1-5, or q to go back: ").unwrap();
        kiosk.send_line("5").unwrap();
        kiosk.exp_string("Remove which one? Choose a number, or q to go back: ").unwrap();
        kiosk.send_line("1").unwrap();
        kiosk.exp_string("Remove this factor: Authenticator app added").unwrap();
        kiosk.exp_string("Enter continue").unwrap();
        press(&mut kiosk, "\r");
        kiosk.exp_string("Authenticator app removed.").unwrap();
        // (Deleting the account: a scope whose token he does not hold; credential:link he still holds.)
        choose(&mut kiosk, "2", "3");
        kiosk.exp_string("Email code").unwrap();
        kiosk.exp_string("Enter choose").unwrap();
        press(&mut kiosk, "\x1b");
        kiosk.exp_string("Cancelled. Nothing was done.").unwrap();
        quit(kiosk);
    }
}
