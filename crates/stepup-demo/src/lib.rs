//! The demo world: the reference server embedded on loopback (SQLite in memory), people seeded with real
//! credentials, and the helpers a demo needs around them (the OTP outbox, the current TOTP code, the protected
//! resource). The kiosk and game-loop examples run on it; so do the pseudo-terminal tests.
//!
//! Nothing here is a stand-in: the server is the real reference server, the TOTP device, passkey and wallet are
//! registered through the engine's own API client, and the outbox is the server's dev delivery of one-time codes
//! (it replaces an email or SMS gateway, which lives outside this repo).

mod answers;
mod error;
mod people;
mod protected;
mod server;
mod settings;
mod totp;

pub use answers::AnswerCounter;
pub use error::DemoError;
pub use people::{MfaPerson, ReauthPerson, Session, TotpDevice};
pub use protected::{ProtectedCall, call_protected};
pub use server::{DEMO_ENVIRONMENT, DEMO_ORIGIN, DemoServer, link_wallet_request};
pub use settings::step_up_summary;
pub use totp::{totp_code, unix_now};
