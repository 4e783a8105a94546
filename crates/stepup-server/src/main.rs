//! `stepup-server`: serve the step-up API, or run an admin operation against a running server's database.

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use stepup_core::SystemClock;
use stepup_proto::WalletProvider;
use stepup_server::routes::{CreateUserRequest, LinkWalletRequest};
use stepup_server::services::admin::{create_session, create_user, link_wallet, outbox};
use stepup_server::services::operator;
use stepup_server::{AppState, EnvironmentConfig, Server, ServerConfig, Store};

/// The stepup reference server.
#[derive(Debug, Parser)]
#[command(name = "stepup-server", version, about)]
struct Cli {
    /// How logs are written to stderr: `text` (for people) or `json` (one object per line, for collectors).
    #[arg(long, global = true, env = "STEPUP_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the SDK API (and the admin API when STEPUP_ADMIN_TOKEN or `admin_token` is set).
    Serve {
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Development mode: one environment, localhost settings, SQLite in memory unless --database-url.
        #[arg(long)]
        dev: bool,
        /// Listen address (port 0 picks one).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Database URL: sqlite::memory:, sqlite://file.db or postgres://...
        #[arg(long)]
        database_url: Option<String>,
        /// The development environment's id.
        #[arg(long, default_value = "dev")]
        environment_id: String,
    },
    /// Check a configuration file (and the environment overrides) without serving: the settings, the templates,
    /// the delivery channels and the key-encryption key. Prints a summary; exits 2 on an error.
    CheckConfig {
        /// TOML configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Check it as `serve --dev` would run it.
        #[arg(long)]
        dev: bool,
    },
    /// Print a new random key-encryption key (64 hex digits) for STEPUP_KEY_ENCRYPTION_KEY or a key file.
    GenerateKey,
    /// Run an admin operation directly on a server's database (SQLite file or PostgreSQL) and print JSON.
    /// Needs the server's key-encryption key (STEPUP_KEY_ENCRYPTION_KEY or key_encryption_key_file).
    Admin {
        #[command(flatten)]
        target: AdminTarget,
        #[command(subcommand)]
        operation: AdminOperation,
    },
}

#[derive(Debug, Args)]
struct AdminTarget {
    /// TOML configuration file of the server.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The server's database (overrides the configuration's).
    #[arg(long, env = "STEPUP_DATABASE_URL")]
    database_url: Option<String>,
    /// The database is a `serve --dev` server's: use its settings (instead of --config).
    #[arg(long, conflicts_with = "config")]
    dev: bool,
    /// The environment.
    #[arg(long, default_value = "dev")]
    environment_id: String,
}

