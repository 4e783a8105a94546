//! `StepUpFlights`: challenge-driven step-ups one at a time, and what each one ended with.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use stepup_core::{ScopeSet, StepUpError};
use tokio::sync::{Mutex, MutexGuard};

/// The turn of challenge-driven step-ups. It lives in the engine, not in a middleware: an app may build several
/// clients (or call `StepUpAuth::http_client` per request), and they must share one turn. One turn for every
/// scope set, because the coordinator runs one prompt at a time: a second set would only meet `Busy`.
#[derive(Debug, Default)]
pub(crate) struct StepUpFlights {
    /// How many flows ended; read without the turn, to know later which flows ended while a request waited.
    finished: AtomicU64,
    turn: Mutex<FlightLog>,
}

/// What the flows ended with, kept under the turn.
#[derive(Debug, Default)]
pub(crate) struct FlightLog {
    /// Per scope set, the last flow's failure and its number (cleared by a success).
    failures: HashMap<ScopeSet, (u64, StepUpError)>,
}

impl StepUpFlights {
    /// The number of flows that have ended so far.
    pub(crate) fn finished(&self) -> u64 {
        self.finished.load(Ordering::Acquire)
    }

    /// Waits for the turn.
    pub(crate) async fn turn(&self) -> MutexGuard<'_, FlightLog> {
        self.turn.lock().await
    }

    /// Records how a flow for `scopes` ended (the caller holds the turn, as `log`).
    pub(crate) fn record(&self, log: &mut FlightLog, scopes: &ScopeSet, outcome: Result<(), &StepUpError>) {
        let number = self.finished.fetch_add(1, Ordering::AcqRel) + 1;
        match outcome {
            Ok(()) => {
                log.failures.remove(scopes);
            }
            Err(error) => {
                log.failures.insert(scopes.clone(), (number, error.clone()));
            }
        }
    }
}

impl FlightLog {
    /// The failure of a flow for `scopes` that ended after `seen` flows had ended: a request that waited through
    /// it shares its outcome (a cancel answers every request waiting on it, not only the first).
    pub(crate) fn failed_since(&self, scopes: &ScopeSet, seen: u64) -> Option<StepUpError> {
        let (number, error) = self.failures.get(scopes)?;
        (*number > seen).then(|| error.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use stepup_core::Scope;

    use super::*;

    #[tokio::test]
    async fn waiters_share_a_failure_that_ended_while_they_waited_and_only_that() {
        let flights = StepUpFlights::default();
        let scopes = ScopeSet::one(Scope::WalletExport);
        let other = ScopeSet::one(Scope::CredentialLink);
        let before = flights.finished();
        {
            let mut log = flights.turn().await;
            flights.record(&mut log, &scopes, Err(&StepUpError::Cancelled));
        }
        let log = flights.turn().await;
        assert_eq!(log.failed_since(&scopes, before), Some(StepUpError::Cancelled));
        assert_eq!(
            log.failed_since(&scopes, flights.finished()),
            None,
            "a request that came later starts anew"
        );
        assert_eq!(log.failed_since(&other, before), None, "another scope set is not affected");
        drop(log);
        let mut log = flights.turn().await;
        flights.record(&mut log, &scopes, Ok(()));
        assert_eq!(log.failed_since(&scopes, before), None, "a success clears the failure");
    }
}
