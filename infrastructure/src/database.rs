//! Connecting to the product's database, migrating it, and telling whether it is ready.
//!
//! The URL decides the backend: `sqlite://path` (the embedded default) or
//! `postgres://...` (to scale out). Both get the same schema from `migrations/`, embedded in
//! the binary; on SQLite the read models are in a second file beside the first, attached
//! to every reading connection (ADR 0030).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{PgPool, SqlitePool};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");
/// The read models' own file on SQLite (ADR 0030), numbered apart from the main file's.
static SQLITE_READ_MODEL_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite-read-models");

/// The schema name under which every reading connection sees the read models' file.
pub const READ_MODELS_SCHEMA: &str = "read_models";

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
    /// The read models' file could not be checked against the log, or emptied.
    #[error("cannot check the read models' file against the event log")]
    ReadModels(#[source] sqlx::Error),
    /// A SQLite database held in memory: its read models need a file beside it.
    #[error("a SQLite database needs a file (its read models are kept in a second file beside it)")]
    InMemory,
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

/// The product's database.
#[derive(Debug, Clone)]
pub enum Database {
    /// The embedded default: one file, one instance.
    Sqlite(SqliteDatabase),
    /// Shared by any number of instances.
    Postgres(PgPool),
}

/// A SQLite database in two files: the event log with everything that is not derived from
/// it, and the read models (ADR 0030). A pool for reads (which sees both files) and for the
/// few writes outside the log; the one connection that writes the log; the one connection
/// that writes the read models; and the options with which the first file was opened.
#[derive(Debug, Clone)]
pub struct SqliteDatabase {
    pool: SqlitePool,
    writer: SqlitePool,
    read_model_writer: SqlitePool,
    read_model_checkpoints: std::sync::Arc<Checkpointer>,
    // Shared, not copied: the database is cloned with the application state for every
    // request, and copying the options (a map of pragmas) showed in profiles under load.
    options: std::sync::Arc<SqliteConnectOptions>,
    checkpoints: std::sync::Arc<Checkpointer>,
    /// Why the write-ahead log could not be synced, once that happened (see
    /// [`SqliteDatabase::log_sync_failure`]).
    log_sync_failure: std::sync::Arc<std::sync::OnceLock<String>>,
}

/// The page cache of a reading connection for each of the two files, in KiB.
const READER_CACHE_KIB: u32 = 512;

/// How often the write-ahead log is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// How long the log may grow, in pages (64 MiB of 4 KiB pages), before the checkpointer
/// takes the writers' turn to make it start again from its beginning. The writers' wait
/// does not grow with it (two passive copies before the turn leave only the last commits
/// to copy under it), so the larger the log, the fewer the waits: at 16 MiB there were
/// four times as many, as long (ADR 0029).
const RESTART_AT_PAGES: i64 = 16384;

/// How long, holding the writers' turn, the checkpointer waits for readers still reading
/// the log before it gives up until its next pass.
const RESTART_WAITS_FOR_READERS: Duration = Duration::from_millis(50);

/// How often, holding the writers' turn, the checkpointer looks again whether the readers
/// still in the log have left. SQLite's own busy handler sleeps 1, 2, 5, 10 ms... between
/// looks, so a reader that left after 4 ms kept every writer waiting 8.
const READERS_LOOKED_AT_EVERY: Duration = Duration::from_millis(1);

/// How many times [`SqliteDatabase::wipe_log`] takes the writers' turn before it gives up:
/// about two seconds of readers that never all left the log.
const WIPE_ATTEMPTS: u32 = 20;

/// What one pass of the checkpointer found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCopied {
    /// Pages in the write-ahead log when the pass began copying it.
    pub pages_in_log: i64,
    /// Whether the log was copied back whole with no reader left in it, so that the next
    /// write starts it again from its beginning (and cuts its file back).
    pub restarted: bool,
}

