//! Single use across replicas: 50 concurrent spends of one token through two guard instances, exactly one
//! passes — in process, on a real Redis and on a real PostgreSQL; a store out of reach refuses (fail closed).

use std::sync::Arc;

use serde_json::json;
use stepup_guard::{GuardError, InProcessStore, Refusal, Requirement, SingleUseStore, Unavailable};
use stepup_proto::TokenScope;

use super::*;

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A single-use `wallet:export` token with a fresh `jti`, valid for five minutes from now.
fn single_use_token() -> String {
    let mut claims = ours();
    claims["singleUse"] = json!(true);
    claims["jti"] = json!(format!("spend-{}", unique()));
    claims["iat"] = json!(now());
    claims["exp"] = json!(now() + 300);
    eddsa("k1", &claims)
}

fn guard_on(store: Arc<dyn SingleUseStore>) -> Guard {
    for_reference_server().key(our_key()).shared_single_use_store(store).build().unwrap()
}

/// 50 spends at once, alternating between the two guards; returns (passed, refused as spent).
async fn race(first: &Guard, second: &Guard, token: &str) -> (usize, usize) {
    let requirement = Requirement::scope(TokenScope::WalletExport);
    let spends: Vec<_> = (0..50)
        .map(|i| {
            let guard = if i % 2 == 0 { first.clone() } else { second.clone() };
            let (token, requirement) = (token.to_owned(), requirement.clone());
            tokio::spawn(async move { guard.check(Some(&token), &requirement).await })
        })
        .collect();
    let (mut passed, mut spent) = (0, 0);
    for spend in spends {
        match spend.await.unwrap() {
            Ok(_) => passed += 1,
            Err(GuardError::Refused(Refusal::Spent)) => spent += 1,
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }
    (passed, spent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_process_one_of_fifty_concurrent_spends_passes() {
    let store: Arc<dyn SingleUseStore> = Arc::new(InProcessStore::new());
    let (first, second) = (guard_on(store.clone()), guard_on(store));
    assert_eq!(race(&first, &second, &single_use_token()).await, (1, 49));
}

#[cfg(feature = "redis")]
mod redis_store {
    use stepup_guard::RedisStore;

    use super::*;

    fn redis_url() -> Option<String> {
        service("STEPUP_TEST_REDIS_URL", "Redis")
    }

    /// Two replicas, each with its own connection to one Redis.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_of_fifty_concurrent_spends_through_two_guards_passes() {
        let Some(url) = redis_url() else { return };
        let replica = || guard_on(Arc::new(RedisStore::open(&url).unwrap()));
        let (first, second) = (replica(), replica());
        let token = single_use_token();
        assert_eq!(race(&first, &second, &token).await, (1, 49));
        // Kept for the token's remaining lifetime plus the leeway and clock skew, then gone.
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> =
            redis::cmd("KEYS").arg("stepup:spent:*spend-*").query_async(&mut connection).await.unwrap();
        assert!(!keys.is_empty());
        let jti = serde_json::from_slice::<serde_json::Value>(
            &base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                token.split('.').nth(1).unwrap(),
            )
            .unwrap(),
        )
        .unwrap()["jti"]
            .as_str()
            .unwrap()
            .to_owned();
        let key = keys.iter().find(|key| key.ends_with(&jti)).unwrap();
        let ttl_ms: i64 = redis::cmd("PTTL").arg(key).query_async(&mut connection).await.unwrap();
        assert!((300_000..=391_000).contains(&ttl_ms), "{ttl_ms}");
    }

    /// Redis out of reach: the request is refused with a typed error, never let through; multi-use tokens,
    /// which need no store, still pass.
    #[tokio::test]
    async fn redis_out_of_reach_refuses_single_use_tokens() {
        // Runs without Redis: nothing listens on this port.
        let guard =
            guard_on(Arc::new(RedisStore::open(&format!("redis://{}", closed_port().await)).unwrap()));
        let requirement = Requirement::scope(TokenScope::WalletExport);
        let result = guard.check(Some(&single_use_token()), &requirement).await;
        match result {
            Err(GuardError::Unavailable(Unavailable::SingleUseStore(error))) => {
                assert_eq!(error.store(), "redis")
            }
            other => panic!("expected the store to be unavailable, got {other:?}"),
        }
        let mut multi_use = ours();
        multi_use["exp"] = json!(now() + 300);
        multi_use["iat"] = json!(now());
        assert!(guard.check(Some(&eddsa("k1", &multi_use)), &requirement).await.is_ok());
    }
}

#[cfg(feature = "postgres")]
mod postgres_store {
    use sqlx::postgres::PgPoolOptions;
    use stepup_guard::PostgresStore;

    use super::*;

    /// A schema of this test's own, so no other test's purge (they run in parallel) touches its rows.
    async fn own_schema(base: &str) -> String {
        use sqlx::{Connection as _, Executor as _};
        let schema = format!("stepup_guard_t_{}", unique().replace('-', "_"));
        let mut connection = sqlx::PgConnection::connect(base).await.unwrap();
        connection.execute(format!("CREATE SCHEMA {schema}").as_str()).await.unwrap();
        let separator = if base.contains('?') { '&' } else { '?' };
        format!("{base}{separator}options=-c%20search_path%3D{schema}")
    }

    async fn drop_schema(base: &str, url: &str) {
        use sqlx::{Connection as _, Executor as _};
        let schema = url.rsplit("search_path%3D").next().unwrap();
        let mut connection = sqlx::PgConnection::connect(base).await.unwrap();
        connection.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await.unwrap();
    }

    async fn store(url: &str) -> PostgresStore {
        PostgresStore::new(PgPoolOptions::new().max_connections(8).connect(url).await.unwrap()).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_of_fifty_concurrent_spends_through_two_guards_passes() {
        let Some(base) = service("STEPUP_TEST_DATABASE_URL", "PostgreSQL") else { return };
        let url = own_schema(&base).await;
        let (first, second) = (guard_on(Arc::new(store(&url).await)), guard_on(Arc::new(store(&url).await)));
        assert_eq!(race(&first, &second, &single_use_token()).await, (1, 49));
        drop_schema(&base, &url).await;
    }

    #[tokio::test]
    async fn expired_records_are_purged_and_a_database_gone_refuses() {
        let Some(base) = service("STEPUP_TEST_DATABASE_URL", "PostgreSQL") else { return };
        let url = own_schema(&base).await;
        let pool = PgPoolOptions::new().max_connections(2).connect(&url).await.unwrap();
        let store = PostgresStore::new(pool.clone()).await.unwrap();
        let issuer = format!("purge-{}", unique());
        let token = |id: &'static str, keep_until: u64, now: u64| stepup_guard::SpentToken {
            issuer: &issuer,
            token_id: id,
            keep_until,
            now,
        };
        assert!(store.spend(token("a", 100, 10)).await.unwrap());
        assert!(!store.spend(token("a", 100, 20)).await.unwrap());
        assert!(store.purge(100).await.unwrap() >= 1);
        assert!(store.spend(token("a", 300, 150)).await.unwrap(), "purged");
        pool.close().await;
        let guard = guard_on(Arc::new(store));
        let result =
            guard.check(Some(&single_use_token()), &Requirement::scope(TokenScope::WalletExport)).await;
        assert!(matches!(result, Err(GuardError::Unavailable(Unavailable::SingleUseStore(_)))), "{result:?}");
        drop_schema(&base, &url).await;
    }
}
