//! `cargo run --release -p bench -- all`: the product measured end to end as its users
//! use it, every figure against its goal, in one run:
//!
//! 1. SQLite (the default, durable settings): `GET /healthz` (the ceiling of HTTP on this
//!    machine) and `RecordExpense` from 64 connections over 64 wallets, taken in turn in
//!    each run; the same on one hot wallet (then its balance is checked: no lost update);
//!    `GET /api/v1/dashboard`; one connection's latency; p99 at half the maximum load.
//! 2. PostgreSQL: `RecordExpense` over 64 wallets and on one hot wallet.
//! 3. A demo history of `--events` events over `--customers` customers (the demo-data
//!    generator): time to ready after each restart, the server's peak memory under load,
//!    and the `verify` and `rebuild` commands over the whole log.
//!
//! The load generator (`load.rs`) runs in this process, on the same cores as the server.
//! Every figure is the median of `--runs` runs, with the spread.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use infrastructure::testing::{TEST_POSTGRES_URL, TestDatabase};
use reqwest::Client;
use serde_json::json;

use crate::load::{self, Call, Outcome, Pace};
use crate::median;
use crate::server::{Server, balance, cpu_time, customer};

/// What to measure.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Runs of each measurement; medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seconds each load lasts.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Concurrent connections, each with a wallet of its own.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// The release binary.
    #[arg(long, default_value = "target/release/expense-tracker")]
    binary: PathBuf,
    /// PostgreSQL server on which to create a throw-away database; PostgreSQL is skipped
    /// without it.
    #[arg(long, env = TEST_POSTGRES_URL)]
    postgres_url: Option<String>,
    /// Events in the demo history of the third part.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Customers (wallets) in that history.
    #[arg(long, default_value_t = 100_000)]
    customers: usize,
    /// Keep that history in this directory and reuse it on the next run.
    #[arg(long)]
    keep_data: Option<PathBuf>,
    /// Leave out the demo history's part (restart, memory, verify and rebuild).
    #[arg(long)]
    skip_history: bool,
    /// Measure only the demo history's part (to iterate on memory, restart or rebuild).
    #[arg(long, conflicts_with = "skip_history")]
    only_history: bool,
}

/// How a figure is written.
#[derive(Debug, Clone, Copy)]
enum Unit {
    PerSecond,
    EventsPerSecond,
    Millis,
    Ratio,
    MiB,
    Micros,
}

impl Unit {
    fn write(self, value: f64) -> String {
        match self {
            Self::PerSecond => format!("{value:.0}/s"),
            Self::EventsPerSecond => format!("{value:.0} events/s"),
            Self::Millis => format!("{value:.2} ms"),
            Self::Ratio => format!("{value:.2}x"),
            Self::MiB => format!("{value:.0} MiB"),
            Self::Micros => format!("{value:.1} us"),
        }
    }
}

/// What a figure must reach, in its own unit.
#[derive(Debug, Clone, Copy)]
enum Goal {
    None,
    AtLeast(f64),
    AtMost(f64),
}

/// The figures of the whole run against their goals, printed as a table at the end.
#[derive(Default)]
struct Report(Vec<[String; 4]>);

impl Report {
    /// Adds the median of `values`, with their spread, against `goal`; returns the median.
    fn median_of(
        &mut self,
        workload: impl Into<String>,
        values: Vec<f64>,
        unit: Unit,
        goal: Goal,
    ) -> f64 {
        let (median, low, high) = median(values);
        let figure = format!(
            "{} ({}..{})",
            unit.write(median),
            unit.write(low),
            unit.write(high)
        );
        let (goal, verdict) = match goal {
            Goal::None => (String::new(), ""),
            Goal::AtLeast(at_least) => (
                format!(">= {}", unit.write(at_least)),
                if median >= at_least {
                    "met"
                } else {
                    "**not met**"
                },
            ),
            Goal::AtMost(at_most) => (
                format!("<= {}", unit.write(at_most)),
                if median <= at_most {
                    "met"
                } else {
                    "**not met**"
                },
            ),
        };
        let workload = workload.into();
        println!("  {workload}: {figure} {goal} {verdict}");
        self.0.push([workload, figure, goal, verdict.to_owned()]);
        median
    }

