//! Model-based property test of the flow machine: random action sequences drive the statig machine and the
//! plain reference model side by side; after every action they must agree and the six invariants of docs/design.md §3
//! must hold (see `stepup_core::testkit`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use proptest::test_runner::Config;
use proptest_state_machine::prop_state_machine;
use stepup_core::testkit::FlowMachineTest;

/// At least 10,000 generated sequences in every normal test run (DEVELOPERS: property tests are part of CI).
const CASES: u32 = 10_000;

prop_state_machine! {
    #![proptest_config(Config {
        cases: CASES,
        // Shrinking a failing run of up to 40 actions is quick; keep the default limits otherwise.
        ..Config::default()
    })]

    #[test]
    fn machine_agrees_with_the_reference_model_and_keeps_its_invariants(sequential 1..40 => FlowMachineTest);
}

/// The generator must reach every state and the interesting transitions, or the property above proves little.
#[test]
fn generated_runs_reach_every_state_and_transition() {
    use std::collections::BTreeSet;

    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    use proptest_state_machine::ReferenceStateMachine;

    let mut runner = TestRunner::deterministic();
    let strategy = FlowMachineTest::sequential_strategy(1..40);
    let mut seen: BTreeSet<(&'static str, &'static str)> = BTreeSet::new();
    for _ in 0..2_000 {
        let (mut model, actions, _) = strategy.new_tree(&mut runner).unwrap().current();
        for action in &actions {
            let before = model.state.name();
            model = <FlowMachineTest as ReferenceStateMachine>::apply(model, action);
            seen.insert((before, model.state.name()));
        }
    }
    let expected = [
        ("idle", "required"),
        ("required", "prompting"),
        ("required", "idle"),
        ("prompting", "verifying"),
        ("prompting", "idle"),
        ("verifying", "elevated"),
        ("verifying", "prompting"),
        ("verifying", "required"),
        ("verifying", "idle"),
        ("elevated", "expired"),
        ("elevated", "idle"),
        ("elevated", "required"),
        ("expired", "required"),
        ("expired", "idle"),
    ];
    for transition in expected {
        assert!(seen.contains(&transition), "never generated {transition:?}; seen {seen:?}");
    }
}
