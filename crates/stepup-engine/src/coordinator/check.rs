//! Step-up checks: the network call runs beside the actor, and its answer comes back as a
//! `RequirementChecked` report; the caller is answered once the machine has taken it in.

use ractor::RpcReplyPort;
use stepup_core::{Scope, StepUpError};

use super::{CoordinatorMsg, CoordinatorState};
use crate::StepUpRequirement;

impl CoordinatorState {
    pub(super) fn check(&self, scope: Scope, reply: RpcReplyPort<Result<StepUpRequirement, StepUpError>>) {
        let (api, tokens, myself) =
            (self.args.verifiers.api.clone(), self.args.tokens.clone(), self.myself.clone());
        tokio::spawn(async move {
            let answer = match crate::facade::fetch_requirement(&api, &tokens, &scope).await {
                // Asked the server: the machine takes the answer in before the caller hears it.
                Ok((requirement, true)) => {
                    let report = |taken| CoordinatorMsg::RequirementChecked {
                        scope,
                        required: requirement.required,
                        options: requirement.options.clone(),
                        reply: taken,
                    };
                    match myself.call(report, None).await {
                        Ok(ractor::rpc::CallResult::Success(())) => Ok(requirement),
                        _ => Err(StepUpError::EngineStopped),
                    }
                }
                // A stored token answered: nothing for the machine to learn.
                Ok((requirement, false)) => Ok(requirement),
                Err(error) => Err(error),
            };
            let _ = reply.send(answer);
        });
    }
}
