//! Which instance runs each background worker (a projection runner, a process manager, the
//! mail dispatcher, the scheduler, the sealer): exactly one at a time, chosen through the
//! database (ADR 0019).
//!
//! - On PostgreSQL a worker's lease is a session-level advisory lock held on a connection of
//!   its own. The server ends the session, and so frees the lock, as soon as the holder's
//!   process dies (its socket closes) or stops answering TCP keepalives (a few seconds,
//!   set on that session). The others try to take it every [`LeaseTimings::retry`].
//! - The holder checks its lease every [`LeaseTimings::check`]; when the connection is gone
//!   it stops its worker at the worker's next safe point before anyone else can be sure to
//!   hold the lock, and the workers are written to be safe if two ever overlap (each step
//!   locks what it moves).
//! - On SQLite the product runs as one instance (see [`InstanceGuard`]): that instance
//!   holds every lease.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};
use tokio::sync::watch;

use crate::database::Database;

/// A background job that must run on one instance at a time.
#[async_trait]
pub trait LedWorker: Send + Sync + 'static {
    /// Works until `stop` turns true, then returns at a safe point.
    async fn lead(&self, stop: watch::Receiver<bool>);

    /// What an instance that does not hold the lease does meanwhile (by default nothing):
    /// a projection runner keeps its view of the read models' progress current, so that
    /// reads on this instance see writes served here.
    async fn follow(&self, mut stop: watch::Receiver<bool>) {
        stopped(&mut stop).await;
    }
}

/// How often leases are tried and checked.
#[derive(Debug, Clone, Copy)]
pub struct LeaseTimings {
    /// Between two attempts to take a lease someone else holds.
    pub retry: Duration,
    /// Between two checks that a held lease is still ours.
    pub check: Duration,
}

impl Default for LeaseTimings {
    fn default() -> Self {
        // A dead holder's lock is freed at once (closed socket) or after the keepalives
        // below (about 6 s); a retry every second keeps the hand-over within 10 s.
        Self {
            retry: Duration::from_secs(1),
            check: Duration::from_secs(2),
        }
    }
}

/// The leases this instance holds, by worker name, for `/metrics` and the admin.
#[derive(Debug, Clone, Default)]
pub struct Leases {
    held: Arc<Mutex<BTreeMap<String, bool>>>,
}

impl Leases {
    /// Every worker this instance runs or waits to run, and whether it leads it now.
    #[must_use]
    pub fn snapshot(&self) -> BTreeMap<String, bool> {
        self.held
            .lock()
            .map(|held| held.clone())
            .unwrap_or_default()
    }

    fn set(&self, worker: &str, leading: bool) {
        if let Ok(mut held) = self.held.lock() {
            held.insert(worker.to_owned(), leading);
        }
    }
}

/// Elects this instance for workers, one lease per worker name.
#[derive(Debug, Clone)]
pub struct Leadership {
    database: Database,
    timings: LeaseTimings,
    leases: Leases,
}

