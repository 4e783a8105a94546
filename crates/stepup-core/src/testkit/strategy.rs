//! Proptest strategies for flow events and actions.
//!
//! [`arb_event`] draws any event with parameters from small pools, so that ids and scopes collide often.
//! [`actions_for`] is state-aware: it mixes such random events with events that move the current state on
//! (the right flow number, an allowed method, a token covering the scopes), so random runs reach every state and
//! not only `idle`.

use proptest::prelude::*;

use super::model::{FlowAction, ReferenceFlow};
use super::tokens::token;
use crate::credential::{Credential, MethodOptions};
use crate::error::StepUpError;
use crate::flow::{AttemptId, FlowEvent, FlowState};
use crate::method::{Method, Route};
use crate::otp::{OtpChannel, OtpVerification, VerificationId};
use crate::scope::{Scope, ScopeSet};
use crate::time::UnixTime;
use crate::token::TokenId;

/// The scopes the strategies draw from: few, so sets overlap.
pub const SCOPE_POOL: [Scope; 4] =
    [Scope::WalletExport, Scope::UserDelete, Scope::CredentialLink, Scope::WalletSign];

/// One scope from [`SCOPE_POOL`].
pub fn arb_scope() -> impl Strategy<Value = Scope> {
    prop::sample::select(SCOPE_POOL.to_vec())
}

/// A non-empty set of up to three scopes from [`SCOPE_POOL`].
pub fn arb_scope_set() -> impl Strategy<Value = ScopeSet> {
    prop::collection::vec(arb_scope(), 1..=3).prop_map(ScopeSet::from)
}

/// Any method.
pub fn arb_method() -> impl Strategy<Value = Method> {
    prop::sample::select(Method::ALL.to_vec())
}

/// Any route.
pub fn arb_route() -> impl Strategy<Value = Route> {
    prop_oneof![Just(Route::Mfa), Just(Route::Reauthenticate), Just(Route::External)]
}

/// Unknown options, or a known set of credentials (one per drawn method, possibly none).
pub fn arb_options() -> impl Strategy<Value = MethodOptions> {
    prop_oneof![
        1 => Just(MethodOptions::unknown()),
        3 => prop::sample::subsequence(Method::ALL.to_vec(), 0..=Method::ALL.len()).prop_map(|methods| {
            MethodOptions::known(methods.into_iter().map(|m| Credential::new(format!("{m:?}-id"), m, None)))
        }),
    ]
}

/// A retryable or a fatal verification error.
pub fn arb_error() -> impl Strategy<Value = StepUpError> {
    prop_oneof![
        Just(StepUpError::MfaInvalidCode),
        Just(StepUpError::WrongVerificationToken { channel: OtpChannel::Email }),
        Just(StepUpError::Timeout),
        Just(StepUpError::InvalidVerification { message: "expired".to_owned() }),
        Just(StepUpError::Locked { retry_after: None }),
        Just(StepUpError::Cancelled),
        Just(StepUpError::VerifierFailed { method: Method::Totp }),
    ]
}

/// A sent code on either channel.
pub fn arb_otp() -> impl Strategy<Value = OtpVerification> {
    (prop_oneof![Just(OtpChannel::Email), Just(OtpChannel::Sms)], 0..3u8).prop_map(|(channel, n)| {
        OtpVerification {
            id: VerificationId::new(format!("otp-{n}")),
            channel,
            destination_masked: "a***@example.com".to_owned(),
        }
    })
}

/// A verification number from a small range (stale or current).
pub fn arb_attempt_id() -> impl Strategy<Value = AttemptId> {
    (0..6u64).prop_map(AttemptId)
}

/// A token id from a small pool (they mostly name nothing: stale expiry/consumption reports).
pub fn arb_token_id() -> impl Strategy<Value = TokenId> {
    (0..4u8).prop_map(|n| TokenId::new(format!("tok-{n}")))
}

/// A token for `scopes` (or other scopes), expiring 0 to 20 seconds after `now` (0: already expired on arrival),
/// single-use or not, with id `jti`.
pub fn arb_token_for(
    scopes: ScopeSet,
    now: UnixTime,
    jti: String,
) -> impl Strategy<Value = std::sync::Arc<crate::token::ElevatedToken>> {
    (prop_oneof![6 => Just(scopes), 1 => arb_scope_set()], 0..=20u64, any::<bool>()).prop_map(
        move |(scopes, ttl, single_use)| {
            token(&scopes, now.plus_secs(ttl).max(UnixTime(1)), single_use, &jti)
        },
    )
}

