//! Security notices: the user is emailed when an MFA method is added or removed, recovery codes are
//! regenerated, or an operator resets their MFA. Sent in the background (the call that caused it does not wait
//! for the relay); a failure is logged, never answered.

use crate::delivery::SecurityEvent;
use crate::environment::Environment;
use crate::state::AppState;

/// Emails the user (at their email address, if they have one) about `event`, in the background.
pub(crate) async fn security_event(
    state: &AppState,
    env: &std::sync::Arc<Environment>,
    user_id: &str,
    event: SecurityEvent,
) {
    if let Some(address) = address_of(state, user_id).await {
        let (state, env) = (state.clone(), env.clone());
        tokio::spawn(async move { send(&state, &env, &address, event).await });
    }
}

/// [`security_event`], waiting for the relay (operator commands, where the process may end right after).
pub(crate) async fn security_event_now(
    state: &AppState,
    env: &Environment,
    user_id: &str,
    event: SecurityEvent,
) {
    if let Some(address) = address_of(state, user_id).await {
        send(state, env, &address, event).await;
    }
}

async fn send(state: &AppState, env: &Environment, address: &str, event: SecurityEvent) {
    match state.delivery().notify(&env.config, address, event, state.now()).await {
        Ok(()) => tracing::info!(?event, "security notice sent"),
        Err(error) => tracing::warn!(%error, ?event, "security notice not sent"),
    }
}

async fn address_of(state: &AppState, user_id: &str) -> Option<String> {
    if !state.delivery().has_smtp() {
        return None;
    }
    match state.store().credentials(user_id).await {
        Ok(credentials) => credentials
            .into_iter()
            .find_map(|c| (c.format == stepup_proto::CredentialFormat::Email).then_some(c.email).flatten()),
        Err(error) => {
            tracing::warn!(%error, "security notice: cannot read the user's address");
            None
        }
    }
}
