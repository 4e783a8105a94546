//! The `stepup-server` binary: `serve --dev` prints its URL and answers; admin subcommands work on a database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_stepup-server");

/// The key-encryption key the admin commands read (a server's database is sealed under it).
const KEK: &str = "0101010101010101010101010101010101010101010101010101010101010101";

fn run(args: &[&str]) -> (bool, String) {
    let output = Command::new(BIN)
        .args(args)
        .env_remove("STEPUP_DATABASE_URL")
        .env("STEPUP_KEY_ENCRYPTION_KEY", KEK)
        .output()
        .unwrap();
    (output.status.success(), String::from_utf8(output.stdout).unwrap())
}

fn run_without_key(args: &[&str]) -> (bool, String) {
    let output = Command::new(BIN)
        .args(args)
        .env_remove("STEPUP_DATABASE_URL")
        .env_remove("STEPUP_KEY_ENCRYPTION_KEY")
        .output()
        .unwrap();
    (output.status.success(), String::from_utf8(output.stderr).unwrap())
}

#[test]
fn admin_subcommands_seed_a_database() {
    let dir = std::env::temp_dir().join(format!("stepup-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("admin.db").display());
    let (ok, out) =
        run(&["admin", "--dev", "--database-url", &url, "create-user", "--email", "cli@example.com"]);
    assert!(ok, "{out}");
    let user: serde_json::Value = serde_json::from_str(&out).unwrap();
    let user_id = user["id"].as_str().unwrap();
    assert_eq!(user["verifiedCredentials"][0]["format"], "email");
    let (ok, out) = run(&["admin", "--dev", "--database-url", &url, "session", "--user-id", user_id]);
    assert!(ok);
    let session: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(session["jwt"].as_str().unwrap().split('.').count(), 3);
    let (ok, out) = run(&[
        "admin",
        "--dev",
        "--database-url",
        &url,
        "link-wallet",
        "--user-id",
        user_id,
        "--address",
        "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = run(&["admin", "--dev", "--database-url", &url, "outbox"]);
    assert!(ok);
    assert_eq!(out.trim(), "[]");
    // Operator tools.
    let (ok, out) = run(&["admin", "--dev", "--database-url", &url, "list-users", "--limit", "10"]);
    assert!(ok, "{out}");
    let page: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(page["users"][0]["id"], user_id);
    for (operation, expected) in [
        ("unlock-user", serde_json::json!({"unlocked": false})),
        (
            "reset-mfa",
            serde_json::json!({"devices": 0, "passkeys": 0, "recoveryCodes": 0, "revokedSessions": 1}),
        ),
        ("revoke-sessions", serde_json::json!({"revoked": 0})),
    ] {
        let (ok, out) = run(&["admin", "--dev", "--database-url", &url, operation, "--user-id", user_id]);
        assert!(ok, "{operation}: {out}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap(), expected, "{operation}");
    }
    let (ok, out) = run(&["admin", "--dev", "--database-url", &url, "rotate-signing-key"]);
    assert!(ok, "{out}");
    let rotated: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rotated["published"].as_array().unwrap().len(), 2, "{out}");
    assert_eq!(rotated["published"][0], rotated["kid"]);
    let (ok, _) = run(&["admin", "--dev", "--database-url", &url, "session", "--user-id", "nobody"]);
    assert!(!ok, "an unknown user is an error");
    let (ok, out) = run(&["admin", "--dev", "--database-url", &url, "delete-user", "--user-id", user_id]);
    assert!(ok && out.contains("\"deleted\": true"), "{out}");
    let (ok, _) = run(&["admin", "--dev", "--database-url", &url, "delete-user", "--user-id", user_id]);
    assert!(!ok, "deleted already");
    // Without the server's configuration (or --dev, for a `serve --dev` database) the CLI does not guess the
    // policy a command depends on (the key retirement window, the notices' relay).
    let (ok, err) = run_without_key(&["admin", "--database-url", &url, "list-users"]);
    assert!(!ok && err.contains("--config"), "{err}");
    let (ok, _) = run(&["admin", "--dev", "--database-url", "sqlite::memory:", "outbox"]);
    assert!(!ok, "a memory database cannot be administered from outside");
    // The database's secrets are sealed: without the key, or with another one, nothing opens.
    let (ok, err) = run_without_key(&["admin", "--dev", "--database-url", &url, "outbox"]);
    assert!(!ok && err.contains("key-encryption key"), "{err}");
    let output = Command::new(BIN)
        .args(["admin", "--dev", "--database-url", &url, "outbox"])
        .env("STEPUP_KEY_ENCRYPTION_KEY", "0202020202020202020202020202020202020202020202020202020202020202")
        .output()
        .unwrap();
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(!output.status.success() && err.contains("another key-encryption key"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serve_dev_prints_its_url_and_answers() {
    let mut child = Command::new(BIN)
        .args(["serve", "--dev", "--listen", "127.0.0.1:0"])
        .env("STEPUP_ADMIN_TOKEN", "t")
        .env_remove("STEPUP_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // See `common::http_client` for why a provider is installed (this file does not use the common module).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    runtime.block_on(async {
        let health = http.get(format!("{url}/health")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let jwks = http.get(format!("{url}/sdk/dev/.well-known/jwks")).send().await.unwrap();
        assert_eq!(jwks.status(), 200);
    });
    child.kill().unwrap();
    child.wait().unwrap();
}