/// The task that copies the write-ahead log back into the database file, on a connection
/// of its own; it ends after its pass when the database is closed, or when the last handle
/// on it is dropped (which drops the stop signal's sender).
///
/// SQLite does it itself by default, inside the commit that takes the log past 1,000
/// pages: that commit (the group committer's, most often) then also copies megabytes and
/// syncs the database file, while every writer waits for its turn. A `PASSIVE` checkpoint
/// here runs beside the writers instead, without their lock.
///
/// But a passive copy alone never lets the log start again while writes keep coming: the
/// log restarts only at a write that finds it copied back whole, and there is always a
/// commit that landed while the copy ran. Under a steady load the log grew without end (to
/// 973 MB in three minutes of benchmark, every reader searching a longer index of it).
/// So once it holds more than [`RESTART_AT_PAGES`], the pass takes the writers' turn, so
/// that nothing is appended meanwhile, and finishes the copy in `RESTART` mode, trying
/// again every millisecond (briefly) while readers are still in the log. The passive
/// copies before it have already done the work: the writers wait for the last few pages
/// and a sync.
///
/// Its first pass runs as soon as it starts: a log left by a process that stopped without
/// closing the database is copied back before it grows further.
///
/// It stops between passes, never inside one: a pass cut short while its connection
/// opened left that connection to its own thread, to open and close after the database
/// counted as closed.
#[derive(Debug)]
struct Checkpointer {
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    stop: tokio::sync::watch::Sender<bool>,
    pool: SqlitePool,
}

impl Checkpointer {
    fn start(options: &SqliteConnectOptions, writer: SqlitePool) -> Self {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            // No busy handler: a pass never sleeps in SQLite, it looks again itself (see
            // `copy_back`).
            .connect_lazy_with(options.clone().busy_timeout(Duration::ZERO));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let connection = pool.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Err(error) = copy_back(&connection, &writer).await {
                    tracing::warn!(%error, "cannot copy the write-ahead log into the database");
                }
                tokio::select! {
                    () = tokio::time::sleep(CHECKPOINT_EVERY) => {}
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
            }
        });
        Self {
            task: std::sync::Mutex::new(Some(task)),
            stop,
            pool,
        }
    }

    /// Lets the pass under way finish, then closes the checkpointer's connection.
    async fn stop(&self) {
        self.stop.send_replace(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            // An error is a pass that panicked: nothing is left running either way.
            let _ = task.await;
        }
        close_every_connection(&self.pool).await;
    }
}

/// One pass of the [`Checkpointer`], on its own connection, held for the whole pass: taken
/// before the writers' turn, so that under the turn the pass never queues behind another
/// user of that connection (`wipe_log`) and its copy.
async fn copy_back(connection: &SqlitePool, writer: &SqlitePool) -> Result<LogCopied, sqlx::Error> {
    let mut connection = connection.acquire().await?;
    let (_, pages_in_log) = checkpoint(&mut connection, "PASSIVE").await?;
    if pages_in_log < RESTART_AT_PAGES {
        return Ok(LogCopied {
            pages_in_log,
            restarted: false,
        });
    }
    let restarted = under_the_turn(&mut connection, writer, "RESTART").await?;
    Ok(LogCopied {
        pages_in_log,
        restarted,
    })
}

