//! Dynamic's published JS client (`@dynamic-labs-sdk/client` 1.27.1, unchanged, in Node) against the reference
//! server (the `--dev` configuration, on loopback), on SQLite and on PostgreSQL: `conformance/dynamic-js/run.mjs` signs in by email
//! and SMS codes and steps up by every method through the client's own functions, checking after each that the
//! client is still signed in and that its elevated token opens the protected resource.
//!
//! Needs `node` and `npm` (the packages come from the npm registry, pinned by the committed lockfile, through
//! `npm ci`). Without them the test says it was skipped; with `CI=true` (as `.ci/run` sets) it fails instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::common::processes::{in_ci, wait_at_most};
use crate::common::{Backend, TestServer};

/// The conformance scripts.
fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/dynamic-js")
}

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

/// The `--dev` server with an environment that trusts the test backend's key (the configuration
/// `stepup-server serve --dev --config` would read), with the harness's admin token.
async fn serve_dev(backend: &Backend) -> TestServer {
    let public_key = include_str!("../keys/eddsa-public.pem");
    let config = format!(
        "[[environments]]\nid = \"dev\"\nallowed_origins = [\"*\"]\n\
         [environments.external_auth]\nissuer = \"{ISSUER}\"\n\
         [[environments.external_auth.public_keys]]\nalgorithm = \"EdDSA\"\npublic_key_pem = \"\"\"\n{public_key}\"\"\"\n"
    );
    let file = stepup_server::ServerConfig::from_toml(&config).unwrap();
    TestServer::start_with(backend, |config| config.environments = file.environments).await
}

/// Runs the client's scenario against the server at `base_url`; panics with the steps when one fails.
fn run_client(base_url: &str, dir: &Path) {
    let output_path = dir.join("client.out");
    let mut node = Command::new("node")
        .arg("run.mjs")
        .current_dir(conformance_dir())
        .env("STEPUP_BASE_URL", base_url)
        .env("STEPUP_ENVIRONMENT_ID", "dev")
        .env("STEPUP_ADMIN_TOKEN", crate::common::ADMIN)
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
    assert!(
        passed,
        "Dynamic's JS client failed against the reference server ({}):\n{steps}",
        status.map_or("timed out".to_owned(), |s| s.to_string()),
    );
}

/// The client's whole run against a server on `backend`.
async fn client_run(backend: &Backend, name: &str) {
    if !tokio::task::block_in_place(ready) {
        return;
    }
    let dir = scratch(name);
    let server = serve_dev(backend).await;
    let base_url = server.base_url();
    // The client runs in a child process; this thread waits on it while the server answers on the runtime.
    let outcome = tokio::task::block_in_place(|| std::panic::catch_unwind(|| run_client(&base_url, &dir)));
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_js_client_on_sqlite() {
    client_run(&Backend::Sqlite, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_js_client_on_postgres() {
    if let Some(backend) = Backend::postgres() {
        client_run(&backend, "postgres").await;
    }
}
