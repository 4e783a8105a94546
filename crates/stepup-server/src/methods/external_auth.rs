//! External-auth elevation (`POST /externalAuth/verify`, Dynamic's `requestExternalAuthElevatedToken`): a short
//! JWT signed by the app's own backend for the signed-in user, checked against the keys the environment trusts
//! (docs/design.md §8), its `jti` spent once across replicas, answered with an elevated token for its scopes
//! (`amr: external`); and "the app's backend" in the step-up offer.
//!
//! Every key is pinned to one algorithm (RS256, ES256 or EdDSA), so a token cannot choose how it is checked:
//! `alg: none`, HMAC keyed with a public key and any algorithm the key was not configured for are refused before
//! a signature is looked at. The claims are then checked against the server's clock: `exp` in the future and
//! at most `max_lifetime_secs` away (from now, and from `iat`), `nbf` past, `aud` naming the environment, `iss`
//! when configured, and `sub`, `jti`, `scope` present. The `jti` is spent by the route, in the database, so a
//! token works once across replicas.
//!
//! Keys come from the configuration or from a JWKS URL. The JWKS is fetched on first use (timeout 5 s, at most
//! 64 KiB, read chunk by chunk), kept for ten minutes, and fetched again early, at most once a minute, when a
//! token names a `kid` the cache does not hold (a key rotation); a second token with an unknown `kid` in that
//! minute is refused without a request, so tokens with made-up `kid`s cannot make the server hammer the backend.
//! When refreshes fail, the keys fetched last stay in use for at most a day. One fetch runs at a time per
//! environment; requests wait for it (at most the 5 s timeout).

use std::sync::OnceLock;
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use stepup_core::UnixTime;
use tokio::sync::Mutex;

use crate::config::ExternalAuthConfig;
use crate::tokens::peek_header;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use stepup_core::{Method, Route};
use stepup_proto::{
    CredentialFormat, ErrorCode, ExternalAuthVerifyRequest, StepUpCredential, TokenScope, VerifyResponse,
};
use utoipa::openapi::HttpMethod;

use super::Served;
use crate::auth::{ApiJson, Session};
use crate::error::ApiError;
use crate::routes::openapi::{Caller, Document};
use crate::services::offer::Account;
use crate::services::{Refusal, ServiceError, step_up};
use crate::state::AppState;

/// The id under which elevation by the app's backend is offered.
pub(crate) const EXTERNAL_AUTH_CREDENTIAL_ID: &str = "external-auth";

pub(super) const SERVED: Served = Served {
    methods: &[Method::ExternalAuth],
    routes,
    document,
    verifications: &[("/externalAuth/verify", "external_auth")],
};

fn routes(router: Router<AppState>) -> Router<AppState> {
    router.route("/externalAuth/verify", post(verify))
}

fn document(doc: &mut Document) {
    doc.sdk(HttpMethod::Post, "/externalAuth/verify", "Step up by the app backend's JWT", Caller::SignedIn)
        .body::<ExternalAuthVerifyRequest>(false)
        .answers::<VerifyResponse>()
        .add();
}

/// "The app's backend", when the environment trusts one for this user (by default not for users with MFA).
pub(super) fn offer(account: &Account<'_>) -> Vec<StepUpCredential> {
    let trusted = account
        .env
        .external_auth
        .as_ref()
        .is_some_and(|keys| !account.has_mfa() || keys.config().allow_mfa_users);
    if !trusted {
        return vec![];
    }
    vec![StepUpCredential {
        id: EXTERNAL_AUTH_CREDENTIAL_ID.into(),
        format: CredentialFormat::ExternalUser,
        kind: None,
        alias: Some("The app's backend".into()),
    }]
}

/// `POST /externalAuth/verify` `{jwt}`.
async fn verify(
    State(state): State<AppState>,
    session: Session,
    ApiJson(request): ApiJson<ExternalAuthVerifyRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    Ok(Json(step_up(&state, &session, request.jwt.expose_secret()).await?))
}

