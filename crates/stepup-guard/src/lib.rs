//! # stepup-guard
//!
//! Checks elevated access tokens where the app's data lives: in the app's own backend, which the engine's
//! middleware sends them to (`x-dyn-elevated-access-token`). A [`Guard`] verifies a token against the issuer's
//! keys (a JWKS URL fetched with a timeout and cached, or static keys), each key pinned to its algorithm; checks
//! `iss`, `aud`, `exp` (with a leeway), `nbf`/`iat`, the token's use, the scope, and the user (`sub`) and
//! session (`sid`) when the backend knows them; and spends single-use tokens exactly once across replicas, in
//! a [`SingleUseStore`] — Redis (feature `redis`), PostgreSQL (feature `postgres`), or in process for a single
//! instance. Anything else answers 403 `elevated_access_token_required` with the RFC 9470 `WWW-Authenticate`
//! challenge, which the engine's middleware steps up on and retries; when keys or the store are out of reach
//! the answer is 503 (fail closed: nothing is let through).
//!
//! It reads the tokens of the stepup reference server and Dynamic's (space-delimited `scope`, camelCase
//! `singleUse`); [`GuardBuilder::reference_server`] and [`GuardBuilder::dynamic`] set either up.
//!
//! ```no_run
//! # #[cfg(all(feature = "axum", feature = "redis"))]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{Router, routing::post};
//! use stepup_guard::{Elevated, Guard, RedisStore};
//! use stepup_proto::TokenScope;
//!
//! let guard = Guard::builder()
//!     .issuer("stepup-reference-server")
//!     .audience("my-environment")
//!     .jwks_url("https://auth.example.com/sdk/my-environment/.well-known/jwks")
//!     .single_use_store(RedisStore::open("redis://127.0.0.1:6379")?)
//!     .build()?;
//!
//! async fn export(Elevated(token): Elevated) -> String {
//!     format!("exported for {}", token.subject)
//! }
//! let app: Router = Router::new()
//!     .route("/wallet/export", post(export))
//!     .route_layer(guard.require(TokenScope::WalletExport));
//! # Ok(()) }
//! ```
//!
//! (Features `axum` and `redis` for this one.)
//!
//! The reference server's own protected calls run through this crate too, with its database as the store
//! (docs/architecture.md).

mod challenge;
mod claims;
mod error;
mod guard;
pub mod http;
pub mod keys;
mod requirement;
pub mod single_use;

pub use challenge::{ChallengeOptions, Rejection};
pub use claims::{MAX_ID_LEN, VerifiedToken};
pub use error::{BuildError, GuardError, KeyError, Refusal, StoreError, Unavailable};
pub use guard::{
    DEFAULT_CLOCK_SKEW, DEFAULT_LEEWAY, Guard, GuardBuilder, MAX_TOKEN_LEN, REFERENCE_SERVER_ISSUER, TokenUse,
};
pub use http::{Elevated, RequireElevatedLayer, RequireElevatedService, elevated_token};
#[cfg(feature = "axum")]
pub use http::{GuardRejection, RequireElevated, RequiredScope};
pub use keys::{Algorithm, Key, KeySource, StaticKeys};
pub use requirement::{Requirement, SessionBinding};
#[cfg(feature = "postgres")]
pub use single_use::PostgresStore;
pub use single_use::{InProcessStore, SingleUseStore, SpentToken};
#[cfg(feature = "redis")]
pub use single_use::{RedisOptions, RedisStore};
