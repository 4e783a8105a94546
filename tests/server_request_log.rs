//! One structured event per request — route template, status, latency, request id — in JSON logs, and never a
//! code, secret or token in any log line. The request id is taken from `X-Request-Id` when sane and always
//! answered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{Backend, TestServer, totp_code};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_one_json_event_without_secrets() {
    let buffer = Buffer::default();
    // What `stepup-server --log-format json` installs, writing here instead of stderr.
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter("stepup_server=debug")
        .with_writer(buffer.clone())
        .init();
    let server = TestServer::start(&Backend::Sqlite).await;
    let person = server.totp_user().await;
    let code = totp_code(&person.secret, server.now().as_secs());
    let response = server
        .http
        .post(server.url("/users/mfa/auth/totp"))
        .bearer_auth(&person.jwt)
        .header("x-request-id", "req-42.abc_DEF")
        .json(&json!({"code": code, "requestedScopes": ["wallet:sign"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-42.abc_DEF");
    assert_eq!(response.status(), StatusCode::OK);
    let verified: stepup_proto::VerifyResponse = response.json().await.unwrap();
    let elevated = verified.elevated_access_token.unwrap().expose_secret().to_owned();
    // A request id that could forge a log line is replaced by a fresh one.
    let response = server
        .http
        .get(server.url("/.well-known/jwks"))
        .header("x-request-id", "a b\"c")
        .send()
        .await
        .unwrap();
    let generated = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "{generated}");
    let outbox_codes: Vec<String> = server.outbox(&person.email).await.into_iter().map(|m| m.code).collect();
    server.shutdown().await;

    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let events: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let requests: Vec<&Value> = events.iter().filter(|e| e["target"] == "stepup_server::request").collect();
    let totp = requests
        .iter()
        .find(|e| {
            e["fields"]["route"] == "/sdk/{environment_id}/users/mfa/auth/totp"
                && e["span"]["id"] == "req-42.abc_DEF"
        })
        .unwrap_or_else(|| panic!("no event for the TOTP request: {text}"));
    assert_eq!(totp["fields"]["status"], 200);
    assert_eq!(totp["fields"]["method"], "POST");
    assert!(totp["fields"]["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(requests.iter().any(|e| e["span"]["id"] == generated.as_str()));
    // Every request the test made is one event (the harness's admin calls included).
    assert!(requests.len() >= 8, "{}", requests.len());
    // No secret anywhere: not the TOTP secret or code, no one-time code, no JWT.
    for secret in [person.secret.as_str(), code.as_str(), person.jwt.as_str(), elevated.as_str()] {
        assert!(!text.contains(secret), "a secret is in the logs");
    }
    for code in &outbox_codes {
        assert!(
            !text.contains(&format!("\"{code}\"")) && !text.contains(&format!(" {code}")),
            "a code is in the logs"
        );
    }
    assert!(!text.contains("eyJ"), "a JWT is in the logs");
}
