//! Server configuration: a TOML file, then environment overrides, then command-line flags.

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;
use stepup_core::SecretString;
use stepup_proto::TokenScope;

/// Scopes that are single-use by default: the destructive ones.
pub const DEFAULT_SINGLE_USE: [TokenScope; 4] = [
    TokenScope::WalletExport,
    TokenScope::WalletDelete,
    TokenScope::UserDelete,
    TokenScope::CredentialUnlink,
];

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("invalid configuration file: {0}")]
    Parse(String),
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole server configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Where to listen.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// `sqlite::memory:`, `sqlite://path/to/file.db` or `postgres://...`.
    #[serde(default = "default_database_url")]
    pub database_url: String,
    /// The admin API's bearer token; the `/admin` tree is off without one.
    #[serde(default)]
    pub admin_token: Option<SecretString>,
    /// The environments this server serves.
    #[serde(default)]
    pub environments: Vec<EnvironmentConfig>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_database_url() -> String {
    "sqlite::memory:".to_owned()
}

/// One environment (project): its identity, wallet-message and WebAuthn settings, and policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// The environment id in `/sdk/{environmentId}`.
    pub id: String,
    /// The app's name (wallet message statement).
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// The app's domain (wallet message first line), e.g. `localhost`.
    #[serde(default = "default_domain")]
    pub app_domain: String,
    /// The app's URI (wallet message `URI:`), e.g. `http://localhost`.
    #[serde(default = "default_origin")]
    pub app_uri: String,
    /// WebAuthn relying-party id.
    #[serde(default = "default_domain")]
    pub rp_id: String,
    /// WebAuthn origin.
    #[serde(default = "default_origin")]
    pub rp_origin: String,
    /// What needs step-up and for how long tokens live.
    #[serde(default)]
    pub policy: Policy,
}

fn default_app_name() -> String {
    "Stepup Demo".to_owned()
}

fn default_domain() -> String {
    "localhost".to_owned()
}

fn default_origin() -> String {
    "http://localhost".to_owned()
}

/// An environment's step-up policy and limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Scopes that need step-up (default: all 26).
    pub step_up_scopes: Vec<TokenScope>,
    /// Scopes whose tokens are single-use (default: the destructive ones).
    pub single_use_scopes: Vec<TokenScope>,
    /// Lifetime of a single-use elevated token, seconds.
    pub single_use_ttl_secs: u64,
    /// Lifetime of a multi-use elevated token, seconds.
    pub multi_use_ttl_secs: u64,
    /// Lifetime of a session, seconds.
    pub session_ttl_secs: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            step_up_scopes: TokenScope::KNOWN.to_vec(),
            single_use_scopes: DEFAULT_SINGLE_USE.to_vec(),
            single_use_ttl_secs: 300,
            multi_use_ttl_secs: 600,
            session_ttl_secs: 24 * 3600,
        }
    }
}

impl Policy {
    /// Whether `scope` needs step-up.
    #[must_use]
    pub fn requires_step_up(&self, scope: &TokenScope) -> bool {
        self.step_up_scopes.contains(scope)
    }

    /// Whether a token for these scopes is single-use (any of them is), and its lifetime in seconds.
    #[must_use]
    pub fn token_terms(&self, scopes: &[TokenScope]) -> (bool, u64) {
        let single_use = scopes.iter().any(|s| self.single_use_scopes.contains(s));
        (single_use, if single_use { self.single_use_ttl_secs } else { self.multi_use_ttl_secs })
    }
}

impl EnvironmentConfig {
    /// The development environment of `serve --dev`: app domain `localhost`, URI and origin
    /// `http://localhost`, RP id `localhost`, default policy.
    #[must_use]
    pub fn dev(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            app_name: default_app_name(),
            app_domain: default_domain(),
            app_uri: default_origin(),
            rp_id: default_domain(),
            rp_origin: default_origin(),
            policy: Policy::default(),
        }
    }
}

impl ServerConfig {
    /// A development configuration: one environment, in-memory SQLite, loopback.
    #[must_use]
    pub fn dev(environment_id: &str) -> Self {
        Self {
            listen: default_listen(),
            database_url: default_database_url(),
            admin_token: None,
            environments: vec![EnvironmentConfig::dev(environment_id)],
        }
    }

    /// Reads a TOML file.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Parse`].
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::from_toml(&text)
    }

    /// Parses TOML text.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] for text that is not this configuration.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))
    }

    /// Applies `STEPUP_LISTEN`, `STEPUP_DATABASE_URL` and `STEPUP_ADMIN_TOKEN` when set.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for an unparsable `STEPUP_LISTEN`.
    pub fn apply_env(&mut self) -> Result<(), ConfigError> {
        if let Ok(listen) = std::env::var("STEPUP_LISTEN") {
            self.listen =
                listen.parse().map_err(|_| ConfigError::Invalid(format!("STEPUP_LISTEN={listen}")))?;
        }
        if let Ok(url) = std::env::var("STEPUP_DATABASE_URL") {
            self.database_url = url;
        }
        if let Ok(token) = std::env::var("STEPUP_ADMIN_TOKEN") {
            self.admin_token = (!token.is_empty()).then(|| SecretString::new(token));
        }
        Ok(())
    }

    /// Checks the configuration is usable.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for no environment, a duplicate or empty id, or a zero lifetime.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.environments.is_empty() {
            return Err(ConfigError::Invalid("no environment configured".into()));
        }
        let mut ids: Vec<&str> = self.environments.iter().map(|e| e.id.as_str()).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) || ids.iter().any(|id| id.is_empty()) {
            return Err(ConfigError::Invalid("environment ids must be unique and not empty".into()));
        }
        for env in &self.environments {
            let p = &env.policy;
            if p.single_use_ttl_secs == 0 || p.multi_use_ttl_secs == 0 || p.session_ttl_secs == 0 {
                return Err(ConfigError::Invalid(format!(
                    "environment {}: lifetimes must be positive",
                    env.id
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_with_defaults() {
        let config = ServerConfig::from_toml(
            r#"
            listen = "127.0.0.1:9999"
            [[environments]]
            id = "prod"
            app_name = "Wallet"
            [environments.policy]
            single_use_ttl_secs = 60
            "#,
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.environments[0].policy.single_use_ttl_secs, 60);
        assert_eq!(config.environments[0].policy.step_up_scopes.len(), 26);
        assert_eq!(config.environments[0].rp_id, "localhost");
        config.validate().unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(matches!(ServerConfig::from_toml("nonsense = 1"), Err(ConfigError::Parse(_))));
        let mut config = ServerConfig::dev("a");
        config.environments.push(EnvironmentConfig::dev("a"));
        assert!(matches!(config.validate(), Err(ConfigError::Invalid(_))));
        let mut config = ServerConfig::dev("a");
        config.environments[0].policy.multi_use_ttl_secs = 0;
        assert!(matches!(config.validate(), Err(ConfigError::Invalid(_))));
        assert!(matches!(
            ServerConfig { environments: vec![], ..ServerConfig::dev("x") }.validate(),
            Err(ConfigError::Invalid(_))
        ));
    }

    #[test]
    fn token_terms_follow_the_policy() {
        let policy = Policy::default();
        assert_eq!(policy.token_terms(&[TokenScope::WalletExport]), (true, 300));
        assert_eq!(policy.token_terms(&[TokenScope::WalletSign]), (false, 600));
        assert_eq!(policy.token_terms(&[TokenScope::WalletSign, TokenScope::UserDelete]), (true, 300));
    }
}
