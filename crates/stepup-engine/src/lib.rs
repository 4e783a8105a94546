//! The step-up engine: the coordinator and verifier actors, the API client, the middleware that applies
//! elevated tokens, and the `StepUpAuth` facade.
//!
//! This crate is a skeleton for now: it re-exports the domain it builds on. The actors, the client and the
//! facade arrive with the engine issue.

pub use stepup_core as core;
pub use stepup_proto as proto;
