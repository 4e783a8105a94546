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

use serde::Deserialize;
use stepup_core::UnixTime;
use stepup_guard::keys::{Jwks, JwksOptions, verified_payload};
use stepup_guard::{Algorithm, GuardError, Key, KeySource, Refusal as TokenRefusal, StaticKeys, Unavailable};

use crate::config::ExternalAuthConfig;

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
    // Remembered a minute past `exp`: a replica whose clock runs behind by the allowed skew still sees it valid.
    let keep_until =
        i64::try_from(grant.exp.saturating_add(crate::tokens::MAX_CLOCK_SKEW_SECS)).unwrap_or(i64::MAX);
    if !state.store().consume_token(&spent, keep_until).await? {
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

/// The keys of one environment's backend: configured ones and a JWKS cache — `stepup-guard`'s key sources, the
/// same code that app backends check elevated tokens with.
pub struct ExternalAuthKeys {
    config: ExternalAuthConfig,
    keys: Box<dyn KeySource>,
}

impl std::fmt::Debug for ExternalAuthKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalAuthKeys")
            .field("configured", &self.config.public_keys.len())
            .field("jwks_url", &self.config.jwks_url)
            .finish_non_exhaustive()
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
    /// A message naming the key that does not parse or whose algorithm is not RS256, ES256 or EdDSA, or a JWKS
    /// URL that is not an absolute http(s) URL.
    pub fn new(config: &ExternalAuthConfig) -> Result<Self, String> {
        let mut configured = Vec::new();
        for (i, key) in config.public_keys.iter().enumerate() {
            let algorithm = Algorithm::from_name(&key.algorithm).ok_or_else(|| {
                format!("key {i}: algorithm `{}` is not RS256, ES256 or EdDSA", key.algorithm)
            })?;
            let parsed = Key::from_pem(algorithm, key.public_key_pem.as_bytes(), key.kid.clone())
                .map_err(|e| format!("key {i}: {e}"))?;
            configured.push(parsed);
        }
        let configured = StaticKeys::new(configured);
        let keys: Box<dyn KeySource> = match &config.jwks_url {
            Some(url) => {
                // Fetched with a 5 s timeout, kept ten minutes, refetched for an unknown `kid` at most once a
                // minute, trusted at most a day while refreshes fail (the guard's defaults).
                let options = JwksOptions {
                    client: crate::http_client::client().ok().cloned(),
                    ..JwksOptions::default()
                };
                Box::new(Jwks::new(url, configured, options).map_err(|e| e.to_string())?)
            }
            None => Box::new(configured),
        };
        Ok(Self { config: config.clone(), keys })
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
        let claims: BackendClaims =
            verified_payload(&*self.keys, token, now.as_secs()).await.map_err(|error| match error {
                GuardError::Refused(TokenRefusal::Algorithm { alg }) => ExternalAuthError::Algorithm { alg },
                GuardError::Refused(TokenRefusal::CriticalHeader) => ExternalAuthError::CriticalHeader,
                GuardError::Refused(TokenRefusal::UnknownKey { kid }) => {
                    ExternalAuthError::UnknownKey { kid }
                }
                GuardError::Refused(TokenRefusal::Signature) => ExternalAuthError::Signature,
                GuardError::Unavailable(Unavailable::Keys { reason }) => {
                    ExternalAuthError::KeysUnavailable { reason }
                }
                _ => ExternalAuthError::Malformed,
            })?;
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
}
