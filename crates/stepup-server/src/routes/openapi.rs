//! `GET /openapi.json`: an OpenAPI 3.1 document of the SDK API and the admin API, built from the code — every
//! request and answer schema is derived (utoipa) from the very types the handlers read and write, and the
//! operations below are the router's, one line each, checked against it by a test (`tests/server/openapi.rs`).
//!
//! It exists for independent tools: schemathesis fuzzes the server from it in CI (every answer must be a
//! documented JSON answer, never a 5xx). The environment id is a parameter whose values are the configured
//! environments, so generated requests reach the handlers.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use stepup_proto::{
    ErrorBody, JwksResponse, MfaDevicesResponse, MfaMethodsResponse, MfaUpdateDeviceRequest,
    PasskeyRegisterRequest, ProjectSettings, RecoveryCodesResponse, SdkUser, StepUpCheckRequest,
    StepUpCheckResponse, TotpRegistration, UpdateSelfResponse, UserFields, UserPasskeysResponse,
    VerifiedCredential, VerifyResponse,
};
use utoipa::ToSchema;
use utoipa::openapi::path::{OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, HttpMethod, InfoBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr,
    Required, ResponseBuilder, SecurityRequirement,
};

use super::admin::{AdminSession, CreateSessionRequest, CreateUserRequest, LinkWalletRequest, OutboxMessage};
use super::operator;
use super::passkey::DeletePasskey;
use crate::state::AppState;

/// `GET /openapi.json`, built and serialised once per server.
pub(crate) async fn document(State(state): State<AppState>) -> Response {
    let json = state.openapi_cache().get_or_init(|| match serde_json::to_vec(&build(&state)) {
        Ok(json) => Bytes::from(json),
        // Serialising plain data cannot fail; an empty object keeps the route answering JSON if it ever did.
        Err(_) => Bytes::from_static(b"{}"),
    });
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], json.clone()).into_response()
}

/// Who may call an operation, as the document's security requirements say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// Anyone.
    Anyone,
    /// Anyone; a session, when sent, is checked.
    MaybeSignedIn,
    /// A signed-in user (`Authorization: Bearer <session JWT>`).
    SignedIn,
    /// A signed-in user with an elevated token (`x-dyn-elevated-access-token`) or, where the policy allows, a
    /// recent MFA.
    Elevated,
    /// The admin API's token.
    Admin,
}

/// What a successful call answers.
enum Answer {
    /// 200 with this schema.
    Json(Box<RefOr<Schema>>),
    /// 204, no body.
    NoContent,
}

/// The document under construction: paths, and the schemas they refer to.
pub(crate) struct Document {
    environments: Vec<String>,
    paths: Paths,
    schemas: Vec<(String, RefOr<Schema>)>,
}

/// One operation under construction; [`Op::add`] puts it in the document.
pub(crate) struct Op<'a> {
    document: &'a mut Document,
    method: HttpMethod,
    path: String,
    operation: OperationBuilder,
    answer: Answer,
}

impl Document {
    /// A schema reference to `T`, registering `T` and the schemas it refers to.
    fn schema<T: ToSchema>(&mut self) -> RefOr<Schema> {
        let name = T::name();
        if !self.schemas.iter().any(|(known, _)| *known == name) {
            self.schemas.push((name.to_string(), T::schema()));
            T::schemas(&mut self.schemas);
        }
        RefOr::Ref(Ref::from_schema_name(name))
    }

    /// An operation of the SDK API: under `/sdk/{environmentId}`.
    pub(crate) fn sdk(&mut self, method: HttpMethod, path: &str, summary: &str, caller: Caller) -> Op<'_> {
        let environment = environment_parameter(&self.environments);
        let op = self.op(method, &format!("/sdk/{{environmentId}}{path}"), summary, caller, "sdk");
        Op { operation: op.operation.parameter(environment), ..op }
    }

    /// An operation of the admin API: under `/admin/environments/{environmentId}`.
    fn admin(&mut self, method: HttpMethod, path: &str, summary: &str) -> Op<'_> {
        let environment = environment_parameter(&self.environments);
        let full = format!("/admin/environments/{{environmentId}}{path}");
        let op = self.op(method, &full, summary, Caller::Admin, "admin");
        Op { operation: op.operation.parameter(environment), ..op }
    }

    fn op(&mut self, method: HttpMethod, path: &str, summary: &str, caller: Caller, tag: &str) -> Op<'_> {
        let operation = OperationBuilder::new()
            .summary(Some(summary))
            .tag(tag)
            .operation_id(Some(operation_id(&method, path)))
            .securities(Some(security(caller)));
        Op { document: self, method, path: path.to_owned(), operation, answer: Answer::NoContent }
    }
}

