//! The release binary as the benches run it: started on a database, waited for, measured
//! (peak memory), and customers signed up through its API.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

/// A running `expense-tracker serve`, killed when dropped.
#[derive(Debug)]
pub struct Server {
    pub child: Child,
    pub address: SocketAddr,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `binary serve` with its data in `data`, on PostgreSQL when `database_url` is
    /// given and on the default durable SQLite file in `data` otherwise; its database pool
    /// as configured by default unless `max_connections` is given.
    ///
    /// # Errors
    /// When no port is free or the binary does not start.
    pub fn start(
        binary: &Path,
        database_url: Option<&str>,
        data: &Path,
        max_connections: Option<u32>,
    ) -> anyhow::Result<Self> {
        let address = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env("DATA_DIR", data)
            .env("LISTEN_ADDR", address.to_string())
            .env("RUST_LOG", "warn")
            .env_remove("DATABASE_URL")
            .env_remove("SMTP_URL")
            .env_remove("ADMIN_EMAIL")
            .env_remove("ADMIN_PASSWORD")
            .stdout(Stdio::null());
        if let Some(max) = max_connections {
            command.env("DATABASE_MAX_CONNECTIONS", max.to_string());
        }
        if let Some(url) = database_url {
            command.env("DATABASE_URL", url);
        }
        Ok(Self {
            child: command.spawn()?,
            address,
            base: format!("http://{address}"),
        })
    }

    /// Waits until `/readyz` answers 200; how long that took since `since`.
    ///
    /// # Errors
    /// When it is not ready within two minutes or the process died.
    pub async fn ready(&mut self, client: &Client, since: Instant) -> anyhow::Result<Duration> {
        while since.elapsed() < Duration::from_secs(120) {
            if let Ok(response) = client.get(format!("{}/readyz", self.base)).send().await
                && response.status() == StatusCode::OK
            {
                return Ok(since.elapsed());
            }
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("the server exited before it was ready: {status}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        anyhow::bail!("{} never got ready", self.base)
    }

    /// The CPU time the server has used so far.
    ///
    /// # Errors
    /// As [`cpu_time`].
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        cpu_time(&self.child.id().to_string())
    }

    /// The most memory the process has held resident so far (`VmHWM`), in MiB.
    ///
    /// # Errors
    /// When `/proc` cannot be read (not Linux, or the process is gone).
    pub fn peak_rss_mib(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/{}/status", self.child.id()))?;
        Ok(kib / 1024.0)
    }
}

/// The CPU time (user and system, every thread) the process `pid` (`"self"` for this one)
/// has used so far, from `/proc/<pid>/stat`.
///
/// # Errors
/// When `/proc` cannot be read or parsed (not Linux, or the process is gone).
pub fn cpu_time(pid: &str) -> anyhow::Result<Duration> {
    /// `/proc`'s clock ticks (`USER_HZ`), 100 on every Linux the product runs on.
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name, in parentheses, may hold spaces: count the fields after it.
    // Fields 14 and 15 of the line (`utime`, `stime`) are the 12th and 13th after it.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow::anyhow!("no command name in /proc/{pid}/stat"))?;
    let ticks: Vec<f64> = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(ticks.len() == 2, "no utime and stime in /proc/{pid}/stat");
    Ok(Duration::from_secs_f64(
        (ticks[0] + ticks[1]) / TICKS_PER_SECOND,
    ))
}

/// Registers a customer, signs them in and tops their wallet up with `top_up`; their
/// bearer token.
///
/// # Errors
/// When a step does not answer as it should.
pub async fn customer(client: &Client, base: &str, top_up: &str) -> anyhow::Result<String> {
    let email = format!("load-{}@example.com", uuid::Uuid::new_v4().simple());
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
        .json(&json!({ "amount": top_up }))
        .send()
        .await?;
    anyhow::ensure!(
        topped.status() == StatusCode::CREATED,
        "top-up: {}",
        topped.status()
    );
    Ok(token)
}

/// A customer's balance, as `GET /api/v1/wallet` shows it.
///
/// # Errors
/// When the request fails or the answer has no balance.
pub async fn balance(client: &Client, base: &str, token: &str) -> anyhow::Result<String> {
    let wallet: Value = client
        .get(format!("{base}/api/v1/wallet"))
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?;
    wallet["balance"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no balance in {wallet}"))
}
