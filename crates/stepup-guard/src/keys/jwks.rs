//! Keys from a JWKS URL: fetched with a timeout, cached, refreshed when stale and, at most once a minute, when
//! a token names a `kid` the cache does not hold (the issuer rotated its key).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Algorithm, Key, KeySource, StaticKeys};
use crate::error::{KeyError, Unavailable};

/// How a [`Jwks`] fetches and caches.
#[derive(Debug, Clone)]
pub struct JwksOptions {
    /// The longest a fetch may take (default 5 s).
    pub timeout: Duration,
    /// How long fetched keys are used before they are fetched again (default 10 min).
    pub max_age: Duration,
    /// How long fetched keys stay trusted while every refresh fails (default 24 h): a key the issuer removed
    /// (after a compromise, say) must not stay good for as long as its JWKS endpoint is down.
    pub max_stale: Duration,
    /// The least time between two fetches (default 60 s): a stream of tokens with made-up `kid`s must not
    /// become a stream of fetches.
    pub min_refresh: Duration,
    /// The largest document read (default 64 KiB).
    pub max_bytes: usize,
    /// The HTTP client to fetch with; `None` builds one (rustls with the platform's verifier, no redirects).
    pub client: Option<reqwest::Client>,
}

impl Default for JwksOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_age: Duration::from_secs(10 * 60),
            max_stale: Duration::from_secs(24 * 60 * 60),
            min_refresh: Duration::from_secs(60),
            max_bytes: 64 * 1024,
            client: None,
        }
    }
}

/// Keys fetched from the URL, and when.
#[derive(Default)]
struct Cache {
    keys: Vec<Arc<Key>>,
    fetched_at: Option<u64>,
    attempted_at: Option<u64>,
}

/// Configured keys plus the keys of a JWKS URL.
///
/// Checks never wait for a fetch when the cache holds a fitting key: the cache is read under a short lock never
/// held across I/O, and one fetch at a time runs behind a separate gate. A stale cache is refreshed by one
/// request while the others go on with the cached keys; a token naming an unknown `kid` waits for the fetch it
/// causes (at most one a minute) or, in between, is refused at once.
pub struct Jwks {
    url: String,
    configured: StaticKeys,
    options: JwksOptions,
    cache: std::sync::RwLock<Cache>,
    fetch_gate: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("url", &self.url)
            .field("configured", &self.configured)
            .finish_non_exhaustive()
    }
}

impl Jwks {
    /// The keys at `url`, after the `configured` ones.
    ///
    /// # Errors
    /// [`KeyError::Url`] unless `url` is an absolute `http` or `https` URL.
    pub fn new(url: &str, configured: StaticKeys, options: JwksOptions) -> Result<Self, KeyError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| KeyError::Url(url.to_owned()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(KeyError::Url(url.to_owned()));
        }
        let loopback = match parsed.host_str() {
            Some(host) => {
                let bare = host.trim_start_matches('[').trim_end_matches(']');
                bare.eq_ignore_ascii_case("localhost")
                    || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
            }
            None => false,
        };
        // Keys over plain HTTP could be swapped by anyone on the path: only on this machine.
        if parsed.scheme() == "http" && !loopback {
            return Err(KeyError::Url(url.to_owned()));
        }
        Ok(Self {
            url: url.to_owned(),
            configured,
            options,
            cache: std::sync::RwLock::new(Cache::default()),
            fetch_gate: tokio::sync::Mutex::new(()),
        })
    }

    async fn fetch(&self) -> Result<Vec<Arc<Key>>, String> {
        let client = match &self.options.client {
            Some(client) => client.clone(),
            None => default_client()?,
        };
        let request = client.get(&self.url).timeout(self.options.timeout);
        let mut response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                "the JWKS request timed out".to_owned()
            } else {
                format!("the JWKS request failed: {e}")
            }
        })?;
        if !response.status().is_success() {
            return Err(format!("the JWKS URL answered {}", response.status()));
        }
        let max = self.options.max_bytes;
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err("the JWKS document is too large".to_owned());
        }
        // Read chunk by chunk and stop past the limit: a chunked answer has no length to check up front.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("reading the JWKS failed: {e}"))? {
            if body.len() + chunk.len() > max {
                return Err("the JWKS document is too large".to_owned());
            }
            body.extend_from_slice(&chunk);
        }
        let keys = Key::from_jwks_json(&body).map_err(|e| e.to_string())?;
        Ok(keys.into_iter().map(Arc::new).collect())
    }
}

/// The client used when none is given: rustls on `ring` with the platform's certificate verifier, no
/// redirects (a redirect could send the fetch elsewhere). Built once per process.
fn default_client() -> Result<reqwest::Client, String> {
    static CLIENT: std::sync::OnceLock<Result<reqwest::Client, String>> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            use rustls_platform_verifier::BuilderVerifierExt as _;
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_platform_verifier()
                .map_err(|e| e.to_string())?
                .with_no_client_auth();
            reqwest::Client::builder()
                .tls_backend_preconfigured(tls)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string())
        })
        .clone()
}