impl Op<'_> {
    /// A JSON request body of type `T` (required unless `optional`).
    pub(crate) fn body<T: ToSchema>(mut self, optional: bool) -> Self {
        let schema = self.document.schema::<T>();
        let required = if optional { Required::False } else { Required::True };
        let body = RequestBodyBuilder::new()
            .content("application/json", ContentBuilder::new().schema(Some(schema)).build())
            .required(Some(required))
            .build();
        self.operation = self.operation.request_body(Some(body));
        self
    }

    /// Answers 200 with a `T`.
    pub(crate) fn answers<T: ToSchema>(mut self) -> Self {
        self.answer = Answer::Json(Box::new(self.document.schema::<T>()));
        self
    }

    /// Answers 200 with a list of `T`.
    fn answers_list<T: ToSchema>(mut self) -> Self {
        let item = self.document.schema::<T>();
        self.answer = Answer::Json(Box::new(ArrayBuilder::new().items(item).into()));
        self
    }

    /// Answers 200 with a JSON object whose shape is another library's (WebAuthn options) or free.
    pub(crate) fn answers_object(mut self) -> Self {
        self.answer = Answer::Json(Box::new(ObjectBuilder::new().schema_type(Type::Object).into()));
        self
    }

    /// A path parameter (a string).
    fn path_parameter(mut self, name: &str, description: &str) -> Self {
        let parameter = ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some(description))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build();
        self.operation = self.operation.parameter(parameter);
        self
    }

    /// An optional query parameter with this schema.
    pub(crate) fn query_parameter(
        mut self,
        name: &str,
        description: &str,
        schema: impl Into<RefOr<Schema>>,
    ) -> Self {
        let parameter = ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(description))
            .schema(Some(schema))
            .build();
        self.operation = self.operation.parameter(parameter);
        self
    }

    /// Puts the operation in the document: its answer, and each error status the API answers as
    /// `{error, code}` JSON. The statuses are listed (no `default`), so an answer with any other status — a 500,
    /// a 409 — does not conform.
    pub(crate) fn add(self) {
        let error = self.document.schema::<ErrorBody>();
        let json = |schema: RefOr<Schema>| ContentBuilder::new().schema(Some(schema)).build();
        let success = match self.answer {
            Answer::Json(schema) => {
                ("200", ResponseBuilder::new().description("OK").content("application/json", json(*schema)))
            }
            Answer::NoContent => ("204", ResponseBuilder::new().description("Done; no body")),
        };
        let mut operation = self.operation.response(success.0, success.1.build());
        for (status, meaning) in ERROR_STATUSES {
            let answer =
                ResponseBuilder::new().description(meaning).content("application/json", json(error.clone()));
            operation = operation.response(status, answer.build());
        }
        self.document.paths.add_path_operation(&self.path, vec![self.method], operation.build());
    }
}

/// The error statuses the API answers, each with an `{error, code}` body (docs/wire-protocol.md#errors).
const ERROR_STATUSES: [(&str, &str); 9] = [
    ("400", "Malformed: bad JSON, not an object, wrong types, a bad parameter"),
    ("401", "No session, or an invalid, expired or revoked one"),
    ("403", "An elevated token (or a recent MFA) is needed: `WWW-Authenticate` says for what"),
    ("404", "An id names nothing"),
    ("408", "The request took too long"),
    ("413", "The body is over 64 KiB"),
    ("422", "Refused: a wrong code, an unknown scope, a method that is off, a limit of the flow"),
    ("429", "Too many: `Retry-After` says when to try again"),
    ("503", "A dependency is unavailable (the app backend's keys, the database)"),
];

fn environment_parameter(environments: &[String]) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("environmentId")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some("The environment (project) id"))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(environments.to_vec()))))
        .build()
}

