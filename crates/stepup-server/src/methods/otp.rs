//! Email and SMS one-time codes: sending a code (within its limits, delivered before anything is stored), the
//! check of a typed code, step-up by it (`/emailVerifications/verify`, `/smsVerifications/verify`) and sign-in
//! by it (`.../signin`), and the user's email addresses and phone numbers in the step-up offer.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use stepup_core::{Method, OtpChannel};
use stepup_proto::{
    CredentialFormat, EmailVerificationCreateRequest, EmailVerificationCreateResponse, ErrorCode, NextView,
    OtpVerifyRequest, SmsVerificationCreateRequest, SmsVerificationCreateResponse, StepUpCredential,
    UpdateSelfResponse, VerifyResponse,
};
use subtle::ConstantTimeEq as _;

use super::Served;
use crate::auth::{ApiJson, Env, MaybeSession, Session};
use crate::client_address::ClientAddress;
use crate::environment::Environment;
use crate::error::ApiError;
use crate::random;
use crate::routes::openapi::{Caller, Document};
use crate::services::limits::{self, Claimed, Limit};
use crate::services::offer::Account;
use crate::services::{Limited, Refusal, ServiceError, contact, issuance, step_up};
use crate::state::AppState;
use crate::store::{NewCredential, OtpRow, OutboxRow, secs};

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

pub(super) const SERVED: Served = Served {
    methods: &[Method::EmailOtp, Method::SmsOtp],
    routes,
    document,
    verifications: &[
        ("/emailVerifications/verify", "email"),
        ("/smsVerifications/verify", "sms"),
        ("/emailVerifications/signin", "signin"),
        ("/smsVerifications/signin", "signin"),
    ],
};

fn routes(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/emailVerifications/create", post(create_email))
        .route("/smsVerifications/create", post(create_sms))
        .route("/emailVerifications/verify", post(verify_email))
        .route("/smsVerifications/verify", post(verify_sms))
        .route("/emailVerifications/signin", post(signin))
        .route("/smsVerifications/signin", post(signin))
}

fn document(doc: &mut Document) {
    use utoipa::openapi::HttpMethod as Http;
    doc.sdk(Http::Post, "/emailVerifications/create", "Send an email one-time code", Caller::MaybeSignedIn)
        .body::<EmailVerificationCreateRequest>(false)
        .answers::<EmailVerificationCreateResponse>()
        .add();
    doc.sdk(Http::Post, "/smsVerifications/create", "Send an SMS one-time code", Caller::MaybeSignedIn)
        .body::<SmsVerificationCreateRequest>(false)
        .answers::<SmsVerificationCreateResponse>()
        .add();
    for channel in ["email", "sms"] {
        let verify = format!("/{channel}Verifications/verify");
        doc.sdk(Http::Post, &verify, "Re-authenticate (step up) by a one-time code", Caller::SignedIn)
            .body::<OtpVerifyRequest>(false)
            .answers::<UpdateSelfResponse>()
            .add();
        let signin = format!("/{channel}Verifications/signin");
        doc.sdk(Http::Post, &signin, "Sign in by a one-time code", Caller::Anyone)
            .body::<OtpVerifyRequest>(false)
            .answers::<VerifyResponse>()
            .add();
    }
}

/// The user's sign-in-enabled email addresses (for `EmailOtp`) or phone numbers (`SmsOtp`), oldest first.
pub(super) async fn offer(
    account: &Account<'_>,
    method: Method,
) -> Result<Vec<StepUpCredential>, ServiceError> {
    let format =
        if method == Method::SmsOtp { CredentialFormat::PhoneNumber } else { CredentialFormat::Email };
    Ok(account
        .credentials()
        .await?
        .iter()
        .filter(|c| c.format == format && c.sign_in_enabled && !c.embedded)
        .map(|c| StepUpCredential {
            id: c.id.clone(),
            format: c.format.clone(),
            kind: c.wallet_provider.clone(),
            alias: if method == Method::SmsOtp { c.phone_number.clone() } else { c.email.clone() },
        })
        .collect())
}

// ---- HTTP ----

/// `POST /emailVerifications/create`.
async fn create_email(
    State(state): State<AppState>,
    Env(env): Env,
    MaybeSession(session): MaybeSession,
    client: ClientAddress,
    ApiJson(request): ApiJson<EmailVerificationCreateRequest>,
) -> Result<Json<EmailVerificationCreateResponse>, ApiError> {
    let email = contact::validate_email(&request.email)?;
    let user = session.as_ref().map(|s| s.user_id.as_str());
    let id = send_code(&state, &env, user, client, OtpChannel::Email, &email).await?;
    Ok(Json(EmailVerificationCreateResponse { verification_uuid: id, email }))
}

