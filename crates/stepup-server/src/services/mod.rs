//! The server's services: policy, verification and issuance, free of HTTP (docs/design.md §13). A service
//! answers with a [`ServiceError`], which becomes the HTTP answer in one place (`From<ServiceError> for
//! ApiError`); routes do HTTP in and out.
//!
//! Moving in step by step (issue 15, item 4): token issuance and contact checks are here; the admin and
//! operator operations, the verification checks of `verify/` and the credential offer follow.

pub mod contact;
pub mod issuance;

use stepup_proto::ErrorCode;

use crate::error::ApiError;
use crate::store::StoreError;

/// Why a service refused a request, or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// Requested scopes that are empty where some are needed, or not this server's.
    #[error("requested scopes must be known token scopes")]
    InvalidScopes,
    /// Input that cannot be right (an email address, a phone number); the message says which.
    #[error("{0}")]
    BadInput(&'static str),
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
            ServiceError::Storage(error) => ApiError::from(error),
            ServiceError::Internal { .. } => ApiError::internal(),
        }
    }
}