    fn print(&self) {
        println!("\n| workload | median (spread) | goal | |\n|---|---|---|---|");
        for [workload, figure, goal, verdict] in &self.0 {
            println!("| {workload} | {figure} | {goal} | {verdict} |");
        }
    }
}

/// An expense worth one unit, dated today.
fn expense(token: &str) -> anyhow::Result<Call> {
    let today = chrono::Utc::now().date_naive().to_string();
    Call::post(
        "/api/v1/expenses",
        token,
        &json!({ "amount": "1", "category": "Food", "description": "tea", "spent_on": today }),
    )
}

/// Fails on answers other than the expected ones: a benchmark of errors measures nothing.
fn checked(name: &str, outcome: Outcome) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        outcome.failed == 0,
        "{name}: {} requests failed, the first with {}",
        outcome.failed,
        outcome.first_failure.as_deref().unwrap_or("?")
    );
    Ok(outcome)
}

/// Sends `calls` as fast as they are answered for `seconds`; fails on unexpected answers.
async fn flat_out(
    name: &str,
    address: std::net::SocketAddr,
    calls: &[Call],
    seconds: f64,
) -> anyhow::Result<Outcome> {
    checked(
        name,
        load::run(address, calls, seconds, Pace::AsFastAsAnswered).await?,
    )
}

/// A load's outcome and the CPU it cost per request answered: the server's, and this
/// process's (the load generator's, on the same cores).
struct Costed {
    outcome: Outcome,
    server_us: f64,
    generator_us: f64,
}

/// As [`flat_out`], with the CPU the load cost. The server's CPU includes its background
/// work in the meantime (projections, log copies): part of what each command costs.
async fn flat_out_costed(
    name: &str,
    server: &Server,
    calls: &[Call],
    seconds: f64,
) -> anyhow::Result<Costed> {
    let (server_before, own_before) = (server.cpu_time()?, cpu_time("self")?);
    let outcome = flat_out(name, server.address, calls, seconds).await?;
    #[allow(clippy::cast_precision_loss)]
    let answered = outcome.done.max(1) as f64;
    let per_request = |spent: Duration| spent.as_secs_f64() * 1e6 / answered;
    Ok(Costed {
        server_us: per_request(server.cpu_time()?.saturating_sub(server_before)),
        generator_us: per_request(cpu_time("self")?.saturating_sub(own_before)),
        outcome,
    })
}

const TOP_UP: &str = "100000000";

/// Checks that a hot wallet lost no update: its balance is its top-up less one unit per
/// acknowledged expense.
async fn no_lost_update(
    client: &Client,
    base: &str,
    token: &str,
    acknowledged: u64,
) -> anyhow::Result<()> {
    let shown: f64 = balance(client, base, token).await?.parse()?;
    let expected = TOP_UP.parse::<f64>()? - acknowledged as f64;
    anyhow::ensure!(
        (shown - expected).abs() < 0.001,
        "the hot wallet shows {shown} after {acknowledged} expenses of 1 from {TOP_UP}: expected {expected}"
    );
    println!("  hot wallet: {acknowledged} expenses acknowledged, balance {shown} as expected");
    Ok(())
}

async fn customers(client: &Client, base: &str, n: usize) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::with_capacity(n);
    for _ in 0..n {
        tokens.push(customer(client, base, TOP_UP).await?);
    }
    Ok(tokens)
}

/// What the write loads run as: a wallet per connection, one hot wallet, and RecordExpense
/// calls spread over the first or all on the second.
struct Workload {
    tokens: Vec<String>,
    hot: String,
    spread: Vec<Call>,
    on_hot: Vec<Call>,
}

