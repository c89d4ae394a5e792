//! The peer of our command path, measured the way our own bench measures it: cqrs-es with
//! postgres-es, on the workload of `bench -- all` (one `RecordExpense`, one event, per
//! command; wallets of their own, then one hot wallet), the median of several runs with the
//! spread.
//!
//! `cargo run --release -p peer-bench -- --postgres-database-url postgres://postgres@127.0.0.1:5432/postgres`
//!
//! It depends on none of our crates, so nothing of ours can make the peer faster or slower,
//! and it is not a default member of the workspace: the default build and test skip it.
//! Commands are sent in-process, without HTTP, as the peer's own users call it; our figures
//! are taken through HTTP, so the peer's are an upper bound for the same work behind a server.

mod wallet;
mod workload;

use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection as _, Executor as _, PgPool};
use uuid::Uuid;

use crate::wallet::Wallet;
use crate::workload::Outcome;

/// postgres-es's two tables, as its repository's `db/init.sql` creates them. The peer ships
/// no migrations; each run's database is fresh, so the tables are made here.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
-- Unused by the plain event store measured here; created as the peer's setup asks.
CREATE TABLE IF NOT EXISTS snapshots (
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);
";

#[derive(Debug, Parser)]
#[command(about = "cqrs-es + postgres-es on our RecordExpense workload")]
struct Options {
    /// PostgreSQL server on which each run creates a throw-away database, dropped after it.
    #[arg(long, env = "TEST_POSTGRES_URL")]
    postgres_database_url: String,
    /// Runs of each workload; medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seconds each workload lasts.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Concurrent tasks of the distinct-wallets workload, one workload per figure.
    #[arg(long, value_delimiter = ',', default_values_t = [16, 64])]
    distinct_tasks: Vec<usize>,
    /// Wallets the distinct-wallets tasks share out among themselves.
    #[arg(long, default_value_t = 64)]
    wallets: usize,
    /// Concurrent tasks on the one hot wallet.
    #[arg(long, default_value_t = 4)]
    hot_tasks: usize,
    /// Connections in the pool; by default one per task, so that no task waits for one.
    #[arg(long)]
    connections: Option<u32>,
}

/// One workload of a run.
#[derive(Debug, Clone, Copy)]
struct Workload {
    tasks: usize,
    wallets: usize,
}

impl Workload {
    fn name(self) -> String {
        if self.wallets == 1 {
            format!("RecordExpense, one hot wallet, {} tasks", self.tasks)
        } else {
            format!(
                "RecordExpense, {} tasks over {} wallets",
                self.tasks, self.wallets
            )
        }
    }
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    anyhow::ensure!(options.runs > 0, "--runs must be at least 1");
    anyhow::ensure!(options.wallets > 0, "--wallets must be at least 1");
    anyhow::ensure!(
        options.hot_tasks > 0 && options.distinct_tasks.iter().all(|&tasks| tasks > 0),
        "every workload needs at least one task"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(options))
}

async fn run(options: Options) -> anyhow::Result<()> {
    let server = PgConnectOptions::from_str(&options.postgres_database_url)
        .context("parsing --postgres-database-url")?;
    let mut workloads: Vec<Workload> = options
        .distinct_tasks
        .iter()
        .map(|&tasks| Workload {
            tasks,
            wallets: options.wallets,
        })
        .collect();
    workloads.push(Workload {
        tasks: options.hot_tasks,
        wallets: 1,
    });

    let mut outcomes: Vec<Vec<Outcome>> = workloads.iter().map(|_| Vec::new()).collect();
    for run in 1..=options.runs {
        println!("Run {run} of {}", options.runs);
        let name = format!("peer_bench_{}", Uuid::new_v4().simple());
        create_database(&server, &name).await?;
        let measured = run_once(&options, &server.clone().database(&name), &workloads).await;
        // Dropped whether or not the run succeeded: a failed run leaves nothing behind.
        let dropped = drop_database(&server, &name).await;
        for (outcome, all) in measured?.into_iter().zip(&mut outcomes) {
            all.push(outcome);
        }
        dropped?;
    }

    print_table(&workloads, &outcomes, &options);
    let other_errors: u64 = outcomes.iter().flatten().map(|o| o.other_errors).sum();
    anyhow::ensure!(
        other_errors == 0,
        "{other_errors} commands failed other than by a conflict; the figures above measure errors"
    );
    Ok(())
}

