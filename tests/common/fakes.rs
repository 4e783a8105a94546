//! Test doubles made of real parts: a slow server (a TCP proxy in front of the real one), and wallet signers
//! that misbehave the way a crashing bridge or an embedded wallet would.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use stepup::engine::{LocalWalletSigner, WalletSigner};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

/// A TCP proxy in front of `target` that holds every new connection for a delay before passing bytes on: a
/// slow server, made of the real one. The delay can be changed while it runs.
pub struct SlowProxy {
    pub addr: SocketAddr,
    delay_ms: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl SlowProxy {
    pub async fn start(target: SocketAddr, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let delay_ms = Arc::new(AtomicU64::new(u64::try_from(delay.as_millis()).unwrap()));
        let delay = delay_ms.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let wait = Duration::from_millis(delay.load(Ordering::Relaxed));
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { addr, delay_ms, task }
    }

    /// The delay for connections accepted from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(u64::try_from(delay.as_millis()).unwrap(), Ordering::Relaxed);
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A wallet signer that panics on its first signature (a crashing wallet bridge), then signs with `inner`.
pub struct PanicOnceSigner {
    pub inner: Arc<LocalWalletSigner>,
    pub panicked: Mutex<bool>,
}

#[async_trait::async_trait]
impl WalletSigner for PanicOnceSigner {
    fn address(&self) -> String {
        self.inner.address()
    }

    fn wallet_name(&self) -> String {
        self.inner.wallet_name()
    }

    async fn sign_message(&self, message: &str) -> Result<String, stepup::engine::SignerError> {
        let first = {
            let mut panicked = self.panicked.lock().await;
            !std::mem::replace(&mut *panicked, true)
        };
        if first {
            panic!("the wallet bridge crashed");
        }
        self.inner.sign_message(message).await
    }
}

/// A signer for a wallet the app embeds: it must never be asked to sign.
pub struct EmbeddedSigner(pub Arc<LocalWalletSigner>);

#[async_trait::async_trait]
impl WalletSigner for EmbeddedSigner {
    fn address(&self) -> String {
        self.0.address()
    }

    fn wallet_name(&self) -> String {
        "dynamicwaas".to_owned()
    }

    fn is_embedded(&self) -> bool {
        true
    }

    async fn sign_message(&self, _message: &str) -> Result<String, stepup::engine::SignerError> {
        panic!("an embedded wallet must never be asked to sign for step-up");
    }
}
