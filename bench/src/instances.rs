//! `cargo run --release -p bench -- instances`: `RecordExpense` commands per second through
//! two instances of the release binary on one PostgreSQL database, against the same load
//! through one instance, and how long the workers take to move when one instance is killed.
//!
//! Build the binary first (`cargo build --release -p app`). The load generator runs in this
//! process on the same 2 cores as both servers and PostgreSQL: compare the figures with
//! each other more than with anything measured elsewhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use infrastructure::testing::{TEST_POSTGRES_URL, TestDatabase};
use reqwest::{Client, StatusCode};
use serde_json::json;

use crate::median;
use crate::server::{Server, customer};

/// What to measure.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Seconds each measured run lasts.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Runs per scenario; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Concurrent connections, each with a customer (wallet) of its own.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// The release binary.
    #[arg(long, default_value = "target/release/expense-tracker")]
    binary: std::path::PathBuf,
    /// PostgreSQL server on which to create a throw-away database.
    #[arg(long, env = TEST_POSTGRES_URL)]
    postgres_url: String,
}

/// Commands per second from `tokens.len()` connections, spread over `bases` in turn.
async fn load(client: &Client, bases: &[String], tokens: &[String], seconds: f64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (n, token) in tokens.iter().enumerate() {
        let (client, base, token, done) = (
            client.clone(),
            bases[n % bases.len()].clone(),
            token.clone(),
            Arc::clone(&done),
        );
        tasks.spawn(async move {
            let body = json!({ "amount": "1", "category": "Food", "description": "tea", "spent_on": "2026-11-10" });
            while Instant::now() < until {
                if let Ok(response) = client
                    .post(format!("{base}/api/v1/expenses"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    && response.status() == StatusCode::CREATED
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    #[allow(clippy::cast_precision_loss)]
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    rate
}

async fn leads_all(client: &Client, base: &str) -> bool {
    let Ok(response) = client.get(format!("{base}/metrics")).send().await else {
        return false;
    };
    let text = response.text().await.unwrap_or_default();
    let leading = text
        .lines()
        .filter(|l| l.starts_with("expense_tracker_worker_leader{") && l.ends_with(" 1"))
        .count();
    leading == 5
}

/// # Errors
/// When the servers cannot be started or the database set up.
pub async fn run(options: Options) -> anyhow::Result<()> {
    anyhow::ensure!(
        options.binary.is_file(),
        "{} is missing: cargo build --release -p app",
        options.binary.display()
    );
    let database = TestDatabase::postgres_on(&options.postgres_url).await;
    let data = tempfile::tempdir()?;
    let client = Client::builder()
        .pool_max_idle_per_host(options.connections)
        .build()?;
    let mut first = Server::start(&options.binary, Some(database.url()), data.path(), Some(16))?;
    first.ready(&client, Instant::now()).await?;
    let mut second = Server::start(&options.binary, Some(database.url()), data.path(), Some(16))?;
    second.ready(&client, Instant::now()).await?;
    let mut tokens = Vec::new();
    for _ in 0..options.connections {
        tokens.push(customer(&client, &first.base, "1000000").await?);
    }
    let both = [first.base.clone(), second.base.clone()];
    let mut one_rates = Vec::new();
    let mut two_rates = Vec::new();
    for _ in 0..options.runs {
        one_rates.push(load(&client, &both[..1], &tokens, options.seconds).await);
        two_rates.push(load(&client, &both, &tokens, options.seconds).await);
    }
    let (one, one_low, one_high) = median(one_rates);
    let (two, two_low, two_high) = median(two_rates);
    println!(
        "RecordExpense, {} connections, PostgreSQL: one instance {one:.0}/s (runs {one_low:.0}..{one_high:.0}), two instances {two:.0}/s (runs {two_low:.0}..{two_high:.0})",
        options.connections
    );

    // Failover: kill whichever instance runs the workers; time until the other runs them.
    let (mut victim, survivor) = if leads_all(&client, &first.base).await {
        (first, second)
    } else {
        (second, first)
    };
    let killed = Instant::now();
    victim.child.kill()?;
    let _ = victim.child.wait();
    while !leads_all(&client, &survivor.base).await {
        anyhow::ensure!(
            killed.elapsed() < Duration::from_secs(30),
            "no failover in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "failover: the workers ran on the survivor {:.0} ms after the SIGKILL",
        killed.elapsed().as_secs_f64() * 1000.0
    );
    drop(survivor);
    database.destroy_now().await;
    Ok(())
}
