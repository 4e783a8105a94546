//! Secrets at rest: with a copy of the database alone (the outbox off, as in production), no one-time code,
//! TOTP secret, signing key or token can be had. Before, the OTP HMAC key sat in `server_secrets` in clear and a
//! live six-digit code was brute-forced from its stored hash in a fraction of a second; the same brute force
//! runs here against the copy and finds nothing — and, given the key-encryption key the copy lacks, finds the
//! code (so the search itself works). Rows an earlier version wrote in clear are sealed on start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::common;

use common::receivers::{HttpReceiver, code_in};
use common::{Backend, TestServer, test_kek, totp_code};
use hmac::{Hmac, Mac as _};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Row as _;
use stepup_core::SecretString;
use stepup_server::delivery::settings::SmsGatewayConfig;

fn temp_db(name: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!(
        "stepup-{name}-{}",
        stepup_server::random::hex(&stepup_server::random::bytes::<6>().unwrap())
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("stepup.db").display());
    (dir, url)
}

/// The attacker's search: the code whose keyed hash is `code_hash`, under `key`.
fn brute_force(key: &[u8], verification_id: &str, code_hash: &str) -> Option<String> {
    let target = hex_bytes(code_hash).unwrap();
    let mut keyed = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    keyed.update(verification_id.as_bytes());
    keyed.update(b":");
    (0..1_000_000u32).map(|n| format!("{n:06}")).find(|code| {
        let mut mac = keyed.clone();
        mac.update(code.as_bytes());
        mac.finalize().into_bytes().as_slice() == target.as_slice()
    })
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    (text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit())).then(|| {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_copy_yields_no_code_secret_or_token() {
    let (dir, url) = temp_db("copy");
    let sms = HttpReceiver::start(vec![200]).await;
    let hook = format!("http://{}/sms", sms.addr);
    let server = TestServer::start_with(&Backend::Sqlite, |config| {
        config.database_url = url.clone();
        config.delivery.outbox = Some(false);
        config.delivery.sms = Some(SmsGatewayConfig::Webhook {
            url: hook,
            secret: Some(SecretString::new("webhook-secret-0123456789")),
            timeout_ms: 5_000,
        });
    })
    .await;

    // A user with a verified authenticator app, enrolled after an SMS step-up (codes reach the webhook only).
    let response =
        server.admin_post("/users", &json!({"email": "copy@example.com", "phoneNumber": "5550001234"})).await;
    let user: stepup_proto::SdkUser = response.json().await.unwrap();
    let jwt = server.session(&user.id).await;
    let body = json!({"phoneNumber": "5550001234", "phoneCountryCode": "1", "isoCountryCode": "US"});
    let response = server.post("/smsVerifications/create", Some(&jwt), &body).await;
    let verification =
        response.json::<Value>().await.unwrap()["verificationUUID"].as_str().unwrap().to_owned();
    let sent: Value = serde_json::from_slice(&sms.requests()[0].body).unwrap();
    let code = code_in(sent["body"].as_str().unwrap());
    let body = json!({"verificationUUID": verification, "verificationToken": code, "requestedScopes": ["credential:link"]});
    let response = server.post("/smsVerifications/verify", Some(&jwt), &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let verified: stepup_proto::UpdateSelfResponse = response.json().await.unwrap();
    let link = verified.verify.elevated_access_token.unwrap().expose_secret().to_owned();
    let response =
        server.call::<Value>(Method::GET, "/users/mfa/register/totp", Some(&jwt), Some(&link), None).await;
    let registration: stepup_proto::TotpRegistration = response.json().await.unwrap();
    let totp_secret = registration.secret.expose_secret().to_owned();
    let response = server
        .post(
            "/users/mfa/auth/totp",
            Some(&jwt),
            &json!({"code": totp_code(&totp_secret, server.now().as_secs()), "id": registration.id}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // A live sign-in code, sent and not yet used.
    let body = json!({"phoneNumber": "5550009999", "phoneCountryCode": "1", "isoCountryCode": "US"});
    let response = server.post("/smsVerifications/create", None, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let verification =
        response.json::<Value>().await.unwrap()["verificationUUID"].as_str().unwrap().to_owned();
    let sent: Value = serde_json::from_slice(&sms.requests()[1].body).unwrap();
    let live_code = code_in(sent["body"].as_str().unwrap());

    // The copy: what a leaked backup or a read-only replica gives an attacker.
    let copy_path = dir.join("copy.db");
    sqlx::query(&format!("VACUUM INTO '{}'", copy_path.display()))
        .execute(server.server.state().store().sqlite_pool().unwrap())
        .await
        .unwrap();
    let copy = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", copy_path.display())).await.unwrap();
    let bytes = std::fs::read(&copy_path).unwrap();
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);

    // One-time codes: the stored HMAC key is sealed; brute-forcing the hash with what the copy holds fails.
    let otp = sqlx::query("SELECT id, code_hash FROM otp_verifications WHERE id = $1")
        .bind(&verification)
        .fetch_one(&copy)
        .await
        .unwrap();
    let code_hash: String = otp.get("code_hash");
    let stored_key: String = sqlx::query("SELECT value FROM server_secrets WHERE name = 'otp_hmac_key'")
        .fetch_one(&copy)
        .await
        .unwrap()
        .get("value");
    assert!(stored_key.starts_with("kek1:") && hex_bytes(&stored_key).is_none(), "{stored_key}");
    assert_eq!(
        brute_force(stored_key.as_bytes(), &verification, &code_hash),
        None,
        "the copy alone gives no code"
    );
    let sealed_body = stored_key.rsplit(':').next().unwrap();
    use base64::Engine as _;
    let blob = base64::engine::general_purpose::STANDARD.decode(sealed_body).unwrap();
    // The sealed bytes themselves, as a key (the nonce end and the ciphertext end).
    for candidate in [&blob[..32], &blob[blob.len() - 32..]] {
        assert_eq!(brute_force(candidate, &verification, &code_hash), None);
    }
    // With the key-encryption key (never in the database) the same search finds it: the search is sound.
    let opened = test_kek().open("server_secret:otp_hmac_key", &stored_key).unwrap();
    let key = hex_bytes(std::str::from_utf8(&opened).unwrap()).unwrap();
    assert_eq!(brute_force(&key, &verification, &code_hash).as_deref(), Some(live_code.as_str()));
    assert_eq!(
        sqlx::query("SELECT COUNT(*) AS n FROM outbox").fetch_one(&copy).await.unwrap().get::<i64, _>("n"),
        0
    );

    // TOTP: the secret is nowhere in the file, in base32 or raw; the stored value is sealed.
    let stored_secret: String = sqlx::query("SELECT secret FROM mfa_devices WHERE id = $1")
        .bind(&registration.id)
        .fetch_one(&copy)
        .await
        .unwrap()
        .get("secret");
    assert!(stored_secret.starts_with("kek1:"));
    assert!(totp_rs::Secret::try_from_base32(&stored_secret).is_err() || stored_secret != totp_secret);
    let raw_secret = totp_rs::Secret::try_from_base32(&totp_secret).unwrap().as_bytes().to_vec();
    assert!(!contains(totp_secret.as_bytes()) && !contains(&raw_secret), "the TOTP secret is in the copy");

    // Signing keys: sealed; nothing in the row signs a token the server takes.
    let keys = sqlx::query("SELECT kid, secret_key FROM signing_keys").fetch_all(&copy).await.unwrap();
    let forged_session = |seed: &[u8; 32], kid: &str| {
        let key = stepup_server::tokens::EnvironmentKey::from_secret(kid.to_owned(), "dev", seed);
        let now = server.now().as_secs();
        let claims = stepup_server::tokens::SessionClaims {
            iss: stepup_server::tokens::ISSUER.into(),
            sub: user.id.clone(),
            aud: "dev".into(),
            exp: now + 3600,
            iat: now,
            jti: "forged".into(),
            sid: "forged".into(),
            token_use: "session".into(),
            mfa_auth_time: None,
            nbf: None,
        };
        key.sign(&claims).unwrap().expose_secret().to_owned()
    };
    for row in &keys {
        let (kid, secret): (String, String) = (row.get("kid"), row.get("secret_key"));
        assert!(secret.starts_with("kek1:") && hex_bytes(&secret).is_none(), "{secret}");
        let blob =
            base64::engine::general_purpose::STANDARD.decode(secret.rsplit(':').next().unwrap()).unwrap();
        for candidate in [&secret.as_bytes()[..32], &blob[..32], &blob[blob.len() - 32..]] {
            let forged = forged_session(candidate.try_into().unwrap(), &kid);
            let response = server.get("/users", Some(&forged)).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
    }
    // Tokens: no JWT is stored (sessions and spent tokens are ids).
    assert!(!contains(b"eyJ"), "a JWT is in the copy");
    copy.close().await;
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A database an earlier version wrote — signing key, OTP key and a TOTP secret in clear — is sealed on the
/// first start with a key-encryption key, and keeps working: the same public key in the JWKS, the same TOTP
/// device taking codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_written_in_clear_are_sealed_on_start() {
    let (dir, url) = temp_db("legacy");
    let store = stepup_server::Store::connect(&url).await.unwrap();
    let seed = [7u8; 32];
    let seed_hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    let pool = store.sqlite_pool().unwrap();
    sqlx::query("INSERT INTO signing_keys (environment_id, slot, kid, secret_key, created_at) VALUES ('dev', 'primary', 'old-kid', $1, 1)")
        .bind(&seed_hex)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO server_secrets (name, value) VALUES ('otp_hmac_key', $1)")
        .bind("ab".repeat(32))
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO users (id, environment_id, email, created_at) VALUES ('u1', 'dev', 'old@example.com', 1)").execute(pool).await.unwrap();
    sqlx::query("INSERT INTO mfa_devices (id, user_id, kind, secret, verified, created_at) VALUES ('d1', 'u1', 'totp', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 1, 1)")
        .execute(pool)
        .await
        .unwrap();
    pool.close().await;

    let server = TestServer::start_with(&Backend::Sqlite, |config| config.database_url = url.clone()).await;
    let pool = server.server.state().store().sqlite_pool().unwrap();
    let sealed = |query: &'static str| async move {
        let value: String = sqlx::query(query).fetch_one(pool).await.unwrap().get(0);
        value.starts_with("kek1:")
    };
    assert!(sealed("SELECT secret_key FROM signing_keys WHERE kid = 'old-kid'").await);
    assert!(sealed("SELECT value FROM server_secrets WHERE name = 'otp_hmac_key'").await);
    assert!(sealed("SELECT secret FROM mfa_devices WHERE id = 'd1'").await);
    let expected = stepup_server::tokens::EnvironmentKey::from_secret("old-kid".into(), "dev", &seed).jwk();
    let jwks: Value = server.get("/.well-known/jwks", None).await.json().await.unwrap();
    assert_eq!(jwks["keys"][0]["x"], expected.x);
    let jwt = server.session("u1").await;
    let code = totp_code("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", server.now().as_secs());
    let response = server.post("/users/mfa/auth/totp", Some(&jwt), &json!({"code": code})).await;
    assert_eq!(response.status(), StatusCode::OK);
    // Only that start takes clear values: a signing key or TOTP secret planted in clear later (someone with write
    // access to the database) is refused, not adopted.
    sqlx::query("INSERT INTO signing_keys (environment_id, slot, kid, secret_key, created_at) VALUES ('dev', 'planted', 'planted', $1, 4000000000)")
        .bind("cd".repeat(32))
        .execute(pool)
        .await
        .unwrap();
    let env = server.server.state().environment("dev").unwrap().clone();
    assert!(
        stepup_server::services::issuance::reload_signing_keys(server.server.state(), &env).await.is_err()
    );
    let jwks: Value = server.get("/.well-known/jwks", None).await.json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1, "{jwks}");
    assert_eq!(jwks["keys"][0]["kid"], "old-kid");
    sqlx::query("DELETE FROM signing_keys WHERE slot = 'planted'").execute(pool).await.unwrap();
    sqlx::query("UPDATE mfa_devices SET secret = 'KRUGS4ZANFZSAYJAONSWG4TFOQQQ2345' WHERE id = 'd1'")
        .execute(pool)
        .await
        .unwrap();
    server.clock.advance(30);
    let planted = totp_code("KRUGS4ZANFZSAYJAONSWG4TFOQQQ2345", server.now().as_secs());
    let response = server.post("/users/mfa/auth/totp", Some(&jwt), &json!({"code": planted})).await;
    assert_ne!(response.status(), StatusCode::OK, "a planted clear TOTP secret is not taken");
    server.shutdown().await;

    // The sealed database does not open with another key-encryption key: the start fails, saying why.
    let mut config = stepup_server::ServerConfig::dev("dev");
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.database_url = url.clone();
    config.key_encryption_key_value =
        Some(stepup_server::key_encryption::KeyEncryptionKey::generate().unwrap());
    let refused = stepup_server::Server::start(config).await.unwrap_err().to_string();
    assert!(refused.contains("another key-encryption key"), "{refused}");
    // Outside --dev, no key at all is a refusal to start.
    let mut config = stepup_server::ServerConfig::dev("dev");
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.dev = false;
    let refused = stepup_server::Server::start(config).await.unwrap_err();
    assert!(matches!(refused, stepup_server::StartError::NoKeyEncryptionKey), "{refused}");
    std::fs::remove_dir_all(&dir).unwrap();
}
