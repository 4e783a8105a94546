//! Processes the conformance tests run: the `stepup-server` binary in `--dev` mode, and an independent client
//! (Node, schemathesis) waited on with a time limit.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Whether the tests run in CI (`CI=true`), where a missing tool fails instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true" || value == "1")
}

/// A `stepup-server serve --dev` process, killed on drop.
pub struct ServeDev {
    child: Child,
    pub base_url: String,
    pub log: PathBuf,
}

impl ServeDev {
    /// Starts the binary with `config` (TOML, written to `dir`), on `database_url` when given, its log (at
    /// `log_level`, when given) in `dir/server.log`, and waits for the base URL it prints.
    pub fn start(
        dir: &Path,
        config: &str,
        database_url: Option<&str>,
        admin_token: &str,
        log_level: Option<&str>,
    ) -> Self {
        let config_path = dir.join("server.toml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.join("server.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_stepup-server"));
        command.args(["serve", "--dev", "--listen", "127.0.0.1:0", "--config"]).arg(&config_path);
        if let Some(url) = database_url {
            command.args(["--database-url", url]);
        }
        if let Some(level) = log_level {
            command.env("RUST_LOG", level);
        }
        let mut child = command
            .env("STEPUP_ADMIN_TOKEN", admin_token)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the server binary starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base_url = line.trim().to_owned();
        assert!(
            base_url.starts_with("http://127.0.0.1:"),
            "the server printed {base_url:?}; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Self { child, base_url, log }
    }
}

impl Drop for ServeDev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `child` to exit, polling every `poll`; after `timeout` it is killed and `None` is the answer.
pub fn wait_at_most(child: &mut Child, timeout: Duration, poll: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(poll);
    }
}