/// Elevation by the backend's `jwt`: checked, its scopes checked before its `jti` is spent (a refused token
/// can be fixed and sent again), then spent once across replicas.
///
/// # Errors
/// [`ExternalAuthError`] (every check of the token, and `Replayed`), [`ServiceError::StepUpDisabled`],
/// [`ServiceError::InvalidScopes`], [`ServiceError::MfaRequired`] for a user with MFA where the environment does
/// not allow it, [`ServiceError::Storage`].
pub async fn step_up(state: &AppState, session: &Session, jwt: &str) -> Result<VerifyResponse, ServiceError> {
    let keys =
        session.env.external_auth.as_ref().ok_or(ServiceError::refused(ExternalAuthError::NotConfigured))?;
    if !session.env.config.policy.step_up_enabled {
        return Err(ServiceError::StepUpDisabled);
    }
    let grant = keys.check(jwt, session.env.id(), state.now()).await.map_err(ServiceError::refused)?;
    if grant.subject != session.user_id {
        return Err(ServiceError::refused(ExternalAuthError::Subject));
    }
    let scopes: Vec<TokenScope> = grant.scopes.iter().map(|s| TokenScope::parse(s)).collect();
    step_up::check_scopes(Some(&scopes))?;
    if !keys.config().allow_mfa_users && step_up::has_mfa(state, &session.user_id).await? {
        return Err(ServiceError::MfaRequired(Route::External));
    }
    // Length-prefixed, so no environment id and jti pair can spell another's.
    let spent = format!("external:{}:{}:{}", session.env.id().len(), session.env.id(), grant.jti);
    let exp = i64::try_from(grant.exp).unwrap_or(i64::MAX);
    if !state.store().consume_token(&spent, exp).await? {
        return Err(ServiceError::refused(ExternalAuthError::Replayed));
    }
    tracing::info!(user = %session.user_id, "elevated by external auth");
    step_up::respond(state, session, Some(&scopes), Method::ExternalAuth).await
}

impl Refusal for ExternalAuthError {
    fn code(&self) -> ErrorCode {
        match self {
            ExternalAuthError::KeysUnavailable { .. } => ErrorCode::ExternalAuthUnavailable,
            _ => ErrorCode::InvalidExternalAuth,
        }
    }

    fn unavailable(&self) -> bool {
        matches!(self, ExternalAuthError::KeysUnavailable { .. })
    }

    fn message(&self) -> String {
        match self {
            // The reason (a TLS or DNS error, say) goes to the log, not to the caller.
            ExternalAuthError::KeysUnavailable { .. } => {
                "The app backend's keys cannot be fetched right now; try again later".to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// How long a fetched JWKS is used before it is fetched again.
const JWKS_MAX_AGE_SECS: u64 = 10 * 60;
/// How long fetched keys stay trusted while every refresh fails: a key the backend removed (after a compromise,
/// say) must not stay good for as long as its JWKS endpoint is down.
const JWKS_MAX_STALE_SECS: u64 = 24 * 60 * 60;
/// The least time between two fetches of the JWKS.
const JWKS_MIN_REFRESH_SECS: u64 = 60;
/// The longest a JWKS request may take.
const JWKS_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest JWKS document read.
const JWKS_MAX_BYTES: usize = 64 * 1024;
/// How far a backend's clock may run ahead of the server's (`iat`).
const CLOCK_SKEW_SECS: u64 = 60;
/// The longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;

/// Why a backend's token was refused. Each is a 422 `invalid_external_auth` whose message is this text, except
/// [`ExternalAuthError::KeysUnavailable`] (503: the server could not fetch the keys; the token may be fine).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExternalAuthError {
    /// The environment trusts no backend.
    #[error("external auth is not configured for this environment")]
    NotConfigured,
    /// Not a JWT.
    #[error("the external token is not a JWT")]
    Malformed,
    /// An algorithm no key is pinned to (`none`, `HS256`, ...).
    #[error("the external token's algorithm `{alg}` is not accepted")]
    Algorithm {
        /// The header's `alg`.
        alg: String,
    },
    /// The header has `crit` parameters, which this server does not implement (RFC 7515 §4.1.11).
    #[error("the external token's header has critical parameters this server does not implement")]
    CriticalHeader,
    /// No trusted key has the token's `kid` and algorithm.
    #[error("no trusted key matches the external token (kid {kid:?})")]
    UnknownKey {
        /// The header's `kid`.
        kid: Option<String>,
    },
    /// The signature does not verify with the key.
    #[error("the external token's signature does not verify")]
    Signature,
    /// A required claim is missing or has the wrong type.
    #[error("the external token has no valid `{claim}` claim")]
    MissingClaim {
        /// The claim.
        claim: &'static str,
    },
    /// `exp` is past.
    #[error("the external token has expired")]
    Expired,
    /// `nbf` (or `iat`, beyond the allowed skew) is in the future.
    #[error("the external token is not valid yet")]
    NotYetValid,
    /// `exp` is further away than the configured maximum lifetime.
    #[error("the external token lives longer than the allowed {max_secs} seconds")]
    LifetimeTooLong {
        /// The configured maximum.
        max_secs: u64,
    },
    /// `aud` does not name this environment.
    #[error("the external token is for another audience")]
    Audience,
    /// `iss` is not the configured issuer.
    #[error("the external token is from another issuer")]
    Issuer,
    /// `sub` is not the signed-in user.
    #[error("the external token is for another user")]
    Subject,
    /// The `jti` was spent before.
    #[error("the external token was already used")]
    Replayed,
    /// The JWKS could not be fetched or read.
    #[error("the backend's keys could not be fetched: {reason}")]
    KeysUnavailable {
        /// What failed.
        reason: String,
    },
}

/// What a checked backend token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalGrant {
    /// The user (`sub`).
    pub subject: String,
    /// The scopes (`scope`, space-delimited), as sent.
    pub scopes: Vec<String>,
    /// The token id.
    pub jti: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
}

/// A key the environment trusts, pinned to its algorithm.
#[derive(Clone)]
struct TrustedKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Keys fetched from the JWKS URL, and when.
#[derive(Default)]
struct JwksCache {
    keys: Vec<TrustedKey>,
    fetched_at: Option<UnixTime>,
    attempted_at: Option<UnixTime>,
}

/// The keys of one environment's backend: configured ones and a JWKS cache.
pub struct ExternalAuthKeys {
    config: ExternalAuthConfig,
    configured: Vec<TrustedKey>,
    jwks: Option<(String, Mutex<JwksCache>)>,
}

impl std::fmt::Debug for ExternalAuthKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalAuthKeys")
            .field("configured", &self.configured.len())
            .field("jwks_url", &self.jwks.as_ref().map(|(url, _)| url))
            .finish_non_exhaustive()
    }
}

