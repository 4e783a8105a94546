//! Real delivery peers for the delivery tests: an SMTP server process (aiosmtpd, from PyPI) writing what it
//! accepts to a maildir, and a local HTTP receiver recording what SMS gateways are sent.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};

use super::processes::in_ci;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// A Python with aiosmtpd: `STEPUP_AIOSMTPD_PYTHON`, else `.ci/run`'s venv, else `python3`. None (the test
/// skips) when none has it, and a failure under `CI=true`.
pub fn aiosmtpd_python() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("STEPUP_AIOSMTPD_PYTHON").map(PathBuf::from),
        Some(workspace().join("target/ci-tools/aiosmtpd/bin/python")),
        Some(PathBuf::from("python3")),
    ];
    let found = candidates.into_iter().flatten().find(|python| {
        Command::new(python)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if found.is_none() {
        assert!(!in_ci(), "aiosmtpd is needed in CI (.ci/run installs it into target/ci-tools/aiosmtpd)");
        eprintln!("skipped: no Python with aiosmtpd (set STEPUP_AIOSMTPD_PYTHON, or run .ci/run once)");
    }
    found
}

/// An aiosmtpd server on 127.0.0.1, killed on drop.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub maildir: PathBuf,
}

pub const SMTP_USER: &str = "stepup";
pub const SMTP_PASSWORD: &str = "smtp-password-for-tests";

impl SmtpServer {
    /// Starts `conformance/smtp/server.py` (authentication required; with `refuse`, every message is 554).
    pub fn start(python: &Path, refuse: bool) -> Self {
        Self::start_on(python, refuse, 0)
    }

    /// [`SmtpServer::start`] on a given port (0: any).
    pub fn start_on(python: &Path, refuse: bool, port: u16) -> Self {
        let maildir = std::env::temp_dir().join(format!(
            "stepup-maildir-{}",
            stepup_server::random::hex(&stepup_server::random::bytes::<6>().unwrap())
        ));
        let mut command = Command::new(python);
        command.arg(workspace().join("conformance/smtp/server.py")).arg(&maildir).args([
            "--user",
            SMTP_USER,
            "--password",
            SMTP_PASSWORD,
        ]);
        if refuse {
            command.arg("--refuse");
        }
        command.args(["--port", &port.to_string()]);
        let mut child =
            command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("aiosmtpd did not start: {line:?}"));
        Self { child, port, maildir }
    }

    /// The messages accepted so far, oldest first, as raw text.
    pub fn messages(&self) -> Vec<String> {
        let mut names: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.maildir)
            .map(|dir| {
                dir.flatten()
                    .filter_map(|e| {
                        let path = e.path();
                        let n = path.file_stem()?.to_str()?.parse().ok()?;
                        (path.extension()? == "eml").then_some((n, path))
                    })
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names.into_iter().map(|(_, path)| std::fs::read_to_string(path).unwrap()).collect()
    }

    /// Waits (up to 5 s) until `n` messages have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        for _ in 0..100 {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("expected {n} messages, got {}", self.messages().len());
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

/// The six-digit code in a message's text.
pub fn code_in(text: &str) -> String {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(5))
        .find(|&i| {
            bytes[i..i + 6].iter().all(u8::is_ascii_digit)
                && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
                && bytes.get(i + 6).is_none_or(|b| !b.is_ascii_alphanumeric())
        })
        .map(|i| text[i..i + 6].to_owned())
        .unwrap_or_else(|| panic!("no code in {text}"))
}

/// One request an HTTP receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A local HTTP server that records every POST and answers from a script of statuses (the last one repeats; 0
/// answers 201 after five seconds).
pub struct HttpReceiver {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpReceiver {
    pub async fn start(statuses: Vec<u16>) -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = received.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let log = log.clone();
            let statuses = statuses.clone();
            async move {
                let status = {
                    let mut log = log.lock().unwrap();
                    log.push(Received { path: uri.path().to_owned(), headers, body: body.to_vec() });
                    statuses.get(log.len() - 1).or(statuses.last()).copied().unwrap_or(201)
                };
                // 0: a gateway that took the request and answers too late (the message may have gone out).
                let status = if status == 0 {
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    201
                } else {
                    status
                };
                let body = if status < 300 {
                    r#"{"sid":"SM123","status":"queued"}"#
                } else {
                    r#"{"code":21211,"message":"The 'To' number is not a valid phone number.","status":400}"#
                };
                (StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], body)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, received, task }
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Form fields of an `application/x-www-form-urlencoded` body.
pub fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}