/// Copies back, beside the writers, what was committed since the last copy (during a
/// pass's first one, or everything, for a wipe); then takes the writers' turn and runs
/// `PRAGMA wal_checkpoint(<mode>)` (`RESTART` or `TRUNCATE`), trying again every
/// millisecond, up to [`RESTART_WAITS_FOR_READERS`], while something is in its way: readers
/// still in the log, most often, or a write on the other pool (tokens, sessions), which the
/// turn does not hold back. Whether the log was copied back whole with nothing left in it.
async fn under_the_turn(
    connection: &mut SqliteConnection,
    writer: &SqlitePool,
    mode: &str,
) -> Result<bool, sqlx::Error> {
    let (_, pages_in_log) = checkpoint(connection, "PASSIVE").await?;
    let turn = writer.acquire().await?;
    let held = std::time::Instant::now();
    let mut tries = 1;
    let (mut whole, _) = checkpoint(connection, mode).await?;
    while !whole && held.elapsed() < RESTART_WAITS_FOR_READERS {
        tokio::time::sleep(READERS_LOOKED_AT_EVERY).await;
        tries += 1;
        (whole, _) = checkpoint(connection, mode).await?;
    }
    drop(turn);
    tracing::debug!(
        mode,
        held_us = held.elapsed().as_micros(),
        tries,
        whole,
        pages_in_log,
        "writers waited while the write-ahead log was copied back"
    );
    Ok(whole)
}

/// `PRAGMA wal_checkpoint(<mode>)`: whether it went to its end with nothing in its way
/// (no busy handler: it never waits), and the pages in the log (-1 when another
/// checkpoint was running).
async fn checkpoint(
    connection: &mut SqliteConnection,
    mode: &str,
) -> Result<(bool, i64), sqlx::Error> {
    let (busy, pages_in_log, _): (i64, i64, i64) =
        sqlx::query_as(&format!("PRAGMA wal_checkpoint({mode})"))
            .fetch_one(connection)
            .await?;
    Ok((busy == 0, pages_in_log))
}

impl SqliteDatabase {
    /// For reads, and for the few writes that are neither the log nor derived from it
    /// (tokens, sessions, idempotency keys, receipts...): their commits wait for the disk.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The one connection that writes the log (the event store's group committer) and the
    /// process managers' checkpoints. Taking it is this process's turn to write the log's
    /// file. The read models have a file and a writer of their own
    /// ([`Self::read_model_writer`]), so neither waits for the other.
    ///
    /// - **One connection**: SQLite has one writer at a time anyway. Writers on separate
    ///   connections made each other wait in SQLite's busy handler, which sleeps 1, 2, 5,
    ///   10 ms and longer between tries while the lock sits free; and in WAL mode every
    ///   commit by one connection empties the page cache of every other, so each writer
    ///   read its indexes' pages again for every transaction. Here writers queue for the
    ///   connection and find its cache warm.
    /// - **`synchronous=NORMAL`**: its commits do not sync the write-ahead log. The group
    ///   committer syncs the log's file itself after committing, before it answers anyone
    ///   (ADR 0028), so appends are as durable as with `FULL`. What is derived from the log
    ///   may be lost in a power cut, together with the checkpoint that says it was made, and
    ///   is then made again from the log.
    #[must_use]
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// The one connection that writes the read models' file (ADR 0030): the projections'
    /// batches, their checkpoints, a rebuild's twins. On it that file is `main`, so the
    /// read models' tables are named as on the reading connections, where it is attached
    /// as [`READ_MODELS_SCHEMA`]. One connection and `synchronous=NORMAL` for the reasons
    /// given at [`Self::writer`]; SQLite's one writer at a time is per file, so this one
    /// writes beside the log's instead of taking turns with it.
    #[must_use]
    pub fn read_model_writer(&self) -> &SqlitePool {
        &self.read_model_writer
    }

    /// Set, for good, when a sync of the write-ahead log failed: the kernel may then have
    /// dropped the pages it could not write, so that a later sync succeeds without them,
    /// and a power cut would lose everything committed after them. From then on nothing is
    /// appended, and the database is not ready (`check_ready`), until the process restarts
    /// and SQLite recovers the log.
    pub(crate) fn log_sync_failure(&self) -> &std::sync::Arc<std::sync::OnceLock<String>> {
        &self.log_sync_failure
    }

    /// Copies the write-ahead log back into the database file now, as the checkpointer
    /// does every 100 ms, restarting the log once it has grown (see [`Checkpointer`]):
    /// the step its task repeats, for tests.
    ///
    /// # Errors
    /// When SQLite refuses the checkpoint.
    pub async fn copy_log_back(&self) -> Result<LogCopied, sqlx::Error> {
        copy_back(&self.checkpoints.pool, &self.writer).await
    }

