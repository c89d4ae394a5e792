//! Throw-away databases for tests: a fresh SQLite file or a fresh PostgreSQL database per
//! test, migrated, and removed again when dropped.
//!
//! PostgreSQL tests need `TEST_POSTGRES_URL` (a server where the user may create databases,
//! e.g. `postgres://postgres@127.0.0.1:5432/postgres`). Without it they are skipped loudly;
//! under CI (`CI` set) a missing URL fails the test instead, so that the PostgreSQL half of
//! the suite can never be skipped there unnoticed.

use std::io::Write;
use std::path::PathBuf;

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

use crate::database::{Database, PoolSettings, SqliteDatabase};

/// The variable naming the PostgreSQL server for tests.
pub const TEST_POSTGRES_URL: &str = "TEST_POSTGRES_URL";

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Directory(#[allow(dead_code)] tempfile::TempDir),
    PostgresDatabase { server_url: String, name: String },
}

impl TestDatabase {
    /// A new SQLite file in a temporary directory.
    ///
    /// # Panics
    /// When no temporary directory can be made.
    #[must_use]
    pub fn sqlite() -> Self {
        let directory = tempfile::tempdir().expect("a temporary directory for the test database");
        let url = format!("sqlite://{}", directory.path().join("events.db").display());
        Self {
            url,
            cleanup: Cleanup::Directory(directory),
        }
    }

    /// A new, empty PostgreSQL database, or `None` (after saying so on stderr) when
    /// `TEST_POSTGRES_URL` is not set outside CI.
    ///
    /// # Panics
    /// When the URL is missing under CI, or the server refuses to create the database.
    pub async fn postgres(test_name: &str) -> Option<Self> {
        let Ok(server_url) = std::env::var(TEST_POSTGRES_URL) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "{TEST_POSTGRES_URL} is not set under CI: PostgreSQL tests must not be skipped"
            );
            // Written to the stderr handle itself, not through `eprintln!`, which the test
            // harness captures and hides for passing tests: a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "*** SKIPPED on PostgreSQL: {test_name} (set {TEST_POSTGRES_URL}, \
                 e.g. postgres://postgres@127.0.0.1:5432/postgres) ***"
            );
            return None;
        };
        Some(Self::postgres_on(&server_url).await)
    }

    /// A new, empty PostgreSQL database on the server `server_url` names.
    ///
    /// # Panics
    /// When the server refuses to create the database.
    pub async fn postgres_on(server_url: &str) -> Self {
        let server_url = server_url.to_owned();
        let name = format!("expense_tracker_test_{}", Uuid::new_v4().simple());
        let mut server = PgConnection::connect(&server_url)
            .await
            .expect("connecting to TEST_POSTGRES_URL");
        server
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("creating a test database");
        let url = with_database(&server_url, &name);
        Self {
            url,
            cleanup: Cleanup::PostgresDatabase { server_url, name },
        }
    }

    /// The URL the application would be configured with.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A SQLite test database's main file, and beside it its write-ahead log and the log's
    /// index (the read models' file is [`crate::database::read_models_file`] of the first).
    ///
    /// # Panics
    /// For a PostgreSQL test database.
    #[must_use]
    pub fn sqlite_files(&self) -> [PathBuf; 3] {
        let file = self
            .url
            .strip_prefix("sqlite://")
            .expect("a SQLite test database");
        [
            file.to_owned(),
            format!("{file}-wal"),
            format!("{file}-shm"),
        ]
        .map(PathBuf::from)
    }

    /// A SQLite test database's write-ahead log.
    ///
    /// # Panics
    /// For a PostgreSQL test database.
    #[must_use]
    pub fn sqlite_log(&self) -> PathBuf {
        let [_, log, _] = self.sqlite_files();
        log
    }

    /// The write-ahead log of a SQLite test database's second file, the read models'
    /// (ADR 0030).
    ///
    /// # Panics
    /// For a PostgreSQL test database.
    #[must_use]
    pub fn read_models_log(&self) -> PathBuf {
        let [file, _, _] = self.sqlite_files();
        let mut log = crate::database::read_models_file(&file)
            .expect("a file beside the database")
            .into_os_string();
        log.push("-wal");
        PathBuf::from(log)
    }

    /// Connects and migrates.
    ///
    /// # Panics
    /// When either fails: a test cannot go on without its database.
    pub async fn connect(&self) -> Database {
        let database = Database::connect(&self.url, PoolSettings::default())
            .await
            .expect("connecting to the test database");
        database
            .migrate()
            .await
            .expect("migrating the test database");
        database
    }
}

impl TestDatabase {
    /// Drops a PostgreSQL test database at once, cutting off every connection to it: how a
    /// test makes the database unreachable under a running application.
    ///
    /// # Panics
    /// When the database cannot be dropped, or this is not a PostgreSQL test database.
    pub async fn destroy_now(&self) {
        let Cleanup::PostgresDatabase { server_url, name } = &self.cleanup else {
            panic!("only a PostgreSQL test database can be destroyed under the application");
        };
        let mut server = PgConnection::connect(server_url)
            .await
            .expect("connecting to the server");
        server
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await
            .expect("dropping the test database");
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Cleanup::PostgresDatabase { server_url, name } = &self.cleanup else {
            return;
        };
        let (server_url, name) = (server_url.clone(), name.clone());
        // Drop cannot await, and the test's runtime may be shutting down: use a thread with a
        // runtime of its own. FORCE ends the test's connections still open.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut server = PgConnection::connect(&server_url).await.ok()?;
                server
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop the test database {}", self.url);
        }
    }
}

/// The same server URL with another database name.
fn with_database(server_url: &str, database: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// A reader that stays in SQLite's write-ahead log: a connection of its own, inside a read
/// transaction that has read a table. No checkpoint can copy the log back past the snapshot
/// it reads until it leaves, so the log can neither restart nor be cut.
#[derive(Debug)]
pub struct ReaderInTheLog(SqliteConnection);

impl ReaderInTheLog {
    /// Opens the connection, begins the transaction and reads `table` in it.
    ///
    /// # Panics
    /// When any of it fails.
    pub async fn enter(database: &SqliteDatabase, table: &str) -> Self {
        let mut connection = SqliteConnection::connect_with(database.connect_options())
            .await
            .expect("a reader's connection");
        connection
            .execute("BEGIN")
            .await
            .expect("a read transaction");
        let _: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut connection)
            .await
            .expect("a read");
        Self(connection)
    }

    /// Ends the transaction and closes the connection.
    ///
    /// # Panics
    /// When either fails.
    pub async fn leave(mut self) {
        self.0.execute("COMMIT").await.expect("the reader leaves");
        self.0
            .close()
            .await
            .expect("the reader's connection closed");
    }
}
