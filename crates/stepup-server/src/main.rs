//! `stepup-server`: serve the step-up API, or run an admin operation against a running server's database.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stepup_server::{EnvironmentConfig, Server, ServerConfig};

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
    loaded.apply_env().map_err(|e| e.to_string())?;
    Ok(loaded)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
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
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
            server.shutdown().await;
            ExitCode::SUCCESS
        }
    }
}
