//! The code an authenticator app would show: the demo's stand-in for the person's phone.

use totp_rs::{Algorithm, Builder, Secret};

use crate::DemoError;

/// The 6-digit TOTP code (SHA-1, 30-second steps, as the server registers devices) for the base32 `secret` at
/// Unix time `at`.
///
/// # Errors
/// [`DemoError::Totp`] when `secret` is not base32 or too short.
pub fn totp_code(secret: &str, at: u64) -> Result<String, DemoError> {
    let secret = Secret::try_from_base32(secret).map_err(|e| DemoError::Totp(e.to_string()))?;
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(secret)
        .build()
        .map_err(|e| DemoError::Totp(e.to_string()))?;
    Ok(totp.generate(at).to_string())
}

/// Seconds since the Unix epoch (0 if the clock is before it).
#[must_use]
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vector() {
        // RFC 6238 appendix B: the ASCII secret "12345678901234567890", T = 59 s -> 94287082 (8 digits).
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(totp_code(secret, 59).unwrap(), "287082");
    }

    #[test]
    fn a_secret_that_is_not_base32_is_refused() {
        assert!(matches!(totp_code("not base32!", 59), Err(DemoError::Totp(_))));
    }
}
