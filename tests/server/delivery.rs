//! Codes and security notices leave the server for real: email over SMTP to a real SMTP server process
//! (aiosmtpd), SMS through Twilio's Messages API shape and a signed webhook to a local HTTP receiver. A send
//! waits for the relay; a refusal, an unreachable relay or a timeout answers 503 `delivery_failed`, stores
//! nothing and does not count against the send limit. The outbox is a development channel only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::common;

use std::time::{Duration, Instant};

use common::receivers::{
    HttpReceiver, SMTP_PASSWORD, SMTP_USER, SmtpServer, aiosmtpd_python, code_in, form_fields,
};
use common::{Backend, TestServer, TestUser, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stepup_core::SecretString;
use stepup_server::ServerConfig;
use stepup_server::delivery::settings::{SmsGatewayConfig, SmtpConfig, SmtpTls};

fn smtp_to(config: &mut ServerConfig, port: u16, timeout_ms: u64) {
    config.delivery.outbox = Some(false);
    config.delivery.smtp = Some(SmtpConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        tls: SmtpTls::None,
        username: Some(SMTP_USER.into()),
        password: Some(SecretString::new(SMTP_PASSWORD)),
        timeout_ms,
    });
    let env = &mut config.environments[0];
    env.app_name = "Wallet & Co".into();
    env.email.from = Some("Wallet <no-reply@wallet.test>".into());
}

async fn rows(server: &TestServer, table: &str) -> i64 {
    server
        .server
        .state()
        .store()
        .row_counts()
        .await
        .unwrap()
        .into_iter()
        .find(|(t, _)| *t == table)
        .unwrap()
        .1
}

