//! `OnDemand`: the coordinator actor, started the first time the engine needs it.
//!
//! An idle engine — built, holding a session, never asked anything — is most of what a process with many engines
//! holds (a game server with one per player, a gateway with one per user). The coordinator actor was most of an
//! idle engine's memory: about 11 of its 12.8 KiB (`ractor`'s mailboxes and task, and the coordinator's state;
//! docs/benchmarks.md, engines in one process). So it starts on first use, as the verifiers already did, and an
//! idle engine is its API client, token cell and state channel.
//!
//! `ractor`'s `spawn_instant` starts it without waiting for `pre_start` (which cannot fail for the coordinator):
//! messages sent at once wait in its mailbox. The runtime the engine was built in is entered for the spawn, so a
//! first use from outside that runtime (a plain thread holding the engine) works too.

use std::sync::{Mutex, OnceLock, PoisonError};

use ractor::{ActorRef, ActorRuntime};
use stepup_core::StepUpError;

use super::{Coordinator, CoordinatorArgs, CoordinatorMsg};

/// The coordinator, or what it will start with. See the module docs.
pub(crate) struct OnDemand {
    started: OnceLock<Option<ActorRef<CoordinatorMsg>>>,
    args: Mutex<Option<CoordinatorArgs>>,
    runtime: tokio::runtime::Handle,
}

impl OnDemand {
    /// A coordinator that starts with `args` on `runtime` when first needed.
    pub(crate) fn new(args: CoordinatorArgs, runtime: tokio::runtime::Handle) -> Self {
        Self { started: OnceLock::new(), args: Mutex::new(Some(args)), runtime }
    }

    /// The coordinator, started now if it was not.
    ///
    /// # Errors
    /// [`StepUpError::EngineStopped`] if it could not start (never seen: `spawn_instant` fails only for a name
    /// already taken, and the coordinator has none).
    pub(crate) fn get(&self) -> Result<&ActorRef<CoordinatorMsg>, StepUpError> {
        self.started
            .get_or_init(|| {
                let args = self.args.lock().unwrap_or_else(PoisonError::into_inner).take()?;
                let _entered = self.runtime.enter();
                match ActorRuntime::spawn_instant(None, Coordinator, args) {
                    Ok((coordinator, _starting)) => Some(coordinator),
                    Err(error) => {
                        tracing::error!(%error, "the engine's coordinator could not start");
                        None
                    }
                }
            })
            .as_ref()
            .ok_or(StepUpError::EngineStopped)
    }

    /// The coordinator if it has started (telling it that a token was spent needs no coordinator that never ran
    /// a flow: it holds no token).
    pub(crate) fn running(&self) -> Option<&ActorRef<CoordinatorMsg>> {
        self.started.get().and_then(Option::as_ref)
    }
}

impl Drop for OnDemand {
    fn drop(&mut self) {
        // The coordinator stops its verifiers (they are linked) and fails any waiting caller.
        if let Some(coordinator) = self.running() {
            coordinator.stop(None);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::future::Future as _;
    use std::task::{Context, Poll, Waker};

    use crate::{BuildError, StepUpAuth};

    fn builder() -> crate::StepUpAuthBuilder {
        // No server is needed: nothing here goes out.
        StepUpAuth::builder("http://127.0.0.1:9", "dev")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_engine_runs_no_actor_until_it_is_asked() {
        let engine = builder().build().await.unwrap();
        assert!(!engine.coordinator_started());
        assert!(!engine.state().is_in_flow());
        engine.cancel().unwrap();
        assert!(!engine.coordinator_started(), "cancelling no flow starts nothing");
        let snapshot = engine.snapshot().await.unwrap();
        assert!(!snapshot.state.is_in_flow());
        assert!(engine.coordinator_started(), "the first question started it");
    }

    /// The first use may come from a thread outside the runtime the engine was built in.
    #[test]
    fn the_first_use_may_come_from_outside_the_runtime() {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let engine = runtime.block_on(builder().build()).unwrap();
        let handle = std::thread::spawn(move || engine.handle().map(|_| ())).join().unwrap();
        assert_eq!(handle, Ok(()));
    }

    #[test]
    fn building_outside_a_runtime_is_a_typed_error() {
        let mut build = std::pin::pin!(builder().build());
        match build.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Err(BuildError::Spawn(_))) => {}
            other => panic!("{other:?}"),
        }
    }
}
