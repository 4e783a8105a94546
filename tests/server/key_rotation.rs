//! Signing-key rotation across two replicas of one database: a key added on one replica signs there at once;
//! the other honours tokens that name it (it reloads the keys on the first such token) and publishes it in its
//! JWKS; tokens signed with the previous key — sessions and elevated tokens — verify on both until they
//! expire; a key retired for longer than any token lives leaves the JWKS and the database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use crate::common;

use common::{Backend, TestServer, claims_of, postgres_schema};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn replicas(backend: &Backend) -> (TestServer, TestServer, Option<std::path::PathBuf>) {
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!(
                "stepup-rotation-{}",
                stepup_server::random::hex(&stepup_server::random::bytes::<6>().unwrap())
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let url = format!("sqlite://{}", dir.join("shared.db").display());
            let a = TestServer::start_on(url.clone(), None, |_| {}).await;
            let b = TestServer::start_on(url, None, |_| {}).await;
            (a, b, Some(dir))
        }
        Backend::Postgres(base) => {
            let (url, schema) = postgres_schema(base).await;
            let a = TestServer::start_on(url.clone(), Some((base.clone(), schema)), |_| {}).await;
            let b = TestServer::start_on(url, None, |_| {}).await;
            (a, b, None)
        }
    }
}

fn kid_of(jwt: &str) -> String {
    use base64::Engine as _;
    let header =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwt.split('.').next().unwrap()).unwrap();
    serde_json::from_slice::<Value>(&header).unwrap()["kid"].as_str().unwrap().to_owned()
}

async fn jwks_kids(server: &TestServer) -> Vec<String> {
    let jwks: Value = server.get("/.well-known/jwks", None).await.json().await.unwrap();
    jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

async fn rotate(server: &TestServer) -> Value {
    let response = server.admin_post("/signing-keys", &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn a_rotated_key_is_honoured_by_every_replica(backend: &Backend) {
    let (a, b, dir) = replicas(backend).await;
    let user = b.create_user("rotation@example.com", None).await;
    let old_session = b.session(&user.id).await;
    let minted: Value = b
        .admin_post(&format!("/users/{}/sessions", user.id), &json!({"elevatedScopes": ["wallet:sign"]}))
        .await
        .json()
        .await
        .unwrap();
    let (old_elevated_session, old_elevated) = (
        minted["jwt"].as_str().unwrap().to_owned(),
        minted["elevatedAccessToken"].as_str().unwrap().to_owned(),
    );
    let first = kid_of(&old_session);
    assert_eq!(jwks_kids(&a).await, std::slice::from_ref(&first));

    let rotated = rotate(&a).await;
    let second = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(rotated["published"], json!([second, first]));
    assert_eq!(jwks_kids(&a).await, [second.clone(), first.clone()]);

    // A signs with the new key at once; B takes A's new token (reloading its keys) and then publishes it too.
    let new_session = a.session(&user.id).await;
    assert_eq!(kid_of(&new_session), second);
    assert_eq!(b.get("/users", Some(&new_session)).await.status(), StatusCode::OK);
    assert_eq!(jwks_kids(&b).await, [second.clone(), first.clone()]);
    // Tokens of the previous key verify on both replicas until they expire.
    for server in [&a, &b] {
        assert_eq!(server.get("/users", Some(&old_session)).await.status(), StatusCode::OK);
        let response = server
            .call::<Value>(
                reqwest::Method::GET,
                "/protected/wallet:sign",
                Some(&old_elevated_session),
                Some(&old_elevated),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    // A forged key id is no key: refused, and no reload storm (at most one a second).
    let mut forged: Vec<String> = new_session.split('.').map(str::to_owned).collect();
    use base64::Engine as _;
    forged[0] =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","kid":"no-such-key"}"#);
    assert_eq!(b.get("/users", Some(&forged.join("."))).await.status(), StatusCode::UNAUTHORIZED);

    // Past the longest token lifetime, the first key signs nothing alive: the next rotation retires it.
    let session_ttl =
        claims_of(&old_session)["exp"].as_u64().unwrap() - claims_of(&old_session)["iat"].as_u64().unwrap();
    for server in [&a, &b] {
        server.clock.advance(session_ttl + 120);
    }
    assert_eq!(
        a.get("/users", Some(&old_session)).await.status(),
        StatusCode::UNAUTHORIZED,
        "expired anyway"
    );
    let third = rotate(&a).await["kid"].as_str().unwrap().to_owned();
    assert_eq!(jwks_kids(&a).await, [third.clone(), second.clone()]);
    let stored: Vec<String> =
        a.server.state().store().signing_keys("dev").await.unwrap().into_iter().map(|k| k.kid).collect();
    assert_eq!(stored, [third, second]);
    a.shutdown().await;
    b.shutdown().await;
    if let Some(dir) = dir {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

on_both_databases!(a_rotated_key_is_honoured_by_every_replica);
