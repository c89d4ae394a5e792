//! The event store: an append-only log of events in plain SQL tables, the same contract on
//! SQLite and PostgreSQL.
//!
//! Rules this module keeps, whatever the database:
//! - an append is all or nothing, checked against the stream's expected version; a mismatch
//!   is [`AppendError::Conflict`], never a storage failure;
//! - appending a command id that is already stored for the stream writes nothing and answers
//!   the original outcome;
//! - positions are contiguous and become visible in order, so a reader that follows the log
//!   by "everything after my checkpoint" never skips an event (ADR 0003);
//! - concurrent appends are committed together by one group committer: one transaction and
//!   one disk sync for many callers, each of whom still gets their own answer (ADR 0004);
//! - stored events are never updated or deleted (the schema refuses it).

pub mod chain;
mod committer;
mod model;
mod plan;
mod postgres;
mod row;
pub mod search;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use model::{
    AppendError, AppendOutcome, AppendRequest, EventMetadata, ExpectedVersion, InvalidStreamId,
    NewEvent, OutboxMessage, Position, RecordedEvent, StoreError, StreamId, UniqueClaim,
};

/// The PostgreSQL advisory lock (transaction-scoped) that every append holds; see ADR 0003.
pub use postgres::APPEND_LOCK as POSTGRES_APPEND_LOCK;

use crate::database::Database;
use committer::{GroupCommitter, PendingAppend};
use plan::PreparedAppend;

/// An append queued by [`EventStore::submit`]: its outcome, once it is decided.
#[derive(Debug)]
pub struct Appending(AppendingState);

#[derive(Debug)]
enum AppendingState {
    Queued(oneshot::Receiver<Result<AppendOutcome, AppendError>>),
    Decided(Result<AppendOutcome, AppendError>),
}

impl From<oneshot::Receiver<Result<AppendOutcome, AppendError>>> for Appending {
    /// An append whose outcome will be sent on `answer`.
    fn from(answer: oneshot::Receiver<Result<AppendOutcome, AppendError>>) -> Self {
        Self(AppendingState::Queued(answer))
    }
}

impl Appending {
    /// An append whose outcome is already known (for stores that decide at once).
    #[must_use]
    pub fn decided(outcome: Result<AppendOutcome, AppendError>) -> Self {
        Self(AppendingState::Decided(outcome))
    }

    /// Waits for the outcome.
    ///
    /// # Errors
    /// As [`EventStore::append`].
    pub async fn outcome(self) -> Result<AppendOutcome, AppendError> {
        match self.0 {
            AppendingState::Decided(outcome) => outcome,
            AppendingState::Queued(answer) => answer.await.map_err(|_| {
                StoreError::message("the group committer dropped an append without answering")
            })?,
        }
    }
}

/// The contract every part of the product uses to write and read events.
#[async_trait]
pub trait EventStore: Send + Sync + std::fmt::Debug {
    /// Queues one command's append and returns as soon as it is queued, behind every append
    /// submitted before it returned: appends submitted one after the other are decided in
    /// that order, so a caller may submit the next command on a stream (decided on the
    /// state the previous one leaves, see [`AppendRequest::following`]) before the previous
    /// one's outcome is known.
    ///
    /// # Errors
    /// [`AppendError::EmptyBatch`] for a request without events, and [`AppendError::Store`]
    /// when it cannot be queued; the outcome's errors are [`EventStore::append`]'s.
    async fn submit(&self, request: AppendRequest) -> Result<Appending, AppendError>;

    /// Appends one command's events to one stream, atomically.
    ///
    /// # Errors
    /// [`AppendError::Conflict`] when the stream is not at the expected version (or the
    /// append it follows was not written),
    /// [`AppendError::DuplicateEventId`] when an event id is already stored,
    /// [`AppendError::EmptyBatch`] for a request without events, and
    /// [`AppendError::Store`] when the storage fails (then nothing was written).
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, AppendError> {
        self.submit(request).await?.outcome().await
    }

    /// The events of one stream with a version of at least `from_version`, in order.
    ///
    /// # Errors
    /// [`StoreError`] when the storage fails.
    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events of the global log after `after`, in position order. An empty
    /// page means the reader is caught up.
    ///
    /// # Errors
    /// [`StoreError`] when the storage fails.
    async fn read_all(&self, after: Position, limit: u32)
    -> Result<Vec<RecordedEvent>, StoreError>;

