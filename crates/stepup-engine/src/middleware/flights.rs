//! `StepUpFlights`: one step-up at a time per scope set, across every middleware of one engine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use stepup_core::ScopeSet;

/// The turn locks of challenge-driven step-ups. It lives in the engine, not in a middleware: an app may build
/// several clients (or call `StepUpAuth::http_client` per request), and they must still share one flight.
#[derive(Debug, Default)]
pub(crate) struct StepUpFlights {
    turns: Mutex<HashMap<ScopeSet, Arc<tokio::sync::Mutex<()>>>>,
}

impl StepUpFlights {
    /// The lock whose holder may start a step-up for `scopes`.
    pub(crate) fn turn(&self, scopes: &ScopeSet) -> Arc<tokio::sync::Mutex<()>> {
        // Held only to clone an Arc; a panic elsewhere cannot leave the map half-changed.
        let mut turns = self.turns.lock().unwrap_or_else(PoisonError::into_inner);
        turns.entry(scopes.clone()).or_default().clone()
    }
}
