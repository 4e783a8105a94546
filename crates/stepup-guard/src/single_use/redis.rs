//! Redis: `SET key 1 NX PX <remaining lifetime>`. Redis runs commands one at a time, so of any number of
//! replicas racing on one token exactly one `SET NX` finds the key absent; the expiry drops the record once the
//! token could not pass anyway.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::{SingleUseStore, SpentToken};
use crate::error::StoreError;

/// How the Redis store connects and how long it waits.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Prefix of every key (default `stepup:spent:`), so the records share a Redis with other data.
    pub key_prefix: String,
    /// The longest a connection attempt may take (default 1 s).
    pub connect_timeout: Duration,
    /// The longest a spend may wait for Redis's answer (default 1 s). Past it the request is refused.
    pub response_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            key_prefix: "stepup:spent:".to_owned(),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
        }
    }
}

/// Spent tokens in Redis, shared by every replica that points at it.
///
/// The connection is made at the first spend, not at construction, and remade after a failure: a backend
/// starts while Redis is down, and refuses single-use tokens (never lets them through) until it is back.
pub struct RedisStore {
    client: redis::Client,
    options: RedisOptions,
    connection: OnceCell<ConnectionManager>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: only the host goes out.
        f.debug_struct("RedisStore")
            .field("addr", &self.client.get_connection_info().addr().to_string())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for the Redis at `url` (`redis://[:password@]host:port[/db]`), default options.
    ///
    /// # Errors
    /// [`StoreError`] if the URL is not a Redis URL. Nothing is connected yet.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::with_options(url, RedisOptions::default())
    }

    /// A store for the Redis at `url` with `options`.
    ///
    /// # Errors
    /// [`StoreError`] if the URL is not a Redis URL.
    pub fn with_options(url: &str, options: RedisOptions) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError::new("redis", e))?;
        Ok(Self { client, options, connection: OnceCell::new() })
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let connect = || async {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(self.options.connect_timeout))
                .set_response_timeout(Some(self.options.response_timeout))
                .set_number_of_retries(1);
            ConnectionManager::new_with_config(self.client.clone(), config)
                .await
                .map_err(|e| StoreError::new("redis", e))
        };
        self.connection.get_or_try_init(connect).await.cloned()
    }

    fn key(&self, token: &SpentToken<'_>) -> String {
        // Length-prefixed: an issuer may contain `:`, and `a:b` + `c` must not read as `a` + `b:c`.
        format!("{}{}:{}:{}", self.options.key_prefix, token.issuer.len(), token.issuer, token.token_id)
    }
}

#[async_trait]
impl SingleUseStore for RedisStore {
    async fn spend(&self, token: SpentToken<'_>) -> Result<bool, StoreError> {
        let key = self.key(&token);
        let millis = token.remaining_secs().saturating_mul(1000);
        let spend = async {
            let mut connection = self.connection().await?;
            // `OK` when the key was set (this call spent the token), nil when it existed.
            let answer: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(millis)
                .query_async(&mut connection)
                .await
                .map_err(|e| StoreError::new("redis", e))?;
            Ok(answer.is_some())
        };
        // The connection manager has its own timeouts; this bounds the whole spend, connecting included.
        let deadline = self.options.connect_timeout + self.options.response_timeout;
        tokio::time::timeout(deadline, spend)
            .await
            .map_err(|_| StoreError::new("redis", "no answer in time"))?
    }
}