/// What a check does with the cache as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Use the cached keys.
    Serve,
    /// Use them, and refresh the cache if no other request is refreshing it (stale, but a key fits).
    ServeAndRefresh,
    /// Fetch first (no fitting key, and a fetch is allowed).
    Fetch,
    /// No key will come: the JWKS was never fetched and may not be fetched yet.
    Unavailable,
}

impl Jwks {
    fn secs(d: Duration) -> u64 {
        d.as_secs()
    }

    fn plan(
        &self,
        cache: &Cache,
        kid: Option<&str>,
        algorithm: Algorithm,
        configured_fit: bool,
        now: u64,
    ) -> Plan {
        let age = |at: Option<u64>| at.map(|at| now.saturating_sub(at));
        let too_old = age(cache.fetched_at).is_some_and(|age| age >= Self::secs(self.options.max_stale));
        let fits = !too_old && cache.keys.iter().any(|key| key.fits(kid, algorithm));
        let stale = age(cache.fetched_at).is_none_or(|age| age >= Self::secs(self.options.max_age));
        let may_fetch = age(cache.attempted_at).is_none_or(|age| age >= Self::secs(self.options.min_refresh));
        // A `kid` the cache does not hold is a rotation to pick up (even when a configured key of the algorithm
        // might fit); a token without one is looked for in the cache only.
        let unknown = !fits && (kid.is_some() || !configured_fit);
        match (unknown, stale, may_fetch) {
            (true, _, true) => Plan::Fetch,
            (false, true, true) => Plan::ServeAndRefresh,
            (true, _, false) if cache.fetched_at.is_none() && !configured_fit => Plan::Unavailable,
            _ => Plan::Serve,
        }
    }

    /// Fetches and stores the keys; `Err` only when nothing usable is cached.
    async fn refresh(&self, now: u64, nothing_else: bool) -> Result<(), Unavailable> {
        if let Ok(mut cache) = self.cache.write() {
            cache.attempted_at = Some(now);
        }
        match self.fetch().await {
            Ok(fetched) => {
                if let Ok(mut cache) = self.cache.write() {
                    cache.keys = fetched;
                    cache.fetched_at = Some(now);
                }
                Ok(())
            }
            // Keys fetched before stay usable when a refresh fails (up to `max_stale`); with none at all the
            // token cannot be checked.
            Err(reason) => {
                let cached = self.cache.read().map(|cache| !cache.keys.is_empty()).unwrap_or(false);
                if cached || !nothing_else {
                    tracing::warn!(%reason, url = %self.url, "refreshing the JWKS failed; using the cached keys");
                    Ok(())
                } else {
                    Err(Unavailable::Keys { reason })
                }
            }
        }
    }

    fn cached(&self, kid: Option<&str>, algorithm: Algorithm, now: u64) -> Vec<Arc<Key>> {
        let Ok(cache) = self.cache.read() else { return Vec::new() };
        let too_old =
            cache.fetched_at.is_some_and(|at| now.saturating_sub(at) >= Self::secs(self.options.max_stale));
        if too_old {
            return Vec::new();
        }
        cache.keys.iter().filter(|key| key.fits(kid, algorithm)).cloned().collect()
    }

    fn current_plan(&self, kid: Option<&str>, algorithm: Algorithm, configured_fit: bool, now: u64) -> Plan {
        match self.cache.read() {
            Ok(cache) => self.plan(&cache, kid, algorithm, configured_fit, now),
            Err(_) => Plan::Unavailable,
        }
    }
}

#[async_trait]
impl KeySource for Jwks {
    async fn keys_for(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
        now: u64,
    ) -> Result<Vec<Arc<Key>>, Unavailable> {
        let mut keys = self.configured.matching(kid, algorithm);
        let configured_fit = !keys.is_empty();
        match self.current_plan(kid, algorithm, configured_fit, now) {
            Plan::Serve => {}
            Plan::Unavailable => {
                return Err(Unavailable::Keys {
                    reason: "the last JWKS fetch failed less than a minute ago".to_owned(),
                });
            }
            Plan::ServeAndRefresh => {
                // Whoever takes the gate refreshes; the others use the cached keys meanwhile.
                if let Ok(_gate) = self.fetch_gate.try_lock()
                    && self.current_plan(kid, algorithm, configured_fit, now) == Plan::ServeAndRefresh
                {
                    self.refresh(now, !configured_fit).await?;
                }
            }
            Plan::Fetch => {
                // One fetch at a time: requests for an unknown key wait for it, then look again.
                let _gate = self.fetch_gate.lock().await;
                if self.current_plan(kid, algorithm, configured_fit, now) == Plan::Fetch {
                    self.refresh(now, !configured_fit).await?;
                }
            }
        }
        keys.extend(self.cached(kid, algorithm, now));
        Ok(keys)
    }
}