impl Workload {
    async fn prepare(client: &Client, base: &str, connections: usize) -> anyhow::Result<Self> {
        let tokens = customers(client, base, connections).await?;
        let hot = customer(client, base, TOP_UP).await?;
        let spread = tokens
            .iter()
            .map(|t| expense(t))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let on_hot = (0..connections)
            .map(|_| expense(&hot))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            tokens,
            hot,
            spread,
            on_hot,
        })
    }
}

async fn sqlite(options: &Options, client: &Client, report: &mut Report) -> anyhow::Result<()> {
    println!(
        "SQLite (durable defaults), {} connections",
        options.connections
    );
    let data = tempfile::tempdir()?;
    let mut server = Server::start(&options.binary, None, data.path(), None)?;
    server.ready(client, Instant::now()).await?;
    let Workload {
        tokens,
        hot,
        spread,
        on_hot,
    } = Workload::prepare(client, &server.base, options.connections).await?;
    let health: Vec<Call> = (0..options.connections)
        .map(|_| Call::get("/healthz", None))
        .collect::<anyhow::Result<_>>()?;
    let dashboards: Vec<Call> = tokens
        .iter()
        .map(|t| Call::get("/api/v1/dashboard", Some(t)))
        .collect::<anyhow::Result<_>>()?;
    let single = [expense(&tokens[0])?];
    let (mut healthz, mut record, mut ratio, mut hot_rates, mut dashboard) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut p50, mut p99) = (Vec::new(), Vec::new());
    let (mut health_cpu, mut record_cpu, mut generator_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let mut hot_done = 0;
    let seconds = options.seconds;
    for run in 1..=options.runs {
        let h = flat_out_costed("healthz", &server, &health, seconds).await?;
        let r = flat_out_costed("record", &server, &spread, seconds).await?;
        health_cpu.push(h.server_us);
        record_cpu.push(r.server_us);
        generator_cpu.push(r.generator_us);
        let (h, r) = (h.outcome, r.outcome);
        let w = flat_out("hot wallet", server.address, &on_hot, seconds).await?;
        hot_done += w.done;
        let d = flat_out("dashboard", server.address, &dashboards, seconds).await?;
        let s = flat_out("one connection", server.address, &single, seconds).await?;
        println!(
            "  run {run}: healthz {:.0}/s, RecordExpense {:.0}/s, hot wallet {:.0}/s, dashboard {:.0}/s, one connection p50 {:.2} ms p99 {:.2} ms",
            h.rate(),
            r.rate(),
            w.rate(),
            d.rate(),
            s.percentile_ms(50.0),
            s.percentile_ms(99.0)
        );
        ratio.push(r.rate() / h.rate());
        healthz.push(h.rate());
        record.push(r.rate());
        hot_rates.push(w.rate());
        dashboard.push(d.rate());
        p50.push(s.percentile_ms(50.0));
        p99.push(s.percentile_ms(99.0));
    }
    no_lost_update(client, &server.base, &hot, hot_done).await?;
    let n = options.connections;
    report.median_of(
        format!("GET /healthz, {n} connections, SQLite server"),
        healthz,
        Unit::PerSecond,
        Goal::None,
    );
    let max = report.median_of(
        format!("RecordExpense, {n} connections over {n} wallets, SQLite durable"),
        record,
        Unit::PerSecond,
        Goal::AtLeast(12_000.0),
    );
    report.median_of(
        "RecordExpense / GET /healthz, same run",
        ratio,
        Unit::Ratio,
        Goal::AtLeast(0.45),
    );
    report.median_of(
        "server CPU per GET /healthz",
        health_cpu,
        Unit::Micros,
        Goal::None,
    );
    report.median_of(
        format!("server CPU per RecordExpense, {n} wallets"),
        record_cpu,
        Unit::Micros,
        Goal::None,
    );
    report.median_of(
        "load generator CPU per RecordExpense",
        generator_cpu,
        Unit::Micros,
        Goal::None,
    );
    report.median_of(
        format!("RecordExpense, one hot wallet, {n} connections, SQLite (no lost update)"),
        hot_rates,
        Unit::PerSecond,
        Goal::AtLeast(5_000.0),
    );
    report.median_of(
        format!("GET /api/v1/dashboard, {n} connections, SQLite"),
        dashboard,
        Unit::PerSecond,
        Goal::None,
    );
    report.median_of(
        "RecordExpense, one connection: p50",
        p50,
        Unit::Millis,
        Goal::AtMost(1.0),
    );
    report.median_of(
        "RecordExpense, one connection: p99",
        p99,
        Unit::Millis,
        Goal::None,
    );

    let mut half = Vec::new();
    for _ in 0..options.runs {
        let h = checked(
            "half load",
            load::run(
                server.address,
                &spread,
                seconds,
                Pace::Rate {
                    per_second: max / 2.0,
                },
            )
            .await?,
        )?;
        println!(
            "  at {:.0}/s (half of {max:.0}/s): {:.0}/s done, p99 {:.2} ms",
            max / 2.0,
            h.rate(),
            h.percentile_ms(99.0)
        );
        half.push(h.percentile_ms(99.0));
    }
    report.median_of(
        format!(
            "RecordExpense at half the maximum ({:.0}/s): p99",
            max / 2.0
        ),
        half,
        Unit::Millis,
        Goal::AtMost(10.0),
    );
    report.median_of(
        "server peak RSS (SQLite, under the loads above)",
        vec![server.peak_rss_mib()?],
        Unit::MiB,
        Goal::None,
    );
    Ok(())
}