    /// [`Self::copy_log_back`] for the read models' file, under its own writer's turn.
    ///
    /// # Errors
    /// When SQLite refuses the checkpoint.
    pub async fn copy_read_models_log_back(&self) -> Result<LogCopied, sqlx::Error> {
        copy_back(&self.read_model_checkpoints.pool, &self.read_model_writer).await
    }

    /// Copies the whole write-ahead log back into the database file and cuts the log's file
    /// to nothing, so that no page of it still holds what was overwritten before (an erased
    /// key; `secure_delete` has zeroed it in the page copied back). Like a restart of the
    /// log it needs the readers out of it: up to [`WIPE_ATTEMPTS`] tries, each holding the
    /// writers' turn 50 ms at most, with the writers let through between them. False when
    /// something stayed in its way throughout.
    ///
    /// Never call it while holding [`Self::writer`]: it waits for the writers' turn.
    ///
    /// # Errors
    /// When SQLite refuses the checkpoint.
    pub async fn wipe_log(&self) -> Result<bool, sqlx::Error> {
        for _ in 0..WIPE_ATTEMPTS {
            let mut connection = self.checkpoints.pool.acquire().await?;
            if under_the_turn(&mut connection, &self.writer, "TRUNCATE").await? {
                return Ok(true);
            }
            drop(connection);
            tokio::time::sleep(RESTART_WAITS_FOR_READERS).await;
        }
        Ok(false)
    }

