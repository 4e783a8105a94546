//! Recovery codes: 10 per user, argon2id-hashed, single use, regenerate replaces all.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::random;
use crate::store::RecoveryCodeRow;

/// Codes per user.
pub const CODE_COUNT: usize = stepup_proto::mfa::RECOVERY_CODE_COUNT;

/// Argon2id with 8 MiB and one pass. The codes carry 50 random bits, so the hash's work factor matters less than
/// for passwords; a verification may have to try all ten hashes, and this keeps that near 100 ms.
fn hasher() -> Result<Argon2<'static>, argon2::Error> {
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8 * 1024, 1, 1, None)?))
}

/// Why codes could not be made (randomness or hashing failed: never caused by input).
#[derive(Debug, thiserror::Error)]
#[error("recovery code generation failed: {0}")]
pub struct RecoveryError(String);

/// Normalises what a user typed: trimmed, lower case.
#[must_use]
pub fn normalise(code: &str) -> String {
    code.trim().to_ascii_lowercase()
}

/// Ten new codes: the codes to show once, and the rows to store.
///
/// # Errors
/// [`RecoveryError`].
pub fn generate() -> Result<(Vec<String>, Vec<RecoveryCodeRow>), RecoveryError> {
    let hasher = hasher().map_err(|e| RecoveryError(e.to_string()))?;
    let mut codes = Vec::with_capacity(CODE_COUNT);
    let mut rows = Vec::with_capacity(CODE_COUNT);
    for _ in 0..CODE_COUNT {
        let code = random::recovery_code().map_err(|e| RecoveryError(e.to_string()))?;
        let salt = SaltString::encode_b64(&random::bytes::<16>().map_err(|e| RecoveryError(e.to_string()))?)
            .map_err(|e| RecoveryError(e.to_string()))?;
        let hash = hasher.hash_password(code.as_bytes(), &salt).map_err(|e| RecoveryError(e.to_string()))?;
        rows.push(RecoveryCodeRow {
            id: random::uuid().map_err(|e| RecoveryError(e.to_string()))?,
            code_hash: hash.to_string(),
        });
        codes.push(code);
    }
    Ok((codes, rows))
}

/// The id of the unused code that `code` matches, if any. CPU-heavy: call it off the async executor.
#[must_use]
pub fn find(code: &str, unused: &[RecoveryCodeRow]) -> Option<String> {
    let hasher = hasher().ok()?;
    let code = normalise(code);
    unused.iter().find_map(|row| {
        let hash = PasswordHash::new(&row.code_hash).ok()?;
        hasher.verify_password(code.as_bytes(), &hash).is_ok().then(|| row.id.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_verify_and_others_do_not() {
        let (codes, rows) = generate().unwrap();
        assert_eq!(codes.len(), 10);
        assert!(rows.iter().all(|r| r.code_hash.starts_with("$argon2id$")));
        assert!(rows.iter().all(|r| !r.code_hash.contains(&codes[0])));
        assert_eq!(find(&codes[3].to_ascii_uppercase(), &rows), Some(rows[3].id.clone()));
        assert_eq!(find("00000-00000", &rows), None);
        assert_eq!(find("", &rows), None);
    }
}