async fn postgres(options: &Options, client: &Client, report: &mut Report) -> anyhow::Result<()> {
    let Some(url) = &options.postgres_url else {
        println!("PostgreSQL: skipped (no --postgres-url or {TEST_POSTGRES_URL})");
        return Ok(());
    };
    println!("PostgreSQL, {} connections", options.connections);
    let database = TestDatabase::postgres_on(url).await;
    let data = tempfile::tempdir()?;
    let mut server = Server::start(&options.binary, Some(database.url()), data.path(), None)?;
    server.ready(client, Instant::now()).await?;
    let Workload {
        hot,
        spread,
        on_hot,
        ..
    } = Workload::prepare(client, &server.base, options.connections).await?;
    let (mut record, mut hot_rates, mut hot_done) = (Vec::new(), Vec::new(), 0);
    for run in 1..=options.runs {
        let r = flat_out("record", server.address, &spread, options.seconds).await?;
        let w = flat_out("hot wallet", server.address, &on_hot, options.seconds).await?;
        hot_done += w.done;
        println!(
            "  run {run}: RecordExpense {:.0}/s, hot wallet {:.0}/s",
            r.rate(),
            w.rate()
        );
        record.push(r.rate());
        hot_rates.push(w.rate());
    }
    no_lost_update(client, &server.base, &hot, hot_done).await?;
    let n = options.connections;
    report.median_of(
        format!("RecordExpense, {n} connections over {n} wallets, PostgreSQL"),
        record,
        Unit::PerSecond,
        Goal::AtLeast(4_000.0),
    );
    report.median_of(
        "RecordExpense, one hot wallet, PostgreSQL (no lost update)",
        hot_rates,
        Unit::PerSecond,
        Goal::None,
    );
    drop(server);
    database.destroy_now().await;
    Ok(())
}