fn pinned_algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "RS256" => Some(Algorithm::RS256),
        "ES256" => Some(Algorithm::ES256),
        "EdDSA" => Some(Algorithm::EdDSA),
        _ => None,
    }
}

/// The claims read from a backend token; every field is checked by hand, so a wrong type reads as missing.
#[derive(Deserialize)]
struct BackendClaims {
    #[serde(default)]
    sub: Option<serde_json::Value>,
    #[serde(default)]
    aud: Option<serde_json::Value>,
    #[serde(default)]
    iss: Option<serde_json::Value>,
    #[serde(default)]
    exp: Option<serde_json::Value>,
    #[serde(default)]
    nbf: Option<serde_json::Value>,
    #[serde(default)]
    iat: Option<serde_json::Value>,
    #[serde(default)]
    jti: Option<serde_json::Value>,
    #[serde(default)]
    scope: Option<serde_json::Value>,
}

fn string_claim(value: Option<&serde_json::Value>, claim: &'static str) -> Result<String, ExternalAuthError> {
    match value {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(ExternalAuthError::MissingClaim { claim }),
    }
}

fn time_claim(
    value: Option<&serde_json::Value>,
    claim: &'static str,
) -> Result<Option<u64>, ExternalAuthError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        // NumericDate may carry a fraction (RFC 7519 §2); whole seconds are enough here.
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64))
            .map(Some)
            .ok_or(ExternalAuthError::MissingClaim { claim }),
        Some(_) => Err(ExternalAuthError::MissingClaim { claim }),
    }
}

