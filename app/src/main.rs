//! `expense-tracker`: the one binary of the product.

use anyhow::Context;
use app::config::{Config, LogFormat};
use app::startup::{self, Application};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// See the workspace manifest for why.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Write a realistic demo history: customers (all with the password printed at the
    /// end) with a year of top-ups, expenses across categories, limits and savings.
    DemoData {
        /// How many customers.
        #[arg(long, default_value_t = 10)]
        customers: usize,
        /// About how many events in all.
        #[arg(long, default_value_t = 10_000)]
        events: u64,
    },
    /// Rebuild read models from the event log (all of them when no name is given) beside
    /// the live ones, which a running server keeps serving, then swap them in.
    Rebuild {
        /// The read model, e.g. `wallets`.
        name: Option<String>,
    },
    /// Erase a person's personal data for good (crypto-shredding): their events stay, their
    /// name, email and mobile can never be read again, and they can no longer sign in.
    ErasePerson {
        /// The person's user id.
        user_id: uuid::Uuid,
    },
    /// Check that no stored event was altered, inserted or removed behind the application's
    /// back: walks the whole log against its hash chain and every seal. Prints
    /// `{ok, checked, first_bad_position, ...}` and exits with 1 when the log was tampered with.
    Verify {
        /// A seal kept outside the database (as `seal` printed it: POSITION:CHAIN); repeatable.
        #[arg(long = "seal")]
        seals: Vec<infrastructure::tamper_evidence::Seal>,
    },
    /// Seal the log's head now and print the seal, to keep outside the database.
    Seal,
    /// Print a customer's state (wallet, limits, expenses, savings, tickets) as it was at an
    /// instant, rebuilt from their events up to then.
    Replay {
        /// The customer's user id.
        #[arg(long)]
        customer: uuid::Uuid,
        /// The instant, RFC 3339 (e.g. 2026-11-01T00:00:00Z).
        #[arg(long = "as-of")]
        as_of: chrono::DateTime<chrono::Utc>,
    },
    /// Export one customer's history, or the whole log, as CSV or JSON Lines.
    Export {
        /// Only this customer's history.
        #[arg(long)]
        customer: Option<uuid::Uuid>,
        /// `csv` or `jsonl`.
        #[arg(long, default_value = "jsonl", value_parser = ["csv", "jsonl"])]
        format: String,
        /// The file to write (standard output when not given).
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// Create an admin account. The password comes from `ADMIN_PASSWORD` or, when that is
    /// not set, from the first line of standard input; it never appears on the command line.
    CreateAdmin {
        /// The admin's email address (their login).
        #[arg(long)]
        email: String,
        /// How the admin is addressed.
        #[arg(long, default_value = "Administrator")]
        name: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A missing .env is the normal case; variables already set win over the file.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    match cli.config.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            // Every enclosing span, so the request id (on the outermost) is on each line.
            .with_current_span(false)
            .with_span_list(true)
            .with_env_filter(filter)
            .init(),
    }
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
        Command::CreateAdmin { email, name } => {
            let password = match cli.config.admin_password.clone() {
                Some(password) => password,
                None => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the password from stdin")?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            let state = startup::build_state(&cli.config).await?;
            let outcome = app::accounts::ensure_admin(&state, &name, &email, &password).await;
            state.database.close().await;
            match outcome {
                Ok(app::accounts::AdminSetup::Created(user_id)) => {
                    println!("admin created: {user_id}")
                }
                Ok(app::accounts::AdminSetup::AlreadyThere) => {
                    anyhow::bail!("an account with the email {email} exists already")
                }
                Err(error) => anyhow::bail!("cannot create the admin: {error}"),
            }
        }
        Command::ErasePerson { user_id } => {
            let state = startup::build_state(&cli.config).await?;
            let outcome = app::accounts::erase_person(&state, user_id, None, "operator").await;
            state.database.close().await;
            match outcome? {
                app::accounts::Erasure::Erased => println!("personal data of {user_id} erased"),
                app::accounts::Erasure::NoSuchPerson => {
                    anyhow::bail!("no account has the id {user_id}")
                }
                app::accounts::Erasure::NotWipedYet => anyhow::bail!(
                    "personal data of {user_id} erased, but the database log still holds the \
                     old copy of their key: run this again to wipe it"
                ),
            }
        }
        Command::DemoData { customers, events } => {
            let (state, runner) = startup::build_parts(&cli.config).await?;
            let bar = indicatif::ProgressBar::new(events);
            bar.set_style(indicatif::ProgressStyle::with_template(
                "demo-data [{bar:40}] {pos}/{len} events, {per_sec}, {eta} left",
            )?);
            let report = app::demo_data::generate(&state, customers, events, &mut |n| {
                bar.set_position(n);
            })
            .await;
            bar.finish_and_clear();
            let report = report?;
            println!(
                "wrote {} events for {} customers in {:.1} s ({:.0} events/s)",
                report.events,
                report.customers,
                report.elapsed.as_secs_f64(),
                report.events as f64 / report.elapsed.as_secs_f64().max(1e-9)
            );
            let projected = runner.catch_up().await?;
            println!("read models updated with {projected} events");
            println!(
                "sign in as {} (or any demo-...@example.com of this run) with the password \"{}\"",
                report.first_email,
                app::demo_data::DEMO_PASSWORD
            );
            state.database.close().await;
        }
        Command::Rebuild { name } => {
            let state = startup::build_state(&cli.config).await?;
            let names = match name {
                Some(name) => vec![name],
                None => state.rebuilds.names(),
            };
            let outcome = app::rebuild_cli::rebuild_all(&state, &names).await;
            state.database.close().await;
            outcome?;
        }
        Command::Verify { seals } => {
            let state = startup::build_state(&cli.config).await?;
            let intact = app::audit::cli::verify(&state, &seals).await;
            state.database.close().await;
            if !intact? {
                std::process::exit(1);
            }
        }
        Command::Seal => {
            let state = startup::build_state(&cli.config).await?;
            let sealed = app::audit::cli::seal(&state).await;
            state.database.close().await;
            sealed?;
        }
        Command::Replay { customer, as_of } => {
            let state = startup::build_state(&cli.config).await?;
            let replayed = app::audit::cli::replay(&state, customer, as_of).await;
            state.database.close().await;
            replayed?;
        }
        Command::Export {
            customer,
            format,
            output,
        } => {
            let format = app::audit::export::ExportFormat::parse(&format)
                .context("the format is csv or jsonl")?;
            let state = startup::build_state(&cli.config).await?;
            let exported =
                app::audit::cli::export(&state, customer, format, output.as_deref()).await;
            state.database.close().await;
            exported?;
        }
        Command::Migrate => {
            let database = startup::open_database(&cli.config).await?;
            // Events stored before the hash chain existed get theirs here, under the
            // migrating role: the application's role may not update events (ADR 0024).
            let chained = infrastructure::tamper_evidence::chain_earlier_events(&database).await;
            database.close().await;
            let chained = chained.context("chaining the events stored before the chain")?;
            if chained > 0 {
                println!("chained {chained} events stored before tamper evidence");
            }
            println!(
                "database migrated: {}",
                infrastructure::database::redact(&cli.config.database_url())
            );
        }
    }
    Ok(())
}