/// `POST /smsVerifications/create`.
async fn create_sms(
    State(state): State<AppState>,
    Env(env): Env,
    MaybeSession(session): MaybeSession,
    client: ClientAddress,
    ApiJson(request): ApiJson<SmsVerificationCreateRequest>,
) -> Result<Json<SmsVerificationCreateResponse>, ApiError> {
    let destination = contact::validate_phone(
        &request.phone_country_code,
        &request.phone_number,
        &request.iso_country_code,
    )?;
    let user = session.as_ref().map(|s| s.user_id.as_str());
    let id = send_code(&state, &env, user, client, OtpChannel::Sms, &destination).await?;
    Ok(Json(SmsVerificationCreateResponse {
        verification_uuid: id,
        phone_number: request.phone_number,
        phone_country_code: request.phone_country_code,
        iso_country_code: request.iso_country_code,
    }))
}

/// `POST /emailVerifications/verify`: re-authentication of the signed-in user by an email code.
async fn verify_email(
    State(state): State<AppState>,
    session: Session,
    ApiJson(request): ApiJson<OtpVerifyRequest>,
) -> Result<Json<UpdateSelfResponse>, ApiError> {
    Ok(Json(step_up(&state, &session, &request, OtpChannel::Email).await?))
}

/// `POST /smsVerifications/verify`: re-authentication of the signed-in user by an SMS code.
async fn verify_sms(
    State(state): State<AppState>,
    session: Session,
    ApiJson(request): ApiJson<OtpVerifyRequest>,
) -> Result<Json<UpdateSelfResponse>, ApiError> {
    Ok(Json(step_up(&state, &session, &request, OtpChannel::Sms).await?))
}

/// `POST /emailVerifications/signin` and `/smsVerifications/signin`.
async fn signin(
    State(state): State<AppState>,
    Env(env): Env,
    ApiJson(request): ApiJson<OtpVerifyRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    Ok(Json(sign_in(&state, &env, &request).await?))
}

// ---- The check ----

/// What a one-time code's check refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OtpRefusal {
    /// The verification is expired, used, or dead after [`MAX_WRONG_CODES`] wrong codes.
    #[error("This verification can no longer be used")]
    UsedUp,
    /// The code is wrong (counted).
    #[error("The code is wrong")]
    WrongCode(OtpChannel),
    /// The code went to an address that is not one of the signed-in user's, or by the other channel.
    #[error("The code was not sent to one of your addresses")]
    NotYourAddress,
}

impl Refusal for OtpRefusal {
    fn code(&self) -> ErrorCode {
        match self {
            OtpRefusal::UsedUp | OtpRefusal::NotYourAddress => ErrorCode::InvalidVerification,
            OtpRefusal::WrongCode(OtpChannel::Email) => ErrorCode::WrongEmailVerificationToken,
            OtpRefusal::WrongCode(OtpChannel::Sms) => ErrorCode::WrongSmsVerificationToken,
        }
    }
}

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

