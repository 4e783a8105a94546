//! `docs/configuration.md` is the configuration reference: every option of the TOML file is in it, every
//! environment variable the server reads is in it, and its production example passes `check-config`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_stepup-server");

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The deserialised fields of the configuration types: documented fields (`///` or `#[serde` on the line
/// before) outside tests, except `#[serde(skip)]` ones.
fn option_names(source: &str) -> Vec<String> {
    let source = source.split("#[cfg(test)]").next().unwrap();
    let lines: Vec<&str> = source.lines().collect();
    let mut names = Vec::new();
    // Fields belong to the last derive seen: only types that derive `Deserialize` are configuration.
    let mut deserialised = false;
    for (i, line) in lines.iter().enumerate().skip(1) {
        let trimmed = line.trim();
        if trimmed.starts_with("#[derive(") {
            deserialised = trimmed.contains("Deserialize");
        }
        if !deserialised {
            continue;
        }
        let before = lines[i - 1].trim();
        if !(before.starts_with("///") || before.starts_with("#[serde")) || !trimmed.ends_with(',') {
            continue;
        }
        let field = trimmed.strip_prefix("pub ").unwrap_or(trimmed);
        let Some((name, _type)) = field.split_once(": ") else { continue };
        if !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            continue;
        }
        let skipped = lines[..i]
            .iter()
            .rev()
            .take_while(|l| l.trim().starts_with("///") || l.trim().starts_with("#["))
            .any(|l| l.contains("serde(skip)"));
        if !skipped {
            names.push(name.to_owned());
        }
    }
    names
}

