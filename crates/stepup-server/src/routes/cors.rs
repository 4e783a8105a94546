//! CORS: Dynamic's client is a browser SDK, so the SDK API answers preflights and marks answers readable for the
//! origins each environment allows (`allowed_origins`; `*` in `--dev`; none by default elsewhere).
//!
//! The origin check is per environment: it reads `{environment_id}` from the request path. Requests outside
//! `/sdk/{environment_id}` (admin, health) are never allowed cross-origin.

use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::state::AppState;

/// The request headers Dynamic's client sends (read from its 1.27.1 sources), besides `Content-Type`.
const ALLOWED_HEADERS: [&str; 16] = [
    "authorization",
    "content-type",
    "x-dyn-api-version",
    "x-dynamic-platform",
    "x-dyn-request-id",
    "x-dyn-session-id",
    "x-dyn-version",
    "x-dyn-session-public-key",
    "x-dyn-elevated-access-token",
    "x-mfa-auth-token",
    "x-dyn-logout-reason",
    "x-dynamic-device-nonce",
    "x-dynamic-device-publickey",
    "x-dynamic-device-signed-nonce",
    "x-dynamic-device-registration-token",
    "x-idempotency-key",
];

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// The environment id of an `/sdk/{environment_id}/...` path.
fn environment_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/sdk/")?;
    let id = rest.split('/').next()?;
    (!id.is_empty()).then_some(id)
}

/// Whether `origin` may call the environment the request is for.
fn allowed(state: &AppState, origin: &HeaderValue, parts: &Parts) -> bool {
    let Some(env) = environment_of(parts.uri.path()).and_then(|id| state.environment(id)) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else { return false };
    env.config.allowed_origins.iter().any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin))
}

/// The CORS layer of the whole router.
pub(crate) fn layer(state: &AppState) -> CorsLayer {
    let state = state.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, parts| allowed(&state, origin, parts)))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
        // Browser code may read the step-up challenge (its scopes and max_age) and when to retry.
        .expose_headers([header::WWW_AUTHENTICATE, header::RETRY_AFTER, header::ALLOW])
        .max_age(PREFLIGHT_MAX_AGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_comes_from_the_path() {
        assert_eq!(environment_of("/sdk/dev/users"), Some("dev"));
        assert_eq!(environment_of("/sdk/dev"), Some("dev"));
        assert_eq!(environment_of("/sdk//users"), None);
        assert_eq!(environment_of("/admin/environments/dev/users"), None);
        assert_eq!(environment_of("/health"), None);
    }
}