/// Sends a code to `destination` by `channel` for the signed-in `session_user` (if any): the send limits, then
/// delivery, then the stored verification (and the outbox message when the outbox is on). Returns the
/// verification's id.
///
/// # Errors
/// [`ServiceError::TooMany`] over a send limit, [`ServiceError::Delivery`] when the code could not be sent
/// (nothing is stored then), [`ServiceError::Storage`].
pub async fn send_code(
    state: &AppState,
    environment: &Environment,
    session_user: Option<&str>,
    client: ClientAddress,
    channel: OtpChannel,
    destination: &str,
) -> Result<String, ServiceError> {
    let environment_id = environment.id();
    // A session's own addresses are its step-up channel. A send anywhere else counts as anonymous and the code
    // is bound to no user (see `Sender::Anonymous`).
    let user_id = match session_user {
        Some(session_user) => {
            let owner = state.store().user_by_destination(environment_id, destination).await?;
            owner.filter(|owner| owner == session_user)
        }
        None => None,
    };
    let sender = match user_id.as_deref() {
        Some(user_id) => Sender::User { user_id, client },
        None => Sender::Anonymous(client),
    };
    let claimed = check_send_limit(state, environment, sender, destination).await?;
    let id = random::uuid().map_err(|_| ServiceError::randomness())?;
    let code = random::digits(CODE_DIGITS).map_err(|_| ServiceError::randomness())?;
    // Delivered before anything is stored: a code the relay refused leaves no verification behind, and gives
    // back what it took from the send limit (the per-client counts stay: see `check_send_limit`).
    let delivered = state
        .delivery()
        .deliver_code(&environment.config, channel, destination, &code, CODE_TTL_SECS / 60)
        .await;
    state.metrics().code_sent(channel, delivered.as_ref().err());
    if let Err(error) = delivered {
        // A send that timed out may have been delivered (the relay took it, the answer was lost): it keeps
        // its place in the limit. Every other failure certainly sent nothing.
        if !error.may_have_been_delivered() {
            release_send(state, environment_id, &claimed).await?;
        }
        return Err(error.into());
    }
    let now = state.now();
    let otp = OtpRow {
        id: id.clone(),
        environment_id: environment_id.to_owned(),
        user_id,
        channel,
        destination: destination.to_owned(),
        code_hash: state.otp_key().hash(&id, &code),
        expires_at: secs(now.plus_secs(CODE_TTL_SECS)),
        failed_attempts: 0,
        used: false,
    };
    // The outbox is a development channel (`--dev`, or `delivery.outbox = true`): it holds the code in clear, as
    // the delivered message does. Logs never do.
    let message = state.delivery().outbox_enabled().then(|| OutboxRow {
        recipient: destination.to_owned(),
        channel,
        code,
        verification_id: id.clone(),
        created_at: secs(now),
    });
    let outbox_id = random::uuid().map_err(|_| ServiceError::randomness())?;
    state.store().insert_otp(&otp, message.as_ref(), &outbox_id, secs(now)).await?;
    tracing::info!(verification = %id, channel = channel.as_str(), "one-time code sent");
    Ok(id)
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
/// [`ServiceError::TooMany`] with the seconds until a send is allowed again; [`ServiceError::Storage`].
pub async fn check_send_limit(
    state: &AppState,
    environment: &Environment,
    sender: Sender<'_>,
    destination: &str,
) -> Result<Vec<Claimed>, ServiceError> {
    let env = environment.id();
    let limits = &environment.config.limits;
    let window =
        |max: i64| Limit { max: u32::try_from(max).unwrap_or(u32::MAX), window_secs: SEND_WINDOW_SECS };
    let hourly = |max: u32| Limit { max, window_secs: 3600 };
    match sender {
        Sender::User { user_id, client } => {
            let client_key = format!("send:user-client:{}", client.rate_key());
            let client_limit = hourly(limits.signed_in_sends_per_client_per_hour);
            limits::count(state, env, &client_key, client_limit, Limited::CodesFromClient).await?;
            let to_destination = format!("send:user:{}:{user_id}:{destination}", user_id.len());
            let slot = limits::claim(state, env, &to_destination, window(MAX_SENDS), Limited::CodesToAddress)
                .await?;
            let all_key = format!("send:user-all:{user_id}");
            match limits::claim(state, env, &all_key, window(MAX_USER_SENDS), Limited::CodesForUser).await {
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
            limits::count(state, env, &client_key, client_limit, Limited::CodesFromClient).await?;
            let to_destination = format!("send:anon:{destination}");
            let slot = limits::claim(state, env, &to_destination, window(MAX_SENDS), Limited::CodesToAddress)
                .await?;
            let all = hourly(limits.anonymous_sends_per_hour);
            match limits::count(state, env, "send:anon-all", all, Limited::SignInCodes).await {
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
/// [`ServiceError::Storage`].
pub async fn release_send(
    state: &AppState,
    environment_id: &str,
    claimed: &[Claimed],
) -> Result<(), ServiceError> {
    for claim in claimed {
        limits::release(state, environment_id, claim).await?;
    }
    Ok(())
}

/// Checks a typed code against a verification and uses the verification up if it is right.
///
/// # Errors
/// [`ServiceError::NotFound`] for an unknown verification; [`OtpRefusal::UsedUp`] for one that is expired, used,
/// or dead after [`MAX_WRONG_CODES`] wrong codes; [`OtpRefusal::WrongCode`] for a wrong code (counted).
pub async fn check_code(
    state: &AppState,
    environment_id: &str,
    verification_id: &str,
    code: &str,
) -> Result<OtpRow, ServiceError> {
    let used_up = || ServiceError::refused(OtpRefusal::UsedUp);
    let otp = state
        .store()
        .otp(environment_id, verification_id)
        .await?
        .ok_or(ServiceError::NotFound(crate::services::Missing::Verification))?;
    let now = secs(state.now());
    if otp.used || otp.expires_at <= now || otp.failed_attempts >= MAX_WRONG_CODES {
        return Err(used_up());
    }
    let given = state.otp_key().hash(&otp.id, code.trim());
    if !bool::from(given.as_bytes().ct_eq(otp.code_hash.as_bytes())) {
        if !state.store().otp_failed(&otp.id, MAX_WRONG_CODES).await? {
            return Err(used_up());
        }
        return Err(ServiceError::refused(OtpRefusal::WrongCode(otp.channel)));
    }
    if !state.store().otp_use(&otp.id, MAX_WRONG_CODES, now).await? {
        return Err(used_up());
    }
    Ok(otp)
}

/// Step-up by a code: the code must have gone to one of the signed-in user's own sign-in-enabled addresses, by
/// `channel`; with `requestedScopes` the answer carries an elevated token.
///
/// # Errors
/// As [`step_up::check_request`] and [`check_code`]; [`OtpRefusal::NotYourAddress`].
pub async fn step_up(
    state: &AppState,
    session: &Session,
    request: &OtpVerifyRequest,
    channel: OtpChannel,
) -> Result<UpdateSelfResponse, ServiceError> {
    let proof = channel.method();
    step_up::check_request(state, session, proof, request.requested_scopes.as_deref()).await?;
    let environment_id = session.env.id();
    let code = request.verification_token.expose_secret();
    let otp = check_code(state, environment_id, &request.verification_uuid, code).await?;
    let owner = state.store().user_by_destination(environment_id, &otp.destination).await?;
    let sent_for_someone_else = otp.user_id.as_deref().is_some_and(|u| u != session.user_id);
    if owner.as_deref() != Some(session.user_id.as_str()) || sent_for_someone_else || otp.channel != channel {
        return Err(ServiceError::refused(OtpRefusal::NotYourAddress));
    }
    let verify = step_up::respond(state, session, request.requested_scopes.as_deref(), proof).await?;
    Ok(UpdateSelfResponse {
        verify,
        next_view: NextView::Done,
        email_verification: None,
        sms_verification: None,
    })
}

/// Sign-in by a code: a new session for the address's user, who is created on first sign-in.
///
/// # Errors
/// As [`check_code`]; [`ServiceError::Storage`], [`ServiceError::Internal`].
pub async fn sign_in(
    state: &AppState,
    env: &Environment,
    request: &OtpVerifyRequest,
) -> Result<VerifyResponse, ServiceError> {
    let code = request.verification_token.expose_secret();
    let otp = check_code(state, env.id(), &request.verification_uuid, code).await?;
    let user_id = match state.store().user_by_destination(env.id(), &otp.destination).await? {
        Some(user_id) => user_id,
        None => create_user_for(state, env.id(), &otp).await?,
    };
    let (jwt, expires_at) = issuance::session(state, env, &user_id).await?;
    step_up::verify_response(state, env, &user_id, expires_at, jwt, None).await
}

async fn create_user_for(
    state: &AppState,
    environment_id: &str,
    otp: &OtpRow,
) -> Result<String, ServiceError> {
    let email = (otp.channel == OtpChannel::Email).then(|| otp.destination.clone());
    let request = crate::services::admin::CreateUserRequest { email, ..Default::default() };
    let user = crate::services::admin::create_user(state, environment_id, request).await?;
    if otp.channel == OtpChannel::Sms {
        // The destination is `+<country code><number>` and cannot be split reliably, so the credential keeps it
        // whole (empty country code): the next sign-in and step-up find it by the same destination.
        let id = random::uuid().map_err(|_| ServiceError::randomness())?;
        let credential = NewCredential {
            phone_number: Some(otp.destination.trim_start_matches('+').to_owned()),
            phone_country_code: Some(String::new()),
            sign_in_enabled: true,
            ..NewCredential::new(id, user.id.clone(), CredentialFormat::PhoneNumber)
        };
        state.store().insert_credential(&credential, secs(state.now())).await?;
    }
    Ok(user.id)
}
