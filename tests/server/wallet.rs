//! External-wallet step-up over real HTTP, with a local secp256k1 key signing EIP-191 `personal_sign` messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::common;

use std::str::FromStr as _;

use alloy_primitives::{Address, Signature, eip191_hash_message};
use common::{Backend, ENV, TestServer, TestUser, assert_error};
use k256::ecdsa::SigningKey;
use reqwest::StatusCode;
use serde_json::{Value, json};
use stepup_proto::{VerifyResponse, WalletMessage};

/// A local wallet: a secp256k1 key.
struct LocalWallet(SigningKey);

impl LocalWallet {
    fn new(seed: u8) -> Self {
        Self(SigningKey::from_bytes(&[seed; 32].into()).unwrap())
    }
    fn address(&self) -> Address {
        Address::from_private_key(&self.0)
    }
    /// EIP-191 `personal_sign`: 65 bytes, v = 27/28, hex.
    fn sign(&self, message: &str) -> String {
        let (signature, recovery) =
            self.0.sign_prehash_recoverable(eip191_hash_message(message).as_slice()).unwrap();
        let signature = Signature::from((signature, recovery));
        format!("0x{}", stepup_server::random::hex(&signature.as_bytes()))
    }
}

async fn nonce(server: &TestServer) -> String {
    let body: Value = server.get("/nonces", None).await.json().await.unwrap();
    body["nonces"][0].as_str().unwrap().to_owned()
}

fn message(server: &TestServer, wallet: &LocalWallet, nonce: &str) -> WalletMessage {
    WalletMessage {
        domain: "localhost".into(),
        address: wallet.address().to_checksum(None),
        statement: WalletMessage::statement_for("Stepup Demo"),
        uri: "http://localhost/".into(),
        version: "1".into(),
        chain_id: "1".into(),
        nonce: nonce.into(),
        issued_at: server.now().to_rfc3339(),
        request_id: ENV.into(),
    }
}

async fn link(server: &TestServer, user_id: &str, wallet: &LocalWallet, embedded: bool) {
    let provider = if embedded { "embeddedWallet" } else { "browserExtension" };
    let body = json!({"address": wallet.address().to_checksum(None), "chain": "EVM", "walletName": "metamask",
                      "walletProvider": provider, "embedded": embedded});
    assert_eq!(server.admin_post(&format!("/users/{user_id}/wallets"), &body).await.status(), StatusCode::OK);
}

async fn verify(
    server: &TestServer,
    jwt: &str,
    wallet: &LocalWallet,
    text: &str,
    signature: &str,
) -> reqwest::Response {
    server
        .post(
            "/wallets/verify",
            Some(jwt),
            &json!({"signedMessage": signature, "messageToSign": text, "publicWalletAddress": wallet.address().to_checksum(None),
                    "chain": "EVM", "walletName": "metamask", "walletProvider": "browserExtension",
                    "requestedScopes": ["wallet:sign"]}),
        )
        .await
}

/// The high-S twin of a valid signature (s → n - s, v flipped) recovers to the same address and was accepted;
/// EIP-2 allows only low-S signatures, and so does the server now.
async fn a_high_s_signature_is_refused(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { user, jwt, .. } = server.user().await;
    let wallet = LocalWallet::new(7);
    link(&server, &user.id, &wallet, false).await;
    let text = message(&server, &wallet, &nonce(&server).await).to_string();
    let low = Signature::from_str(&wallet.sign(&text)).unwrap();
    let order = alloy_primitives::U256::from_str_radix(
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
        16,
    )
    .unwrap();
    let high = Signature::new(low.r(), order - low.s(), !low.v());
    assert_eq!(high.recover_address_from_msg(text.as_bytes()).unwrap(), wallet.address());
    let high = format!("0x{}", stepup_server::random::hex(&high.as_bytes()));
    let response = verify(&server, &jwt, &wallet, &text, &high).await;
    let (body, _) = assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_signature").await;
    assert!(body.error.contains("low-S"), "{}", body.error);
    // The nonce was not spent by the refusal: the low-S signature still elevates.
    let low = format!("0x{}", stepup_server::random::hex(&low.as_bytes()));
    assert_eq!(verify(&server, &jwt, &wallet, &text, &low).await.status(), StatusCode::OK);
    server.shutdown().await;
}

async fn wallet_signature_elevates_once_per_nonce(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { user, jwt, .. } = server.user().await;
    let wallet = LocalWallet::new(7);
    link(&server, &user.id, &wallet, false).await;
    let text = message(&server, &wallet, &nonce(&server).await).to_string();
    let response = verify(&server, &jwt, &wallet, &text, &wallet.sign(&text)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: VerifyResponse = response.json().await.unwrap();
    let token = stepup_core::ElevatedToken::parse(body.elevated_access_token.unwrap(), server.now()).unwrap();
    assert_eq!(token.amr(), &["wallet".to_owned()]);
    let response = verify(&server, &jwt, &wallet, &text, &wallet.sign(&text)).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "nonce_already_used").await;
    server.shutdown().await;
}

