//! The `warroom` binary: thin wiring around the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use warroom::app::{App, Settings};
use warroom::clock::Clock;
use warroom::config::{Config, Environment};
use warroom::store::{SqliteLock, Store};

#[derive(Parser)]
#[command(
    name = "warroom",
    version,
    about = "Incident-response bot for Slack and Microsoft Teams"
)]
struct Cli {
    /// Configuration file (default: $WARROOM_CONFIG, else ./warroom.toml if present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bot: HTTP server and job workers (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the configuration and report every problem with its key.
    CheckConfig,
    /// Print a Slack app manifest to paste into "Create app from manifest".
    Manifest {
        /// Public base URL of this bot, e.g. https://bot.example.com
        #[arg(long)]
        url: String,
    },
    /// Run a scripted P0 incident against an in-process Slack emulator and print what each
    /// channel would show. Needs no credentials.
    Demo,
    /// Render a resolution template to stdout, with sample data or a stored incident.
    Preview {
        /// internal-announcement, status-page, customer-email or post-incident-review
        template: String,
        /// Render with this incident (INC-n or n) from DATABASE_URL instead of sample data.
        #[arg(long)]
        incident: Option<String>,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn env_pairs() -> Vec<(String, String)> {
    std::env::vars().collect()
}

fn load_config(path: Option<&std::path::Path>) -> Result<Config, String> {
    match Config::load(path, &env_pairs()) {
        Ok((config, warnings)) => {
            for w in warnings {
                tracing::warn!("{w}");
            }
            Ok(config)
        }
        Err(e) => Err(e.to_string()),
    }
}

fn environment() -> Result<Environment, String> {
    Environment::from_lookup(|k| std::env::var(k).ok()).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            init_tracing();
            match serve(cli.config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("warroom serve: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Migrate => {
            init_tracing();
            let run = async {
                let env = environment().map_err(anyhow::Error::msg)?;
                let store = Store::connect(&env.database_url).await?;
                store.migrate().await?;
                anyhow::Ok(())
            };
            match run.await {
                Ok(()) => {
                    println!("migrations applied");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("warroom migrate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::CheckConfig => warroom::cli::check_config(cli.config.as_deref(), &env_pairs()),
        Command::Manifest { url } => match warroom::cli::manifest(&url) {
            Ok(text) => {
                use std::io::Write;
                let _ = writeln!(std::io::stdout(), "{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("warroom manifest: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Preview { template, incident } => {
            match warroom::cli::preview(
                cli.config.as_deref(),
                &env_pairs(),
                &template,
                incident.as_deref(),
            )
            .await
            {
                Ok(text) => {
                    // A closed pipe (`| head`) is not an error worth a panic.
                    use std::io::Write;
                    let _ = writeln!(std::io::stdout(), "{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("warroom preview: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Demo => match warroom::demo::run(&mut std::io::stdout()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("warroom demo: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn serve(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = load_config(config_path.as_deref()).map_err(anyhow::Error::msg)?;
    let env = environment().map_err(anyhow::Error::msg)?;
    if env.slack_signing_secret.is_none() || env.slack_bot_token.is_none() {
        anyhow::bail!(
            "Slack is not configured: set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN (see `warroom manifest`)"
        );
    }
    let paging = warroom::paging::routes::PagingSettings::from_lookup(|k| std::env::var(k).ok())
        .map_err(anyhow::Error::msg)?;
    let statuspage = warroom::publish::StatuspageSettings::from_lookup(|k| std::env::var(k).ok())
        .map_err(anyhow::Error::msg)?;
    // One process per SQLite file, taken before anything touches the database (another
    // process's start-up would requeue this one's running jobs); held until serve returns.
    let _sqlite_lock = SqliteLock::acquire(&env.database_url).map_err(anyhow::Error::msg)?;
    let app = App::build(Settings {
        config,
        env,
        clock: Clock::System,
        workers: 1,
        paging,
        statuspage,
    })
    .await?;
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        signal.cancel();
    });
    app.run_until_stopped(shutdown).await
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
