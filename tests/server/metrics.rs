//! `/metrics` (Prometheus / OpenMetrics text): off by default; on the main listener behind a token, or on a
//! listener of its own. A scrape after a few flows shows each count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::common;

use common::{Backend, TestServer, TestUser, assert_error, totp_code};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stepup_core::SecretString;

const TOKEN: &str = "metrics-token-0123456789";

/// The value of the sample `name{labels}` (labels in the exposition's order), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

async fn scrape(server: &TestServer) -> String {
    let response = server
        .http
        .get(format!("{}/metrics", server.server.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_after_some_flows_shows_the_counts() {
    let server = TestServer::start_with(&Backend::Sqlite, |config| {
        config.metrics.token = Some(SecretString::new(TOKEN));
    })
    .await;
    let metrics_url = format!("{}/metrics", server.server.base_url());
    let response = server.http.get(&metrics_url).send().await.unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let response = server.http.get(&metrics_url).bearer_auth("wrong-token-0123456789").send().await.unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // A check, an email step-up for a single-use scope, its token spent once and refused the second time.
    let TestUser { jwt, email, .. } = server.user().await;
    let response = server.post("/stepUp/check", Some(&jwt), &json!({"scope": "wallet:export"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let token = server.elevated_via_email(&jwt, &email, &["wallet:export"]).await;
    for expected in [StatusCode::OK, StatusCode::FORBIDDEN] {
        let response = server
            .call::<Value>(Method::POST, "/protected/wallet:export", Some(&jwt), Some(&token), None)
            .await;
        assert_eq!(response.status(), expected);
    }
    // An authenticator user (one more email step-up, one TOTP success), then six wrong codes: a lockout.
    let person = server.totp_user().await;
    let wrong = format!(
        "{:06}",
        (totp_code(&person.secret, server.now().as_secs()).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    for _ in 0..6 {
        let _ = server.post("/users/mfa/auth/totp", Some(&person.jwt), &json!({"code": wrong})).await;
    }

    let text = scrape(&server).await;
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    assert_eq!(sample(&text, r#"stepup_step_up_checks_total{required="true"}"#), 1.0, "{text}");
    assert_eq!(sample(&text, r#"stepup_code_sends_total{channel="email",outcome="sent"}"#), 2.0, "{text}");
    assert_eq!(
        sample(&text, r#"stepup_verifications_total{method="email",outcome="success"}"#),
        2.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"stepup_verifications_total{method="totp",outcome="success"}"#),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"stepup_verifications_total{method="totp",outcome="mfa_invalid_code"}"#),
        4.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"stepup_verifications_total{method="totp",outcome="lock_too_many_attempts"}"#),
        2.0,
        "{text}"
    );
    assert_eq!(sample(&text, "stepup_mfa_lockouts_total"), 1.0, "{text}");
    assert_eq!(
        sample(&text, r#"stepup_elevated_tokens_issued_total{method="email",single_use="true"}"#),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"stepup_elevated_tokens_issued_total{method="email",single_use="false"}"#),
        1.0,
        "{text}"
    );
    assert_eq!(sample(&text, "stepup_elevated_tokens_spent_total"), 1.0, "{text}");
    assert_eq!(sample(&text, "stepup_guard_refusals_total"), 1.0, "{text}");
    assert_eq!(sample(&text, "stepup_database_errors_total"), 0.0, "{text}");
    assert_eq!(
        sample(
            &text,
            r#"stepup_http_request_duration_seconds_count{method="POST",route="/sdk/{environment_id}/stepUp/check",status="200"}"#
        ),
        1.0,
        "{text}"
    );
    assert!(text.contains("# TYPE stepup_http_request_duration_seconds histogram"), "{text}");
    assert!(text.contains(r#"le="0.00025""#) && text.contains(r#"le="+Inf""#), "{text}");
    // Nothing of a user, address or token is a label.
    assert!(!text.contains(&email) && !text.contains("eyJ"), "{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn metrics_are_off_by_default_or_on_their_own_listener() {
    let server = TestServer::start(&Backend::Sqlite).await;
    let response = server.http.get(format!("{}/metrics", server.server.base_url())).send().await.unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    assert!(server.server.metrics_addr().is_none());
    server.shutdown().await;

    let server = TestServer::start_with(&Backend::Sqlite, |config| {
        config.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let _ = server.get("/.well-known/jwks", None).await;
    let addr = server.server.metrics_addr().unwrap();
    let text = server.http.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("stepup_http_request_duration_seconds"), "{text}");
    // Not on the main listener.
    let response = server.http.get(format!("{}/metrics", server.server.base_url())).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    server.shutdown().await;
}
