//! Recovery codes: step-up by one (`POST /users/mfa/auth/recovery`, spent on success), the codes themselves (10
//! per user, argon2id-hashed, single use; regenerating replaces all: `services::recovery_codes`), and "N recovery
//! codes left" in the step-up offer.

use std::cell::RefCell;

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use stepup_core::Method;
use stepup_proto::{CredentialFormat, RecoveryAuthRequest, StepUpCredential, VerifyResponse};
use utoipa::openapi::HttpMethod;

use super::Served;
use crate::auth::{ApiJson, Session};
use crate::error::ApiError;
use crate::random;
use crate::routes::openapi::{Caller, Document};
use crate::services::offer::Account;
use crate::services::{ServiceError, lockout, step_up};
use crate::state::AppState;
use crate::store::RecoveryCodeRow;

/// The id under which the user's recovery codes are offered.
pub(crate) const RECOVERY_CREDENTIAL_ID: &str = "recovery-codes";

pub(super) const SERVED: Served = Served {
    methods: &[Method::RecoveryCode],
    routes,
    document,
    verifications: &[("/users/mfa/auth/recovery", "recovery_code")],
};

fn routes(router: Router<AppState>) -> Router<AppState> {
    router.route("/users/mfa/auth/recovery", post(authenticate))
}

fn document(doc: &mut Document) {
    doc.sdk(HttpMethod::Post, "/users/mfa/auth/recovery", "Step up by a recovery code", Caller::SignedIn)
        .body::<RecoveryAuthRequest>(false)
        .answers::<VerifyResponse>()
        .add();
}

/// The user's recovery codes as one credential, when any is left.
pub(super) async fn offer(account: &Account<'_>) -> Result<Vec<StepUpCredential>, ServiceError> {
    let (unused, _) = account.state.store().unused_recovery_codes(account.user_id).await?;
    Ok(if unused.is_empty() {
        vec![]
    } else {
        vec![StepUpCredential {
            id: RECOVERY_CREDENTIAL_ID.into(),
            format: CredentialFormat::RecoveryCode,
            kind: None,
            alias: Some(format!("{} recovery codes left", unused.len())),
        }]
    })
}

// ---- HTTP ----

/// `POST /users/mfa/auth/recovery`.
async fn authenticate(
    State(state): State<AppState>,
    session: Session,
    ApiJson(request): ApiJson<RecoveryAuthRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    Ok(Json(step_up(&state, &session, &request).await?))
}

// ---- The check ----

/// Step-up by one recovery code, spent on success.
///
/// # Errors
/// As [`step_up::check_request`]; [`ServiceError::NoMfaMethod`] (recovery codes back up MFA: without an MFA
/// method they are no factor at all), [`ServiceError::Locked`], [`ServiceError::InvalidCode`] (counted).
pub async fn step_up(
    state: &AppState,
    session: &Session,
    request: &RecoveryAuthRequest,
) -> Result<VerifyResponse, ServiceError> {
    let requested = request.requested_scopes.as_deref();
    step_up::check_request(state, session, Method::RecoveryCode, requested).await?;
    if !step_up::has_mfa(state, &session.user_id).await? {
        return Err(ServiceError::NoMfaMethod);
    }
    let attempt = lockout::reserve(state, &session.user_id).await?;
    let (unused, _) = state.store().unused_recovery_codes(&session.user_id).await?;
    let code = request.code.clone();
    // Argon2 is deliberately slow and takes 8 MiB a hash: off the async workers, a bounded number at once.
    let matched = state.hash_work().run(move || find(code.expose_secret(), &unused)).await?;
    let spent = match matched {
        Some(id) => state.store().use_recovery_code(&id).await?,
        None => false,
    };
    if !spent {
        let invalid = ServiceError::InvalidCode(Method::RecoveryCode);
        return Err(lockout::failed(state, &session.user_id, attempt, invalid).await);
    }
    lockout::succeeded(state, &session.user_id).await?;
    step_up::respond(state, session, requested, Method::RecoveryCode).await
}

// ---- The codes ----

/// Codes per user.
pub const CODE_COUNT: usize = stepup_proto::mfa::RECOVERY_CODE_COUNT;

/// Argon2id with 8 MiB and one pass. The codes carry 50 random bits, so the hash's work factor matters less than
/// for passwords; a verification may have to try all ten hashes, and this keeps that near 100 ms.
const MEMORY_KIB: u32 = 8 * 1024;
/// The hash's length, as argon2's PHC strings have it by default.
const OUTPUT_LEN: usize = 32;

fn params() -> Result<Params, argon2::Error> {
    Params::new(MEMORY_KIB, 1, 1, Some(OUTPUT_LEN))
}

