//! `cargo run --release -p bench -- rebuild`: rebuilds every read model from a demo history
//! of `--events` events (and `verify`s the hash chain over them), against a baseline in the same run that only reads and decodes
//! the same events in the same batches. Figures are medians of `--runs` runs.

use std::sync::Arc;
use std::time::Instant;

use app::config::Config;
use app::startup::build_parts;
use infrastructure::event_store::{EventStore, Position};
use infrastructure::testing::{TEST_POSTGRES_URL, TestDatabase};
use projections::facts::decode;
use projections::rebuild::{REBUILD_BATCH, rebuild_all};

use crate::median;

/// What to measure.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Events in the history.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Customers the history is spread over.
    #[arg(long, default_value_t = 200)]
    customers: usize,
    /// Runs of each measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// PostgreSQL server on which to create a throw-away database; PostgreSQL is skipped
    /// without it.
    #[arg(long, env = TEST_POSTGRES_URL)]
    postgres_url: Option<String>,
    /// Only SQLite, or only PostgreSQL.
    #[arg(long)]
    only: Option<String>,
    /// Use this PostgreSQL database as it is and keep it: the history is written on the
    /// first run and reused by the next ones (for profiling; the figures are the same).
    /// Takes the place of `--postgres-url`.
    #[arg(long)]
    postgres_database_url: Option<String>,
    /// Keep the SQLite history in this directory and reuse it on the next run instead of
    /// writing it again (for profiling; the figures are the same).
    #[arg(long)]
    keep_data: Option<std::path::PathBuf>,
}

async fn read_and_decode(store: &Arc<dyn EventStore>) -> anyhow::Result<u64> {
    let mut after = Position::START;
    let mut events = 0_u64;
    loop {
        let page = store.read_all(after, REBUILD_BATCH).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        events += page.iter().map(decode).count() as u64;
    }
    Ok(events)
}

async fn measure(
    name: &str,
    database_url: Option<String>,
    options: &Options,
) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let kept = options
        .keep_data
        .as_ref()
        .filter(|_| database_url.is_none());
    let directory = kept.map_or_else(|| data.path().to_path_buf(), Clone::clone);
    let config = Config::for_tests(directory, database_url);
    let (state, runner) = build_parts(&config).await?;
    if state.events.head().await? == Position::START {
        let started = Instant::now();
        let written =
            app::demo_data::generate(&state, options.customers, options.events, &mut |_| {})
                .await?;
        println!(
            "{name}: wrote {} events for {} customers in {:.1} s",
            written.events,
            written.customers,
            started.elapsed().as_secs_f64()
        );
    } else {
        println!(
            "{name}: reusing the history of {} events",
            state.events.head().await?
        );
    }
    runner.catch_up().await?;
    let mut baseline = Vec::new();
    let mut rebuilt = Vec::new();
    let mut verified = Vec::new();
    for _ in 0..options.runs {
        let started = Instant::now();
        let report = infrastructure::tamper_evidence::verify(&state.database, &[], |_| {}).await?;
        anyhow::ensure!(report.ok, "the demo log does not verify: {report:?}");
        verified.push(report.checked as f64 / started.elapsed().as_secs_f64());

        let started = Instant::now();
        let events = read_and_decode(&state.events).await?;
        baseline.push(events as f64 / started.elapsed().as_secs_f64());

        let started = Instant::now();
        let reports = rebuild_all(
            Arc::clone(&state.events),
            state.database.clone(),
            projections::all(),
            &mut |_| {},
        )
        .await?;
        let mut applied = 0;
        let mut phases: Vec<(&str, f64)> = Vec::new();
        for report in &reports {
            for (phase, took) in &report.phases {
                match phases.iter_mut().find(|(known, _)| known == phase) {
                    // The shared phases appear in every report; count them once.
                    Some((_, sum)) if !matches!(*phase, "fill" | "indexes") => {
                        *sum += took.as_secs_f64();
                    }
                    Some(_) => {}
                    None => phases.push((phase, took.as_secs_f64())),
                }
            }
        }
        let breakdown: Vec<String> = phases
            .iter()
            .map(|(phase, took)| format!("{phase} {took:.2} s"))
            .collect();
        println!("{name}: rebuild phases: {}", breakdown.join(", "));
        for report in reports {
            anyhow::ensure!(
                report.differences().is_empty(),
                "a rebuild of {} differed: {:?}",
                report.name,
                report.tables
            );
            applied = applied.max(report.events);
        }
        rebuilt.push(applied as f64 / started.elapsed().as_secs_f64());
    }
    let (base, base_low, base_high) = median(baseline);
    let (rate, low, high) = median(rebuilt);
    let (check, check_low, check_high) = median(verified);
    println!(
        "{name}: read + decode only      {base:>10.0} events/s (runs {base_low:.0}..{base_high:.0})"
    );
    println!(
        "{name}: rebuild all read models {rate:>10.0} events/s (runs {low:.0}..{high:.0}), {:.2}x the baseline",
        rate / base
    );
    println!(
        "{name}: verify the hash chain    {check:>10.0} events/s (runs {check_low:.0}..{check_high:.0})"
    );
    state.database.close().await;
    Ok(())
}

/// Runs the benchmark on SQLite and, given a server, PostgreSQL.
///
/// # Errors
/// When a database cannot be set up or a step fails.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let wants = |name: &str| {
        options
            .only
            .as_deref()
            .is_none_or(|only| only.eq_ignore_ascii_case(name))
    };
    if wants("sqlite") {
        measure("SQLite", None, &options).await?;
    }
    if wants("postgres") {
        match (&options.postgres_database_url, &options.postgres_url) {
            (Some(kept), _) => measure("PostgreSQL", Some(kept.clone()), &options).await?,
            (None, Some(server)) => {
                let database = TestDatabase::postgres_on(server).await;
                measure("PostgreSQL", Some(database.url().to_owned()), &options).await?;
                database.destroy_now().await;
            }
            (None, None) => {
                println!("PostgreSQL: skipped (no --postgres-url or {TEST_POSTGRES_URL})")
            }
        }
    }
    Ok(())
}
