//! An independent API fuzzer against the reference server (the `--dev` configuration, on loopback): schemathesis (PyPI) reads the server's own
//! `/openapi.json`, generates requests for every operation of the SDK and admin APIs (schema examples, boundary
//! and negative cases, then random ones), and checks every answer: never a 5xx, a documented status, JSON where
//! JSON is documented, and a body that matches the documented schema.
//!
//! Credentials come from `conformance/schemathesis/stepup_hooks.py`: a fresh session and a fresh elevated token
//! for every scope per call, minted through the admin API, so the fuzzer gets past the auth layer and no
//! `/revoke` or spent single-use token starves the rest of the run.
//!
//! Needs the `schemathesis` command: `STEPUP_SCHEMATHESIS` (its path; `.ci/run` installs it in a venv under
//! `target/ci-tools`), else that venv, else `schemathesis` on `PATH`. Without it the test says it was skipped;
//! with `CI=true` it fails instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::processes::{in_ci, wait_at_most};
use crate::common::{Backend, TestServer};

/// Generated cases per operation and phase; the whole run takes well under two minutes on two cores.
const MAX_EXAMPLES: &str = "40";
/// The longest the run may take before the test gives up on it.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);
/// The checks: every answer documented, JSON, matching its schema, never a server error.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,response_headers_conformance";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The `schemathesis` command, if one runs.
fn schemathesis() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("STEPUP_SCHEMATHESIS").map(PathBuf::from),
        Some(workspace().join("target/ci-tools/schemathesis/bin/schemathesis")),
        Some(PathBuf::from("schemathesis")),
    ];
    candidates.into_iter().flatten().find(|tool| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// The `--dev` server, with external auth configured (so that route is reachable too).
async fn serve_dev() -> TestServer {
    let public_key = include_str!("../keys/eddsa-public.pem");
    // The `--dev` limits (a file's environments take the production defaults): with 30 anonymous sends an hour
    // from 127.0.0.1, most send and nonce calls would answer only 429 after the first minute.
    let config = format!(
        "[[environments]]\nid = \"dev\"\nallowed_origins = [\"*\"]\n\
         [environments.limits]\nanonymous_sends_per_client_per_hour = 100000\nanonymous_sends_per_hour = 1000000\n\
         signed_in_sends_per_client_per_hour = 100000\nnonce_requests_per_client_per_hour = 100000\n\
         nonce_requests_per_hour = 1000000\nceremonies_per_user_per_hour = 100000\n\
         recovery_code_generations_per_hour = 100000\n\
         [environments.external_auth]\nissuer = \"fuzz-backend\"\n\
         [[environments.external_auth.public_keys]]\nalgorithm = \"EdDSA\"\npublic_key_pem = \"\"\"\n{public_key}\"\"\"\n"
    );
    let file = stepup_server::ServerConfig::from_toml(&config).unwrap();
    TestServer::start_with(&Backend::Sqlite, |config| config.environments = file.environments).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    let Some(tool) = schemathesis() else {
        assert!(!in_ci(), "schemathesis is not installed (.ci/run installs it under target/ci-tools)");
        eprintln!("skipped: schemathesis is not installed (pip install schemathesis; CI=true fails instead)");
        return;
    };
    let dir = std::env::temp_dir().join(format!(
        "stepup-schemathesis-{}",
        stepup_server::random::hex(&stepup_server::random::bytes::<6>().unwrap())
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let server = serve_dev().await;
    let base_url = server.base_url();
    let output_path = dir.join("schemathesis.out");
    let mut run = Command::new(&tool)
        .arg("run")
        .arg(format!("{base_url}/openapi.json"))
        .args(["--checks", CHECKS])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", MAX_EXAMPLES])
        // One worker: with two, CPython 3.11's `ast` (which Hypothesis calls to describe its lambdas) now and then
        // fails from two threads at once ("AST constructor recursion depth mismatch"), an error of the tool
        // that says nothing about the server.
        .args(["--workers", "1", "--request-timeout", "10", "--no-color"])
        // Its cache (`.schemathesis/`) goes to the scratch directory, not the source tree.
        .current_dir(&dir)
        .env("PYTHONPATH", workspace().join("conformance/schemathesis"))
        .env("SCHEMATHESIS_HOOKS", "stepup_hooks")
        .env("STEPUP_BASE_URL", &base_url)
        .env("STEPUP_ADMIN_TOKEN", crate::common::ADMIN)
        .env("STEPUP_ENVIRONMENT", "dev")
        .stdout(std::fs::File::create(&output_path).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("schemathesis starts");
    // This thread waits on the fuzzer while the server answers on the runtime.
    let status =
        tokio::task::block_in_place(|| wait_at_most(&mut run, RUN_TIMEOUT, Duration::from_millis(200)));
    let report = std::fs::read_to_string(&output_path).unwrap_or_default();
    let summary: Vec<&str> = report.lines().skip_while(|line| !line.contains("SUMMARY")).collect();
    eprintln!("{}", summary.join("\n"));
    assert!(
        status.is_some_and(|s| s.success()),
        "schemathesis found failures ({}):\n{report}",
        status.map_or("timed out".to_owned(), |s| s.to_string()),
    );
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