thread_local! {
    /// This thread's argon2 memory, reused by every hash it computes. Allocating 8 MiB per hash (what
    /// `PasswordHasher::hash_password` does) let the allocator grow each thread's heap to about 110 MiB
    /// (`benches/argon2_memory.rs`); reused, a worker holds 8 MiB. Recovery codes are hashed on the few threads of
    /// `services::hash_work`, so the whole server holds that many.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Argon2id of `code` with `salt` under `params` into `out`, in this thread's reused memory.
fn argon2_into(params: Params, code: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), argon2::Error> {
    let blocks_needed = params.block_count();
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        if blocks.len() != blocks_needed {
            blocks.clear();
            blocks.resize(blocks_needed, Block::default());
        }
        hasher.hash_password_into_with_memory(code, salt, out, &mut blocks[..])
    })
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

/// The PHC string of `code` with a fresh salt: `$argon2id$v=19$m=8192,t=1,p=1$<salt>$<hash>`, as argon2's own
/// `PasswordHasher` writes it.
fn hash_code(code: &str) -> Result<String, RecoveryError> {
    let fail = |e: &dyn std::fmt::Display| RecoveryError(e.to_string());
    let salt = random::bytes::<16>().map_err(|e| fail(&e))?;
    let mut out = [0u8; OUTPUT_LEN];
    argon2_into(params().map_err(|e| fail(&e))?, code.as_bytes(), &salt, &mut out).map_err(|e| fail(&e))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| fail(&e))?;
    let output = Output::new(&out).map_err(|e| fail(&e))?;
    Ok(format!("$argon2id$v=19$m={MEMORY_KIB},t=1,p=1${salt}${output}"))
}

/// Whether `code` is the one `phc` (an argon2id PHC string) was made of; the comparison is constant time.
fn matches(code: &str, phc: &str) -> Option<bool> {
    let hash = PasswordHash::new(phc).ok()?;
    if hash.algorithm.as_str() != "argon2id" || hash.version.is_some_and(|v| v != 0x13) {
        return Some(false);
    }
    let params = Params::try_from(&hash).ok()?;
    let expected = hash.hash?;
    let mut salt = [0u8; 64];
    let salt = hash.salt?.decode_b64(&mut salt).ok()?;
    let mut out = vec![0u8; expected.len()];
    argon2_into(params, code.as_bytes(), salt, &mut out).ok()?;
    // `Output`'s equality is constant time.
    Some(Output::new(&out).ok()? == expected)
}

/// Ten new codes: the codes to show once, and the rows to store.
///
/// # Errors
/// [`RecoveryError`].
pub fn generate() -> Result<(Vec<String>, Vec<RecoveryCodeRow>), RecoveryError> {
    let mut codes = Vec::with_capacity(CODE_COUNT);
    let mut rows = Vec::with_capacity(CODE_COUNT);
    for _ in 0..CODE_COUNT {
        let code = random::recovery_code().map_err(|e| RecoveryError(e.to_string()))?;
        rows.push(RecoveryCodeRow {
            id: random::uuid().map_err(|e| RecoveryError(e.to_string()))?,
            code_hash: hash_code(&code)?,
        });
        codes.push(code);
    }
    Ok((codes, rows))
}

/// The id of the unused code that `code` matches, if any. CPU-heavy: call it on `services::hash_work`.
#[must_use]
pub fn find(code: &str, unused: &[RecoveryCodeRow]) -> Option<String> {
    let code = normalise(code);
    unused.iter().find_map(|row| matches(&code, &row.code_hash)?.then(|| row.id.clone()))
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

    /// Hashes made by argon2's own `PasswordHasher` (what earlier versions stored) verify, and ours are what it
    /// verifies: the PHC strings are the same.
    #[test]
    fn hashes_are_interchangeable_with_argon2s_own() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params().unwrap());
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let stored = theirs.hash_password(b"abcde-fghij", &salt).unwrap().to_string();
        let row = RecoveryCodeRow { id: "old".into(), code_hash: stored };
        assert_eq!(find("ABCDE-FGHIJ", std::slice::from_ref(&row)), Some("old".into()));
        assert_eq!(find("abcde-fghik", std::slice::from_ref(&row)), None);
        let ours = hash_code("klmno-pqrst").unwrap();
        theirs.verify_password(b"klmno-pqrst", &PasswordHash::new(&ours).unwrap()).unwrap();
        // Not argon2id, or not a PHC string at all: no match, no panic.
        let argon2i = ours.replacen("argon2id", "argon2i", 1);
        let rows = [
            RecoveryCodeRow { id: "i".into(), code_hash: argon2i },
            RecoveryCodeRow { id: "x".into(), code_hash: "nonsense".into() },
        ];
        assert_eq!(find("klmno-pqrst", &rows), None);
    }
}
