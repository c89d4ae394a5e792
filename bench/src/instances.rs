//! `cargo run --release -p bench -- instances`: `RecordExpense` commands per second through
//! two instances of the release binary on one PostgreSQL database, against the same load
//! through one instance, and how long the workers take to move when one instance is killed.
//!
//! Build the binary first (`cargo build --release -p app`). The load generator runs in this
//! process on the same 2 cores as both servers and PostgreSQL: compare the figures with
//! each other more than with anything measured elsewhere.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use infrastructure::testing::{TEST_POSTGRES_URL, TestDatabase};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

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

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(binary: &std::path::Path, url: &str, data: &std::path::Path) -> anyhow::Result<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(binary)
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("DATA_DIR", data)
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_MAX_CONNECTIONS", "16")
        .env("RUST_LOG", "warn")
        .env_remove("SMTP_URL")
        .stdout(Stdio::null())
        .spawn()?;
    Ok(Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    })
}

async fn ready(client: &Client, base: &str) -> anyhow::Result<()> {
    for _ in 0..600 {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await
            && response.status() == StatusCode::OK
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{base} never got ready")
}

async fn customer(client: &Client, base: &str, n: usize) -> anyhow::Result<String> {
    let email = format!("load{n}-{}@example.com", uuid::Uuid::new_v4().simple());
    let password = "a long enough password";
    let registered = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({ "name": "Load Test", "email": email, "mobile": "+91 98765 43210", "password": password }))
        .send()
        .await?;
    anyhow::ensure!(
        registered.status() == StatusCode::CREATED,
        "register: {}",
        registered.status()
    );
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"].as_str().unwrap_or_default().to_owned();
    let topped = client
        .post(format!("{base}/api/v1/wallet/top-ups"))
        .bearer_auth(&token)
        .json(&json!({ "amount": "1000000" }))
        .send()
        .await?;
    anyhow::ensure!(
        topped.status() == StatusCode::CREATED,
        "top-up: {}",
        topped.status()
    );
    Ok(token)
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

fn median(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values.first().copied().unwrap_or(0.0),
        values.last().copied().unwrap_or(0.0),
    )
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
    let first = start(&options.binary, database.url(), data.path())?;
    ready(&client, &first.base).await?;
    let second = start(&options.binary, database.url(), data.path())?;
    ready(&client, &second.base).await?;
    let mut tokens = Vec::new();
    for n in 0..options.connections {
        tokens.push(customer(&client, &first.base, n).await?);
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