fn security(caller: Caller) -> Vec<SecurityRequirement> {
    let session = || SecurityRequirement::new("session", Vec::<String>::new());
    match caller {
        Caller::Anyone => vec![SecurityRequirement::default()],
        Caller::MaybeSignedIn => vec![SecurityRequirement::default(), session()],
        Caller::SignedIn => vec![session()],
        Caller::Elevated => vec![session().add("elevated", Vec::<String>::new())],
        Caller::Admin => vec![SecurityRequirement::new("admin", Vec::<String>::new())],
    }
}

/// `post_sdk_environmentid_stepup_check`-style ids: unique per method and path.
fn operation_id(method: &HttpMethod, path: &str) -> String {
    let method = match method {
        HttpMethod::Get => "get",
        HttpMethod::Post => "post",
        HttpMethod::Put => "put",
        HttpMethod::Delete => "delete",
        HttpMethod::Patch => "patch",
        HttpMethod::Head => "head",
        HttpMethod::Options => "options",
        HttpMethod::Trace => "trace",
    };
    let words: Vec<String> = path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    format!("{method}_{}", words.join("_"))
}

/// The whole document for this server's environments.
#[must_use]
pub fn build(state: &AppState) -> OpenApi {
    let mut environments: Vec<String> = state.environment_ids().map(str::to_owned).collect();
    environments.sort();
    let mut doc = Document { environments, paths: Paths::new(), schemas: Vec::new() };
    sdk_operations(&mut doc);
    if state.admin_token().is_some() {
        admin_operations(&mut doc);
    }
    doc.op(HttpMethod::Get, "/health", "Readiness: the database takes a write", Caller::Anyone, "server")
        .answers_object()
        .add();
    doc.op(HttpMethod::Get, "/health/live", "Liveness", Caller::Anyone, "server").answers_object().add();
    doc.op(HttpMethod::Get, "/openapi.json", "This document", Caller::Anyone, "server")
        .answers_object()
        .add();
    let mut schemas = doc.schemas;
    schemas.sort_by(|a, b| a.0.cmp(&b.0));
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme(
            "session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("The session JWT"))
                    .build(),
            ),
        )
        .security_scheme(
            "elevated",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                stepup_proto::headers::ELEVATED_ACCESS_TOKEN,
                "An elevated access token for the call's scope",
            ))),
        )
        .security_scheme(
            "admin",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The admin token"))
                    .build(),
            ),
        )
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("stepup reference server")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The step-up API of Dynamic's SDK (`/sdk/{environmentId}`) and the reference server's admin API.",
                ))
                .build(),
        )
        .paths(doc.paths)
        .components(Some(components))
        .build()
}

