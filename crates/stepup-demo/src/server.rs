//! `DemoServer`: the reference server embedded on loopback, with the operations of its admin API called in
//! process (create a person, sign them in, link a wallet, read the outbox).

use std::sync::{Mutex, PoisonError};

use stepup_engine::{StepUpAuth, StepUpAuthBuilder, WalletSigner};
use stepup_proto::SdkUser;
use stepup_server::routes::{CreateUserRequest, LinkWalletRequest, OutboxMessage};
use stepup_server::services::admin::{create_session, create_user, link_wallet, outbox};
use stepup_server::{Server, ServerConfig};

use crate::DemoError;
use crate::people::Session;

/// The demo server's environment id.
pub const DEMO_ENVIRONMENT: &str = "demo";

/// The origin of the demo environment: the WebAuthn relying party's origin (RP id `localhost`) and the URI in
/// wallet messages. Software passkeys for the demo are made for this origin.
pub const DEMO_ORIGIN: &str = "http://localhost";

/// The reference server on `127.0.0.1` (a free port), SQLite in memory, one environment ([`DEMO_ENVIRONMENT`]).
#[derive(Debug)]
pub struct DemoServer {
    server: Server,
    /// Verification ids whose codes [`DemoServer::latest_code`] handed out, oldest first.
    handed_out: Mutex<Vec<String>>,
}

impl DemoServer {
    /// Starts the server.
    ///
    /// # Errors
    /// [`DemoError::Start`] when it cannot bind loopback or open its database.
    pub async fn start() -> Result<Self, DemoError> {
        Self::start_with(|_| {}).await
    }

    /// Starts the server with `configure` applied to its configuration first (a benchmark raises a limit).
    ///
    /// # Errors
    /// As [`DemoServer::start`].
    pub async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> Result<Self, DemoError> {
        let mut config = ServerConfig::dev(DEMO_ENVIRONMENT);
        config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        configure(&mut config);
        // The engine (and the app) build their own reqwest clients; they need a process-wide TLS provider even
        // for plain HTTP on loopback (see `install_default_crypto_provider`).
        stepup_engine::install_default_crypto_provider();
        Ok(Self { server: Server::start(config).await?, handed_out: Mutex::default() })
    }

    /// The server's base URL (`http://127.0.0.1:<port>`).
    #[must_use]
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The running server.
    #[must_use]
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// A new person with this email (and phone, digits of a US number), signed in.
    ///
    /// # Errors
    /// [`DemoError::Server`] for an address or number the server refuses.
    pub async fn sign_up(&self, email: &str, phone: Option<&str>) -> Result<Session, DemoError> {
        let request = CreateUserRequest {
            email: Some(email.to_owned()),
            phone_number: phone.map(str::to_owned),
            ..CreateUserRequest::default()
        };
        let state = self.server.state();
        let user: SdkUser = create_user(state, DEMO_ENVIRONMENT, request)
            .await
            .map_err(|e| DemoError::server("create the user", e))?;
        let session = create_session(state, DEMO_ENVIRONMENT, &user.id)
            .await
            .map_err(|e| DemoError::server("sign the user in", e))?;
        Ok(Session { user, jwt: session.jwt, email: email.to_owned() })
    }

    /// Links `signer`'s address to the person as an external (or embedded) wallet.
    ///
    /// # Errors
    /// [`DemoError::Server`] when the server refuses the wallet.
    pub async fn link_wallet(
        &self,
        session: &Session,
        signer: &dyn WalletSigner,
        embedded: bool,
    ) -> Result<(), DemoError> {
        let request = link_wallet_request(signer, embedded);
        link_wallet(self.server.state(), DEMO_ENVIRONMENT, &session.user.id, request)
            .await
            .map_err(|e| DemoError::server("link the wallet", e))?;
        Ok(())
    }

    /// The messages sent to `to` (an email address or `+<country code><number>`), newest first.
    ///
    /// # Errors
    /// [`DemoError::Server`] when the outbox cannot be read.
    pub async fn outbox(&self, to: &str) -> Result<Vec<OutboxMessage>, DemoError> {
        outbox(self.server.state(), DEMO_ENVIRONMENT, Some(to))
            .await
            .map_err(|e| DemoError::server("read the outbox", e))
    }

    /// The code of the newest message to `to`, as the person reading their inbox would pick it.
    ///
    /// The outbox orders messages by the second they were sent, so two codes sent within one second tie. The
    /// newest message not handed out before wins; when every message was handed out, the one handed out last
    /// (a prompt asking again for the same code after a wrong try).
    ///
    /// # Errors
    /// [`DemoError::NoCode`] when nothing was sent there.
    pub async fn latest_code(&self, to: &str) -> Result<String, DemoError> {
        let messages = self.outbox(to).await?;
        let mut handed_out = self.handed_out.lock().unwrap_or_else(PoisonError::into_inner);
        let unseen = messages.iter().find(|m| !handed_out.contains(&m.verification_uuid));
        let chosen = match unseen {
            Some(message) => {
                handed_out.push(message.verification_uuid.clone());
                Some(message)
            }
            None => {
                handed_out.iter().rev().find_map(|id| messages.iter().find(|m| &m.verification_uuid == id))
            }
        };
        chosen.map(|message| message.code.clone()).ok_or_else(|| DemoError::NoCode { to: to.to_owned() })
    }

    /// An engine builder for the person's session against this server.
    pub fn engine_for(&self, session: &Session) -> StepUpAuthBuilder {
        StepUpAuth::builder(self.base_url(), DEMO_ENVIRONMENT).session(session.jwt.clone())
    }

    /// Stops the server.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// The admin API's request that links `signer`'s wallet (as an embedded wallet when `embedded`).
#[must_use]
pub fn link_wallet_request(signer: &dyn WalletSigner, embedded: bool) -> LinkWalletRequest {
    LinkWalletRequest {
        address: signer.address(),
        chain: signer.chain(),
        wallet_name: signer.wallet_name(),
        wallet_provider: signer.wallet_provider(),
        embedded,
    }
}
