//! `expense-tracker`: the one binary of the product.

use anyhow::Context;
use app::config::Config;
use app::startup::{self, Application};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "expense-tracker",
    version,
    about = "Self-hosted, event-sourced personal expense tracker"
)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the web pages and the JSON API (the default).
    Serve,
    /// Create the database if needed, apply pending migrations, and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A missing .env is the normal case; variables already set win over the file.
    let _ = dotenvy::dotenv();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let application = Application::build(&cli.config).await?;
            let address = application
                .local_addr()
                .context("reading the bound address")?;
            tracing::info!(%address, "expense-tracker listening on http://{address}");
            application
                .run_until_stopped(startup::shutdown_signal())
                .await?;
        }
        Command::Migrate => {
            let database = startup::open_database(&cli.config).await?;
            database.close().await;
            println!(
                "database migrated: {}",
                infrastructure::database::redact(&cli.config.database_url())
            );
        }
    }
    Ok(())
}
