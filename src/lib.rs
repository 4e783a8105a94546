//! # stepup
//!
//! Step-up authentication for Rust apps: before a sensitive action (export a wallet key, unlink a credential,
//! delete the account), ask whether the user must re-verify for that *scope*; if so, run the flow (email/SMS
//! code, external-wallet signature, passkey, TOTP or recovery code), keep the short-lived elevated access token
//! it yields, and apply it to later API calls automatically.
//!
//! The domain (`stepup-core`) is re-exported at the root: `stepup::Scope`, `stepup::TokenCell`,
//! `stepup::Flow`, ... The crates themselves are reachable as modules:
//!
//! - [`proto`] — wire types of the SDK API (`stepup-proto`).
//! - [`domain`] — the domain without I/O: scopes, tokens, the token cell, the flow machine (`stepup-core`).
//! - [`engine`] — the engine (`stepup-engine`): actors, API client, the `StepUpAuth` facade, front-end trait.

pub use stepup_core as domain;
pub use stepup_engine as engine;
pub use stepup_proto as proto;

pub use stepup_core::*;

// The README's code runs as a doctest, so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