#[test]
fn every_option_and_variable_is_documented() {
    let docs = read("../../docs/configuration.md");
    let mut names = option_names(&read("src/config.rs"));
    names.extend(option_names(&read("src/delivery/settings.rs")));
    assert!(names.len() > 60, "the parser found too few options: {names:?}");
    for name in
        ["listen", "rp_origins", "timeout_ms", "account_sid", "notice_html", "ceremonies_per_user_per_hour"]
    {
        assert!(names.iter().any(|n| n == name), "{name} not found by the parser");
    }
    // An option is documented as `name` in a table, or as a `[section]` heading of its own.
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| !docs.contains(&format!("`{name}`")) && !docs.contains(&format!("{name}]`")))
        .collect();
    assert!(missing.is_empty(), "options missing from docs/configuration.md: {missing:?}");
    // Every STEPUP_ variable the server reads.
    let mut sources = read("src/config.rs");
    sources.push_str(&read("src/main.rs"));
    let mut variables: Vec<&str> = sources
        .match_indices("STEPUP_")
        .map(|(at, _)| {
            let rest = &sources[at..];
            let end = rest.find(|c: char| !(c.is_ascii_uppercase() || c == '_')).unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    variables.sort_unstable();
    variables.dedup();
    assert!(variables.len() >= 14, "{variables:?}");
    for variable in variables {
        assert!(docs.contains(&format!("`{variable}`")), "{variable} is not in docs/configuration.md");
    }
}

fn check_config(toml: &str, envs: &[(&str, &str)]) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("stepup-check-{}-{}", std::process::id(), toml.len()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("stepup.toml");
    std::fs::write(&path, toml).unwrap();
    let mut command = Command::new(BIN);
    command.args(["check-config", "--config"]).arg(&path);
    for name in [
        "STEPUP_KEY_ENCRYPTION_KEY",
        "STEPUP_KEY_ENCRYPTION_KEY_FILE",
        "STEPUP_SMTP_PASSWORD",
        "STEPUP_SMS_AUTH_TOKEN",
        "STEPUP_DATABASE_URL",
    ] {
        command.env_remove(name);
    }
    command.envs(envs.iter().copied());
    let output = command.output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

const KEK: &str = "0303030303030303030303030303030303030303030303030303030303030303";

#[test]
fn the_production_example_passes_check_config() {
    let docs = read("../../docs/configuration.md");
    let section = docs.split("## A complete production example").nth(1).unwrap();
    let example = section.split("```toml").nth(1).unwrap().split("```").next().unwrap();
    let secrets =
        [("STEPUP_KEY_ENCRYPTION_KEY", KEK), ("STEPUP_SMTP_PASSWORD", "p"), ("STEPUP_SMS_AUTH_TOKEN", "t")];
    let (ok, out) = check_config(example, &secrets);
    assert!(ok, "{out}");
    assert!(
        out.contains("configuration ok: 1 environment(s)")
            && out.contains("email: SMTP; sms: gateway; outbox: off"),
        "{out}"
    );
    assert!(out.contains("metrics: on 127.0.0.1:9090"), "{out}");
    // Each secret is needed: without the key-encryption key (its file does not exist here) the check fails.
    let (ok, out) = check_config(example, &secrets[1..]);
    assert!(!ok && out.contains("key-encryption key"), "{out}");
    let (ok, out) = check_config(example, &[secrets[0], secrets[2]]);
    assert!(!ok && out.contains("no password"), "{out}");
}

#[test]
fn check_config_names_what_is_wrong() {
    let kek = [("STEPUP_KEY_ENCRYPTION_KEY", KEK)];
    let base = "[[environments]]\nid = \"prod\"\n";
    for (toml, why) in [
        (
            format!("{base}[environments.email]\ncode_text = \"Your code is {{cod}}\"\n"),
            "unknown placeholder {cod}",
        ),
        (format!("{base}[environments.email]\ncode_html = \"no code here\"\n"), "must contain {code}"),
        (format!("{base}[environments.sms]\ncode_text = \"{{code\"\n"), "unmatched brace"),
        (format!("[delivery.smtp]\nhost = \"smtp.example.com\"\n{base}"), "email.from is needed"),
        (
            format!(
                "[delivery.smtp]\nhost = \"smtp.example.com\"\ntls = \"none\"\n{base}[environments.email]\nfrom = \"a@example.com\"\n"
            ),
            "loopback",
        ),
        (
            format!(
                "[delivery.sms]\nprovider = \"webhook\"\nurl = \"http://hooks.example.com\"\nsecret = \"0123456789abcdef\"\n{base}"
            ),
            "https://",
        ),
        (format!("[delivery.sms]\nprovider = \"fax\"\n{base}"), "unknown variant"),
        (format!("{base}[environments.email]\nfrom = \"not a mailbox\"\n"), "email.from"),
        (format!("[metrics]\ntoken = \"short\"\n{base}"), "metrics.token"),
        (format!("colour = \"blue\"\n{base}"), "unknown field"),
        (
            format!(
                "[delivery.smtp]\nhost = \"smtp.example.com\"\ntimeout_ms = 30000\n{base}[environments.email]\nfrom = \"a@example.com\"\n"
            ),
            "below connections.request_timeout_ms",
        ),
        (
            format!(
                "[delivery.sms]\nprovider = \"twilio\"\naccount_sid = \"AC1\"\nauth_token = \"t\"\n{base}"
            ),
            "sms.from is needed",
        ),
    ] {
        let (ok, out) = check_config(&toml, &kek);
        assert!(!ok && out.contains(why), "{toml}\n---\n{out}");
    }
    let (ok, out) = check_config(base, &[("STEPUP_KEY_ENCRYPTION_KEY", "not-a-key")]);
    assert!(!ok && out.contains("32 bytes"), "{out}");
    let (ok, out) = check_config(base, &kek);
    assert!(ok && out.contains("outbox: off") && out.contains("metrics: off"), "{out}");
    // Allowed but likely wrong: said as warnings.
    assert!(
        out.contains("warning: environment prod: email is an enabled method but no delivery.smtp"),
        "{out}"
    );
    let (ok, out) = check_config(
        &format!("[delivery]\noutbox = true\n[metrics]\nlisten = \"0.0.0.0:9090\"\n{base}"),
        &kek,
    );
    assert!(ok, "{out}");
    assert!(out.contains("warning: delivery.outbox is on outside --dev"), "{out}");
    assert!(out.contains("warning: metrics.listen 0.0.0.0:9090"), "{out}");
    assert!(!out.contains("no delivery.smtp"), "the outbox delivers: {out}");
}

#[test]
fn generate_key_prints_a_key_the_server_takes() {
    let output = Command::new(BIN).arg("generate-key").output().unwrap();
    assert!(output.status.success());
    let key = String::from_utf8(output.stdout).unwrap();
    assert_eq!(key.trim().len(), 64);
    stepup_server::key_encryption::KeyEncryptionKey::parse(&key).unwrap();
    let again = Command::new(BIN).arg("generate-key").output().unwrap();
    assert_ne!(again.stdout, key.as_bytes(), "each key is new");
}
