//! `stepup-server`: serve the step-up API, or run an admin operation against a running server's database.

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use stepup_core::SystemClock;
use stepup_proto::WalletProvider;
use stepup_server::routes::{
    CreateUserRequest, LinkWalletRequest, create_session_op, create_user_op, link_wallet_op, outbox_op,
};
use stepup_server::{AppState, EnvironmentConfig, Server, ServerConfig, Store};

/// The stepup reference server.
#[derive(Debug, Parser)]
#[command(name = "stepup-server", version, about)]
struct Cli {
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
    /// Run an admin operation directly on a server's database (SQLite file or PostgreSQL) and print JSON.
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
    /// The server's database (with --dev settings when no --config is given).
    #[arg(long, env = "STEPUP_DATABASE_URL")]
    database_url: Option<String>,
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
}

async fn admin(target: AdminTarget, operation: AdminOperation) -> Result<String, String> {
    let mut config = match &target.config {
        Some(path) => ServerConfig::from_file(path).map_err(|e| e.to_string())?,
        None => ServerConfig::dev(&target.environment_id),
    };
    config.apply_env().map_err(|e| e.to_string())?;
    if let Some(url) = target.database_url {
        config.database_url = url;
    }
    if config.database_url.contains("memory") {
        return Err("admin commands need the server's persistent database (--database-url sqlite://file.db or postgres://...)".into());
    }
    let store = Store::connect(&config.database_url).await.map_err(|e| e.to_string())?;
    let state = AppState::new(&config, store, Arc::new(SystemClock)).await.map_err(|e| e.to_string())?;
    let env = target.environment_id.as_str();
    let fail = |e: stepup_server::error::ApiError| format!("{} ({})", e.code(), e.status());
    let json = match operation {
        AdminOperation::CreateUser { email, phone, phone_country_code, iso_country_code } => {
            let request = CreateUserRequest {
                email,
                phone_number: phone,
                phone_country_code: Some(phone_country_code),
                iso_country_code: Some(iso_country_code),
            };
            serde_json::to_string_pretty(&create_user_op(&state, env, request).await.map_err(fail)?)
        }
        AdminOperation::Session { user_id } => {
            let session = create_session_op(&state, env, &user_id).await.map_err(fail)?;
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
            serde_json::to_string_pretty(&link_wallet_op(&state, env, &user_id, request).await.map_err(fail)?)
        }
        AdminOperation::Outbox { to } => {
            serde_json::to_string_pretty(&outbox_op(&state, env, to.as_deref()).await.map_err(fail)?)
        }
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

#[tokio::main]
async fn main() -> ExitCode {
    // Logs go to stderr: stdout carries the base URL (serve) or the JSON answer (admin) for scripts.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "stepup_server=info".into()),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
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
