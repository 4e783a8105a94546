//! Flow machine cost per event (DESIGN §10: <= 100 ns), beside the plain reference model as a baseline in the
//! same run.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stepup_core::testkit::{ReferenceFlow, token};
use stepup_core::{
    Credential, Flow, FlowEvent, FlowId, ManualClock, Method, MethodOptions, Route, Scope, ScopeSet,
    TokenCell, UnixTime,
};

const NOW: UnixTime = UnixTime(1_000);

/// One whole step-up: check, prompt, verify, elevate, spend the single-use token (back to idle).
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
        FlowEvent::VerificationStarted { method: Method::Totp, flow: FlowId(1) },
        FlowEvent::Verified { flow: FlowId(1), token: Arc::clone(&token) },
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
        FlowEvent::VerificationStarted { method: Method::Totp, flow: FlowId(1) },
        FlowEvent::VerificationFailed { flow: FlowId(1), error: stepup_core::StepUpError::MfaInvalidCode },
        FlowEvent::VerificationStarted { method: Method::Totp, flow: FlowId(2) },
        FlowEvent::Cancel,
    ]
}

fn bench_cycle(c: &mut Criterion, name: &str, events: &[FlowEvent]) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(events.len() as u64));

    let mut flow = Flow::new(TokenCell::with_clock(Arc::new(ManualClock::new(NOW))));
    group.bench_function("statig_machine", |b| {
        b.iter(|| {
            for event in events {
                flow.handle(black_box(event));
            }
        });
    });

    let mut model = ReferenceFlow::new(NOW);
    group.bench_function("reference_model_baseline", |b| {
        b.iter(|| {
            for event in events {
                black_box(model.handle(black_box(event)));
            }
        });
    });
    group.finish();
}

fn per_event(c: &mut Criterion) {
    bench_cycle(c, "flow_per_event_prompt_cycle", &prompt_cycle());
    bench_cycle(c, "flow_per_event_full_cycle", &cycle());

    let mut group = c.benchmark_group("flow_ignored_event");
    group.throughput(Throughput::Elements(1));
    let stale = FlowEvent::Verified {
        flow: FlowId(99),
        token: token(&ScopeSet::one(Scope::WalletSign), NOW.plus_secs(9), false, "x"),
    };
    let mut idle = Flow::new(TokenCell::with_clock(Arc::new(ManualClock::new(NOW))));
    group.bench_function("statig_machine", |b| b.iter(|| idle.handle(black_box(&stale))));
    group.finish();
}

criterion_group!(benches, per_event);
criterion_main!(benches);