    /// The position of the newest committed event, read from the database.
    ///
    /// # Errors
    /// [`StoreError`] when the storage fails.
    async fn head(&self) -> Result<Position, StoreError>;

    /// The stream that owns a unique value, if any (e.g. the account of an email address).
    /// Claims are written with the events that make them, so this is never behind a
    /// successful append.
    ///
    /// # Errors
    /// [`StoreError`] when the storage fails.
    async fn claim_owner(&self, claim: &UniqueClaim) -> Result<Option<StreamId>, StoreError>;

    /// A watch on the newest committed position this process knows of: it changes when this
    /// process commits and, on PostgreSQL, when another instance does. Readers wait on it
    /// instead of polling.
    fn watch_head(&self) -> watch::Receiver<Position>;

    /// A position at or after every append acknowledged to anyone before this call: what a
    /// read must wait for to show every write answered before it began.
    ///
    /// # Errors
    /// [`StoreError`] when the storage fails.
    async fn acknowledged_head(&self) -> Result<Position, StoreError> {
        self.head().await
    }
}

/// How the group committer gathers appends into one transaction.
#[derive(Debug, Clone, Copy)]
pub struct GroupCommitSettings {
    /// The most append requests committed in one transaction. 1 turns group commit off: one
    /// transaction per request (the baseline of the benchmark).
    pub max_requests: usize,
    /// A batch stops growing once it holds this many events.
    pub max_events: usize,
    /// Requests that may wait for the committer before callers are held back.
    pub queue_capacity: usize,
}

impl Default for GroupCommitSettings {
    fn default() -> Self {
        Self {
            max_requests: 512,
            max_events: 4_096,
            queue_capacity: 4_096,
        }
    }
}

/// The event store on the product's database, SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlEventStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    database: Database,
    metrics: Arc<crate::metrics::Metrics>,
    appends: mpsc::Sender<PendingAppend>,
    head: watch::Sender<Position>,
    background: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.background {
            task.abort();
        }
    }
}

impl SqlEventStore {
    /// Opens the store on a migrated database and starts its group committer (and, on
    /// PostgreSQL, the listener that hears other instances' commits).
    ///
    /// # Errors
    /// [`StoreError`] when the current head cannot be read.
    pub async fn open(
        database: Database,
        settings: GroupCommitSettings,
    ) -> Result<Self, StoreError> {
        // Events stored before the chain existed get theirs before anything is appended.
        crate::tamper_evidence::chain_earlier_events(&database).await?;
        let initial_head = read_head(&database).await?;
        let (head, _) = watch::channel(initial_head);
        let (appends, queue) = mpsc::channel(settings.queue_capacity.max(1));
        let mut background = Vec::new();
        let metrics = Arc::new(crate::metrics::Metrics::default());
        match &database {
            Database::Sqlite(sqlite) => {
                let writer = sqlite::open_writer(sqlite);
                background.push(tokio::spawn(
                    GroupCommitter::new(writer, settings, head.clone(), Arc::clone(&metrics))
                        .run(queue),
                ));
            }
            Database::Postgres(pool) => {
                let writer = postgres::PostgresWriter::new(pool.clone());
                background.push(tokio::spawn(
                    GroupCommitter::new(writer, settings, head.clone(), Arc::clone(&metrics))
                        .run(queue),
                ));
                background.push(tokio::spawn(postgres::listen_for_commits(
                    pool.clone(),
                    head.clone(),
                )));
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                database,
                metrics,
                appends,
                head,
                background,
            }),
        })
    }

    /// The database the store lives in.
    #[must_use]
    pub fn database(&self) -> &Database {
        &self.inner.database
    }

    /// This process's counters, which the store's committer feeds with its batch sizes;
    /// the application adds its own to the same set.
    #[must_use]
    pub fn metrics(&self) -> Arc<crate::metrics::Metrics> {
        Arc::clone(&self.inner.metrics)
    }
}