    /// Empties the read models' file when it was not made from this log (ADR 0030), so
    /// that the projections make it again from position 0: when it was made from a log
    /// whose first event is not this one's (the main file restored from a backup of
    /// another database), or when a projection stands past this log's head (restored from
    /// an older backup). Records this log's first event in it otherwise. Whether it was
    /// emptied. Run after the migrations, and again at a clean close.
    ///
    /// # Errors
    /// When SQLite fails.
    pub async fn keep_read_models_of_this_log(&self) -> Result<bool, sqlx::Error> {
        let (first, head): (Option<Vec<u8>>, i64) = sqlx::query_as(
            "SELECT (SELECT event_id FROM main.events WHERE position = 1), \
             COALESCE(MAX(position), 0) FROM main.events",
        )
        .fetch_one(&self.pool)
        .await?;
        let mut tx = self.read_model_writer.begin_with("BEGIN IMMEDIATE").await?;
        let recorded: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT first_event_id FROM made_from_log")
                .fetch_optional(&mut *tx)
                .await?;
        let furthest: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM projection_checkpoints")
                .fetch_one(&mut *tx)
                .await?;
        let another_log = recorded.is_some() && recorded != first;
        let emptied = another_log || furthest > head;
        if emptied {
            tracing::warn!(
                another_log,
                furthest,
                head,
                "the read models were not made from this log: emptied, to be made again from it"
            );
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
            )
            .fetch_all(&mut *tx)
            .await?;
            for table in tables {
                sqlx::query(&format!("DELETE FROM \"{}\"", table.replace('"', "\"\"")))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if let Some(first) = first
            && (emptied || recorded.is_none())
        {
            sqlx::query("INSERT INTO made_from_log (first_event_id) VALUES ($1)")
                .bind(first)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(emptied)
    }

    /// How to open another connection to the same file, with the same settings. It sees
    /// the main file alone, not the read models'.
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
                // Copied back into the database file by a task of its own (Checkpointer),
                // not inside whichever commit takes the log past its limit; and the log's
                // file is cut back to this size after it restarts.
                .pragma("wal_autocheckpoint", "0")
                .pragma("journal_size_limit", "67108864")
                .busy_timeout(Duration::from_secs(10));
            if let Some(directory) = options
                .get_filename()
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                create_directory(directory)?;
            }
            let read_models_file =
                read_models_file(options.get_filename()).ok_or(DatabaseError::InMemory)?;
            let read_model_options = options
                .clone()
                .filename(&read_models_file)
                .synchronous(SqliteSynchronous::Normal);
            // Opened first, and at once: the file exists, in WAL mode, before the reading
            // connections attach it (one that attached a missing file would create it in
            // the default journal mode).
            let read_model_writer = one_writer()
                .connect_with(read_model_options.clone())
                .await
                .map_err(DatabaseError::Connect)?;
            let attached: std::sync::Arc<str> = read_models_file.to_string_lossy().into();
            // `connect_with` opens a first connection at once: the file exists, in WAL
            // mode, before anything else opens it. A connection is not pinged before each
            // use: on SQLite that is one more hand-off to its thread per query.
            let pool = SqlitePoolOptions::new()
                .max_connections(settings.max_connections.max(1))
                .min_connections(1)
                .test_before_acquire(false)
                .acquire_timeout(settings.acquire_timeout)
                // Every reading connection sees the read models under their own names: a
                // table not found in `main` is looked for in the attached files.
                .after_connect(move |connection, _| {
                    let file = std::sync::Arc::clone(&attached);
                    Box::pin(async move {
                        sqlx::query(&format!("ATTACH DATABASE $1 AS {READ_MODELS_SCHEMA}"))
                            .bind(&*file)
                            .execute(&mut *connection)
                            .await?;
                        // Less page cache than SQLite's 2 MiB per file: with 2 MiB for
                        // each file the server's peak memory under the history benchmark
                        // grew by about 15 MiB. Reads here are of one customer among
                        // many, or of the log's tail: the cache holds the b-trees' upper
                        // pages, and little else would stay in it anyway.
                        for schema in ["main", READ_MODELS_SCHEMA] {
                            sqlx::query(&format!(
                                "PRAGMA {schema}.cache_size = -{READER_CACHE_KIB}"
                            ))
                            .execute(&mut *connection)
                            .await?;
                        }
                        Ok(())
                    })
                })
                .connect_with(options.clone())
                .await
                .map_err(DatabaseError::Connect)?;
            let writer = one_writer()
                .connect_lazy_with(options.clone().synchronous(SqliteSynchronous::Normal));
            let checkpoints = std::sync::Arc::new(Checkpointer::start(&options, writer.clone()));
            let read_model_checkpoints = std::sync::Arc::new(Checkpointer::start(
                &read_model_options,
                read_model_writer.clone(),
            ));
            Ok(Self::Sqlite(SqliteDatabase {
                pool,
                writer,
                read_model_writer,
                read_model_checkpoints,
                checkpoints,
                options: std::sync::Arc::new(options),
                log_sync_failure: std::sync::Arc::default(),
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
            // The main file first: on a database from before ADR 0030 its migration drops
            // the read models there, which would otherwise hide those of the new file.
            Self::Sqlite(sqlite) => {
                SQLITE_MIGRATIONS
                    .run(&sqlite.pool)
                    .await
                    .map_err(DatabaseError::Migrate)?;
                SQLITE_READ_MODEL_MIGRATIONS
                    .run(&sqlite.read_model_writer)
                    .await
                    .map_err(DatabaseError::Migrate)?;
                sqlite
                    .keep_read_models_of_this_log()
                    .await
                    .map_err(DatabaseError::ReadModels)?;
                Ok(())
            }
            Self::Postgres(pool) => POSTGRES_MIGRATIONS
                .run(pool)
                .await
                .map_err(DatabaseError::Migrate),
        }
    }

    /// Ready means: the database answers, and every migration this binary knows is applied.
    ///
    /// # Errors
    /// [`DatabaseError::NotReady`] saying what is missing.
    pub async fn check_ready(&self) -> Result<(), DatabaseError> {
        if let Self::Sqlite(sqlite) = self
            && let Some(failure) = sqlite.log_sync_failure.get()
        {
            return Err(DatabaseError::NotReady(format!(
                "the event log could not be synced to disk ({failure}); restart the server"
            )));
        }
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
        missing_migrations(migrator, applied, "")?;
        if let Self::Sqlite(sqlite) = self {
            let applied = sqlx::query_scalar(&format!(
                "SELECT version FROM {READ_MODELS_SCHEMA}._sqlx_migrations WHERE success = TRUE"
            ))
            .fetch_all(sqlite.pool())
            .await;
            missing_migrations(&SQLITE_READ_MODEL_MIGRATIONS, applied, "read models' ")?;
        }
        Ok(())
    }

    /// Closes every connection; pending work on them finishes first.
    pub async fn close(&self) {
        match self {
            // All of them, so that the last one to close copies the write-ahead log back
            // into the database file and removes it, as SQLite does on a clean close.
            Self::Sqlite(sqlite) => {
                // A log that got its first event since the start is recorded now, so that
                // the next start can tell these read models from another log's.
                if let Err(error) = sqlite.keep_read_models_of_this_log().await {
                    tracing::warn!(%error, "cannot record which log the read models were made from");
                }
                sqlite.checkpoints.stop().await;
                sqlite.read_model_checkpoints.stop().await;
                close_every_connection(&sqlite.writer).await;
                close_every_connection(&sqlite.read_model_writer).await;
                close_every_connection(&sqlite.pool).await;
            }
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

/// A pool of one writing connection, kept (its page cache is the point), that writers may
/// wait for as long as the writer before them takes.
fn one_writer() -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(24 * 60 * 60))
}

/// `Pool::close`, until the pool holds no connection: sqlx's close can return while a
/// connection given back during it (a dropped `PoolConnection` is given back by a task of
/// its own) waits idle in the closed pool, open until the pool is dropped. That connection
/// kept a clean close from removing the write-ahead log.
async fn close_every_connection(pool: &SqlitePool) {
    pool.close().await;
    while pool.size() > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
        pool.close().await;
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

/// `NotReady` naming the migrations of `migrator` missing from `applied`, or saying why
/// they could not be read.
fn missing_migrations(
    migrator: &Migrator,
    applied: Result<Vec<i64>, sqlx::Error>,
    which: &str,
) -> Result<(), DatabaseError> {
    let applied = applied.map_err(|e| DatabaseError::NotReady(describe(&e)))?;
    let missing: Vec<i64> = migrator
        .iter()
        .map(|m| m.version)
        .filter(|version| !applied.contains(version))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(DatabaseError::NotReady(format!(
            "{which}migrations not applied: {missing:?}"
        )))
    }
}

/// The read models' file beside the SQLite database `file` (ADR 0030):
/// `expenses.db` -> `expenses.read-models.db`. None for a database held in memory.
#[must_use]
pub fn read_models_file(file: &Path) -> Option<std::path::PathBuf> {
    let name = file.file_name()?.to_string_lossy();
    if name == ":memory:" {
        return None;
    }
    let named = match name.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => format!("{stem}.read-models.{extension}"),
        _ => format!("{name}.read-models"),
    };
    Some(file.with_file_name(named))
}

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
    use super::{read_models_file, redact};
    use std::path::Path;

    #[test]
    fn the_read_models_file_is_named_after_the_database_beside_it() {
        let named = |file: &str| read_models_file(Path::new(file)).map(|p| p.display().to_string());
        assert_eq!(
            named("./data/expense-tracker.db").as_deref(),
            Some("./data/expense-tracker.read-models.db")
        );
        assert_eq!(
            named("/var/lib/x").as_deref(),
            Some("/var/lib/x.read-models")
        );
        assert_eq!(named(".hidden").as_deref(), Some(".hidden.read-models"));
        assert_eq!(named(":memory:"), None);
        assert_eq!(named(""), None);
    }

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