/// Runs `binary` with `arguments` on the SQLite data in `data`; its standard output.
fn command(binary: &Path, data: &Path, arguments: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(binary)
        .args(arguments)
        .env("DATA_DIR", data)
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL")
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "{arguments:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

async fn history(options: &Options, client: &Client, report: &mut Report) -> anyhow::Result<()> {
    let temporary = tempfile::tempdir()?;
    let data = options
        .keep_data
        .clone()
        .unwrap_or_else(|| temporary.path().to_path_buf());
    std::fs::create_dir_all(&data)?;
    let written = data.join("demo-data.done");
    if written.exists() {
        println!("History: reusing {}", data.display());
    } else {
        let started = Instant::now();
        let events = options.events.to_string();
        let customers = options.customers.to_string();
        command(
            &options.binary,
            &data,
            &["demo-data", "--customers", &customers, "--events", &events],
        )?;
        std::fs::write(&written, "")?;
        println!(
            "History: {events} events over {customers} customers written in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }

    // Each run is a restart on the whole history, then load on it.
    let (mut ready, mut rss, mut tokens) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=options.runs {
        let started = Instant::now();
        let mut server = Server::start(&options.binary, None, &data, None)?;
        let took = server.ready(client, started).await?;
        if tokens.is_empty() {
            tokens = customers(client, &server.base, options.connections).await?;
        }
        let spread = tokens
            .iter()
            .map(|t| expense(t))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let dashboards: Vec<Call> = tokens
            .iter()
            .map(|t| Call::get("/api/v1/dashboard", Some(t)))
            .collect::<anyhow::Result<_>>()?;
        let r = flat_out("record", server.address, &spread, options.seconds).await?;
        let d = flat_out("dashboard", server.address, &dashboards, options.seconds).await?;
        let peak = server.peak_rss_mib()?;
        println!(
            "  run {run}: ready {:.0} ms after start; RecordExpense {:.0}/s, dashboard {:.0}/s; peak RSS {peak:.0} MiB",
            took.as_secs_f64() * 1000.0,
            r.rate(),
            d.rate()
        );
        ready.push(took.as_secs_f64() * 1000.0);
        rss.push(peak);
        drop(server);
    }
    report.median_of(
        format!("ready after a restart, {} events stored", options.events),
        ready,
        Unit::Millis,
        Goal::AtMost(2_000.0),
    );
    report.median_of(
        format!(
            "server peak RSS, {} events, {} wallets, under load",
            options.events, options.customers
        ),
        rss,
        Unit::MiB,
        // 150 MB.
        Goal::AtMost(150.0 / 1.048_576),
    );

    let (mut verified, mut rebuilt, mut events) = (Vec::new(), Vec::new(), 0_f64);
    for run in 1..=options.runs {
        let started = Instant::now();
        let verdict: serde_json::Value =
            serde_json::from_str(&command(&options.binary, &data, &["verify"])?)?;
        let took = started.elapsed();
        events = verdict["checked"].as_f64().unwrap_or(0.0);
        anyhow::ensure!(
            verdict["ok"] == true,
            "the history does not verify: {verdict}"
        );
        let started = Instant::now();
        let rebuilt_all = command(&options.binary, &data, &["rebuild"])?;
        let rebuild_took = started.elapsed();
        anyhow::ensure!(
            !rebuilt_all.contains("differed"),
            "a rebuilt read model differed: {rebuilt_all}"
        );
        println!(
            "  run {run}: verify {events:.0} events in {:.1} s, rebuild all read models in {:.1} s",
            took.as_secs_f64(),
            rebuild_took.as_secs_f64()
        );
        verified.push(events / took.as_secs_f64());
        rebuilt.push(events / rebuild_took.as_secs_f64());
    }
    report.median_of(
        format!("`expense-tracker rebuild`, {events:.0} events, SQLite (whole command)"),
        rebuilt,
        Unit::EventsPerSecond,
        Goal::AtLeast(150_000.0),
    );
    report.median_of(
        format!("`expense-tracker verify`, {events:.0} events, SQLite (whole command)"),
        verified,
        Unit::EventsPerSecond,
        Goal::None,
    );
    Ok(())
}

/// # Errors
/// When a server cannot be started, a database set up, or a request fails.
pub async fn run(options: Options) -> anyhow::Result<()> {
    anyhow::ensure!(
        options.binary.is_file(),
        "{} is missing: cargo build --release -p app",
        options.binary.display()
    );
    let client = Client::builder().timeout(Duration::from_secs(60)).build()?;
    let mut report = Report::default();
    if !options.only_history {
        sqlite(&options, &client, &mut report).await?;
        postgres(&options, &client, &mut report).await?;
    }
    if !options.skip_history {
        history(&options, &client, &mut report).await?;
    }
    report.print();
    Ok(())
}