#[async_trait]
impl EventStore for SqlEventStore {
    #[tracing::instrument(level = "debug", skip_all, fields(stream = %request.stream, events = request.events.len()))]
    async fn submit(&self, request: AppendRequest) -> Result<Appending, AppendError> {
        if request.events.is_empty() {
            return Err(AppendError::EmptyBatch);
        }
        let prepared = PreparedAppend::new(request)
            .map_err(|e| StoreError::new("serialising event metadata", e))?;
        let (reply, answer) = oneshot::channel();
        self.inner
            .appends
            .send(PendingAppend {
                append: prepared,
                reply,
            })
            .await
            .map_err(|_| StoreError::message("the group committer has stopped"))?;
        Ok(Appending(AppendingState::Queued(answer)))
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let from = i64::try_from(from_version).unwrap_or(i64::MAX);
        let rows = match &self.inner.database {
            Database::Sqlite(sqlite) => sqlite::read_stream(sqlite.pool(), stream, from).await,
            Database::Postgres(pool) => postgres::read_stream(pool, stream, from).await,
        }
        .map_err(|e| StoreError::new(format!("reading stream {stream}"), e))?;
        rows.into_iter().map(row::EventRow::into_recorded).collect()
    }

    async fn read_all(
        &self,
        after: Position,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let after = i64::try_from(after.0).unwrap_or(i64::MAX);
        let limit = i64::from(limit);
        let rows = match &self.inner.database {
            Database::Sqlite(sqlite) => sqlite::read_all(sqlite.pool(), after, limit).await?,
            Database::Postgres(pool) => postgres::read_all(pool, after, limit)
                .await
                .map_err(|e| StoreError::new("reading the global log", e))?,
        };
        rows.into_iter().map(row::EventRow::into_recorded).collect()
    }

    async fn head(&self) -> Result<Position, StoreError> {
        let head = read_head(&self.inner.database).await?;
        match &self.inner.database {
            // The committer moves the watch once a commit is on disk (ADR 0028); the table
            // already holds commits that are not, which no one may hear of yet.
            Database::Sqlite(_) => {}
            // Keep the watch honest even if a notification was missed.
            Database::Postgres(_) => advance(&self.inner.head, head),
        }
        Ok(head)
    }

    async fn claim_owner(&self, claim: &UniqueClaim) -> Result<Option<StreamId>, StoreError> {
        const SQL: &str =
            "SELECT stream_id FROM unique_claims WHERE scope = $1 AND value_hash = $2";
        let owner: Option<String> = match &self.inner.database {
            Database::Sqlite(sqlite) => {
                sqlx::query_scalar(SQL)
                    .bind(claim.scope())
                    .bind(claim.digest().as_slice())
                    .fetch_optional(sqlite.pool())
                    .await
            }
            Database::Postgres(pool) => {
                sqlx::query_scalar(SQL)
                    .bind(claim.scope())
                    .bind(claim.digest().as_slice())
                    .fetch_optional(pool)
                    .await
            }
        }
        .map_err(|e| StoreError::new("looking up a unique value", e))?;
        owner
            .map(|stream| {
                StreamId::parse(stream)
                    .map_err(|e| StoreError::new("a claim names an invalid stream", e))
            })
            .transpose()
    }

    fn watch_head(&self) -> watch::Receiver<Position> {
        self.inner.head.subscribe()
    }

    async fn acknowledged_head(&self) -> Result<Position, StoreError> {
        match &self.inner.database {
            // One instance writes a SQLite file (ADR 0019), and its committer moves the
            // watch before it answers anyone: the watch is exact, and asking costs nothing.
            Database::Sqlite(_) => Ok(*self.inner.head.borrow()),
            // Another instance may have answered an append this one has not heard of yet.
            Database::Postgres(_) => self.head().await,
        }
    }
}

async fn read_head(database: &Database) -> Result<Position, StoreError> {
    let head: i64 = match database {
        Database::Sqlite(sqlite) => {
            sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
                .fetch_one(sqlite.pool())
                .await
        }
        Database::Postgres(pool) => {
            sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
                .fetch_one(pool)
                .await
        }
    }
    .map_err(|e| StoreError::new("reading the head of the log", e))?;
    Ok(Position(u64::try_from(head).unwrap_or(0)))
}

/// Moves the watched head forward, never back: notifications can arrive out of order.
fn advance(head: &watch::Sender<Position>, to: Position) {
    head.send_if_modified(|current| {
        if to > *current {
            *current = to;
            true
        } else {
            false
        }
    });
}
