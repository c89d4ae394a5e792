//! Benchmarks of the expense tracker, run on demand and never by the test suite.
//!
//! `cargo run --release -p bench -- all` measures the product end to end over HTTP as its
//! users use it (SQLite and PostgreSQL, one hot wallet, latency, dashboards, restart time,
//! memory, `verify` and `rebuild` of a million events), every figure against its goal.
//!
//! `cargo run --release -p bench -- event-store` measures durable appends to the event
//! store: 64 concurrent single-event callers on distinct streams with group commit, the same
//! load with group commit off (one transaction per event: the naive baseline), and callers
//! appending batches of 100 events, on SQLite and (with `--postgres-url`) on PostgreSQL.
//! Each figure is the median of several runs on a fresh database, with the spread.
//!
//! `cargo run --release -p bench -- rebuild` rebuilds every read model from a demo history
//! of a million events, against reading and decoding the same events.
//!
//! `cargo run --release -p bench -- instances` sends `RecordExpense` commands through one,
//! then two instances of the release binary on one PostgreSQL database, and times the
//! workers' failover when one instance is killed.

mod all;
mod event_store;
mod instances;
mod load;
mod rebuild;
mod server;

use clap::{Parser, Subcommand};

/// The product's allocator (`app`'s binary), so that what is measured here is what runs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(about = "Benchmarks of the expense tracker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole product end to end, every figure against its goal (see `all.rs`).
    All(all::Options),
    /// Durable appends to the event store, group commit against the naive baseline.
    EventStore(event_store::Options),
    /// Rebuild of every read model against reading and decoding the same events.
    Rebuild(rebuild::Options),
    /// Commands per second through two instances on one PostgreSQL database, and failover.
    Instances(instances::Options),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::All(options) => runtime.block_on(all::run(options)),
        Command::EventStore(options) => runtime.block_on(event_store::run(options)),
        Command::Rebuild(options) => runtime.block_on(rebuild::run(options)),
        Command::Instances(options) => runtime.block_on(instances::run(options)),
    }
}

/// The median of `values`, with the smallest and the largest.
#[must_use]
pub fn median(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let low = values.first().copied().unwrap_or(0.0);
    let high = values.last().copied().unwrap_or(0.0);
    (
        values.get(values.len() / 2).copied().unwrap_or(0.0),
        low,
        high,
    )
}
