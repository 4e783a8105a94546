//! The server's services: policy, verification and issuance, free of HTTP (docs/design.md §13). A service
//! answers with a [`ServiceError`], which becomes the HTTP answer in one place (`From<ServiceError> for
//! ApiError`, in `error.rs` of this folder); routes and the methods' endpoints do HTTP in and out.
//!
//! What is here: the step-up policy every method shares (`step_up`, `offer`, `lockout`, `limits`), tokens
//! (`issuance`), the server's secrets (`secrets`), MFA management (`mfa`, `passkeys`, `recovery_codes`), the admin
//! and operator operations, contact checks, security notices and the wire views. Each verification method's own
//! check is in its module under `methods/`.

pub mod admin;
pub mod contact;
mod error;
pub mod hash_work;
pub mod health;
pub mod issuance;
pub mod limits;
pub mod lockout;
pub mod mfa;
pub(crate) mod notify;
pub mod offer;
pub mod operator;
pub mod passkeys;
pub mod recovery_codes;
pub mod secrets;
pub mod settings;
pub mod step_up;
pub mod users;
pub mod views;

use std::sync::Arc;

pub use error::{GuardRefusal, Limited, Missing, Refusal, ServiceError};

use crate::environment::Environment;
use crate::state::AppState;
use crate::store::UserRow;

/// The environment `id` names.
///
/// # Errors
/// [`ServiceError::UnknownEnvironment`].
pub fn environment(state: &AppState, id: &str) -> Result<Arc<Environment>, ServiceError> {
    state.environment(id).cloned().ok_or(ServiceError::UnknownEnvironment)
}

/// A user of `env`.
///
/// # Errors
/// [`ServiceError::UnknownUser`], or [`ServiceError::Storage`].
pub async fn known_user(state: &AppState, env: &Environment, user_id: &str) -> Result<UserRow, ServiceError> {
    state.store().user(env.id(), user_id).await?.ok_or(ServiceError::UnknownUser)
}
