//! Email and SMS one-time codes: create, verify (step-up, with `requestedScopes`) and sign in.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use stepup_core::Method;
use stepup_proto::{
    EmailVerificationCreateRequest, EmailVerificationCreateResponse, ErrorCode, NextView, OtpVerifyRequest,
    SmsVerificationCreateRequest, SmsVerificationCreateResponse, UpdateSelfResponse, VerifyResponse,
};

use super::{check_step_up_request, step_up_response, verify_response};
use crate::auth::{ApiJson, Env, Session, bearer};
use crate::client_address::ClientAddress;
use crate::delivery::Channel;
use crate::error::ApiError;
use crate::random;
use crate::services::contact;
use crate::state::{AppState, Environment};
use crate::store::{OtpRow, OutboxRow, secs};
use crate::verify::otp::{self as rules, CODE_DIGITS, CODE_TTL_SECS, Sender};

/// A session if the request carries one (creating a code works signed in or out; a bad token is still a 401).
pub(crate) struct MaybeSession(pub(crate) Option<Session>);

impl FromRequestParts<AppState> for MaybeSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if bearer(parts).is_none() {
            return Ok(MaybeSession(None));
        }
        Session::from_request_parts(parts, state).await.map(|s| MaybeSession(Some(s)))
    }
}

async fn send(
    state: &AppState,
    environment: &Environment,
    session: Option<Session>,
    client: ClientAddress,
    channel: Channel,
    destination: &str,
) -> Result<String, ApiError> {
    let environment_id = environment.id();
    // A session's own addresses are its step-up channel. A send anywhere else counts as anonymous and the code
    // is bound to no user (see `Sender::Anonymous`).
    let user_id = match session {
        Some(session) => {
            let owner = state.store().user_by_destination(environment_id, destination).await?;
            owner.filter(|owner| *owner == session.user_id)
        }
        None => None,
    };
    let sender = match user_id.as_deref() {
        Some(user_id) => Sender::User { user_id, client },
        None => Sender::Anonymous(client),
    };
    let claimed = rules::check_send_limit(state, environment, sender, destination).await?;
    let internal = |_| ApiError::internal();
    let id = random::uuid().map_err(internal)?;
    let code = random::digits(CODE_DIGITS).map_err(internal)?;
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
            rules::release_send(state, environment_id, &claimed).await?;
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
        code_hash: state.otp_hash(&id, &code),
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
    state.store().insert_otp(&otp, message.as_ref(), &random::uuid().map_err(internal)?, secs(now)).await?;
    tracing::info!(verification = %id, channel = channel.as_str(), "one-time code sent");
    Ok(id)
}

/// `POST /emailVerifications/create`.
pub(crate) async fn create_email(
    State(state): State<AppState>,
    Env(env): Env,
    MaybeSession(session): MaybeSession,
    client: ClientAddress,
    ApiJson(request): ApiJson<EmailVerificationCreateRequest>,
) -> Result<Json<EmailVerificationCreateResponse>, ApiError> {
    let email = contact::validate_email(&request.email)?;
    let id = send(&state, &env, session, client, Channel::Email, &email).await?;
    Ok(Json(EmailVerificationCreateResponse { verification_uuid: id, email }))
}

/// `POST /smsVerifications/create`.
pub(crate) async fn create_sms(
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
    let id = send(&state, &env, session, client, Channel::Sms, &destination).await?;
    Ok(Json(SmsVerificationCreateResponse {
        verification_uuid: id,
        phone_number: request.phone_number,
        phone_country_code: request.phone_country_code,
        iso_country_code: request.iso_country_code,
    }))
}

/// `POST /emailVerifications/verify`: re-authentication of the signed-in user by an email code.
pub(crate) async fn verify_email(
    state: State<AppState>,
    session: Session,
    request: ApiJson<OtpVerifyRequest>,
) -> Result<Json<UpdateSelfResponse>, ApiError> {
    verify(state, session, request, Method::EmailOtp).await
}

/// `POST /smsVerifications/verify`: re-authentication of the signed-in user by an SMS code.
pub(crate) async fn verify_sms(
    state: State<AppState>,
    session: Session,
    request: ApiJson<OtpVerifyRequest>,
) -> Result<Json<UpdateSelfResponse>, ApiError> {
    verify(state, session, request, Method::SmsOtp).await
}

/// Both verify routes: the code must have gone to one of the user's own sign-in-enabled addresses, by the
/// route's channel; with `requestedScopes` the answer carries an elevated token.
async fn verify(
    State(state): State<AppState>,
    session: Session,
    ApiJson(request): ApiJson<OtpVerifyRequest>,
    proof: Method,
) -> Result<Json<UpdateSelfResponse>, ApiError> {
    check_step_up_request(&state, &session, proof, request.requested_scopes.as_deref()).await?;
    let otp = rules::check_code(
        &state,
        session.env.id(),
        &request.verification_uuid,
        request.verification_token.expose_secret(),
    )
    .await?;
    let channel = if proof == Method::SmsOtp { Channel::Sms } else { Channel::Email };
    let owner = state.store().user_by_destination(session.env.id(), &otp.destination).await?;
    let sent_for_someone_else = otp.user_id.as_deref().is_some_and(|u| u != session.user_id);
    if owner.as_deref() != Some(session.user_id.as_str()) || sent_for_someone_else || otp.channel != channel {
        return Err(ApiError::unprocessable(
            ErrorCode::InvalidVerification,
            "The code was not sent to one of your addresses",
        ));
    }
    let verify = step_up_response(&state, &session, request.requested_scopes.as_deref(), proof).await?;
    Ok(Json(UpdateSelfResponse {
        verify,
        next_view: NextView::Done,
        email_verification: None,
        sms_verification: None,
    }))
}

/// `POST /emailVerifications/signin` and `/smsVerifications/signin`: a new session for the address's user
/// (created on first sign-in).
pub(crate) async fn signin(
    State(state): State<AppState>,
    Env(env): Env,
    ApiJson(request): ApiJson<OtpVerifyRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    let otp = rules::check_code(
        &state,
        env.id(),
        &request.verification_uuid,
        request.verification_token.expose_secret(),
    )
    .await?;
    let user_id = match state.store().user_by_destination(env.id(), &otp.destination).await? {
        Some(user_id) => user_id,
        None => create_user_for(&state, env.id(), &otp).await?,
    };
    let (jwt, expires_at) = crate::services::issuance::session(&state, &env, &user_id).await?;
    Ok(Json(verify_response(&state, &env, &user_id, expires_at, jwt, None).await?))
}

async fn create_user_for(state: &AppState, environment_id: &str, otp: &OtpRow) -> Result<String, ApiError> {
    let email = (otp.channel == Channel::Email).then(|| otp.destination.clone());
    let request = super::CreateUserRequest { email, ..Default::default() };
    let user = crate::services::admin::create_user(state, environment_id, request).await?;
    if otp.channel == Channel::Sms {
        // The destination is `+<country code><number>` and cannot be split reliably, so the credential keeps it
        // whole (empty country code): the next sign-in and step-up find it by the same destination.
        let id = crate::random::uuid().map_err(|_| ApiError::internal())?;
        let credential = crate::store::NewCredential {
            phone_number: Some(otp.destination.trim_start_matches('+').to_owned()),
            phone_country_code: Some(String::new()),
            sign_in_enabled: true,
            ..crate::store::NewCredential::new(
                id,
                user.id.clone(),
                stepup_proto::CredentialFormat::PhoneNumber,
            )
        };
        state.store().insert_credential(&credential, secs(state.now())).await?;
    }
    Ok(user.id)
}
