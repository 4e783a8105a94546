//! The server's outgoing HTTP client (app backends' JWKS, SMS gateways): rustls on `ring` with the platform's
//! certificate verifier, no redirects (a redirect could move a signed request or a secret elsewhere).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A client builder with this server's TLS and redirect settings.
///
/// # Errors
/// The TLS configuration's error, as text (the platform verifier could not load).
pub fn builder() -> Result<reqwest::ClientBuilder, String> {
    use rustls_platform_verifier::BuilderVerifierExt as _;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_platform_verifier()
        .map_err(|e| e.to_string())?
        .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none()))
}

/// The shared client for deliveries (each request sets its own timeout). Built once per process.
///
/// # Errors
/// As [`builder`].
pub fn client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT.get_or_init(|| builder()?.build().map_err(|e| e.to_string())).as_ref().map_err(Clone::clone)
}
