//! The guard: verifies a request's elevated access token for a [`Requirement`] and spends it when single-use.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::challenge::ChallengeOptions;
use crate::claims::{RawClaims, VerifiedToken};
use crate::error::{BuildError, GuardError, Refusal};
use crate::keys::{Key, KeySource, StaticKeys, verified_payload};
use crate::requirement::Requirement;
use crate::single_use::{SingleUseStore, SpentToken};

/// The longest token read; real ones are well under 2 KiB.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// How the guard tells an elevated token from other tokens signed by the same issuer (a session token, say).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenUse {
    /// The claim `token_use` must be `elevated` (the reference server's tokens).
    Claim,
    /// No marker claim (Dynamic's tokens carry none): a token whose `scope` holds the session scope
    /// `user:basic` is a session token and refused; the scope check does the rest, as session scopes and
    /// elevated scopes do not overlap.
    NotSessionScope,
}

/// Checks elevated access tokens: see the crate docs. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct Guard {
    inner: Arc<Inner>,
}

struct Inner {
    issuers: Vec<String>,
    audiences: Vec<String>,
    keys: Arc<dyn KeySource>,
    store: Arc<dyn SingleUseStore>,
    leeway: u64,
    clock_skew: u64,
    token_use: TokenUse,
    challenge: ChallengeOptions,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("issuers", &self.inner.issuers)
            .field("audiences", &self.inner.audiences)
            .field("leeway", &self.inner.leeway)
            .field("token_use", &self.inner.token_use)
            .finish_non_exhaustive()
    }
}

/// The current time, Unix seconds.
fn system_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Guard {
    /// A builder; see [`GuardBuilder`].
    pub fn builder() -> GuardBuilder {
        GuardBuilder::default()
    }

    /// Checks `token` (the `x-dyn-elevated-access-token` header's value, if the request had one) for
    /// `requirement`, and spends it when it is single-use. What a protected call runs before it acts.
    ///
    /// # Errors
    /// [`GuardError::Refused`] with the [`Refusal`] (answer the RFC 9470 challenge), or
    /// [`GuardError::Unavailable`] when keys or the single-use store are out of reach (answer 503).
    pub async fn check(
        &self,
        token: Option<&str>,
        requirement: &Requirement,
    ) -> Result<VerifiedToken, GuardError> {
        self.check_at(token, requirement, system_now()).await
    }

    /// [`Guard::check`] at `now` (Unix seconds): for servers and tests that keep their own clock.
    ///
    /// # Errors
    /// As [`Guard::check`].
    pub async fn check_at(
        &self,
        token: Option<&str>,
        requirement: &Requirement,
        now: u64,
    ) -> Result<VerifiedToken, GuardError> {
        let token = token.ok_or(Refusal::Missing)?;
        let verified = self.verify_at(token, requirement, now).await?;
        self.spend_at(&verified, now).await?;
        Ok(verified)
    }

    /// Verifies `token` for `requirement` at `now` without spending it: for callers with checks of their own
    /// to make first (a token that fails them keeps its use). Follow with [`Guard::spend_at`].
    ///
    /// # Errors
    /// As [`Guard::check`], never [`Refusal::Spent`].
    pub async fn verify_at(
        &self,
        token: &str,
        requirement: &Requirement,
        now: u64,
    ) -> Result<VerifiedToken, GuardError> {
        let raw: RawClaims = verified_payload(&*self.inner.keys, token, now).await?;
        let claims = raw.read(token)?;
        self.check_claims(&claims, requirement, now)?;
        Ok(claims)
    }

    /// Whether `other` is this guard (a clone of it), not just one configured alike.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))] // The axum extractors' question.
    pub(crate) fn is_same(&self, other: &Guard) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// [`Guard::check_claims`] by the system clock.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))] // The axum extractors' question.
    pub(crate) fn check_claims_now(
        &self,
        claims: &VerifiedToken,
        requirement: &Requirement,
    ) -> Result<(), Refusal> {
        self.check_claims(claims, requirement, system_now())
    }

    fn check_claims(
        &self,
        claims: &VerifiedToken,
        requirement: &Requirement,
        now: u64,
    ) -> Result<(), Refusal> {
        let inner = &*self.inner;
        if !inner.issuers.contains(&claims.issuer) {
            return Err(Refusal::Issuer);
        }
        if !inner.audiences.is_empty() {
            if claims.audience.is_empty() {
                return Err(Refusal::InvalidClaim { claim: "aud" });
            }
            if !claims.audience.iter().any(|aud| inner.audiences.contains(aud)) {
                return Err(Refusal::Audience);
            }
        }
        let elevated = match inner.token_use {
            TokenUse::Claim => claims.token_use.as_deref() == Some("elevated"),
            TokenUse::NotSessionScope => !claims.scopes.iter().any(|scope| scope.as_str() == "user:basic"),
        };
        if !elevated {
            return Err(Refusal::NotElevated);
        }
        if requirement.subject().is_some_and(|subject| subject != claims.subject) {
            return Err(Refusal::OtherSubject);
        }
        if let Some(session) = requirement.session_id()
            && claims.session_id.as_deref() != Some(session)
        {
            return Err(Refusal::OtherSession);
        }
        if claims.expires_at.saturating_add(inner.leeway) <= now {
            return Err(Refusal::Expired);
        }
        let latest = now.saturating_add(inner.clock_skew);
        if claims.not_before.is_some_and(|nbf| nbf > latest)
            || claims.issued_at.is_some_and(|iat| iat > latest)
        {
            return Err(Refusal::NotYetValid);
        }
        if !claims.grants(requirement.required_scope()) {
            return Err(Refusal::ScopeNotGranted { scope: requirement.required_scope().as_str().to_owned() });
        }
        let challenge = &inner.challenge;
        if let Some(max_age) = challenge.max_age_secs
            && claims.issued_at.is_none_or(|iat| iat.saturating_add(max_age) < now)
        {
            return Err(Refusal::TooOld);
        }
        if !challenge.acr_values.is_empty()
            && !claims.amr.iter().any(|method| challenge.acr_values.contains(method))
        {
            return Err(Refusal::Method);
        }
        Ok(())
    }

    /// Spends a verified single-use token (a multi-use one needs nothing) at `now`.
    ///
    /// # Errors
    /// [`Refusal::Spent`] if it was spent before, here or on another replica; [`GuardError::Unavailable`] if
    /// the store cannot answer (the request must be refused).
    pub async fn spend_at(&self, token: &VerifiedToken, now: u64) -> Result<(), GuardError> {
        if !token.single_use {
            return Ok(());
        }
        // Kept past the last moment any replica could still take the token: its expiry, the leeway, and the skew
        // allowed between clocks (a replica running fast would otherwise drop the record, by its own clock, while
        // a slower one still accepts the token).
        let keep_until =
            token.expires_at.saturating_add(self.inner.leeway).saturating_add(self.inner.clock_skew);
        let spent = SpentToken { issuer: &token.issuer, token_id: &token.token_id, keep_until, now };
        if self.inner.store.spend(spent).await? { Ok(()) } else { Err(Refusal::Spent.into()) }
    }

    /// What the RFC 9470 challenge of this guard's refusals carries besides the scope.
    #[must_use]
    pub fn challenge_options(&self) -> &ChallengeOptions {
        &self.inner.challenge
    }
}

