//! Authenticator apps (TOTP, RFC 6238 with totp-rs: SHA-1, 6 digits, 30-second steps, one step of skew either
//! way): step-up by a code (`POST /users/mfa/auth/totp`, which also completes an enrolment), a code's time step
//! accepted once per device (RFC 6238 §5.2), and the user's verified devices in the step-up offer. Enrolling
//! and removing devices is management (`services::mfa`).

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use stepup_core::{Method, ScopeSet};
use stepup_proto::{CredentialFormat, StepUpCredential, TotpAuthRequest, VerifyResponse};
use subtle::ConstantTimeEq as _;
use totp_rs::{Algorithm, Builder, Secret, Totp};
use utoipa::openapi::HttpMethod;

use super::Served;
use crate::auth::{ApiJson, Session};
use crate::delivery::SecurityEvent;
use crate::error::ApiError;
use crate::routes::openapi::{Caller, Document};
use crate::services::offer::Account;
use crate::services::{ServiceError, lockout, notify, secrets, step_up};
use crate::state::AppState;
use crate::store::MfaDeviceRow;

pub(super) const SERVED: Served =
    Served { methods: &[Method::Totp], routes, document, verifications: &[("/users/mfa/auth/totp", "totp")] };

fn routes(router: Router<AppState>) -> Router<AppState> {
    router.route("/users/mfa/auth/totp", post(authenticate))
}

fn document(doc: &mut Document) {
    let summary = "Step up (or complete an enrolment) by a TOTP code";
    doc.sdk(HttpMethod::Post, "/users/mfa/auth/totp", summary, Caller::SignedIn)
        .body::<TotpAuthRequest>(false)
        .answers::<VerifyResponse>()
        .add();
}

/// The user's verified authenticator apps, oldest first.
pub(super) fn offer(account: &Account<'_>) -> Vec<StepUpCredential> {
    account
        .devices
        .iter()
        .filter(|d| d.verified)
        .map(|d| StepUpCredential {
            id: d.id.clone(),
            format: CredentialFormat::Totp,
            kind: Some("totp".into()),
            alias: Some("Authenticator app".into()),
        })
        .collect()
}

/// The device a TOTP code without a device id is for: the default one, else the oldest verified one.
pub(crate) fn default_device(devices: &[MfaDeviceRow]) -> Option<&MfaDeviceRow> {
    devices.iter().find(|d| d.verified && d.is_default).or_else(|| devices.iter().find(|d| d.verified))
}

// ---- HTTP ----

/// `POST /users/mfa/auth/totp`: a TOTP code, for the given device or the user's default one.
async fn authenticate(
    State(state): State<AppState>,
    session: Session,
    ApiJson(request): ApiJson<TotpAuthRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    Ok(Json(step_up(&state, &session, &request).await?))
}

// ---- The check ----

/// Step-up by a TOTP code of `request.id`'s device (or the default one). A code for an unverified device
/// completes its enrolment, and may ask for no more scopes than the token that started the enrolment granted.
///
/// # Errors
/// As [`step_up::check_request`]; [`ServiceError::MfaDeviceNotFound`], [`ServiceError::EnrolmentScopesExceeded`],
/// [`ServiceError::Locked`], [`ServiceError::InvalidCode`] (a wrong or replayed code, counted),
/// [`ServiceError::MfaDeviceAlreadyExists`] when another device was verified first.
pub async fn step_up(
    state: &AppState,
    session: &Session,
    request: &TotpAuthRequest,
) -> Result<VerifyResponse, ServiceError> {
    let requested = request.requested_scopes.as_deref();
    step_up::check_request(state, session, Method::Totp, requested).await?;
    let devices = state.store().totp_devices(&session.user_id).await?;
    let device = match &request.id {
        Some(id) => devices.iter().find(|d| &d.id == id),
        None => default_device(&devices),
    }
    .ok_or(ServiceError::MfaDeviceNotFound)?;
    if !device.verified {
        // The code that completes an enrolment: at most the scopes of the token that started it.
        let allowed = ScopeSet::from_space_delimited(&device.enrolment_scopes);
        let asked: ScopeSet = requested.into_iter().flatten().cloned().collect();
        if !allowed.covers(&asked) {
            return Err(ServiceError::EnrolmentScopesExceeded);
        }
    }
    // The code is checked first and settled after (the attempt counted, the step spent), in one round trip where
    // the store can: the answer counts only when the count allows it (`lockout::settle_totp`).
    let secret = secrets::open_totp_secret(state.key_encryption_key(), &device.id, &device.secret)?;
    let checker = totp(&secret, &session.env.config.app_name, "user")
        .map_err(|_| ServiceError::Internal { what: "reading a TOTP secret" })?;
    let step = matched_step(&checker, request.code.expose_secret(), state.now().as_secs())
        .map(|step| i64::try_from(step).unwrap_or(i64::MAX));
    // RFC 6238 §5.2: a code's time step is accepted once per device; a replay (or an older step) fails, counted.
    let invalid = ServiceError::InvalidCode(Method::Totp);
    lockout::settle_totp(state, &session.user_id, &device.id, step, invalid).await?;
    let response = step_up::respond(state, session, requested, Method::Totp).await?;
    if !device.verified {
        notify::security_event(state, &session.env, &session.user_id, SecurityEvent::TotpAdded).await;
    }
    Ok(response)
}

