//! The reference server of the step-up API.
//!
//! A skeleton for now: the routes, storage and token issuance arrive with the reference-server issue. It builds
//! on the same wire types as the engine, so both sides speak one protocol.

pub use stepup_proto as proto;