/// Builds a [`Guard`]. Issuer, audience (or [`GuardBuilder::any_audience`]), keys and a single-use store are
/// required; everything else has a default.
#[derive(Default)]
#[must_use]
pub struct GuardBuilder {
    issuers: Vec<String>,
    audiences: Vec<String>,
    any_audience: bool,
    static_keys: Vec<Key>,
    #[cfg(feature = "jwks")]
    jwks_url: Option<(String, crate::keys::JwksOptions)>,
    source: Option<Arc<dyn KeySource>>,
    store: Option<Arc<dyn SingleUseStore>>,
    leeway: Option<Duration>,
    clock_skew: Option<Duration>,
    token_use: Option<TokenUse>,
    challenge: ChallengeOptions,
}

/// The default tolerance for `exp`: another clock running behind.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// The default tolerance for `iat` and `nbf` in the future: the issuer's clock running ahead.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);

impl GuardBuilder {
    /// Trusts tokens issued by `issuer` (`iss`, compared exactly). Call again to trust several.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Takes tokens whose `aud` names `audience` (a string, or one of a list). Call again for several.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Takes tokens whatever their `aud` (or without one): for issuers whose `iss` already names the audience,
    /// as Dynamic's does (`<host>/<environment id>`). Must be said explicitly.
    pub fn any_audience(mut self) -> Self {
        self.any_audience = true;
        self
    }

    /// Trusts this key (from PEM, or a JWK set read at start).
    pub fn key(mut self, key: Key) -> Self {
        self.static_keys.push(key);
        self
    }

    /// Trusts the keys of the JWK set at `url`: fetched at the first token, cached, refetched when stale and,
    /// at most once a minute, when a token names a `kid` the cache does not hold (a rotation).
    #[cfg(feature = "jwks")]
    pub fn jwks_url(self, url: impl Into<String>) -> Self {
        self.jwks_url_with(url, crate::keys::JwksOptions::default())
    }

    /// [`GuardBuilder::jwks_url`] with options (timeouts, cache ages, an HTTP client of your own).
    #[cfg(feature = "jwks")]
    pub fn jwks_url_with(mut self, url: impl Into<String>, options: crate::keys::JwksOptions) -> Self {
        self.jwks_url = Some((url.into(), options));
        self
    }