// ---- RFC 6238 ----

/// Digits of a code.
pub const DIGITS: u8 = 6;
/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Steps of clock skew accepted either way.
pub const SKEW: u16 = 1;

/// Why a TOTP secret cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid TOTP secret or parameters: {0}")]
pub struct TotpSetupError(String);

/// A TOTP generator/checker for a base32 secret. `issuer` and `account` only matter for the `otpauth://` URI
/// (a `:` in them is replaced, as the URI format requires).
///
/// # Errors
/// [`TotpSetupError`] for a secret that is not base32 of at least 128 bits.
pub fn totp(secret_base32: &str, issuer: &str, account: &str) -> Result<Totp, TotpSetupError> {
    let secret = Secret::try_from_base32(secret_base32).map_err(|e| TotpSetupError(e.to_string()))?;
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(SKEW)
        .with_step_duration(STEP_SECS)
        .with_secret(secret)
        .with_issuer(Some(issuer.replace(':', " ")))
        .with_account_name(account.replace(':', " "))
        .build()
        .map_err(|e| TotpSetupError(e.to_string()))
}

/// The `otpauth://totp/...` URI authenticator apps scan (it contains the secret).
///
/// # Errors
/// [`TotpSetupError`] as [`totp`], or if the URI cannot be formed.
pub fn otpauth_uri(secret_base32: &str, issuer: &str, account: &str) -> Result<String, TotpSetupError> {
    totp(secret_base32, issuer, account)?.to_url().map_err(|e| TotpSetupError(e.to_string()))
}

/// A new 160-bit secret, base32 (RFC 4226 recommends 160 bits).
///
/// # Errors
/// If the OS random source fails.
pub fn new_secret() -> Result<String, crate::random::RandomError> {
    Ok(Secret::from(crate::random::bytes::<20>()?).to_base32())
}

/// The time step a code matches at `now` (within the skew), if any. The caller must refuse a step at or before
/// the last one it accepted for the device (RFC 6238 §5.2).
#[must_use]
pub fn matched_step(totp: &Totp, code: &str, now: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Every step of the window is computed and compared in constant time, a match or not (totp-rs's `check`
    // stops at the first match): a code is checked before its attempt is counted (`lockout::settle_totp`), so
    // the time taken must not tell a right code from a wrong one while MFA is locked.
    let origin = now / STEP_SECS;
    let mut matched = None;
    for step in origin.saturating_sub(u64::from(SKEW))..=origin.saturating_add(u64::from(SKEW)) {
        let equal = bool::from(
            totp.generate(step.saturating_mul(STEP_SECS)).to_string().as_bytes().ct_eq(code.as_bytes()),
        );
        if equal && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: SHA-1 secret "12345678901234567890", 8 digits.
    #[test]
    fn rfc_6238_appendix_b_vectors() {
        let totp = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(8)
            .with_skew(0)
            .with_step_duration(30)
            .with_secret(b"12345678901234567890".to_vec())
            .build()
            .unwrap();
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp.generate(time).to_string(), code, "t={time}");
            assert_eq!(totp.check(code, time), Some(time / 30));
        }
    }

    #[test]
    fn skew_is_one_step_either_way() {
        let secret = new_secret().unwrap();
        let totp = totp(&secret, "App", "alice@example.com").unwrap();
        let now = 1_700_000_000;
        let step = now / STEP_SECS;
        for offset in [-1i64, 0, 1] {
            let t = (now as i64 + offset * 30) as u64;
            let code = totp.generate(t).to_string();
            assert_eq!(matched_step(&totp, &code, now), Some((step as i64 + offset) as u64));
        }
        for offset in [-2i64, 2] {
            let code = totp.generate((now as i64 + offset * 30) as u64).to_string();
            assert_eq!(matched_step(&totp, &code, now), None, "offset {offset}");
        }
        assert_eq!(matched_step(&totp, "12345", now), None);
        assert_eq!(matched_step(&totp, "abcdef", now), None);
        assert!(totp.to_url().unwrap().starts_with("otpauth://totp/"));
    }
}