impl ExternalAuthKeys {
    /// Reads the configured keys (PEM) and prepares the JWKS cache.
    ///
    /// # Errors
    /// A message naming the key that does not parse or whose algorithm is not RS256, ES256 or EdDSA.
    pub fn new(config: &ExternalAuthConfig) -> Result<Self, String> {
        let mut configured = Vec::new();
        for (i, key) in config.public_keys.iter().enumerate() {
            let algorithm = pinned_algorithm(&key.algorithm).ok_or_else(|| {
                format!("key {i}: algorithm `{}` is not RS256, ES256 or EdDSA", key.algorithm)
            })?;
            let pem = key.public_key_pem.as_bytes();
            let parsed = match algorithm {
                Algorithm::RS256 => DecodingKey::from_rsa_pem(pem),
                Algorithm::ES256 => DecodingKey::from_ec_pem(pem),
                _ => DecodingKey::from_ed_pem(pem),
            }
            .map_err(|e| format!("key {i}: not a {} public key in PEM: {e}", key.algorithm))?;
            configured.push(TrustedKey { kid: key.kid.clone(), algorithm, key: parsed });
        }
        let jwks = config.jwks_url.clone().map(|url| (url, Mutex::new(JwksCache::default())));
        Ok(Self { config: config.clone(), configured, jwks })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ExternalAuthConfig {
        &self.config
    }

    /// Checks a backend token for environment `audience` at `now`. The caller spends the `jti` and compares the
    /// subject with the session's user.
    ///
    /// # Errors
    /// [`ExternalAuthError`] for each way the token can be wrong, or `KeysUnavailable` when the JWKS cannot be
    /// fetched.
    pub async fn check(
        &self,
        token: &str,
        audience: &str,
        now: UnixTime,
    ) -> Result<ExternalGrant, ExternalAuthError> {
        let header = peek_header(token).map_err(|_| ExternalAuthError::Malformed)?;
        // RFC 7515 §4.1.11: a header parameter the verifier must understand; none is understood here.
        if header.crit.is_some() {
            return Err(ExternalAuthError::CriticalHeader);
        }
        let algorithm = pinned_algorithm(&header.alg)
            .ok_or_else(|| ExternalAuthError::Algorithm { alg: header.alg.clone() })?;
        let keys = self.keys_for(header.kid.as_deref(), algorithm, now).await?;
        if keys.is_empty() {
            return Err(ExternalAuthError::UnknownKey { kid: header.kid });
        }
        let mut validation = Validation::new(algorithm);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        let mut claims = None;
        for key in &keys {
            match jsonwebtoken::decode::<BackendClaims>(token, &key.key, &validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(error) => match error.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => {}
                    jsonwebtoken::errors::ErrorKind::Json(_) => return Err(ExternalAuthError::Malformed),
                    _ => return Err(ExternalAuthError::Signature),
                },
            }
        }
        let claims = claims.ok_or(ExternalAuthError::Signature)?;
        self.check_claims(&claims, audience, now)
    }