    /// Looks keys up in `source` (a server's own key ring, say) instead of static keys or a JWKS URL.
    pub fn key_source(mut self, source: impl KeySource) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Spends single-use tokens in `store`: [`crate::InProcessStore`] for one instance, `RedisStore` or
    /// `PostgresStore` for replicas.
    pub fn single_use_store(mut self, store: impl SingleUseStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// [`GuardBuilder::single_use_store`] with a store shared with other code.
    pub fn shared_single_use_store(mut self, store: Arc<dyn SingleUseStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// How long past `exp` a token still passes (default [`DEFAULT_LEEWAY`]; whole seconds).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = Some(leeway);
        self
    }

    /// How far in the future `iat` and `nbf` may be (default [`DEFAULT_CLOCK_SKEW`]; whole seconds).
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = Some(skew);
        self
    }

    /// How elevated tokens are told from other tokens of the issuer (default [`TokenUse::Claim`]).
    pub fn token_use(mut self, token_use: TokenUse) -> Self {
        self.token_use = Some(token_use);
        self
    }

    /// What the RFC 9470 challenge asks for besides the scope: `max_age`, `acr_values`.
    pub fn challenge(mut self, challenge: ChallengeOptions) -> Self {
        self.challenge = challenge;
        self
    }

    /// The guard.
    ///
    /// # Errors
    /// [`BuildError`] for what is missing; a JWKS URL that is not an absolute http(s) URL.
    pub fn build(mut self) -> Result<Guard, BuildError> {
        if self.issuers.is_empty() {
            return Err(BuildError::NoIssuer);
        }
        if self.audiences.is_empty() && !self.any_audience {
            return Err(BuildError::NoAudience);
        }
        let store = self.store.take().ok_or(BuildError::NoSingleUseStore)?;
        let keys = self.take_key_source()?;
        let whole_secs = |d: Option<Duration>, default: Duration| d.unwrap_or(default).as_secs();
        Ok(Guard {
            inner: Arc::new(Inner {
                issuers: self.issuers,
                audiences: self.audiences,
                keys,
                store,
                leeway: whole_secs(self.leeway, DEFAULT_LEEWAY),
                clock_skew: whole_secs(self.clock_skew, DEFAULT_CLOCK_SKEW),
                token_use: self.token_use.unwrap_or(TokenUse::Claim),
                challenge: self.challenge,
            }),
        })
    }

    /// The key source: the one given, or the static keys (with the JWKS URL's keys after them).
    fn take_key_source(&mut self) -> Result<Arc<dyn KeySource>, BuildError> {
        if let Some(source) = self.source.take() {
            #[cfg(feature = "jwks")]
            let jwks = self.jwks_url.is_some();
            #[cfg(not(feature = "jwks"))]
            let jwks = false;
            // A key source replaces the others; keys given besides it would be silently ignored.
            if !self.static_keys.is_empty() || jwks {
                return Err(BuildError::ConflictingKeys);
            }
            return Ok(source);
        }
        let configured = StaticKeys::new(std::mem::take(&mut self.static_keys));
        #[cfg(feature = "jwks")]
        if let Some((url, options)) = self.jwks_url.take() {
            return Ok(Arc::new(crate::keys::Jwks::new(&url, configured, options)?));
        }
        if configured.is_empty() {
            return Err(BuildError::NoKeys);
        }
        Ok(Arc::new(configured))
    }
}

/// Presets for the two issuers the engine talks to.
impl GuardBuilder {
    /// Tokens of the stepup reference server at `base_url` (e.g. `http://127.0.0.1:8080`) for environment
    /// `environment_id`: issuer `stepup-reference-server`, audience the environment, keys from its JWKS
    /// (`{base_url}/sdk/{environment_id}/.well-known/jwks`), `token_use` must be `elevated`.
    #[cfg(feature = "jwks")]
    pub fn reference_server(base_url: &str, environment_id: &str) -> Self {
        let base = base_url.trim_end_matches('/');
        Self::default()
            .issuer(REFERENCE_SERVER_ISSUER)
            .audience(environment_id)
            .jwks_url(format!("{base}/sdk/{environment_id}/.well-known/jwks"))
            .token_use(TokenUse::Claim)
    }

    /// Tokens Dynamic issued for environment `environment_id`: issuer `<api host>/<environment id>` for
    /// Dynamic's API hosts (`app.dynamicauth.com`, `app.dynamic.xyz`), any audience (the issuer names the
    /// environment), keys from Dynamic's JWKS for the environment, told from session tokens by their scope
    /// ([`TokenUse::NotSessionScope`]: Dynamic's tokens carry no use marker).
    #[cfg(feature = "jwks")]
    pub fn dynamic(environment_id: &str) -> Self {
        Self::default()
            .issuer(format!("app.dynamicauth.com/{environment_id}"))
            .issuer(format!("app.dynamic.xyz/{environment_id}"))
            .any_audience()
            .jwks_url(format!("https://app.dynamicauth.com/api/v0/sdk/{environment_id}/.well-known/jwks"))
            .token_use(TokenUse::NotSessionScope)
    }
}

/// The issuer (`iss`) of the reference server's tokens.
pub const REFERENCE_SERVER_ISSUER: &str = "stepup-reference-server";
