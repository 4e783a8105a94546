//! The reference server's HTTP API end to end, over loopback, on SQLite and PostgreSQL: one test binary (it links
//! once) with a module per area, on the shared harness (`tests/common`). The independent clients run here too:
//! Dynamic's published JS client (`dynamic_js`), schemathesis (`schemathesis`) and an SMTP server (`delivery`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr, missing_docs)]

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod calling_thread;
mod connections;
mod delivery;
mod dynamic_js;
mod external_auth;
mod factor_changes;
mod fidelity;
mod folded_statements;
mod guard;
mod hardening;
mod key_rotation;
mod metrics;
mod mfa;
mod openapi;
mod operator;
mod otp;
mod passkey;
mod replicas;
mod schemathesis;
mod secrets_at_rest;
mod wallet;