/// Any event, with parameters from small pools.
pub fn arb_event(now: UnixTime) -> impl Strategy<Value = FlowEvent> {
    prop_oneof![
        (arb_scope(), any::<bool>(), arb_options()).prop_map(|(scope, required, options)| {
            FlowEvent::RequirementChecked { scope, required, options }
        }),
        prop_oneof![arb_scope_set(), Just(ScopeSet::empty())]
            .prop_map(|scopes| FlowEvent::Challenged { scopes }),
        (arb_route(), arb_options()).prop_map(|(route, options)| FlowEvent::PromptOpened { route, options }),
        arb_method().prop_map(|method| FlowEvent::VerificationStarted { method }),
        prop_oneof![arb_scope_set(), Just(ScopeSet::empty())]
            .prop_map(|scopes| FlowEvent::FlowRequested { scopes }),
        arb_otp().prop_map(|verification| FlowEvent::OtpSent { verification }),
        (arb_attempt_id(), arb_scope_set(), 0..4u8).prop_flat_map(move |(attempt, scopes, n)| {
            arb_token_for(scopes, now, format!("tok-{n}"))
                .prop_map(move |token| FlowEvent::Verified { attempt, token })
        }),
        (arb_attempt_id(), arb_error())
            .prop_map(|(attempt, error)| FlowEvent::VerificationFailed { attempt, error }),
        Just(FlowEvent::Cancel),
        arb_token_id().prop_map(|token_id| FlowEvent::TokenExpired { token_id }),
        arb_token_id().prop_map(|token_id| FlowEvent::TokenConsumed { token_id }),
        Just(FlowEvent::Reset),
    ]
}

/// Events that move `state` on: the ones a driver that plays by the rules would send next.
fn progressing_events(model: &ReferenceFlow) -> BoxedStrategy<FlowEvent> {
    let now = model.now;
    match &model.state {
        FlowState::Idle {} | FlowState::Expired { .. } => prop_oneof![
            (arb_scope(), arb_options()).prop_map(|(scope, options)| FlowEvent::RequirementChecked {
                scope,
                required: true,
                options
            }),
            arb_scope_set().prop_map(|scopes| FlowEvent::Challenged { scopes }),
            arb_scope_set().prop_map(|scopes| FlowEvent::FlowRequested { scopes }),
        ]
        .boxed(),
        FlowState::Required { options, .. } => {
            let route = options.route();
            (arb_route(), prop::option::of(arb_options()))
                .prop_map(move |(drawn, fresh)| FlowEvent::PromptOpened {
                    route: route.unwrap_or(drawn),
                    options: fresh.unwrap_or_else(MethodOptions::unknown),
                })
                .boxed()
        }
        FlowState::Prompting { route, progress, .. } => {
            let allowed: Vec<Method> = route.methods().filter(|m| progress.options.allows(*m)).collect();
            let pending = model.pending_otp.as_ref().map(|otp| otp.channel.method());
            if allowed.is_empty() {
                return Just(FlowEvent::Cancel).boxed();
            }
            prop::sample::select(allowed)
                .prop_flat_map(move |method| {
                    if method.is_otp() && pending != Some(method) {
                        let channel =
                            if method == Method::EmailOtp { OtpChannel::Email } else { OtpChannel::Sms };
                        Just(FlowEvent::OtpSent {
                            verification: OtpVerification {
                                id: VerificationId::new("otp-live"),
                                channel,
                                destination_masked: "***".to_owned(),
                            },
                        })
                        .boxed()
                    } else {
                        Just(FlowEvent::VerificationStarted { method }).boxed()
                    }
                })
                .boxed()
        }
        FlowState::Verifying { scopes, attempt, .. } => {
            let attempt = *attempt;
            let jti = format!("live-{}", model.next_token);
            prop_oneof![
                3 => arb_token_for(scopes.clone(), now, jti).prop_map(move |token| FlowEvent::Verified { attempt, token }),
                2 => arb_error().prop_map(move |error| FlowEvent::VerificationFailed { attempt, error }),
            ]
            .boxed()
        }
        FlowState::Elevated { token_id, .. } => prop_oneof![
            Just(FlowEvent::TokenExpired { token_id: token_id.clone() }),
            Just(FlowEvent::TokenConsumed { token_id: token_id.clone() }),
            (arb_scope(), arb_options()).prop_map(|(scope, options)| FlowEvent::RequirementChecked {
                scope,
                required: true,
                options
            }),
        ]
        .boxed(),
    }
}

/// The next action for a model in this state: mostly progressing events, plus random events, time passing and
/// token spending.
pub fn actions_for(model: &ReferenceFlow) -> BoxedStrategy<FlowAction> {
    prop_oneof![
        6 => progressing_events(model).prop_map(FlowAction::Event),
        3 => arb_event(model.now).prop_map(FlowAction::Event),
        1 => (0..=12u64).prop_map(|secs| FlowAction::Tick { secs }),
        1 => arb_scope().prop_map(|scope| FlowAction::Take { scope }),
    ]
    .boxed()
}
