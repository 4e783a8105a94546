//! `VerifierRegistry`: the running verifiers, keyed by [`VerifierKind`]. A verifier starts the first time a flow
//! needs it (linked to the coordinator, its supervisor) and is forgotten when it dies, so the next flow starts a
//! fresh one; an engine that only ever uses TOTP runs one verifier, not six.

use std::collections::HashMap;

use ractor::{Actor, ActorCell, ActorRef, SpawnErr};

use super::actor::{VerifierActor, VerifierMsg};
use super::{Verifier, VerifierConfig, VerifierKind, VerifyJob};

/// The coordinator's verifiers.
pub(crate) struct VerifierRegistry {
    config: VerifierConfig,
    supervisor: ActorCell,
    running: HashMap<VerifierKind, ActorCell>,
}

impl std::fmt::Debug for VerifierRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifierRegistry").field("running", &self.running.keys()).finish_non_exhaustive()
    }
}

impl VerifierRegistry {
    /// A registry that starts verifiers with `config`, linked to `supervisor`.
    pub(crate) fn new(config: VerifierConfig, supervisor: ActorCell) -> Self {
        Self { config, supervisor, running: HashMap::new() }
    }

    /// The running verifier `V`, started if it is not running.
    ///
    /// # Errors
    /// [`SpawnErr`] when the actor cannot start.
    pub(crate) async fn get<V: Verifier>(&mut self) -> Result<ActorRef<VerifierMsg<V>>, SpawnErr> {
        if let Some(cell) = self.running.get(&V::KIND) {
            // The cell was spawned as `VerifierActor<V>` under `V::KIND`, so it takes `VerifierMsg<V>`.
            return Ok(ActorRef::from(cell.clone()));
        }
        let (actor, _join) = Actor::spawn_linked(
            None,
            VerifierActor::<V>::default(),
            self.config.clone(),
            self.supervisor.clone(),
        )
        .await?;
        self.running.insert(V::KIND, actor.get_cell());
        Ok(actor)
    }

    /// Hands `job` to verifier `V`, starting it if needed. Returns whether it took the job.
    pub(crate) async fn verify<V: Verifier>(&mut self, job: VerifyJob<V::Request>) -> bool {
        match self.get::<V>().await {
            Ok(verifier) => verifier.send_message(VerifierMsg::Verify(job)).is_ok(),
            Err(error) => {
                tracing::warn!(verifier = V::KIND.name(), %error, "the verifier could not start");
                false
            }
        }
    }

    /// Hands `command` to verifier `V`, starting it if needed; gives it back if the verifier cannot take it.
    pub(crate) async fn command<V: Verifier>(&mut self, command: V::Command) -> Result<(), V::Command> {
        let verifier = match self.get::<V>().await {
            Ok(verifier) => verifier,
            Err(error) => {
                tracing::warn!(verifier = V::KIND.name(), %error, "the verifier could not start");
                return Err(command);
            }
        };
        match verifier.send_message(VerifierMsg::Command(command)) {
            Ok(()) => Ok(()),
            Err(ractor::MessagingErr::SendErr(VerifierMsg::Command(command))) => Err(command),
            // The message comes back as it went; any other failure has no command to give back.
            Err(_) => Ok(()),
        }
    }

    /// Forgets the verifier that `cell` is, if it is one (it died); returns its kind.
    pub(crate) fn forget(&mut self, cell: &ActorCell) -> Option<VerifierKind> {
        let id = cell.get_id();
        let kind = self.running.iter().find(|(_, running)| running.get_id() == id).map(|(kind, _)| *kind)?;
        self.running.remove(&kind);
        Some(kind)
    }
}
