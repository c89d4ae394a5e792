//! Connecting to the product's database, migrating it, and telling whether it is ready.
//!
//! The URL decides the backend: `sqlite://path` (the embedded default) or
//! `postgres://...` (to scale out). Both get the same schema from `migrations/`, embedded in
//! the binary.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// The database could not be opened, migrated or checked.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The URL names no database this product supports.
    #[error("unsupported database URL (expected sqlite:// or postgres://): {0}")]
    UnsupportedUrl(String),
    /// The URL could not be parsed.
    #[error("invalid database URL: {0}")]
    InvalidUrl(#[source] sqlx::Error),
    /// The directory of the SQLite file could not be created.
    #[error("cannot create the directory {path} for the SQLite database")]
    CreateDirectory {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Connecting failed.
    #[error("cannot connect to the database")]
    Connect(#[source] sqlx::Error),
    /// A migration failed, or an applied one no longer matches its file.
    #[error("cannot migrate the database")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The database is not ready to serve.
    #[error("database not ready: {0}")]
    NotReady(String),
}

/// Tuning of the connection pools; the defaults serve a small deployment.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Connections for reads and read-model writes (the event writer has its own).
    pub max_connections: u32,
    /// How long a request waits for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Connections for writes derived from the log: the live read models, a rebuild's twins
/// and the process managers' checkpoints take turns on them (see [`WriteTurn`]).
const DERIVED_WRITERS: u32 = 4;

/// The product's database.
#[derive(Debug, Clone)]
pub enum Database {
    /// The embedded default: one file, one instance.
    Sqlite(SqliteDatabase),
    /// Shared by any number of instances.
    Postgres(PgPool),
}

/// A SQLite database: a pool for everything but appending events, the options with which
/// the event store's group committer opens a connection of its own, and the turn this
/// process's writers take.
#[derive(Debug, Clone)]
pub struct SqliteDatabase {
    pool: SqlitePool,
    /// For writes derived from the log (see [`SqliteDatabase::derived_writes`]).
    derived: SqlitePool,
    // Shared, not copied: the database is cloned with the application state for every
    // request, and copying the options (a map of pragmas) showed in profiles under load.
    options: std::sync::Arc<SqliteConnectOptions>,
    write_gate: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// This process's turn to write to its SQLite file, held from `BEGIN IMMEDIATE` to the
/// end of the transaction.
///
/// SQLite has one writer at a time, and a connection that finds the write lock taken waits
/// in SQLite's busy handler, which sleeps 1, 2, 5, 10 ms and longer between tries: the lock
/// then sits free while writers sleep. The group committer and the read models' writers
/// would do that to each other many times a second, so they queue here instead, and each
/// starts the moment the one before it ends.
pub type WriteTurn = tokio::sync::OwnedMutexGuard<()>;

impl SqliteDatabase {
    /// Waits for this process's turn to write (see [`WriteTurn`]).
    pub async fn write_turn(&self) -> WriteTurn {
        std::sync::Arc::clone(&self.write_gate).lock_owned().await
    }

    /// For reads, and writes that must survive a power cut.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// For writes derived from the log: read models and the checkpoints of the processes
    /// that read the log. Their commits do not wait for the disk (`synchronous=NORMAL`): a
    /// power cut may lose the last of them, and with them the checkpoint that says they
    /// were made, so they are made again from the log, which waits for the disk on every
    /// commit (and whose next commit makes these durable too). A projection's transaction
    /// then holds SQLite's one write lock without a disk sync inside it.
    #[must_use]
    pub fn derived_writes(&self) -> &SqlitePool {
        &self.derived
    }

    /// How to open another connection to the same file, with the same settings.
    #[must_use]
    pub fn connect_options(&self) -> &SqliteConnectOptions {
        &self.options
    }
}

impl Database {
    /// Opens the database the URL names, creating a SQLite file (and its directory) if it is
    /// missing. SQLite runs in WAL mode with `synchronous=FULL`: an acknowledged write
    /// survives a power cut.
    ///
    /// # Errors
    /// [`DatabaseError`] when the URL is not supported or the database cannot be reached.
    pub async fn connect(url: &str, settings: PoolSettings) -> Result<Self, DatabaseError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(DatabaseError::InvalidUrl)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                // Freed space is zeroed, so erased personal data keys leave no trace.
                .pragma("secure_delete", "ON")
                // Statement journals (a multi-row INSERT inside a transaction keeps one, to
                // undo just that statement) stay in memory instead of spilling to a file:
                // they were half the bytes written under load.
                .pragma("temp_store", "MEMORY")
                .busy_timeout(Duration::from_secs(10));
            if let Some(directory) = options
                .get_filename()
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                create_directory(directory)?;
            }
            // `connect_with` opens a first connection at once: the file exists, in WAL
            // mode, before anything else opens it.
            let pool = SqlitePoolOptions::new()
                .max_connections(settings.max_connections.max(1))
                .min_connections(1)
                .acquire_timeout(settings.acquire_timeout)
                .connect_with(options.clone())
                .await
                .map_err(DatabaseError::Connect)?;
            // Its connections are never lent for anything else: a connection that does not
            // sync must not carry a write that must survive.
            let derived = SqlitePoolOptions::new()
                .max_connections(DERIVED_WRITERS)
                .acquire_timeout(settings.acquire_timeout)
                .connect_lazy_with(options.clone().synchronous(SqliteSynchronous::Normal));
            Ok(Self::Sqlite(SqliteDatabase {
                pool,
                derived,
                options: std::sync::Arc::new(options),
                write_gate: std::sync::Arc::default(),
            }))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url).map_err(DatabaseError::InvalidUrl)?;
            let pool = PgPoolOptions::new()
                .max_connections(settings.max_connections.max(2))
                .acquire_timeout(settings.acquire_timeout)
                .connect_with(options)
                .await
                .map_err(DatabaseError::Connect)?;
            Ok(Self::Postgres(pool))
        } else {
            Err(DatabaseError::UnsupportedUrl(redact(url)))
        }
    }

    /// Applies every pending migration. Safe to run from several instances at once on
    /// PostgreSQL (sqlx takes an advisory lock).
    ///
    /// # Errors
    /// [`DatabaseError::Migrate`] when a migration fails or an applied one was changed.
    pub async fn migrate(&self) -> Result<(), DatabaseError> {
        match self {
            Self::Sqlite(sqlite) => SQLITE_MIGRATIONS.run(&sqlite.pool).await,
            Self::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        }
        .map_err(DatabaseError::Migrate)
    }

    /// Ready means: the database answers, and every migration this binary knows is applied.
    ///
    /// # Errors
    /// [`DatabaseError::NotReady`] saying what is missing.
    pub async fn check_ready(&self) -> Result<(), DatabaseError> {
        let (migrator, applied) = match self {
            Self::Sqlite(sqlite) => (
                &SQLITE_MIGRATIONS,
                sqlx::query_scalar(APPLIED_MIGRATIONS)
                    .fetch_all(sqlite.pool())
                    .await,
            ),
            Self::Postgres(pool) => (
                &POSTGRES_MIGRATIONS,
                sqlx::query_scalar(APPLIED_MIGRATIONS).fetch_all(pool).await,
            ),
        };
        let applied: Vec<i64> = applied.map_err(|e| DatabaseError::NotReady(describe(&e)))?;
        let missing: Vec<i64> = migrator
            .iter()
            .map(|m| m.version)
            .filter(|version| !applied.contains(version))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(DatabaseError::NotReady(format!(
                "migrations not applied: {missing:?}"
            )))
        }
    }

    /// Closes every connection; pending work on them finishes first.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(sqlite) => sqlite.pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }

    /// `"sqlite"` or `"postgres"`, for logs and metrics.
    #[must_use]
    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// Runs the same sqlx query on whichever pool the database has; for the small tables whose
/// SQL is the same on both databases (SQLite understands `$n` parameters too).
macro_rules! on_pool {
    ($database:expr, $pool:ident => $body:expr) => {
        match $database {
            $crate::database::Database::Sqlite(sqlite) => {
                let $pool = sqlite.pool();
                $body
            }
            $crate::database::Database::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

const APPLIED_MIGRATIONS: &str = "SELECT version FROM _sqlx_migrations WHERE success = TRUE";

fn describe(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(e) if e.message().contains("_sqlx_migrations") => {
            "migrations not applied".into()
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            "database unreachable".into()
        }
        other => format!("database check failed: {other}"),
    }
}

fn create_directory(directory: &Path) -> Result<(), DatabaseError> {
    std::fs::create_dir_all(directory).map_err(|source| DatabaseError::CreateDirectory {
        path: directory.display().to_string(),
        source,
    })
}

/// A URL fit for an error message: any password is replaced.
#[must_use]
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_the_password_and_keeps_the_rest() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(redact("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(redact("sqlite://./data/x.db"), "sqlite://./data/x.db");
    }
}
