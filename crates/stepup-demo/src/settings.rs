//! What the demo environment allows, in one line, read from the server's `/settings` (`security.stepUp`, which
//! the reference server fills from the environment's policy: step-up on or off, and the enabled methods).

use stepup_proto::ProjectSettings;

/// The methods in the order `/settings` lists them, with the names people read.
const METHODS: [(&str, &str); 6] = [
    ("email", "email code"),
    ("sms", "SMS code"),
    ("wallet", "external wallet"),
    ("passkey", "passkey"),
    ("totp", "authenticator app"),
    ("recovery_code", "recovery code"),
];

/// `step-up on: email code, SMS code, ...`, or `step-up off`, from the environment's settings.
#[must_use]
pub fn step_up_summary(settings: &ProjectSettings) -> String {
    let step_up = settings.security.get("stepUp");
    let enabled =
        step_up.and_then(|s| s.get("enabled")).and_then(serde_json::Value::as_bool).unwrap_or(false);
    if !enabled {
        return "step-up off: every action goes through without verification".to_owned();
    }
    let methods = step_up.and_then(|s| s.get("methods"));
    let on: Vec<&str> = METHODS
        .iter()
        .filter(|(key, _)| {
            methods.and_then(|m| m.get(*key)).and_then(serde_json::Value::as_bool).unwrap_or(false)
        })
        .map(|(_, name)| *name)
        .collect();
    format!("step-up on, by {}", on.join(", "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn settings(step_up: serde_json::Value) -> ProjectSettings {
        let mut settings = ProjectSettings::default();
        settings.security.insert("stepUp".into(), step_up);
        settings
    }

    #[test]
    fn the_summary_names_what_is_on() {
        let on = settings(
            serde_json::json!({"enabled": true, "methods": {"email": true, "sms": false, "totp": true}}),
        );
        assert_eq!(step_up_summary(&on), "step-up on, by email code, authenticator app");
        let off = settings(serde_json::json!({"enabled": false, "methods": {"email": true}}));
        assert!(step_up_summary(&off).starts_with("step-up off"));
        assert!(step_up_summary(&ProjectSettings::default()).starts_with("step-up off"));
    }
}