/// A step-up code by email over SMTP: the message the SMTP server accepted has the environment's sender,
/// subject, text and HTML bodies (HTML-escaped app name), and its code elevates. The outbox is off: nothing
/// holds the code in the database. Enrolling an authenticator app sends a security notice.
async fn email_codes_go_over_smtp(backend: &Backend) {
    let Some(python) = aiosmtpd_python() else { return };
    let smtp = SmtpServer::start(&python, false);
    let server = TestServer::start_with(backend, |config| smtp_to(config, smtp.port, 5_000)).await;
    let TestUser { jwt, email, .. } = server.user().await;
    let response = server.post("/emailVerifications/create", Some(&jwt), &json!({"email": email})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let verification =
        response.json::<Value>().await.unwrap()["verificationUUID"].as_str().unwrap().to_owned();
    // Accepted before the answer: the message is there already.
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert!(message.contains(&format!("X-Envelope-To: {email}")), "{message}");
    assert!(message.contains("From: Wallet <no-reply@wallet.test>"), "{message}");
    assert!(message.contains("Subject: Your Wallet & Co verification code"), "{message}");
    assert!(message.contains("Your Wallet & Co verification code is "), "{message}");
    assert!(message.contains("multipart/alternative") && message.contains("text/html"), "{message}");
    assert!(message.contains("Wallet &amp; Co"), "the HTML part escapes the app name: {message}");
    assert!(message.contains("It expires in 10 minutes"), "{message}");
    let code = code_in(message.split("Subject:").nth(1).unwrap());
    // An address with a display name was stored as one address and delivered to another
    // (`"victim@corp.com"<attacker@evil.com>`): only bare addresses are taken.
    for trick in ["\"victim@corp.com\"<attacker@evil.com>", "victim@corp.com<attacker@evil.com>"] {
        let response = server.post("/emailVerifications/create", None, &json!({"email": trick})).await;
        assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    }
    assert_eq!(smtp.messages().len(), 1);
    // No outbox outside development: the admin API says so, and the table is empty.
    let outbox = server
        .http
        .get(format!("{}/admin/environments/dev/outbox", server.server.base_url()))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .unwrap();
    assert_error(outbox, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(rows(&server, "outbox").await, 0);
    let body = json!({"verificationUUID": verification, "verificationToken": code, "requestedScopes": ["credential:link"]});
    let response = server.post("/emailVerifications/verify", Some(&jwt), &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let link = response
        .json::<stepup_proto::UpdateSelfResponse>()
        .await
        .unwrap()
        .verify
        .elevated_access_token
        .unwrap();

    // A security notice when an authenticator app is added.
    let response = server
        .call::<Value>(Method::GET, "/users/mfa/register/totp", Some(&jwt), Some(link.expose_secret()), None)
        .await;
    let registration: stepup_proto::TotpRegistration = response.json().await.unwrap();
    let totp = common::totp_code(registration.secret.expose_secret(), server.now().as_secs());
    let response =
        server.post("/users/mfa/auth/totp", Some(&jwt), &json!({"code": totp, "id": registration.id})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let verified: stepup_proto::VerifyResponse = response.json().await.unwrap();
    let mfa_jwt = verified.minified_jwt.unwrap().expose_secret().to_owned();
    let messages = smtp.wait_for(2).await;
    let notice = &messages[1];
    assert!(notice.contains("Security alert for your Wallet & Co account"), "{notice}");
    assert!(notice.contains("An authenticator app was added"), "{notice}");
    assert!(!notice.contains(registration.secret.expose_secret()), "{notice}");
    // Regenerated recovery codes (the first read makes them without a notice), and an operator's reset.
    assert_eq!(server.get("/users/mfa/recovery", Some(&mfa_jwt)).await.status(), StatusCode::OK);
    let response = server.post("/users/mfa/recovery", Some(&mfa_jwt), &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let messages = smtp.wait_for(3).await;
    assert!(messages[2].contains("New recovery codes were generated"), "{}", messages[2]);
    let user_id = common::claims_of(&jwt)["sub"].as_str().unwrap().to_owned();
    let response = server.admin_post(&format!("/users/{user_id}/mfa/reset"), &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let messages = smtp.wait_for(4).await;
    assert!(messages[3].contains("reset by an administrator"), "{}", messages[3]);
    assert_eq!(messages.len(), 4);
    server.shutdown().await;
}

/// The relay down (nothing listens), refusing (554) or silent (accepts the connection, never answers): each
/// send answers 503 `delivery_failed` within the send timeout, leaves no verification row, and gives its send
/// back — more failed sends than the per-address limit (3) are never a 429, and a send after the relay is back
/// goes through.
async fn a_failed_delivery_stores_nothing_and_does_not_count(backend: &Backend) {
    let Some(python) = aiosmtpd_python() else { return };
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let server = TestServer::start_with(backend, |config| smtp_to(config, closed, 1_000)).await;
    let TestUser { jwt, email, .. } = server.user().await;
    for _ in 0..5 {
        let started = Instant::now();
        let response = server.post("/emailVerifications/create", Some(&jwt), &json!({"email": email})).await;
        assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "delivery_failed").await;
        assert!(started.elapsed() < Duration::from_secs(5), "bounded by the send timeout");
    }
    // Anonymous sign-in sends too.
    for _ in 0..4 {
        let response =
            server.post("/emailVerifications/create", None, &json!({"email": "someone@example.com"})).await;
        assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "delivery_failed").await;
    }
    assert_eq!(rows(&server, "otp_verifications").await, 0, "nothing half-stored");
    server.shutdown().await;

    // A relay that refuses: answered at once (a permanent refusal is not retried).
    let refusing = SmtpServer::start(&python, true);
    let server = TestServer::start_with(backend, |config| smtp_to(config, refusing.port, 5_000)).await;
    let TestUser { jwt, email, .. } = server.user().await;
    let started = Instant::now();
    let response = server.post("/emailVerifications/create", Some(&jwt), &json!({"email": email})).await;
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "delivery_failed").await;
    assert!(started.elapsed() < Duration::from_secs(3), "a 5xx is final: {:?}", started.elapsed());
    server.shutdown().await;

    // A relay that never answers: the send gives up at its timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let server = TestServer::start_with(backend, |config| smtp_to(config, silent_port, 800)).await;
    let TestUser { jwt, email, .. } = server.user().await;
    let started = Instant::now();
    let response = server.post("/emailVerifications/create", Some(&jwt), &json!({"email": email})).await;
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "delivery_failed").await;
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(700) && waited < Duration::from_secs(4), "{waited:?}");
    drop(silent);
    server.shutdown().await;
}

on_both_databases!(email_codes_go_over_smtp, a_failed_delivery_stores_nothing_and_does_not_count);

/// Failed sends do not use up the limit: with the relay down, four sends to one address fail; once it is up on
/// the same port, the address still gets its three codes in the same window, and the fourth is the 429 the
/// limit is.
#[tokio::test]
async fn the_send_limit_counts_delivered_codes_only() {
    let Some(python) = aiosmtpd_python() else { return };
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let server = TestServer::start_with(&Backend::Sqlite, |config| smtp_to(config, port, 1_000)).await;
    let TestUser { jwt, email, .. } = server.user().await;
    for _ in 0..4 {
        let response = server.post("/emailVerifications/create", Some(&jwt), &json!({"email": email})).await;
        assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "delivery_failed").await;
    }
    let smtp = SmtpServer::start_on(&python, false, port);
    for _ in 0..3 {
        let response = server.post("/emailVerifications/create", Some(&jwt), &json!({"email": email})).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = server.post("/emailVerifications/create", Some(&jwt), &json!({"email": email})).await;
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_verification_attempts").await;
    assert_eq!(smtp.messages().len(), 3);
    server.shutdown().await;
}

fn twilio(config: &mut ServerConfig, receiver: &HttpReceiver, timeout_ms: u64) {
    config.delivery.outbox = Some(false);
    config.delivery.sms = Some(SmsGatewayConfig::Twilio {
        account_sid: "AC0123456789abcdef".into(),
        auth_token: Some(SecretString::new("twilio-auth-token")),
        base_url: format!("http://{}", receiver.addr),
        timeout_ms,
    });
    config.environments[0].sms.from = Some("+15550001111".into());
}

/// Twilio's Messages resource: a form-encoded POST of `To`, `From` and `Body` with basic auth; the code in the
/// body signs the user in.
#[tokio::test]
async fn sms_codes_go_through_twilios_messages_api() {
    let receiver = HttpReceiver::start(vec![201]).await;
    let server = TestServer::start_with(&Backend::Sqlite, |config| twilio(config, &receiver, 5_000)).await;
    let body = json!({"phoneNumber": "5551234567", "phoneCountryCode": "1", "isoCountryCode": "US"});
    let response = server.post("/smsVerifications/create", None, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let verification =
        response.json::<Value>().await.unwrap()["verificationUUID"].as_str().unwrap().to_owned();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.path, "/2010-04-01/Accounts/AC0123456789abcdef/Messages.json");
    assert_eq!(request.headers["content-type"], "application/x-www-form-urlencoded");
    use base64::Engine as _;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode("AC0123456789abcdef:twilio-auth-token");
    assert_eq!(request.headers["authorization"], format!("Basic {credentials}").as_str());
    let fields = form_fields(&request.body);
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(field("To"), "+15551234567");
    assert_eq!(field("From"), "+15550001111");
    assert!(field("Body").contains("is your Stepup Demo verification code"), "{}", field("Body"));
    let code = code_in(&field("Body"));
    let response = server
        .post(
            "/smsVerifications/signin",
            None,
            &json!({"verificationUUID": verification, "verificationToken": code}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    server.shutdown().await;
}

/// A 4xx from the gateway is final (one request, 503 at once); a 5xx is retried within the timeout.
#[tokio::test]
async fn gateway_refusals_are_final_and_outages_are_retried() {
    let body = json!({"phoneNumber": "5551234567", "phoneCountryCode": "1", "isoCountryCode": "US"});
    let refusing = HttpReceiver::start(vec![400]).await;
    let server = TestServer::start_with(&Backend::Sqlite, |config| twilio(config, &refusing, 5_000)).await;
    let response = server.post("/smsVerifications/create", None, &body).await;
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "delivery_failed").await;
    assert_eq!(refusing.requests().len(), 1);
    assert_eq!(rows(&server, "otp_verifications").await, 0);
    server.shutdown().await;

    let flaky = HttpReceiver::start(vec![503, 500, 201]).await;
    let server = TestServer::start_with(&Backend::Sqlite, |config| twilio(config, &flaky, 5_000)).await;
    let response = server.post("/smsVerifications/create", None, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(flaky.requests().len(), 3);
    server.shutdown().await;
}

/// A gateway that took the request but answers after the timeout may have sent the SMS: the send answers 503
/// at the timeout, is not retried (a second try could send and charge twice), and keeps its place in the limit —
/// the fourth such send to one number in ten minutes is the 429.
#[tokio::test]
async fn a_send_the_gateway_may_have_taken_is_not_retried_and_counts() {
    let slow = HttpReceiver::start(vec![0]).await;
    let server = TestServer::start_with(&Backend::Sqlite, |config| twilio(config, &slow, 500)).await;
    let body = json!({"phoneNumber": "5551234567", "phoneCountryCode": "1", "isoCountryCode": "US"});
    for sent in 1..=3 {
        let started = Instant::now();
        let response = server.post("/smsVerifications/create", None, &body).await;
        assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "delivery_failed").await;
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert_eq!(slow.requests().len(), sent, "no retry");
    }
    let response = server.post("/smsVerifications/create", None, &body).await;
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "too_many_verification_attempts").await;
    assert_eq!(rows(&server, "otp_verifications").await, 0);
    server.shutdown().await;
}

/// The webhook provider: JSON to any URL, signed with HMAC-SHA256 over `<timestamp>.<body>` in
/// `X-Stepup-Signature`, checked here with the shared secret.
#[tokio::test]
async fn sms_codes_go_to_a_signed_webhook() {
    use hmac::{Hmac, Mac as _};
    const SECRET: &str = "webhook-secret-0123456789";
    let receiver = HttpReceiver::start(vec![200]).await;
    let url = format!("http://{}/hooks/sms", receiver.addr);
    let server = TestServer::start_with(&Backend::Sqlite, |config| {
        config.delivery.outbox = Some(false);
        config.delivery.sms = Some(SmsGatewayConfig::Webhook {
            url,
            secret: Some(SecretString::new(SECRET)),
            timeout_ms: 5_000,
        });
    })
    .await;
    let body = json!({"phoneNumber": "5557654321", "phoneCountryCode": "44", "isoCountryCode": "GB"});
    let response = server.post("/smsVerifications/create", None, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let request = receiver.requests().pop().unwrap();
    assert_eq!(request.path, "/hooks/sms");
    let signature = request.headers["x-stepup-signature"].to_str().unwrap().to_owned();
    let (t, v1) = signature.split_once(",v1=").unwrap();
    let timestamp = t.strip_prefix("t=").unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&request.body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(v1, expected);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(timestamp.parse::<u64>().unwrap().abs_diff(now) < 60);
    let payload: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(payload["to"], "+445557654321");
    assert_eq!(payload["channel"], "sms");
    assert_eq!(payload["environmentId"], "dev");
    let code = code_in(payload["body"].as_str().unwrap());
    assert_eq!(code.len(), 6);
    server.shutdown().await;
}

/// Outside `--dev` the outbox is off: with no relay configured a code cannot be sent (503
/// `delivery_unavailable`) and nothing is stored; `--dev` keeps codes in the outbox.
#[tokio::test]
async fn the_outbox_is_a_development_channel() {
    let server = TestServer::start_with(&Backend::Sqlite, |config| config.dev = false).await;
    let response = server.post("/emailVerifications/create", None, &json!({"email": "a@example.com"})).await;
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "delivery_unavailable").await;
    let body = json!({"phoneNumber": "5551234567", "phoneCountryCode": "1", "isoCountryCode": "US"});
    let response = server.post("/smsVerifications/create", None, &body).await;
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "delivery_unavailable").await;
    assert_eq!(rows(&server, "otp_verifications").await, 0);
    server.shutdown().await;

    let server = TestServer::start(&Backend::Sqlite).await;
    let response = server.post("/emailVerifications/create", None, &json!({"email": "a@example.com"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.outbox("a@example.com").await.len(), 1);
    server.shutdown().await;

    // Explicitly on outside development (a staging server): allowed, said so by check-config.
    let server = TestServer::start_with(&Backend::Sqlite, |config| {
        config.dev = false;
        config.delivery.outbox = Some(true);
    })
    .await;
    let response = server.post("/emailVerifications/create", None, &json!({"email": "b@example.com"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    server.shutdown().await;
}
