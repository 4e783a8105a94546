//! `/openapi.json` describes the router: every documented operation is routed (its answer is never the
//! router's own "no such path" 404 or 405), every one says who may call it and answers errors as `{error, code}`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::common;

use common::{Backend, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::Value;

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let server = TestServer::start(&Backend::Sqlite).await;
    let base = server.server.base_url();
    let document: Value =
        server.http.get(format!("{base}/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            assert!(operation["security"].is_array(), "{method} {path}: who may call it");
            for status in ["400", "401", "403", "404", "422", "429"] {
                assert_eq!(
                    operation["responses"][status]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path}: error {status} is documented"
                );
            }
            assert!(operation["responses"].get("default").is_none(), "{method} {path}: statuses are listed");
            assert!(operation["responses"].get("500").is_none(), "{method} {path}: a 500 is never an answer");
            let concrete = path
                .replace("{environmentId}", common::ENV)
                .replace("{deviceId}", "no-such-device")
                .replace("{userId}", "no-such-user")
                .replace("{scope}", "wallet:export");
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let response =
                server.http.request(method.clone(), format!("{base}{concrete}")).send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let unrouted = (status == StatusCode::NOT_FOUND && body["error"] == "Not found")
                || status == StatusCode::METHOD_NOT_ALLOWED;
            assert!(!unrouted, "{method} {path} is documented but not routed: {status} {body}");
        }
    }
    assert!(operations >= 39, "{operations} operations documented");
    server.shutdown().await;
}

#[tokio::test]
async fn the_document_lists_the_configured_environments_and_no_admin_api_without_a_token() {
    let server = TestServer::start_with(&Backend::Sqlite, |config| config.admin_token = None).await;
    let base = server.server.base_url();
    let document: Value =
        server.http.get(format!("{base}/openapi.json")).send().await.unwrap().json().await.unwrap();
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.keys().all(|path| !path.starts_with("/admin")), "no admin API without its token");
    let check = &paths["/sdk/{environmentId}/stepUp/check"]["post"];
    let environment =
        check["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "environmentId").unwrap();
    assert_eq!(environment["schema"]["enum"], serde_json::json!([common::ENV]));
    server.shutdown().await;
}

/// What the fuzzer's credentials hook relies on: the admin API mints a session and, with `elevatedScopes`, an
/// elevated token bound to it (`amr: ["admin"]`); an unknown scope is 422 `invalid_scopes`.
#[tokio::test]
async fn the_admin_api_mints_a_session_with_an_elevated_token() {
    let server = TestServer::start(&Backend::Sqlite).await;
    let user = server.create_user("fuzzer@example.com", None).await;
    let path = format!("/users/{}/sessions", user.id);
    let minted: Value = server
        .admin_post(&path, &serde_json::json!({"elevatedScopes": ["wallet:export"]}))
        .await
        .json()
        .await
        .unwrap();
    let (jwt, token) = (minted["jwt"].as_str().unwrap(), minted["elevatedAccessToken"].as_str().unwrap());
    let claims = common::claims_of(token);
    assert_eq!(claims["amr"], serde_json::json!(["admin"]));
    assert_eq!(claims["sid"], common::claims_of(jwt)["sid"]);
    let opened =
        server.call::<Value>(Method::POST, "/protected/wallet:export", Some(jwt), Some(token), None).await;
    assert_eq!(opened.status(), StatusCode::OK);
    let plain: Value = server.admin_post(&path, &serde_json::json!({})).await.json().await.unwrap();
    assert!(plain.get("elevatedAccessToken").is_none());
    let sessions = server.server.state().store().row_counts().await.unwrap();
    let bad = server.admin_post(&path, &serde_json::json!({"elevatedScopes": ["wallet:exprot"]})).await;
    common::assert_error(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_scopes").await;
    assert_eq!(
        server.server.state().store().row_counts().await.unwrap(),
        sessions,
        "no session made for nothing"
    );
    server.shutdown().await;
}
