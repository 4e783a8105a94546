//! Dynamic's published JS client (`@dynamic-labs-sdk/client` 1.27.1, unchanged, in Node) against
//! `stepup-server serve --dev`, on SQLite and on PostgreSQL: `conformance/dynamic-js/run.mjs` signs in by email
//! and SMS codes and steps up by every method through the client's own functions, checking after each that the
//! client is still signed in and that its elevated token opens the protected resource.
//!
//! Needs `node` and `npm` (the packages come from the npm registry, pinned by the committed lockfile, through
//! `npm ci`). Without them the test says it was skipped; with `CI=true` (as `.ci/run` sets) it fails instead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr, missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::processes::{ServeDev, in_ci, wait_at_most};
use common::{Backend, postgres_schema};

/// The conformance scripts.
fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/dynamic-js")
}

const ADMIN_TOKEN: &str = "conformance-admin-token";
const ISSUER: &str = "conformance-backend";
/// The longest the whole client run may take (it takes a few seconds).
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

fn found(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `npm ci` once per test run (both tests share `node_modules`); `Err` says why it could not be done.
fn installed() -> &'static Result<(), String> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        for tool in ["node", "npm"] {
            if !found(tool) {
                return Err(format!("`{tool}` is not installed"));
            }
        }
        let output = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(conformance_dir())
            .output()
            .map_err(|e| format!("npm ci: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "npm ci failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(())
    })
}

/// Whether the tools are there; `false` (after saying so) skips the test, unless in CI, where it fails.
fn ready() -> bool {
    match installed() {
        Ok(()) => true,
        Err(why) if !in_ci() && why.contains("not installed") => {
            eprintln!(
                "skipped: {why}; Dynamic's JS client conformance needs Node.js and npm (CI=true fails instead)"
            );
            false
        }
        Err(why) => panic!("Dynamic's JS client conformance cannot run: {why}"),
    }
}

/// A scratch directory for one run's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "stepup-dynamic-js-{name}-{}",
        stepup_server::random::hex(&stepup_server::random::bytes::<6>().unwrap())
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts the server binary in `--dev` mode with an environment that trusts the test backend's key.
fn serve_dev(dir: &Path, database_url: Option<&str>) -> ServeDev {
    let public_key = include_str!("keys/eddsa-public.pem");
    let config = format!(
        "[[environments]]\nid = \"dev\"\nallowed_origins = [\"*\"]\n\
         [environments.external_auth]\nissuer = \"{ISSUER}\"\n\
         [[environments.external_auth.public_keys]]\nalgorithm = \"EdDSA\"\npublic_key_pem = \"\"\"\n{public_key}\"\"\"\n"
    );
    ServeDev::start(dir, &config, database_url, ADMIN_TOKEN, Some("stepup_server=debug"))
}

/// Runs the client's scenario against `server`; panics with the steps and the server's log when one fails.
fn run_client(server: &ServeDev, dir: &Path) {
    let output_path = dir.join("client.out");
    let mut node = Command::new("node")
        .arg("run.mjs")
        .current_dir(conformance_dir())
        .env("STEPUP_BASE_URL", &server.base_url)
        .env("STEPUP_ENVIRONMENT_ID", "dev")
        .env("STEPUP_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("STEPUP_BACKEND_KEY", Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys/eddsa-private.pem"))
        .env("STEPUP_BACKEND_ISSUER", ISSUER)
        .stdout(std::fs::File::create(&output_path).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node starts");
    let status = wait_at_most(&mut node, RUN_TIMEOUT, Duration::from_millis(100));
    let steps = std::fs::read_to_string(&output_path).unwrap_or_default();
    eprintln!("{steps}");
    let passed = status.is_some_and(|s| s.success()) && steps.contains("# all steps passed");
    if !passed {
        let log = std::fs::read_to_string(&server.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        panic!(
            "Dynamic's JS client failed against the reference server ({}):\n{steps}\n--- server log (last lines) ---\n{}",
            status.map_or("timed out".to_owned(), |s| s.to_string()),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
}

#[test]
fn dynamic_js_client_on_sqlite() {
    if !ready() {
        return;
    }
    let dir = scratch("sqlite");
    let server = serve_dev(&dir, None);
    run_client(&server, &dir);
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_js_client_on_postgres() {
    let Some(Backend::Postgres(base)) = Backend::postgres() else { return };
    if !tokio::task::block_in_place(ready) {
        return;
    }
    let (url, schema) = postgres_schema(&base).await;
    let dir = scratch("postgres");
    let server = serve_dev(&dir, Some(&url));
    let outcome = tokio::task::block_in_place(|| std::panic::catch_unwind(|| run_client(&server, &dir)));
    drop(server);
    if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&base).await {
        use sqlx::Executor as _;
        let _ = conn.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await;
    }
    let _ = std::fs::remove_dir_all(dir);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
