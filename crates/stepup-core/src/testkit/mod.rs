//! Property-testing kit for the flow (feature `testkit`).
//!
//! - [`token`]: builds elevated tokens (JWT-shaped, unsigned) with chosen claims.
//! - [`ReferenceFlow`]: a plain reference model of the flow rules, written without statig, and its token list.
//! - [`FlowAction`]: what a test does to a flow: feed an event, let time pass, spend a token.
//! - [`strategy`]: proptest strategies for events and actions, state-aware so random runs reach every state.
//! - [`invariants`]: the six invariants of the flow (docs/design.md §3) as a checker over one step.
//! - [`FlowHarness`] and [`FlowMachineTest`]: the statig machine under test, wired for `proptest-state-machine`.
//!
//! An app can property-test its own flows against the same rules:
//!
//! ```
//! use proptest_state_machine::prop_state_machine;
//! use stepup_core::testkit::FlowMachineTest;
//!
//! prop_state_machine! {
//!     #![proptest_config(proptest::test_runner::Config { cases: 50, ..Default::default() })]
//!     // In a test file, put `#[test]` here.
//!     fn flow_matches_model(sequential 1..40 => FlowMachineTest);
//! }
//! flow_matches_model();
//! ```

mod harness;
pub mod invariants;
mod model;
pub mod strategy;
mod tokens;

pub use harness::{DeliveredStep, FlowHarness, FlowMachineTest, START};
pub use model::{FlowAction, Outcome, ReferenceFlow};
pub use tokens::{token, token_jwt};