fn sdk_operations(doc: &mut Document) {
    use Caller::{Anyone, Elevated, SignedIn};
    use HttpMethod::{Delete, Get, Post, Put};
    doc.sdk(
        Post,
        "/stepUp/check",
        "Whether a scope needs step-up, and the credentials to do it with",
        SignedIn,
    )
    .body::<StepUpCheckRequest>(false)
    .answers::<StepUpCheckResponse>()
    .add();
    // Each verification method documents its own endpoints.
    crate::methods::document(doc);
    doc.sdk(Get, "/users", "The signed-in user", SignedIn).answers::<SdkUser>().add();
    doc.sdk(Put, "/users", "Update the user (the MFA backup-code acknowledgement)", SignedIn)
        .body::<UserFields>(false)
        .answers::<UpdateSelfResponse>()
        .add();
    doc.sdk(Get, "/users/mfa", "The user's MFA devices", SignedIn).answers::<MfaDevicesResponse>().add();
    doc.sdk(Get, "/users/mfa/methods", "The user's MFA methods", SignedIn)
        .answers::<MfaMethodsResponse>()
        .add();
    doc.sdk(Get, "/users/mfa/register/totp", "Start enrolling an authenticator app", Elevated)
        .answers::<TotpRegistration>()
        .add();
    doc.sdk(Get, "/users/passkeys/register", "Passkey registration options (WebAuthn)", SignedIn)
        .answers_object()
        .add();
    doc.sdk(Post, "/users/passkeys/register", "Register a passkey", Elevated)
        .body::<PasskeyRegisterRequest>(false)
        .answers::<VerifyResponse>()
        .add();
    doc.sdk(Get, "/users/passkeys", "The user's passkeys", SignedIn).answers::<UserPasskeysResponse>().add();
    doc.sdk(Delete, "/users/passkeys", "Delete a passkey", Elevated).body::<DeletePasskey>(false).add();
    doc.sdk(
        Get,
        "/users/mfa/recovery",
        "The user's recovery codes (made on first read; needs a recent MFA)",
        SignedIn,
    )
    .answers::<RecoveryCodesResponse>()
    .add();
    doc.sdk(Post, "/users/mfa/recovery", "New recovery codes (needs a recent MFA)", SignedIn)
        .answers::<RecoveryCodesResponse>()
        .add();
    doc.sdk(Put, "/users/mfa/{deviceId}", "Make a device the default", SignedIn)
        .path_parameter("deviceId", "The MFA device id")
        .body::<MfaUpdateDeviceRequest>(true)
        .add();
    doc.sdk(Delete, "/users/mfa/{deviceId}", "Delete an MFA device", Elevated)
        .path_parameter("deviceId", "The MFA device id")
        .add();
    doc.sdk(Post, "/revoke", "End the session", SignedIn).add();
    doc.sdk(Get, "/settings", "The environment's settings", Anyone).answers::<ProjectSettings>().add();
    for jwks in ["/.well-known/jwks", "/.well-known/jwks.json"] {
        doc.sdk(Get, jwks, "The environment's signing keys", Anyone).answers::<JwksResponse>().add();
    }
    for method in [Get, Post] {
        doc.sdk(
            method,
            "/protected/{scope}",
            "A resource guarded by an elevated token for its scope",
            Elevated,
        )
        .path_parameter("scope", "The token scope the resource needs, e.g. `wallet:export`")
        .answers_object()
        .add();
    }
}

fn admin_operations(doc: &mut Document) {
    use HttpMethod::{Get, Post};
    doc.admin(Post, "/users", "Create a user").body::<CreateUserRequest>(false).answers::<SdkUser>().add();
    doc.admin(Post, "/users/{userId}/sessions", "Mint a session (and optionally an elevated token)")
        .path_parameter("userId", "The user id")
        .body::<CreateSessionRequest>(true)
        .answers::<AdminSession>()
        .add();
    doc.admin(Post, "/users/{userId}/wallets", "Link a wallet")
        .path_parameter("userId", "The user id")
        .body::<LinkWalletRequest>(false)
        .answers::<VerifiedCredential>()
        .add();
    doc.admin(Get, "/outbox", "The development outbox (codes sent)")
        .query_parameter(
            "to",
            "Only messages to this recipient",
            ObjectBuilder::new().schema_type(Type::String),
        )
        .answers_list::<OutboxMessage>()
        .add();
    doc.admin(Get, "/users", "List users, a page at a time")
        .query_parameter(
            "after",
            "Users with ids after this one",
            ObjectBuilder::new().schema_type(Type::String),
        )
        .query_parameter(
            "limit",
            "How many (1 to 200, default 50)",
            ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(200)),
        )
        .answers::<operator::UserPage>()
        .add();
    doc.admin(HttpMethod::Delete, "/users/{userId}", "Delete a user and all that is theirs")
        .path_parameter("userId", "The user id")
        .answers::<operator::DeleteAnswer>()
        .add();
    doc.admin(Post, "/users/{userId}/unlock", "End a user's MFA lockout")
        .path_parameter("userId", "The user id")
        .answers::<operator::UnlockAnswer>()
        .add();
    doc.admin(Post, "/users/{userId}/mfa/reset", "Remove a user's TOTP devices, passkeys and recovery codes")
        .path_parameter("userId", "The user id")
        .answers::<operator::MfaResetAnswer>()
        .add();
    doc.admin(Post, "/users/{userId}/sessions/revoke", "End every session of a user")
        .path_parameter("userId", "The user id")
        .answers::<operator::RevokeAnswer>()
        .add();
    doc.admin(
        Post,
        "/signing-keys",
        "Rotate the signing key (the previous one verifies until its tokens expire)",
    )
    .answers::<operator::RotatedKey>()
    .add();
}