async fn every_bad_wallet_message_has_its_code(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { user, jwt, .. } = server.user().await;
    let wallet = LocalWallet::new(7);
    link(&server, &user.id, &wallet, false).await;
    let attempt = |m: WalletMessage, signer: &'static str| {
        let server = &server;
        let jwt = jwt.clone();
        let wallet = &wallet;
        async move {
            let text = m.to_string();
            let signature =
                if signer == "other" { LocalWallet::new(9).sign(&text) } else { wallet.sign(&text) };
            verify(server, &jwt, wallet, &text, &signature).await
        }
    };
    let fresh = || async { message(&server, &wallet, &nonce(&server).await) };

    let mut m = fresh().await;
    m.domain = "evil.example".into();
    assert_error(attempt(m, "self").await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_message_domain").await;
    let mut m = fresh().await;
    m.request_id = "other-env".into();
    assert_error(attempt(m, "self").await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_message_request_id")
        .await;
    let mut m = fresh().await;
    m.uri = "http://evil.example".into();
    assert_error(attempt(m, "self").await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_message_uri").await;
    let mut m = fresh().await;
    m.chain_id = "one".into();
    assert_error(attempt(m, "self").await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_message_chain_id")
        .await;
    let mut m = fresh().await;
    m.version = "2".into();
    assert_error(attempt(m, "self").await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_message_version").await;
    for minutes in [-11i64, 11] {
        let mut m = fresh().await;
        m.issued_at =
            stepup_core::UnixTime((server.now().as_secs() as i64 + minutes * 60) as u64).to_rfc3339();
        assert_error(attempt(m, "self").await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_message_issued_at")
            .await;
    }
    let mut m = fresh().await;
    m.issued_at = stepup_core::UnixTime(server.now().as_secs() - 9 * 60).to_rfc3339();
    assert_eq!(attempt(m, "self").await.status(), StatusCode::OK, "9 minutes off is within tolerance");
    let m = fresh().await;
    assert_error(attempt(m, "other").await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_signature").await;
    let m = message(&server, &wallet, "never-issued-nonce");
    assert_error(attempt(m, "self").await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_nonce").await;
    let text = "hello".to_owned();
    assert_error(
        verify(&server, &jwt, &wallet, &text, &wallet.sign(&text)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_message",
    )
    .await;
    let text = fresh().await.to_string();
    assert_error(
        verify(&server, &jwt, &wallet, &text, "0x1234").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_signature",
    )
    .await;
    server.shutdown().await;
}

async fn only_the_users_external_wallets_qualify(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { user, jwt, .. } = server.user().await;
    let stranger = LocalWallet::new(3);
    let text = message(&server, &stranger, &nonce(&server).await).to_string();
    assert_error(
        verify(&server, &jwt, &stranger, &text, &stranger.sign(&text)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "wallet_not_linked",
    )
    .await;
    let embedded = LocalWallet::new(4);
    link(&server, &user.id, &embedded, true).await;
    let text = message(&server, &embedded, &nonce(&server).await).to_string();
    assert_error(
        verify(&server, &jwt, &embedded, &text, &embedded.sign(&text)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "embedded_wallet_not_allowed",
    )
    .await;
    server.shutdown().await;
}

/// As Dynamic's client has it: the credential's chain is `eip155` whatever the admin wrote, the verify request
/// names the connector chain `EVM`, the address and message are lower-case, and extra fields come along.
async fn chain_names_are_dynamics(backend: &Backend) {
    let server = TestServer::start(backend).await;
    let TestUser { user, jwt, .. } = server.user().await;
    let wallet = LocalWallet::new(7);
    link(&server, &user.id, &wallet, false).await;
    let other = LocalWallet::new(8);
    let body = json!({"address": other.address().to_checksum(None), "chain": "eip155", "walletName": "rabby",
                      "walletProvider": "browserExtension"});
    let linked: stepup_proto::VerifiedCredential =
        server.admin_post(&format!("/users/{}/wallets", user.id), &body).await.json().await.unwrap();
    assert_eq!(linked.chain.as_deref(), Some("eip155"));
    for chain in ["solana", "SOL", "dogecoin", ""] {
        let body = json!({"address": other.address().to_checksum(None), "chain": chain, "walletName": "x",
                          "walletProvider": "browserExtension"});
        let response = server.admin_post(&format!("/users/{}/wallets", user.id), &body).await;
        assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    }
    let me: stepup_proto::SdkUser = server.get("/users", Some(&jwt)).await.json().await.unwrap();
    let chains: Vec<_> = me.verified_credentials.iter().filter_map(|c| c.chain.as_deref()).collect();
    assert_eq!(chains, ["eip155", "eip155"]);

    let lower = format!("{:#x}", wallet.address());
    let mut m = message(&server, &wallet, &nonce(&server).await);
    m.address = lower.clone();
    let text = m.to_string();
    let request = |chain: &str, text: &str| {
        json!({"signedMessage": wallet.sign(text), "messageToSign": text, "publicWalletAddress": lower,
               "chain": chain, "walletName": "metamaskevm", "walletProvider": "browserExtension", "network": "1",
               "additionalWalletAddresses": [], "requestedScopes": ["wallet:sign"]})
    };
    // Another chain family: not this credential.
    let response = server.post("/wallets/verify", Some(&jwt), &request("SOL", &text)).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "wallet_not_linked").await;
    let response = server.post("/wallets/verify", Some(&jwt), &request("EVM", &text)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: VerifyResponse = response.json().await.unwrap();
    assert!(answer.elevated_access_token.is_some());
    // Dynamic's client looks for the signing address among the answer's credentials.
    assert!(
        answer
            .user
            .verified_credentials
            .iter()
            .any(|c| c.address.as_deref().map(str::to_lowercase) == Some(lower.clone()))
    );
    assert_eq!(answer.minified_jwt.unwrap().expose_secret(), jwt, "the session, unchanged");
    server.shutdown().await;
}

on_both_databases!(
    a_high_s_signature_is_refused,
    wallet_signature_elevates_once_per_nonce,
    chain_names_are_dynamics,
    every_bad_wallet_message_has_its_code,
    only_the_users_external_wallets_qualify
);
