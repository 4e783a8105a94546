//! The flow's invariants (docs/design.md §3) as checks over one step, for any driver: the bare machine, or an engine
//! whose published states are observed.

use crate::flow::{FlowEvent, FlowState};
use crate::time::UnixTime;
use crate::token_cell::TokenSet;

/// An invariant that did not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invariant {invariant} violated: {message}")]
pub struct InvariantViolation {
    /// Which invariant (1 to 6, as numbered in docs/design.md §3).
    pub invariant: u8,
    /// What was seen.
    pub message: String,
}

fn violated(invariant: u8, message: String) -> Result<(), InvariantViolation> {
    Err(InvariantViolation { invariant, message })
}

/// Invariant 2: `elevated` implies the cell holds an unexpired token covering the state's scopes, with the
/// state's token id.
///
/// # Errors
/// The violation, if any.
pub fn check_state(state: &FlowState, tokens: &TokenSet, now: UnixTime) -> Result<(), InvariantViolation> {
    if let FlowState::Elevated { scopes, token_id, .. } = state {
        let Some(token) = tokens.by_id(token_id) else {
            return violated(2, format!("elevated with {token_id:?}, which is not in the cell"));
        };
        if token.is_expired_at(now) {
            return violated(
                2,
                format!("elevated with {token_id:?}, which expired at {}", token.expires_at()),
            );
        }
        if !token.covers_all(scopes) {
            return violated(2, format!("elevated for {scopes:?} but the token grants {:?}", token.scopes()));
        }
    }
    Ok(())
}

/// One step: the state and tokens before, the event, the state and tokens after.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// State before the event.
    pub before: &'a FlowState,
    /// Tokens before the event.
    pub tokens_before: &'a TokenSet,
    /// The event.
    pub event: &'a FlowEvent,
    /// State after the event.
    pub after: &'a FlowState,
    /// Tokens after the event.
    pub tokens_after: &'a TokenSet,
    /// The time of the step.
    pub now: UnixTime,
}

fn same_tokens(a: &TokenSet, b: &TokenSet) -> bool {
    a.len() == b.len() && a.tokens().iter().zip(b.tokens()).all(|(x, y)| x.id() == y.id())
}

/// Invariants 2 to 6 over one step. (Invariant 1, "an event a state does not take changes nothing", needs to
/// know which events a state takes: [`check_ignored`] checks it given that knowledge.)
///
/// # Errors
/// The first violation found.
pub fn check_step(step: Step<'_>) -> Result<(), InvariantViolation> {
    let Step { before, tokens_before, event, after, tokens_after, now } = step;
    check_state(after, tokens_after, now)?;

    // 3. A result for a verification that is not the current one changes nothing.
    if let FlowEvent::Verified { attempt, .. } | FlowEvent::VerificationFailed { attempt, .. } = event {
        let current = match before {
            FlowState::Verifying { attempt: current, .. } => Some(*current),
            _ => None,
        };
        if current != Some(*attempt) && (before != after || !same_tokens(tokens_before, tokens_after)) {
            return violated(
                3,
                format!("stale result for {attempt} (current {current:?}) changed {before:?} to {after:?}"),
            );
        }
    }

    // 4. Reset gives idle with an empty cell.
    if matches!(event, FlowEvent::Reset) && (!matches!(after, FlowState::Idle {}) || !tokens_after.is_empty())
    {
        return violated(4, format!("after Reset: {after:?} with {} tokens", tokens_after.len()));
    }

    // 5. verifying is entered only with a method the route allows and the options offer.
    if let FlowState::Verifying { method, route, .. } = after
        && !matches!(before, FlowState::Verifying { .. })
    {
        let FlowState::Prompting { route: prompt_route, progress, .. } = before else {
            return violated(5, format!("verifying entered from {}", before.name()));
        };
        if !route.allows(*method) || prompt_route != route || !progress.options.allows(*method) {
            return violated(
                5,
                format!("verifying with {method:?} on {route:?}, options {:?}", progress.options),
            );
        }
    }

    // 6. expired is reached only from elevated.
    if matches!(after, FlowState::Expired { .. })
        && !matches!(before, FlowState::Expired { .. } | FlowState::Elevated { .. })
    {
        return violated(6, format!("expired entered from {}", before.name()));
    }
    Ok(())
}

/// Invariant 1: an event the state does not take leaves the state and the tokens exactly as they were.
///
/// # Errors
/// The violation, if the step changed anything.
pub fn check_ignored(step: Step<'_>) -> Result<(), InvariantViolation> {
    if step.before != step.after || !same_tokens(step.tokens_before, step.tokens_after) {
        return violated(
            1,
            format!("ignored {} changed {:?} to {:?}", step.event.name(), step.before, step.after),
        );
    }
    Ok(())
}
