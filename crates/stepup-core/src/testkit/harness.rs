//! The statig machine under test, driven by the same actions as the model, and its `proptest-state-machine`
//! wiring.

use std::sync::Arc;

use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};

use super::invariants::{self, Step};
use super::model::{FlowAction, Outcome, ReferenceFlow};
use super::strategy::actions_for;
use crate::flow::{Effect, Flow, FlowEvent, FlowState};
use crate::time::{ManualClock, UnixTime};
use crate::token::TokenId;
use crate::token_cell::{TokenCell, TokenSet};

/// Where every generated run starts.
pub const START: UnixTime = UnixTime(1_700_000_000);

/// The real [`Flow`] on a manual clock, plus what the last action did to it.
#[derive(Debug)]
pub struct FlowHarness {
    /// The machine under test.
    pub flow: Flow,
    /// Its clock.
    pub clock: ManualClock,
    /// Each event the last action delivered, with the state and tokens before and after it.
    pub steps: Vec<DeliveredStep>,
}

/// One delivered event and what it did.
#[derive(Debug, Clone)]
pub struct DeliveredStep {
    /// State before.
    pub before: FlowState,
    /// Tokens before.
    pub tokens_before: Arc<TokenSet>,
    /// The event.
    pub event: FlowEvent,
    /// What the machine answered.
    pub effect: Effect,
    /// State after.
    pub after: FlowState,
    /// Tokens after.
    pub tokens_after: Arc<TokenSet>,
}

impl FlowHarness {
    /// A fresh flow in `idle` at `now`.
    #[must_use]
    pub fn new(now: UnixTime) -> Self {
        let clock = ManualClock::new(now);
        let tokens = TokenCell::with_clock(Arc::new(clock.clone()));
        Self { flow: Flow::new(tokens), clock, steps: Vec::new() }
    }

    /// Applies an action the way the engine would: events go to the machine, time moves and expiries are
    /// reported as the coordinator's timer reports them, tokens are spent as the middleware spends them.
    pub fn apply(&mut self, action: &FlowAction) {
        self.steps.clear();
        match action {
            FlowAction::Event(event) => self.deliver(event.clone()),
            FlowAction::Tick { secs } => {
                self.clock.advance(*secs);
                let now = self.flow.tokens().now();
                let expired: Vec<TokenId> = self
                    .flow
                    .tokens()
                    .snapshot()
                    .tokens()
                    .iter()
                    .filter(|t| t.is_expired_at(now))
                    .map(|t| t.id().clone())
                    .collect();
                for token_id in expired {
                    self.deliver(FlowEvent::TokenExpired { token_id });
                }
                self.flow.tokens().prune();
            }
            FlowAction::Take { scope } => {
                if let Some(token) = self.flow.tokens().claim(scope).filter(|t| t.is_single_use()) {
                    self.deliver(FlowEvent::TokenConsumed { token_id: token.id().clone() });
                }
            }
        }
    }

    fn deliver(&mut self, event: FlowEvent) {
        let before = self.flow.state().clone();
        let tokens_before = self.flow.tokens().snapshot();
        let effect = self.flow.handle(&event);
        let after = self.flow.state().clone();
        let tokens_after = self.flow.tokens().snapshot();
        self.steps.push(DeliveredStep { before, tokens_before, event, effect, after, tokens_after });
    }

    /// The ids of the unexpired tokens in the cell, newest first.
    #[must_use]
    pub fn live_token_ids(&self) -> Vec<TokenId> {
        let now = self.flow.tokens().now();
        self.flow
            .tokens()
            .snapshot()
            .tokens()
            .iter()
            .filter(|t| !t.is_expired_at(now))
            .map(|t| t.id().clone())
            .collect()
    }
}

/// `proptest-state-machine` glue: the reference is [`ReferenceFlow`], the system under test a [`FlowHarness`].
/// After every action it asserts that machine and model agree (state and live tokens) and that the six
/// invariants of docs/design.md §3 hold for every delivered event.
#[derive(Debug, Clone, Copy)]
pub struct FlowMachineTest;

impl ReferenceStateMachine for FlowMachineTest {
    type State = ReferenceFlow;
    type Transition = FlowAction;

    fn init_state() -> BoxedStrategy<Self::State> {
        Just(ReferenceFlow::new(START)).boxed()
    }

    fn transitions(state: &Self::State) -> BoxedStrategy<Self::Transition> {
        actions_for(state)
    }

    fn apply(mut state: Self::State, transition: &Self::Transition) -> Self::State {
        state.apply_action(transition);
        if let FlowAction::Event(FlowEvent::Verified { .. }) = transition {
            state.next_token += 1;
        }
        state
    }
}

impl StateMachineTest for FlowMachineTest {
    type SystemUnderTest = FlowHarness;
    type Reference = FlowMachineTest;

    fn init_test(ref_state: &ReferenceFlow) -> FlowHarness {
        FlowHarness::new(ref_state.now)
    }

    #[allow(clippy::panic)]
    fn apply(mut state: FlowHarness, ref_state: &ReferenceFlow, transition: FlowAction) -> FlowHarness {
        state.apply(&transition);
        let now = state.flow.tokens().now();
        assert_eq!(state.steps.len(), ref_state.last_events.len(), "machine and model saw different events");
        for (step, (model_event, outcome, effect)) in state.steps.iter().zip(&ref_state.last_events) {
            assert_eq!(&step.event, model_event);
            assert_eq!(&step.effect, effect, "machine and model answer {model_event:?} differently");
            let view = Step {
                before: &step.before,
                tokens_before: &step.tokens_before,
                event: &step.event,
                after: &step.after,
                tokens_after: &step.tokens_after,
                now,
            };
            if let Err(violation) = invariants::check_step(view) {
                panic!("{violation}");
            }
            if *outcome == Outcome::Ignored
                && let Err(violation) = invariants::check_ignored(view)
            {
                panic!("{violation}");
            }
        }
        state
    }

    fn check_invariants(state: &FlowHarness, ref_state: &ReferenceFlow) {
        assert_eq!(state.flow.state(), &ref_state.state, "machine and model disagree on the state");
        assert_eq!(
            state.live_token_ids(),
            ref_state.live_token_ids(),
            "machine and model disagree on the tokens"
        );
        assert_eq!(state.flow.tokens().now(), ref_state.now);
        assert_eq!(
            state.flow.pending_otp(),
            ref_state.pending_otp.as_ref(),
            "machine and model disagree on the sent code"
        );
    }
}
