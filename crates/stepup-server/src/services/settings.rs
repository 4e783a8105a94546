//! The project settings Dynamic's clients initialise with (`GET /settings`): what the environment enforces, read
//! from its policy.

use serde_json::{Map, Value, json};
use stepup_core::Method;
use stepup_proto::{ProjectSettings, TokenScope};

use crate::environment::Environment;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Dynamic's MFA actions (`MFAAction`) and the scope each needs here.
const MFA_ACTIONS: [(&str, &str); 5] = [
    ("wallet.waas.sign", "wallet:sign"),
    ("wallet.waas.export", "wallet:export"),
    ("wallet.waas.reshare", "wallet:reshare"),
    ("wallet.waas.refresh", "wallet:refresh"),
    ("user.update", "user:update"),
];

/// The project settings Dynamic's clients initialise with (`GET /settings`), read from the environment's
/// policy: `security.mfa` (which MFA methods are on, and for each of Dynamic's MFA actions whether the server
/// requires step-up, which `isMfaRequiredForAction` reads), `security.externalAuth`, `chains` (wallets on or
/// off), and stepup's own `security.stepUp` (on/off, methods, scopes), which Dynamic's client ignores.
#[must_use]
pub fn settings(env: &Environment) -> ProjectSettings {
    let config = &env.config;
    let policy = &config.policy;
    let on = |method| policy.step_up_enabled && policy.method_enabled(method);
    let mfa_methods: Vec<&str> = [(Method::Totp, "totp"), (Method::Passkey, "passkey")]
        .into_iter()
        .filter(|(method, _)| on(*method))
        .map(|(_, name)| name)
        .collect();
    let actions: Vec<Value> = MFA_ACTIONS
        .iter()
        .map(|(action, scope)| json!({"action": action, "required": policy.requires_step_up(&TokenScope::parse(scope))}))
        .collect();
    let methods: Map<String, Value> = crate::config::switchable_methods()
        .map(|(method, setting)| (setting.to_owned(), Value::Bool(on(method))))
        .collect();
    let scope_names =
        |scopes: &[TokenScope]| scopes.iter().map(|s| s.as_str().to_owned()).collect::<Vec<_>>();
    let external = config.external_auth.as_ref();
    ProjectSettings {
        chains: vec![json!({"name": "EVM", "enabled": on(Method::ExternalWallet)})],
        kyc: vec![],
        design: Map::new(),
        general: object(json!({"appName": config.app_name, "displayName": config.app_name})),
        privacy: Map::new(),
        sdk: object(json!({"emailSignIn": {"signInProvider": "dynamic"}})),
        security: object(json!({
            "mfa": {
                "enabled": !mfa_methods.is_empty(),
                "required": false,
                "availableMethods": mfa_methods,
                "methods": [
                    {"type": "totp", "enabled": on(Method::Totp), "allowBackupCodes": on(Method::RecoveryCode)},
                    {"type": "passkey", "enabled": on(Method::Passkey), "allowBackupCodes": on(Method::RecoveryCode)},
                ],
                "actions": actions,
            },
            "externalAuth": {
                "enabled": external.is_some() && policy.step_up_enabled,
                "iss": external.and_then(|e| e.issuer.clone()),
                "aud": env.id(),
                "jwksUrl": external.and_then(|e| e.jwks_url.clone()),
            },
            "stepUp": {
                "enabled": policy.step_up_enabled,
                "methods": methods,
                "scopes": if policy.step_up_enabled { scope_names(&policy.step_up_scopes) } else { vec![] },
                "singleUseScopes": scope_names(&policy.single_use_scopes),
                "recentMfaMaxAgeSeconds": policy.recent_mfa_max_age_secs,
            },
        })),
    }
}
