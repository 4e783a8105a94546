//! The server's services: policy, verification and issuance, free of HTTP (docs/design.md §13). A service
//! answers with a [`ServiceError`], which becomes the HTTP answer in one place (`From<ServiceError> for
//! ApiError`); routes do HTTP in and out.
//!
//! Moving in step by step (issue 15, item 4): token issuance and contact checks are here; the admin and
//! operator operations, the verification checks of `verify/` and the credential offer follow.

pub mod admin;
pub mod contact;
pub mod issuance;
pub(crate) mod notify;
pub mod operator;
pub mod views;

use std::sync::Arc;

use stepup_proto::ErrorCode;

use crate::error::ApiError;
use crate::state::{AppState, Environment};
use crate::store::{StoreError, UserRow};

/// Why a service refused a request, or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// Requested scopes that are empty where some are needed, or not this server's.
    #[error("requested scopes must be known token scopes")]
    InvalidScopes,
    /// Input that cannot be right (an email address, a phone number, a wallet); the message says which.
    #[error("{0}")]
    BadInput(String),
    /// No environment has this id.
    #[error("unknown environment")]
    UnknownEnvironment,
    /// The environment has no user with this id.
    #[error("unknown user")]
    UnknownUser,
    /// The outbox was asked for while it is off (it is a development channel).
    #[error("the outbox is off")]
    OutboxOff,
    /// The storage failed.
    #[error("storage failed")]
    Storage(#[from] StoreError),
    /// Randomness or signing failed.
    #[error("{what} failed")]
    Internal {
        /// What failed.
        what: &'static str,
    },
}

/// The one place a service's answer becomes an HTTP answer.
impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::InvalidScopes => ApiError::unprocessable(
                ErrorCode::InvalidScopes,
                "Requested scopes must be known token scopes",
            ),
            ServiceError::BadInput(message) => ApiError::bad_request(message),
            ServiceError::UnknownEnvironment => ApiError::not_found("Unknown environment"),
            ServiceError::UnknownUser => ApiError::not_found("Unknown user"),
            ServiceError::OutboxOff => ApiError::not_found(
                "The outbox is off: it is a development channel (`--dev` or delivery.outbox)",
            ),
            ServiceError::Storage(error) => ApiError::from(error),
            ServiceError::Internal { .. } => ApiError::internal(),
        }
    }
}

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