    fn check_claims(
        &self,
        claims: &BackendClaims,
        audience: &str,
        now: UnixTime,
    ) -> Result<ExternalGrant, ExternalAuthError> {
        let now = now.as_secs();
        let max = self.config.max_lifetime_secs;
        let exp = time_claim(claims.exp.as_ref(), "exp")?
            .ok_or(ExternalAuthError::MissingClaim { claim: "exp" })?;
        if exp <= now {
            return Err(ExternalAuthError::Expired);
        }
        if exp - now > max {
            return Err(ExternalAuthError::LifetimeTooLong { max_secs: max });
        }
        if time_claim(claims.nbf.as_ref(), "nbf")?.is_some_and(|nbf| nbf > now) {
            return Err(ExternalAuthError::NotYetValid);
        }
        if let Some(iat) = time_claim(claims.iat.as_ref(), "iat")? {
            if iat > now + CLOCK_SKEW_SECS {
                return Err(ExternalAuthError::NotYetValid);
            }
            if exp.saturating_sub(iat) > max {
                return Err(ExternalAuthError::LifetimeTooLong { max_secs: max });
            }
        }
        let audience_ok = match &claims.aud {
            Some(serde_json::Value::String(aud)) => aud == audience,
            Some(serde_json::Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
            _ => return Err(ExternalAuthError::MissingClaim { claim: "aud" }),
        };
        if !audience_ok {
            return Err(ExternalAuthError::Audience);
        }
        if let Some(issuer) = &self.config.issuer
            && claims.iss.as_ref().and_then(serde_json::Value::as_str) != Some(issuer.as_str())
        {
            return Err(ExternalAuthError::Issuer);
        }
        let subject = string_claim(claims.sub.as_ref(), "sub")?;
        let jti = string_claim(claims.jti.as_ref(), "jti")?;
        if jti.len() > MAX_JTI_LEN {
            return Err(ExternalAuthError::MissingClaim { claim: "jti" });
        }
        let scope = string_claim(claims.scope.as_ref(), "scope")?;
        let scopes: Vec<String> = scope.split_ascii_whitespace().map(str::to_owned).collect();
        if scopes.is_empty() {
            return Err(ExternalAuthError::MissingClaim { claim: "scope" });
        }
        Ok(ExternalGrant { subject, scopes, jti, exp })
    }

    /// The trusted keys that may have signed a token with this `kid` and algorithm: configured ones first, then
    /// the JWKS (fetched when stale, or early when the `kid` is unknown and the last fetch is a minute old).
    async fn keys_for(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
        now: UnixTime,
    ) -> Result<Vec<TrustedKey>, ExternalAuthError> {
        // A key with a `kid` takes only tokens that name it; a key without one takes any token of its algorithm.
        let fits = |key: &TrustedKey| {
            key.algorithm == algorithm && key.kid.as_deref().is_none_or(|own| Some(own) == kid)
        };
        let mut keys: Vec<TrustedKey> = self.configured.iter().filter(|k| fits(k)).cloned().collect();
        let Some((url, cache)) = &self.jwks else { return Ok(keys) };
        // One fetch at a time: concurrent requests wait for it rather than each fetching.
        let mut cache = cache.lock().await;
        let age = |at: Option<UnixTime>| at.map(|at| now.as_secs().saturating_sub(at.as_secs()));
        if age(cache.fetched_at).is_some_and(|age| age >= JWKS_MAX_STALE_SECS) {
            cache.keys.clear();
        }
        let stale = age(cache.fetched_at).is_none_or(|age| age >= JWKS_MAX_AGE_SECS);
        // A `kid` the cache does not hold is a rotation to pick up (even when a configured key of the algorithm
        // might fit); a token without one is looked for in the cache only.
        let unknown = !cache.keys.iter().any(&fits) && (kid.is_some() || keys.is_empty());
        let may_fetch = age(cache.attempted_at).is_none_or(|age| age >= JWKS_MIN_REFRESH_SECS);
        if (stale || unknown) && may_fetch {
            cache.attempted_at = Some(now);
            match fetch_jwks(url).await {
                Ok(fetched) => {
                    cache.keys = fetched;
                    cache.fetched_at = Some(now);
                }
                // Keys fetched before stay usable when a refresh fails; with none at all the token cannot be
                // checked.
                Err(reason) if cache.keys.is_empty() && keys.is_empty() => {
                    return Err(ExternalAuthError::KeysUnavailable { reason });
                }
                Err(reason) => {
                    tracing::warn!(%reason, "refreshing the external-auth JWKS failed; using the cached keys");
                }
            }
        } else if cache.fetched_at.is_none() && keys.is_empty() {
            return Err(ExternalAuthError::KeysUnavailable {
                reason: "the last JWKS fetch failed less than a minute ago".to_owned(),
            });
        }
        keys.extend(cache.keys.iter().filter(|k| fits(k)).cloned());
        Ok(keys)
    }
}

/// The HTTP client for JWKS fetches: rustls on `ring` with the platform's verifier, no redirects, short
/// timeouts. Built once per process.
fn http_client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            crate::http_client::builder()?
                .timeout(JWKS_TIMEOUT)
                .connect_timeout(JWKS_TIMEOUT)
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Fetches and reads a JWKS: the keys it can use (RSA, P-256 and Ed25519 signing keys), each pinned to its `alg`
/// or, without one, to the algorithm its key type implies.
async fn fetch_jwks(url: &str) -> Result<Vec<TrustedKey>, String> {
    let mut response = http_client()?.get(url).send().await.map_err(|e| {
        if e.is_timeout() {
            "the JWKS request timed out".to_owned()
        } else {
            format!("the JWKS request failed: {e}")
        }
    })?;
    if !response.status().is_success() {
        return Err(format!("the JWKS URL answered {}", response.status()));
    }
    if response.content_length().is_some_and(|n| n > JWKS_MAX_BYTES as u64) {
        return Err("the JWKS document is too large".to_owned());
    }
    // Read chunk by chunk and stop past the limit: a chunked answer has no length to check up front.
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("reading the JWKS failed: {e}"))? {
        if body.len() + chunk.len() > JWKS_MAX_BYTES {
            return Err("the JWKS document is too large".to_owned());
        }
        body.extend_from_slice(&chunk);
    }
    let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("the JWKS is not a JWK set: {e}"))?;
    Ok(set
        .keys
        .iter()
        .filter(|jwk| !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)))
        .filter_map(|jwk| {
            let implied = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
                AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => Algorithm::EdDSA,
                _ => return None,
            };
            let algorithm = match jwk.common.key_algorithm {
                None => implied,
                Some(KeyAlgorithm::RS256) if implied == Algorithm::RS256 => Algorithm::RS256,
                Some(KeyAlgorithm::ES256) if implied == Algorithm::ES256 => Algorithm::ES256,
                Some(KeyAlgorithm::EdDSA) if implied == Algorithm::EdDSA => Algorithm::EdDSA,
                Some(_) => return None,
            };
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some(TrustedKey { kid: jwk.common.key_id.clone(), algorithm, key })
        })
        .collect())
}
