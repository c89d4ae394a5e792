//! Configuration, from the environment (and an optional `.env` file, which never overrides a
//! variable that is already set) or the equivalent command-line flags.
//!
//! Every variable read here is documented in `.env.sample`; a test keeps the two in step.

use std::net::SocketAddr;
use std::path::PathBuf;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the span's fields (the request id among them).
    Json,
}

/// The settings every subcommand shares.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address and port the HTTP server listens on.
    #[arg(
        long,
        env = "LISTEN_ADDR",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen_addr: SocketAddr,

    /// Directory for the embedded database, mail files and receipts (by default).
    #[arg(long, env = "DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// `sqlite://PATH` or `postgres://USER@HOST/DB`; default `sqlite://$DATA_DIR/expense-tracker.db`.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Connections in the database pool (besides the event writer's own).
    #[arg(
        long,
        env = "DATABASE_MAX_CONNECTIONS",
        default_value_t = 8,
        global = true
    )]
    pub database_max_connections: u32,

    /// The currency of new customers' wallets (ISO 4217).
    #[arg(long, env = "DEFAULT_CURRENCY", default_value = "INR", global = true)]
    pub default_currency: String,

    /// SMTP server for mail (`smtp://host:port`, `smtp://user:pass@host:587?tls=required`,
    /// `smtps://user:pass@host:465`); unset = mail written as `.eml` files under
    /// `$DATA_DIR/mail/`.
    #[arg(long, env = "SMTP_URL", global = true, hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// The sender of every mail.
    #[arg(
        long,
        env = "MAIL_FROM",
        default_value = "Expense Tracker <no-reply@localhost>",
        global = true
    )]
    pub mail_from: String,

    /// The address users reach the product at, for links in mail; default
    /// `http://$LISTEN_ADDR`.
    #[arg(long, env = "BASE_URL", global = true)]
    pub base_url: Option<String>,

    /// With `ADMIN_PASSWORD`: the first admin, created at start if no account has this email.
    #[arg(long, env = "ADMIN_EMAIL", global = true)]
    pub admin_email: Option<String>,

    /// The first admin's password (at least 10 characters). Never logged.
    #[arg(long, env = "ADMIN_PASSWORD", global = true, hide_env_values = true)]
    pub admin_password: Option<String>,

    /// Where receipts are kept: `file://DIR` or `s3://BUCKET` (S3-compatible: AWS, IBM
    /// Cloud Object Storage, MinIO; credentials and endpoint from `AWS_*`); default
    /// `file://$DATA_DIR/objects`.
    #[arg(long, env = "OBJECT_STORE_URL", global = true, hide_env_values = true)]
    pub object_store_url: Option<String>,

    /// How often the event log's head is sealed (ADR 0018), in seconds.
    #[arg(long, env = "SEAL_EVERY_SECONDS", default_value_t = 300, global = true)]
    pub seal_every_seconds: u64,

    /// What this instance does: `all` (requests and background workers, the default),
    /// `web` (requests only) or `worker` (background workers only). On PostgreSQL any
    /// number of instances share the workers, each running on exactly one of them.
    #[arg(long, env = "ROLE", value_enum, default_value_t = crate::workers::Role::All, global = true)]
    pub role: crate::workers::Role,

    /// Log lines as `text` (for people) or `json` (one object per line, for collectors).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// The most requests worked on at once; more are answered 503 with `Retry-After`.
    #[arg(
        long,
        env = "MAX_IN_FLIGHT_REQUESTS",
        default_value_t = 1024,
        global = true
    )]
    pub max_in_flight_requests: usize,

    /// The longest a request is worked on, in seconds, before it is answered 503.
    #[arg(
        long,
        env = "REQUEST_TIMEOUT_SECONDS",
        default_value_t = 30.0,
        global = true
    )]
    pub request_timeout_seconds: f64,

    /// Where the time comes from: the system clock, or a test's fake one.
    #[arg(skip)]
    pub clock: infrastructure::clock::SharedClock,
}

impl Config {
    /// The database URL, defaulting to a SQLite file in the data directory.
    #[must_use]
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.data_dir.join("expense-tracker.db").display()
            )
        })
    }

    /// Settings for tests: port 0 on loopback, everything else as given.
    #[must_use]
    pub fn for_tests(data_dir: PathBuf, database_url: Option<String>) -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            database_url,
            database_max_connections: 8,
            admin_email: None,
            admin_password: None,
            default_currency: "INR".into(),
            smtp_url: None,
            mail_from: "Expense Tracker <no-reply@localhost>".into(),
            base_url: None,
            object_store_url: None,
            seal_every_seconds: 300,
            role: crate::workers::Role::All,
            log_format: LogFormat::Text,
            max_in_flight_requests: 1024,
            request_timeout_seconds: 30.0,
            clock: infrastructure::clock::SharedClock::default(),
        }
    }

    /// Where receipts are kept.
    #[must_use]
    pub fn object_store_url(&self) -> String {
        self.object_store_url
            .clone()
            .unwrap_or_else(|| format!("file://{}", self.data_dir.join("objects").display()))
    }

    /// Where links in mail point.
    #[must_use]
    pub fn base_url(&self) -> String {
        self.base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen_addr))
            .trim_end_matches('/')
            .to_owned()
    }
}

/// The names of every environment variable [`Config`] reads.
#[must_use]
pub fn environment_variables() -> Vec<String> {
    use clap::CommandFactory;

    #[derive(Debug, clap::Parser)]
    struct Probe {
        #[command(flatten)]
        config: Config,
    }
    Probe::command()
        .get_arguments()
        .filter_map(|argument| argument.get_env())
        .map(|name| name.to_string_lossy().into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_database_is_a_sqlite_file_in_the_data_directory() {
        let config = Config::for_tests(PathBuf::from("/srv/tracker"), None);
        assert_eq!(
            config.database_url(),
            "sqlite:///srv/tracker/expense-tracker.db"
        );
    }

    #[test]
    fn an_explicit_database_url_wins() {
        let config = Config::for_tests(PathBuf::from("./data"), Some("postgres://db/x".into()));
        assert_eq!(config.database_url(), "postgres://db/x");
    }

    #[test]
    fn every_variable_read_is_documented_in_the_env_sample() {
        let sample = include_str!("../../.env.sample");
        let documented: Vec<&str> = sample
            .lines()
            .filter_map(|line| line.trim_start_matches('#').trim().split_once('='))
            .map(|(name, _)| name.trim())
            .collect();
        for variable in environment_variables() {
            assert!(
                documented.contains(&variable.as_str()),
                "{variable} is not in .env.sample"
            );
        }
        for name in &documented {
            assert!(
                // RUST_LOG is read by the log filter, AWS_* by the S3 receipt store.
                *name == "RUST_LOG"
                    || name.starts_with("AWS_")
                    || environment_variables().iter().any(|v| v == name),
                "{name} is documented in .env.sample but never read"
            );
        }
    }
}