/// The advisory lock key of a worker: the first 8 bytes of a SHA-256 of its name, so that
/// keys do not collide with one another or with the append lock by accident.
#[must_use]
pub fn lock_key(worker: &str) -> i64 {
    let digest = Sha256::digest(format!("expense-tracker worker lease: {worker}").as_bytes());
    let mut bytes = [0_u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// A lease held on PostgreSQL: the connection whose session holds the lock.
struct Lease {
    connection: Option<PgConnection>,
    key: i64,
}

impl Lease {
    /// Still ours: the session answers (within `within`).
    async fn alive(&mut self, within: Duration) -> bool {
        let Some(connection) = self.connection.as_mut() else {
            // SQLite: the only instance.
            return true;
        };
        matches!(
            tokio::time::timeout(within, connection.execute("SELECT 1")).await,
            Ok(Ok(_))
        )
    }

    async fn release(self) {
        if let Some(mut connection) = self.connection {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.key)
                .execute(&mut connection)
                .await;
            let _ = connection.close().await;
        }
    }
}

/// Completes once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

enum Ended {
    Stopped,
    LeaseLost,
    WorkerReturned,
}

impl Leadership {
    /// Leadership over `database` with the default timings.
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self::with_timings(database, LeaseTimings::default())
    }

    /// Leadership with its own timings (tests shorten them).
    #[must_use]
    pub fn with_timings(database: Database, timings: LeaseTimings) -> Self {
        Self {
            database,
            timings,
            leases: Leases::default(),
        }
    }

    /// What this instance leads.
    #[must_use]
    pub fn leases(&self) -> Leases {
        self.leases.clone()
    }

    /// Tries to take the lease of `worker` once: `None` while another instance holds it.
    /// The connection of a failed try is kept in `spare` for the next one, so an instance
    /// waiting for a lease does not open a connection (a server process) every second.
    async fn try_acquire(
        &self,
        worker: &str,
        spare: &mut Option<PgConnection>,
    ) -> Result<Option<Lease>, sqlx::Error> {
        let key = lock_key(worker);
        let Database::Postgres(pool) = &self.database else {
            return Ok(Some(Lease {
                connection: None,
                key,
            }));
        };
        let mut connection = match spare.take() {
            Some(connection) => connection,
            None => {
                let mut connection = PgConnection::connect_with(&pool.connect_options()).await?;
                // The server notices a holder that vanished without closing its socket (a
                // machine or network gone) after about idle + interval * count seconds.
                connection
                    .execute(
                        "SET tcp_keepalives_idle = 3; SET tcp_keepalives_interval = 1; \
                         SET tcp_keepalives_count = 3",
                    )
                    .await?;
                connection
            }
        };
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut connection)
            .await?;
        if taken {
            Ok(Some(Lease {
                connection: Some(connection),
                key,
            }))
        } else {
            *spare = Some(connection);
            Ok(None)
        }
    }

    /// Runs `worker` on this instance whenever it holds the lease named `name`, and its
    /// `follow` meanwhile, until `stop` turns true; then the worker stops at a safe point
    /// and the lease is given back, so another instance takes over at once.
    pub async fn run(
        &self,
        name: &str,
        worker: Arc<dyn LedWorker>,
        mut stop: watch::Receiver<bool>,
    ) {
        self.leases.set(name, false);
        loop {
            if *stop.borrow() {
                return;
            }
            // Follow until the lease is ours (or we are told to stop).
            let (stop_following, following) = watch::channel(false);
            let follower = {
                let worker = Arc::clone(&worker);
                tokio::spawn(async move { worker.follow(following).await })
            };
            let mut spare = None;
            let lease = loop {
                match self.try_acquire(name, &mut spare).await {
                    Ok(Some(lease)) => break Some(lease),
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(worker = name, %error, "cannot try the worker's lease");
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(self.timings.retry) => {}
                    () = stopped(&mut stop) => break None,
                }
            };
            if let Some(connection) = spare {
                let _ = connection.close().await;
            }
            let _ = stop_following.send(true);
            let _ = follower.await;
            let Some(mut lease) = lease else {
                return;
            };
            self.leases.set(name, true);
            tracing::info!(worker = name, "this instance now runs the worker");
            let (stop_leading, leading) = watch::channel(false);
            let mut working = {
                let worker = Arc::clone(&worker);
                tokio::spawn(async move { worker.lead(leading).await })
            };
            let ended = loop {
                tokio::select! {
                    () = tokio::time::sleep(self.timings.check) => {
                        if !lease.alive(self.timings.check).await {
                            break Ended::LeaseLost;
                        }
                    }
                    () = stopped(&mut stop) => break Ended::Stopped,
                    _ = &mut working => break Ended::WorkerReturned,
                }
            };
            let _ = stop_leading.send(true);
            if !matches!(ended, Ended::WorkerReturned) {
                let _ = working.await;
            }
            lease.release().await;
            self.leases.set(name, false);
            match ended {
                Ended::Stopped => return,
                Ended::LeaseLost => {
                    tracing::warn!(worker = name, "lost the worker's lease; stopped it");
                }
                Ended::WorkerReturned => {
                    tracing::error!(worker = name, "the worker ended on its own; restarting");
                    tokio::time::sleep(self.timings.retry).await;
                }
            }
        }
    }
}

/// Holds a SQLite database for one serving instance: a second `serve` on the same file
/// stops at start with a message, instead of two instances each believing it runs every
/// worker. The lock is the operating system's, on a file beside the database, so it is
/// gone the moment its process is, even after `SIGKILL`.
#[derive(Debug)]
pub struct InstanceGuard {
    _file: File,
}

/// Another instance serves this SQLite database.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The lock is held.
    #[error(
        "another expense-tracker instance is serving {database}; on SQLite the product runs as \
         one instance (use PostgreSQL, DATABASE_URL=postgres://..., to run several)"
    )]
    Taken {
        /// The database file.
        database: String,
    },
    /// The lock file could not be opened.
    #[error("cannot open the instance lock {path}")]
    Io {
        /// The lock file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl InstanceGuard {
    /// Takes the guard of the SQLite file at `database`.
    ///
    /// # Errors
    /// [`GuardError::Taken`] while another process holds it.
    pub fn take(database: &Path) -> Result<Self, GuardError> {
        let path = lock_path(database);
        // On a first run the lock comes before the database, whose directory may not exist yet.
        if let Some(directory) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(directory).map_err(|source| GuardError::Io {
                path: directory.display().to_string(),
                source,
            })?;
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| GuardError::Io {
                path: path.display().to_string(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(GuardError::Taken {
                database: database.display().to_string(),
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(GuardError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }
}

fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".instance-lock");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_have_distinct_keys() {
        let names = ["projections", "support", "scheduler", "mail", "sealer"];
        let keys: std::collections::BTreeSet<i64> = names.iter().map(|n| lock_key(n)).collect();
        assert_eq!(keys.len(), names.len());
        assert!(!keys.contains(&crate::event_store::POSTGRES_APPEND_LOCK));
    }

    #[test]
    fn a_second_instance_on_the_same_sqlite_file_is_refused() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let database = directory.path().join("expense-tracker.db");
        let first = InstanceGuard::take(&database).expect("the first instance");
        let second = InstanceGuard::take(&database);
        assert!(
            matches!(&second, Err(GuardError::Taken { .. })),
            "{second:?}"
        );
        let message = second.expect_err("refused").to_string();
        assert!(message.contains("one instance"), "{message}");
        drop(first);
        InstanceGuard::take(&database).expect("free again once the first one is gone");
    }
}
