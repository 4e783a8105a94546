//! The independent clients the conformance tests run (Node, schemathesis, aiosmtpd), waited on with a time
//! limit; and whether this is CI, where a missing tool fails instead of skipping.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Whether the tests run in CI (`CI=true`), where a missing tool fails instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true" || value == "1")
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
