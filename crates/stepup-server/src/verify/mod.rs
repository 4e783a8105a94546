//! The checks behind the routes, free of HTTP: each takes plain values and answers with an `ApiError` that
//! carries the protocol's code.

pub mod external_auth;
pub mod hash_work;
pub mod mfa_lock;
pub mod otp;
pub mod rate;
pub mod recovery;
pub mod totp;
pub mod wallet;