/// Every workload once, in order, each on fresh wallets in the run's database.
async fn run_once(
    options: &Options,
    database: &PgConnectOptions,
    workloads: &[Workload],
) -> anyhow::Result<Vec<Outcome>> {
    {
        let mut connection = database.connect().await?;
        connection
            .execute(SCHEMA)
            .await
            .context("creating postgres-es's tables")?;
        connection.close().await?;
    }
    let mut outcomes = Vec::with_capacity(workloads.len());
    for &workload in workloads {
        let connections = options
            .connections
            .unwrap_or_else(|| u32::try_from(workload.tasks).unwrap_or(u32::MAX));
        let pool = warm_pool(database, connections).await?;
        let cqrs = Arc::new(postgres_es::postgres_cqrs::<Wallet>(
            pool.clone(),
            Vec::new(),
            (),
        ));
        let outcome = workload::run(
            cqrs,
            &pool,
            workload.tasks,
            workload.wallets,
            options.seconds,
        )
        .await
        .with_context(|| workload.name())?;
        pool.close().await;
        println!(
            "  {}: {:.0}/s (first second {}, last {}), {} conflicts, {} other errors{}; \
             no lost update, longest history {} events",
            workload.name(),
            outcome.rate(),
            outcome.first_second,
            outcome.last_second,
            outcome.conflicts,
            outcome.other_errors,
            outcome
                .first_other_error
                .as_deref()
                .map(|error| format!(" (first: {error})"))
                .unwrap_or_default(),
            outcome.longest_history,
        );
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// A pool with all its connections already open, so that no workload pays for connecting.
async fn warm_pool(database: &PgConnectOptions, connections: u32) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(connections.max(1))
        .connect_with(database.clone())
        .await
        .context("connecting to the run's database")?;
    let mut held = Vec::with_capacity(connections as usize);
    for _ in 0..connections {
        held.push(pool.acquire().await?);
    }
    drop(held);
    Ok(pool)
}

async fn create_database(server: &PgConnectOptions, name: &str) -> anyhow::Result<()> {
    let mut connection = server
        .connect()
        .await
        .context("connecting to --postgres-database-url")?;
    connection
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .with_context(|| format!("creating the database {name}"))?;
    connection.close().await?;
    Ok(())
}

async fn drop_database(server: &PgConnectOptions, name: &str) -> anyhow::Result<()> {
    let mut connection = server.connect().await?;
    connection
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .with_context(|| format!("dropping the database {name}"))?;
    connection.close().await?;
    Ok(())
}

/// The median of `values`, with the smallest and the largest.
fn median(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let low = values.first().copied().unwrap_or(0.0);
    let high = values.last().copied().unwrap_or(0.0);
    (
        values.get(values.len() / 2).copied().unwrap_or(0.0),
        low,
        high,
    )
}

/// `median (low..high)` of one figure over the runs.
fn spread(outcomes: &[Outcome], figure: impl Fn(&Outcome) -> f64, unit: &str) -> String {
    let (middle, low, high) = median(outcomes.iter().map(figure).collect());
    format!("{middle:.0}{unit} ({low:.0}..{high:.0})")
}

fn print_table(workloads: &[Workload], outcomes: &[Vec<Outcome>], options: &Options) {
    println!(
        "\n{} runs of {} s each, median (spread):\n",
        options.runs, options.seconds
    );
    println!(
        "| workload | commands/s | first s -> last s (medians) | errors per run | of which conflicts | \
         commands refused | longest history |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (workload, outcomes) in workloads.iter().zip(outcomes) {
        println!(
            "| {} | {} | {:.0} -> {:.0}/s | {} | {} | {} | {} events |",
            workload.name(),
            spread(outcomes, Outcome::rate, "/s"),
            median(outcomes.iter().map(|o| o.first_second as f64).collect()).0,
            median(outcomes.iter().map(|o| o.last_second as f64).collect()).0,
            spread(outcomes, |o| o.errors() as f64, ""),
            spread(outcomes, |o| o.conflicts as f64, ""),
            spread(
                outcomes,
                |o| 100.0 * o.errors() as f64 / (o.done + o.errors()).max(1) as f64,
                "%"
            ),
            spread(outcomes, |o| o.longest_history as f64, ""),
        );
    }
    println!(
        "\nEvery run: no lost update (each wallet replayed, its balance and history checked)."
    );
}
