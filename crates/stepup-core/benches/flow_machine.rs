//! Flow machine cost per event (docs/design.md §10: <= 100 ns), beside the plain reference model as a baseline in the
//! same run.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stepup_core::testkit::{FlowAction, ReferenceFlow, token};
use stepup_core::{
    AttemptId, Credential, Flow, FlowEvent, ManualClock, Method, MethodOptions, Route, Scope, ScopeSet,
    TokenCell, UnixTime,
};

const NOW: UnixTime = UnixTime(1_000);

/// One whole step-up: check, prompt, verify, elevate, spend the single-use token (back to idle). As in the
/// engine, the middleware's `claim` removes the token before the machine hears `TokenConsumed`.
fn cycle() -> Vec<FlowEvent> {
    let options = MethodOptions::known([Credential::new("totp-1", Method::Totp, None)]);
    let token = token(&ScopeSet::one(Scope::WalletExport), NOW.plus_secs(300), true, "t1");
    vec![
        FlowEvent::RequirementChecked {
            scope: Scope::WalletExport,
            required: true,
            options: options.clone(),
        },
        FlowEvent::PromptOpened { route: Route::Mfa, options },
        FlowEvent::VerificationStarted { method: Method::Totp },
        FlowEvent::Verified { attempt: AttemptId(1), token: Arc::clone(&token) },
        FlowEvent::TokenConsumed { token_id: token.id().clone() },
    ]
}

/// A prompt with a wrong code, a retry and a cancel: transitions only, no token written.
fn prompt_cycle() -> Vec<FlowEvent> {
    let options = MethodOptions::known([Credential::new("totp-1", Method::Totp, None)]);
    vec![
        FlowEvent::RequirementChecked {
            scope: Scope::WalletExport,
            required: true,
            options: options.clone(),
        },
        FlowEvent::PromptOpened { route: Route::Mfa, options },
        FlowEvent::VerificationStarted { method: Method::Totp },
        FlowEvent::VerificationFailed {
            attempt: AttemptId(1),
            error: stepup_core::StepUpError::MfaInvalidCode,
        },
        FlowEvent::VerificationStarted { method: Method::Totp },
        FlowEvent::Cancel,
    ]
}

/// The machine numbers each verification it starts (one more each time), so each pass of a cycle moves its
/// results' numbers past the previous pass's, by the number of verifications a pass starts.
fn renumber(events: &mut [FlowEvent], by: u64) {
    for event in events {
        if let FlowEvent::Verified { attempt, .. } | FlowEvent::VerificationFailed { attempt, .. } = event {
            attempt.0 += by;
        }
    }
}

/// Asserts that one pass of the cycle goes through the states it is meant to (a benchmark of ignored events
/// would measure nothing).
fn check_cycle(events: &[FlowEvent], expected_states: &[&str]) {
    let mut flow = Flow::new(TokenCell::with_clock(Arc::new(ManualClock::new(NOW))));
    let mut seen = Vec::new();
    for event in events {
        if let FlowEvent::TokenConsumed { .. } = event {
            let _ = flow.tokens().claim(&Scope::WalletExport);
        }
        flow.handle(event);
        seen.push(flow.state().name());
    }
    assert_eq!(seen, expected_states);
}

fn bench_cycle(c: &mut Criterion, name: &str, cycle: &[FlowEvent]) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(cycle.len() as u64));
    let starts = cycle.iter().filter(|e| matches!(e, FlowEvent::VerificationStarted { .. })).count() as u64;

    let mut events = cycle.to_vec();
    let mut flow = Flow::new(TokenCell::with_clock(Arc::new(ManualClock::new(NOW))));
    let mut passes = 0u64;
    group.bench_function("statig_machine", |b| {
        b.iter(|| {
            for event in &events {
                if let FlowEvent::TokenConsumed { .. } = event {
                    // The middleware spends the token before the flow hears of it.
                    black_box(flow.tokens().claim(&Scope::WalletExport));
                }
                black_box(flow.handle(black_box(event)));
            }
            renumber(&mut events, starts);
            passes += 1;
        });
    });
    // Every pass ran its whole path: each start was accepted (a refused one numbers nothing), each result
    // matched its verification, and the pass ended where the next begins.
    assert_eq!(flow.last_attempt().0, passes * starts, "{name}: a pass left its path");
    assert_eq!(flow.state().name(), "idle", "{name}: the last pass must have run to its end");

    let mut events = cycle.to_vec();
    let mut model = ReferenceFlow::new(NOW);
    let mut passes = 0u64;
    group.bench_function("reference_model_baseline", |b| {
        b.iter(|| {
            for event in &events {
                if let FlowEvent::TokenConsumed { .. } = event {
                    model.apply_action(&FlowAction::Take { scope: Scope::WalletExport });
                } else {
                    black_box(model.handle(black_box(event)));
                }
            }
            renumber(&mut events, starts);
            passes += 1;
        });
    });
    assert_eq!(model.last_attempt.0, passes * starts, "{name}: the model left its path");
    group.finish();
}

fn per_event(c: &mut Criterion) {
    check_cycle(&prompt_cycle(), &["required", "prompting", "verifying", "prompting", "verifying", "idle"]);
    check_cycle(&cycle(), &["required", "prompting", "verifying", "elevated", "idle"]);
    bench_cycle(c, "flow_per_event_prompt_cycle", &prompt_cycle());
    bench_cycle(c, "flow_per_event_full_cycle", &cycle());

    let mut group = c.benchmark_group("flow_ignored_event");
    group.throughput(Throughput::Elements(1));
    let stale = FlowEvent::Verified {
        attempt: AttemptId(99),
        token: token(&ScopeSet::one(Scope::WalletSign), NOW.plus_secs(9), false, "x"),
    };
    let mut idle = Flow::new(TokenCell::with_clock(Arc::new(ManualClock::new(NOW))));
    group.bench_function("statig_machine", |b| b.iter(|| idle.handle(black_box(&stale))));
    group.finish();
}

criterion_group!(benches, per_event);
criterion_main!(benches);
