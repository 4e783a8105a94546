//! One-time codes: input rules, the send limit, and the check of a typed code.

use stepup_proto::ErrorCode;
use subtle::ConstantTimeEq as _;

use super::rate::Claimed;
use crate::client_address::ClientAddress;
use crate::error::ApiError;
use crate::state::{AppState, Environment};
use crate::store::{OtpRow, secs};

/// Digits of a code.
pub const CODE_DIGITS: u32 = 6;
/// How long a code lives.
pub const CODE_TTL_SECS: u64 = 10 * 60;
/// Wrong codes a verification survives; the next one kills it.
pub const MAX_WRONG_CODES: i64 = 3;
/// Codes one address may receive per window, from each kind of sender (signed-in user, anonymous).
pub const MAX_SENDS: i64 = 3;
/// Codes one signed-in user may have sent per window, to all addresses.
pub const MAX_USER_SENDS: i64 = 10;
/// The send-limit window.
pub const SEND_WINDOW_SECS: u64 = 10 * 60;

/// Who asks for a code to be sent: each has its own buckets, so anonymous callers cannot use up a signed-in
/// user's sends (three anonymous sends to a victim's address used to block the victim's own step-up code).
#[derive(Debug, Clone, Copy)]
pub enum Sender<'a> {
    /// A signed-in user, to one of their own addresses (step-up and re-authentication codes).
    User {
        /// The user.
        user_id: &'a str,
        /// Where the request came from.
        client: ClientAddress,
    },
    /// No session (sign-in codes), or a session sending to an address that is not its user's: from this client
    /// address. Why the second: such a code is no step-up (verify refuses it), and counted per user it would
    /// let every cheap account add sends — and sign-in guesses — at one victim's address.
    Anonymous(ClientAddress),
}

/// Refuses a send over its limits. A signed-in user: [`MAX_SENDS`] per destination and [`MAX_USER_SENDS`] in
/// all per [`SEND_WINDOW_SECS`], and `signed_in_sends_per_client_per_hour` per client address. Anonymous:
/// [`MAX_SENDS`] per destination per window (Dynamic's limit), and the environment's
/// `anonymous_sends_per_client_per_hour` per client address and `anonymous_sends_per_hour` in all.
///
/// Returns the claims on the *send limit* — the destination's slots and the user's — to be given back
/// ([`release_send`]) when the code is not delivered, so a relay outage does not use up a user's codes. The
/// per-client and environment-wide counts stay counted whatever happens: they bound what a caller can make the
/// server try, and a caller can choose to fail (a number the gateway refuses). A later limit's refusal gives
/// back what the earlier ones took from the send limit.
///
/// # Errors
/// 429 `too_many_verification_attempts` with the seconds until a send is allowed again.
pub async fn check_send_limit(
    state: &AppState,
    environment: &Environment,
    sender: Sender<'_>,
    destination: &str,
) -> Result<Vec<Claimed>, ApiError> {
    let env = environment.id();
    let limits = &environment.config.limits;
    let window = |max: i64| super::rate::Limit {
        max: u32::try_from(max).unwrap_or(u32::MAX),
        window_secs: SEND_WINDOW_SECS,
    };
    let hourly = |max: u32| super::rate::Limit { max, window_secs: 3600 };
    let code = ErrorCode::TooManyVerificationAttempts;
    let too_many_from_client = "Too many codes requested from this address; try again later";
    match sender {
        Sender::User { user_id, client } => {
            let client_key = format!("send:user-client:{}", client.rate_key());
            let client_limit = hourly(limits.signed_in_sends_per_client_per_hour);
            super::rate::count(state, env, &client_key, client_limit, code.clone(), too_many_from_client)
                .await?;
            let to_destination = format!("send:user:{}:{user_id}:{destination}", user_id.len());
            let slot = super::rate::claim(
                state,
                env,
                &to_destination,
                window(MAX_SENDS),
                code.clone(),
                TOO_MANY_TO_ADDRESS,
            )
            .await?;
            let all = super::rate::claim(
                state,
                env,
                &format!("send:user-all:{user_id}"),
                window(MAX_USER_SENDS),
                code,
                "Too many codes sent for this user; try again later",
            )
            .await;
            match all {
                Ok(all) => Ok(vec![slot, all]),
                Err(refused) => {
                    release_send(state, env, &[slot]).await?;
                    Err(refused)
                }
            }
        }
        Sender::Anonymous(client) => {
            // The client's own budget first: once it is spent, its requests take nothing from anyone else.
            let client_key = format!("send:anon-client:{}", client.rate_key());
            let client_limit = hourly(limits.anonymous_sends_per_client_per_hour);
            super::rate::count(state, env, &client_key, client_limit, code.clone(), too_many_from_client)
                .await?;
            let slot = super::rate::claim(
                state,
                env,
                &format!("send:anon:{destination}"),
                window(MAX_SENDS),
                code.clone(),
                TOO_MANY_TO_ADDRESS,
            )
            .await?;
            let all = super::rate::count(
                state,
                env,
                "send:anon-all",
                hourly(limits.anonymous_sends_per_hour),
                code,
                "Too many sign-in codes are being sent; try again later",
            )
            .await;
            match all {
                Ok(_) => Ok(vec![slot]),
                Err(refused) => {
                    release_send(state, env, &[slot]).await?;
                    Err(refused)
                }
            }
        }
    }
}

/// Gives back the send-limit claims [`check_send_limit`] took, for a code that was not delivered.
///
/// # Errors
/// 500 on storage failure.
pub async fn release_send(
    state: &AppState,
    environment_id: &str,
    claimed: &[Claimed],
) -> Result<(), ApiError> {
    for claim in claimed {
        super::rate::release(state, environment_id, claim).await?;
    }
    Ok(())
}

const TOO_MANY_TO_ADDRESS: &str = "Too many codes sent to this address; try again later";

/// Checks a typed code against a verification and uses the verification up if it is right.
///
/// # Errors
/// 404 for an unknown verification; 422 `invalid_verification` for one that is expired, used, or dead after
/// [`MAX_WRONG_CODES`] wrong codes; 422 `wrong_email_verification_token` / `wrong_sms_verification_token` for a
/// wrong code (counted).
pub async fn check_code(
    state: &AppState,
    environment_id: &str,
    verification_id: &str,
    code: &str,
) -> Result<OtpRow, ApiError> {
    let invalid =
        || ApiError::unprocessable(ErrorCode::InvalidVerification, "This verification can no longer be used");
    let otp = state
        .store()
        .otp(environment_id, verification_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Unknown verification"))?;
    let now = secs(state.now());
    if otp.used || otp.expires_at <= now || otp.failed_attempts >= MAX_WRONG_CODES {
        return Err(invalid());
    }
    let given = state.otp_hash(&otp.id, code.trim());
    if !bool::from(given.as_bytes().ct_eq(otp.code_hash.as_bytes())) {
        if !state.store().otp_failed(&otp.id, MAX_WRONG_CODES).await? {
            return Err(invalid());
        }
        let code = if otp.channel == stepup_core::OtpChannel::Sms {
            ErrorCode::WrongSmsVerificationToken
        } else {
            ErrorCode::WrongEmailVerificationToken
        };
        return Err(ApiError::unprocessable(code, "The code is wrong"));
    }
    if !state.store().otp_use(&otp.id, MAX_WRONG_CODES, now).await? {
        return Err(invalid());
    }
    Ok(otp)
}
