//! `StepUpFlights`: challenge-driven step-ups one at a time, what each one ended with, and the probes that keep
//! a storm of tokenless requests from going out to be refused.
//!
//! A probe: when a tagged request has no token, it goes out first and alone for its tag; other tokenless requests
//! for that tag wait for it. If it meets a challenge, they wait on through its step-up and then go out with the
//! token it left (a reusable one), or fail with its failure (a cancel answers them all at once, as their own
//! challenges would have). If it succeeds without one, the tag is remembered as unchallenged and its requests go
//! out freely from then on (until one meets a challenge again); any other answer just releases the waiters. So 1,000 concurrent requests that would all have met one
//! challenge cost one refusal and one flow, not 1,000 refusals (docs/benchmarks.md, the challenge storm).

use std::collections::{HashMap, HashSet};
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};

use stepup_core::{Scope, ScopeSet, StepUpError};
use tokio::sync::{Mutex, MutexGuard, watch};

/// The turn of challenge-driven step-ups. It lives in the engine, not in a middleware: an app may build several
/// clients (or call `StepUpAuth::http_client` per request), and they must share one turn. One turn for every
/// scope set, because the coordinator runs one prompt at a time: a second set would only meet `Busy`.
#[derive(Debug, Default)]
pub(crate) struct StepUpFlights {
    /// How many flows ended; read without the turn, to know later which flows ended while a request waited.
    finished: AtomicU64,
    turn: Mutex<FlightLog>,
    /// The probes out now, and the tags known to go through without a challenge. A plain mutex: it is held for a
    /// map lookup, never across an await.
    probes: std::sync::Mutex<Probes>,
}

/// How many tags known to go through without a challenge are remembered at most.
const MAX_UNCHALLENGED_TAGS: usize = 256;

/// See the module docs.
#[derive(Debug, Default)]
struct Probes {
    /// Per tag, what the tokenless requests that wait learn from the one that went out.
    running: HashMap<Scope, watch::Receiver<ProbeOutcome>>,
    /// Tags whose last probe met no challenge: their tokenless requests go out at once.
    unchallenged: HashSet<Scope>,
}

/// What a probe tells the requests that wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProbeOutcome {
    /// Still out, or its step-up still runs.
    Running,
    /// Done: a reusable token it earned is in the cell; without one, go out as usual.
    Settled,
    /// Its step-up for `scopes` failed with `error`: so do the requests that waited for it.
    Failed {
        /// The scopes of the failed step-up.
        scopes: ScopeSet,
        /// Why it failed.
        error: StepUpError,
    },
}

/// A tokenless request's place among the probes for its tag.
#[derive(Debug)]
pub(crate) enum ProbeTurn<'a> {
    /// Go out first; tell the others how it went (or they are told `Settled` when this is dropped).
    Lead(ProbeLead<'a>),
    /// Wait for the request that went out first.
    Wait(watch::Receiver<ProbeOutcome>),
    /// The tag goes through without a challenge: go out at once.
    Free,
}

/// The request that went out first for its tag. Dropping it unsettled (the caller gave up on the request)
/// settles it, so no waiter waits forever.
#[derive(Debug)]
pub(crate) struct ProbeLead<'a> {
    flights: &'a StepUpFlights,
    tag: Scope,
    outcome: watch::Sender<ProbeOutcome>,
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

    /// The place of a request for `tag` that has no token: see [`ProbeTurn`].
    pub(crate) fn probe(&self, tag: &Scope) -> ProbeTurn<'_> {
        let mut probes = self.probes.lock().unwrap_or_else(PoisonError::into_inner);
        if probes.unchallenged.contains(tag) {
            return ProbeTurn::Free;
        }
        if let Some(running) = probes.running.get(tag) {
            return ProbeTurn::Wait(running.clone());
        }
        let (outcome, waiters) = watch::channel(ProbeOutcome::Running);
        probes.running.insert(tag.clone(), waiters);
        ProbeTurn::Lead(ProbeLead { flights: self, tag: tag.clone(), outcome })
    }

    /// Records that a request tagged `tag` met a challenge: its tokenless requests wait for a probe again.
    pub(crate) fn challenged(&self, tag: &Scope) {
        self.probes.lock().unwrap_or_else(PoisonError::into_inner).unchallenged.remove(tag);
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

impl ProbeLead<'_> {
    /// The probe met no challenge: the waiters go out, and so will the tag's tokenless requests from now on.
    pub(crate) fn unchallenged(self) {
        let mut probes = self.flights.probes.lock().unwrap_or_else(PoisonError::into_inner);
        // Tags are the app's (a scope may be any string): bounded, forgetting is only a probe more.
        if probes.unchallenged.len() >= MAX_UNCHALLENGED_TAGS {
            probes.unchallenged.clear();
        }
        probes.unchallenged.insert(self.tag.clone());
        drop(probes);
        self.settle(ProbeOutcome::Settled);
    }

    /// The probe's step-up ended: `Settled` (its token, if reusable, is in the cell) or `Failed`.
    pub(crate) fn settle(mut self, outcome: ProbeOutcome) {
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: ProbeOutcome) {
        {
            let mut probes = self.flights.probes.lock().unwrap_or_else(PoisonError::into_inner);
            // Only this probe's own entry: a later probe may hold the tag by now.
            if probes
                .running
                .get(&self.tag)
                .is_some_and(|running| running.same_channel(&self.outcome.subscribe()))
            {
                probes.running.remove(&self.tag);
            }
        }
        // Sent after the entry is gone, so a waiter that wakes and finds no token starts no probe on this one.
        self.outcome.send_replace(outcome);
    }
}

impl Drop for ProbeLead<'_> {
    fn drop(&mut self) {
        if *self.outcome.borrow() == ProbeOutcome::Running {
            self.finish(ProbeOutcome::Settled);
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