#[derive(Debug, Subcommand)]
enum AdminOperation {
    /// Create a user with an email and/or phone credential.
    CreateUser {
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// Phone number without country code.
        #[arg(long)]
        phone: Option<String>,
        /// Country calling code.
        #[arg(long, default_value = "1")]
        phone_country_code: String,
        /// ISO country code.
        #[arg(long, default_value = "US")]
        iso_country_code: String,
    },
    /// Mint a session JWT for a user.
    Session {
        /// The user.
        #[arg(long)]
        user_id: String,
    },
    /// Link a wallet to a user.
    LinkWallet {
        /// The user.
        #[arg(long)]
        user_id: String,
        /// `0x` + 40 hex digits.
        #[arg(long)]
        address: String,
        /// Chain.
        #[arg(long, default_value = "EVM")]
        chain: String,
        /// Wallet name.
        #[arg(long, default_value = "metamask")]
        wallet_name: String,
        /// Wallet provider (`browserExtension`, `embeddedWallet`, ...).
        #[arg(long, default_value = "browserExtension")]
        wallet_provider: String,
        /// An embedded wallet (never qualifies for step-up).
        #[arg(long)]
        embedded: bool,
    },
    /// Read the one-time-code outbox.
    Outbox {
        /// Only messages to this address.
        #[arg(long)]
        to: Option<String>,
    },
    /// List users, a page at a time (in id order).
    ListUsers {
        /// Users with ids after this one (the `next` of the previous page).
        #[arg(long)]
        after: Option<String>,
        /// How many (1 to 200).
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// End a user's MFA lockout.
    UnlockUser {
        /// The user.
        #[arg(long)]
        user_id: String,
    },
    /// Remove a user's MFA: TOTP devices, passkeys, recovery codes (the user is emailed).
    ResetMfa {
        /// The user.
        #[arg(long)]
        user_id: String,
    },
    /// End every session of a user.
    RevokeSessions {
        /// The user.
        #[arg(long)]
        user_id: String,
    },
    /// Delete a user and all that is theirs.
    DeleteUser {
        /// The user.
        #[arg(long)]
        user_id: String,
    },
    /// Add a new signing key to the environment; the previous one verifies until its tokens expire. Running
    /// servers pick it up within a minute.
    RotateSigningKey {
        /// Delete every other key at once (a key leaked): all tokens they signed stop verifying.
        #[arg(long)]
        retire_previous: bool,
    },
}

async fn admin(target: AdminTarget, operation: AdminOperation) -> Result<String, String> {
    // The operations depend on the server's settings (the key retirement window, the relay notices go through,
    // which environments exist): read them, never guess them.
    let mut config = match (&target.config, target.dev) {
        (Some(path), _) => ServerConfig::from_file(path).map_err(|e| e.to_string())?,
        (None, true) => ServerConfig::dev(&target.environment_id),
        (None, false) => {
            return Err(
                "give --config FILE (the server's configuration), or --dev for a `serve --dev` database"
                    .into(),
            );
        }
    };
    config.apply_env().map_err(|e| e.to_string())?;
    if let Some(url) = target.database_url {
        config.database_url = url;
    }
    if config.database_url.contains("memory") {
        return Err("admin commands need the server's persistent database (--database-url sqlite://file.db or postgres://...)".into());
    }
    // Never an ephemeral key here: the database's secrets are sealed under the server's.
    if config.key_encryption_key().map_err(|e| e.to_string())?.is_none() {
        return Err("admin commands need the server's key-encryption key (STEPUP_KEY_ENCRYPTION_KEY, \
                    STEPUP_KEY_ENCRYPTION_KEY_FILE or key_encryption_key_file)"
            .into());
    }
    let store = Store::connect(&config.database_url).await.map_err(|e| e.to_string())?;
    let state = AppState::new(&config, store, Arc::new(SystemClock)).await.map_err(|e| e.to_string())?;
    let env = target.environment_id.as_str();
    // A refusal reads as the admin API would answer it: code and status.
    let failed = |e: stepup_server::services::ServiceError| {
        let e = stepup_server::error::ApiError::from(e);
        format!("{} ({})", e.code(), e.status())
    };
    let json = match operation {
        AdminOperation::CreateUser { email, phone, phone_country_code, iso_country_code } => {
            let request = CreateUserRequest {
                email,
                phone_number: phone,
                phone_country_code: Some(phone_country_code),
                iso_country_code: Some(iso_country_code),
            };
            serde_json::to_string_pretty(&create_user(&state, env, request).await.map_err(failed)?)
        }
        AdminOperation::Session { user_id } => {
            let session = create_session(&state, env, &user_id).await.map_err(failed)?;
            // The CLI exists to hand the session to the operator: print the JWT itself.
            Ok(serde_json::json!({"jwt": session.jwt.expose_secret(), "expiresAt": session.expires_at})
                .to_string())
        }
        AdminOperation::LinkWallet { user_id, address, chain, wallet_name, wallet_provider, embedded } => {
            let request = LinkWalletRequest {
                address,
                chain,
                wallet_name,
                wallet_provider: WalletProvider::parse(&wallet_provider),
                embedded,
            };
            serde_json::to_string_pretty(&link_wallet(&state, env, &user_id, request).await.map_err(failed)?)
        }
        AdminOperation::Outbox { to } => {
            serde_json::to_string_pretty(&outbox(&state, env, to.as_deref()).await.map_err(failed)?)
        }
        AdminOperation::ListUsers { after, limit } => serde_json::to_string_pretty(
            &operator::list_users(&state, env, after.as_deref(), Some(limit)).await.map_err(failed)?,
        ),
        AdminOperation::UnlockUser { user_id } => {
            serde_json::to_string_pretty(&operator::unlock_user(&state, env, &user_id).await.map_err(failed)?)
        }
        AdminOperation::ResetMfa { user_id } => {
            serde_json::to_string_pretty(&operator::reset_mfa(&state, env, &user_id).await.map_err(failed)?)
        }
        AdminOperation::RevokeSessions { user_id } => serde_json::to_string_pretty(
            &operator::revoke_sessions(&state, env, &user_id).await.map_err(failed)?,
        ),
        AdminOperation::DeleteUser { user_id } => {
            serde_json::to_string_pretty(&operator::delete_user(&state, env, &user_id).await.map_err(failed)?)
        }
        AdminOperation::RotateSigningKey { retire_previous } => serde_json::to_string_pretty(
            &operator::rotate_signing_key(&state, env, retire_previous).await.map_err(failed)?,
        ),
    };
    json.map_err(|e| e.to_string())
}

fn load(config: Option<PathBuf>, dev: bool, environment_id: &str) -> Result<ServerConfig, String> {
    let mut loaded = match (config, dev) {
        (Some(path), _) => ServerConfig::from_file(&path).map_err(|e| e.to_string())?,
        (None, true) => ServerConfig::dev(environment_id),
        (None, false) => return Err("give --config FILE or --dev".into()),
    };
    if dev && loaded.environments.is_empty() {
        loaded.environments.push(EnvironmentConfig::dev(environment_id));
    }
    loaded.dev |= dev;
    loaded.apply_env().map_err(|e| e.to_string())?;
    Ok(loaded)
}

/// Ctrl-C, or SIGTERM (what process managers send).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// `check-config`: everything `serve` checks before it binds, without a database.
fn check_config(path: PathBuf, dev: bool) -> Result<String, String> {
    let config = load(Some(path), dev, "dev")?;
    config.validate().map_err(|e| e.to_string())?;
    let delivery = stepup_server::delivery::Delivery::new(&config).map_err(|e| e.to_string())?;
    let kek = config.key_encryption_key().map_err(|e| e.to_string())?;
    if kek.is_none() && !config.dev {
        return Err(stepup_server::StartError::NoKeyEncryptionKey.to_string());
    }
    let mut lines = vec![format!("configuration ok: {} environment(s)", config.environments.len())];
    for env in &config.environments {
        lines.push(format!("  environment {}: app {:?}, rp_id {}", env.id, env.app_name, env.rp_id));
    }
    lines.push(format!(
        "  email: {}; sms: {}; outbox: {}",
        if config.delivery.smtp.is_some() { "SMTP" } else { "none" },
        if config.delivery.sms.is_some() { "gateway" } else { "none" },
        if delivery.outbox_enabled() { "on (development only: codes in clear)" } else { "off" },
    ));
    lines.push(format!(
        "  key-encryption key: {}",
        kek.map_or_else(|| "ephemeral (--dev)".to_owned(), |k| format!("id {}", k.id()))
    ));
    lines.push(format!(
        "  metrics: {}",
        match (&config.metrics.listen, &config.metrics.token) {
            (Some(addr), _) => format!("on {addr}"),
            (None, Some(_)) => "on the main listener, with a token".to_owned(),
            (None, None) => "off".to_owned(),
        }
    ));
    for warning in config.warnings() {
        lines.push(format!("warning: {warning}"));
    }
    Ok(lines.join("\n"))
}

fn init_logs(format: &str) {
    // Logs go to stderr: stdout carries the base URL (serve) or the JSON answer (admin) for scripts.
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "stepup_server=info".into());
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    if format == "json" {
        logs.json().with_current_span(true).with_span_list(false).init();
    } else {
        logs.init();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(&cli.log_format);
    match cli.command {
        Command::CheckConfig { config, dev } => match check_config(config, dev) {
            Ok(summary) => {
                #[allow(clippy::print_stdout)]
                {
                    println!("{summary}");
                }
                ExitCode::SUCCESS
            }
            Err(error) => {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("configuration error: {error}");
                }
                ExitCode::from(2)
            }
        },
        Command::GenerateKey => match stepup_server::key_encryption::KeyEncryptionKey::generate() {
            Ok(key) => {
                #[allow(clippy::print_stdout)]
                {
                    println!("{}", key.to_hex().as_str());
                }
                ExitCode::SUCCESS
            }
            Err(error) => {
                tracing::error!(%error, "cannot make a key");
                ExitCode::FAILURE
            }
        },
        Command::Serve { config, dev, listen, database_url, environment_id } => {
            let mut config = match load(config, dev, &environment_id) {
                Ok(config) => config,
                Err(error) => {
                    tracing::error!(%error, "configuration");
                    return ExitCode::from(2);
                }
            };
            if let Some(listen) = listen {
                config.listen = listen;
            }
            if let Some(url) = database_url {
                config.database_url = url;
            }
            let server = match Server::start(config).await {
                Ok(server) => server,
                Err(error) => {
                    tracing::error!(%error, "cannot start");
                    return ExitCode::FAILURE;
                }
            };
            // The base URL on stdout, alone on its line, so scripts can read it.
            #[allow(clippy::print_stdout)]
            {
                println!("{}", server.base_url());
            }
            shutdown_signal().await;
            tracing::info!("shutting down");
            server.shutdown().await;
            ExitCode::SUCCESS
        }
        Command::Admin { target, operation } => match admin(target, operation).await {
            Ok(json) => {
                #[allow(clippy::print_stdout)]
                {
                    println!("{json}");
                }
                ExitCode::SUCCESS
            }
            Err(error) => {
                tracing::error!(%error, "admin operation failed");
                ExitCode::FAILURE
            }
        },
    }
}
