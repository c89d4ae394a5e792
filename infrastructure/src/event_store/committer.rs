//! The group committer: the one task per process that writes events (ADR 0004).
//!
//! Callers queue their append and wait for an answer. The committer takes whatever is
//! queued (up to a limit), opens one transaction holding the database's write lock, reads
//! the state of the touched streams, lets [`plan_batch`] decide each request, inserts every
//! accepted event in a few multi-row statements and commits once: one disk sync for the
//! whole batch. Each caller is then answered on its own, so a conflict in one stream fails
//! only that caller.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;
use uuid::Uuid;

use super::model::{AppendError, AppendOutcome, Position, StoreError};
use super::plan::{Decision, Plan, PreparedAppend, StoredState, plan_batch};

/// Rows per INSERT statement: few statements per batch (each costs a round trip, and on
/// SQLite a thread hand-off) while staying far below both databases' bind-parameter limits.
pub(crate) const ROWS_PER_STATEMENT: usize = 1_000;

/// One caller waiting for its append.
#[derive(Debug)]
pub(crate) struct PendingAppend {
    pub append: PreparedAppend,
    pub reply: oneshot::Sender<Result<AppendOutcome, AppendError>>,
}

/// What a database must offer the committer. Each method is as few round trips as the
/// database allows: on SQLite every request is a thread hand-off, so the state read
/// shares one with `BEGIN`, and the inserts share one with `COMMIT`.
#[async_trait]
pub(crate) trait WriteBackend: Send + 'static {
    /// An open transaction that holds the exclusive right to append until it ends.
    type Transaction: Send;

    /// Opens the transaction and reads, inside it, the head of the log, the versions of the
    /// batch's streams and the outcomes of the batch's (stream, command id) pairs that are
    /// already stored.
    async fn begin_and_read_state(
        &mut self,
        appends: &[&PreparedAppend],
    ) -> Result<(Self::Transaction, StoredState), sqlx::Error>;

    /// The state of the batch's streams as this writer already knows it, without asking
    /// the database, when it can vouch for it (see [`GroupCommitter::try_commit`]).
    fn known_state(&mut self, _appends: &[&PreparedAppend]) -> Option<StoredState> {
        None
    }

    /// Inserts the plan's rows (in statements of at most [`ROWS_PER_STATEMENT`] rows),
    /// applies its claim changes in order, and commits, announcing the new head to other
    /// instances where the database can. Without a transaction (`None`), opens one in the
    /// same round trip. On failure the transaction is rolled back.
    async fn insert_and_commit(
        &mut self,
        tx: Option<Self::Transaction>,
        plan: &Plan<'_>,
        head: Position,
    ) -> Result<(), sqlx::Error>;

    /// Ends a transaction that wrote nothing.
    async fn rollback(&mut self, tx: Self::Transaction) -> Result<(), sqlx::Error>;

    /// The first of `ids` that is already stored, if any.
    async fn find_stored_event_id(&mut self, ids: &[Uuid]) -> Result<Option<Uuid>, sqlx::Error>;

    /// How this backend's commits are made durable afterwards rather than inside the
    /// commit (see [`WalSync`]); `None` when a commit is durable once it returns.
    fn synced_after_commit(&self) -> Option<LogToSync> {
        None
    }
}

pub(crate) struct GroupCommitter<B> {
    backend: B,
    settings: super::GroupCommitSettings,
    head: watch::Sender<Position>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
}

/// A log whose commits are made durable by syncing its file after them.
pub(crate) struct LogToSync {
    /// The file, its symbolic links resolved as SQLite resolves them.
    pub file: PathBuf,
    /// Set for good once a sync failed (see `SqliteDatabase::log_sync_failure`).
    pub failure: Arc<OnceLock<String>>,
}

/// A batch's answers, held until what it wrote is on disk.
struct Committed {
    replies: Vec<(Reply, Result<AppendOutcome, AppendError>)>,
    /// The head after the batch, if it wrote anything.
    head: Option<Position>,
}

type Reply = oneshot::Sender<Result<AppendOutcome, AppendError>>;

/// Where a batch's answers go: to the callers at once, or through the WAL's sync.
enum Answering {
    AtOnce,
    AfterSync {
        committed: mpsc::UnboundedSender<Committed>,
        failure: Arc<OnceLock<String>>,
    },
}

/// Makes committed batches durable with one sync of the write-ahead log for all the
/// batches committed before it began, then answers their callers and announces the new
/// head. The committer meanwhile commits the next batch: a sync no longer holds the
/// database's write lock, and the batches that wait for one share it.
///
/// SQLite writes a commit's pages to the write-ahead log before `COMMIT` returns; with
/// `synchronous=NORMAL` it does not sync them. Syncing the log's file afterwards makes
/// them durable exactly as `synchronous=FULL` would have, before anyone is told. Should
/// the machine stop in between, the log's checksummed frames are recovered up to the last
/// whole commit: what is lost is only ever the newest, unanswered commits, and with them
/// whatever was derived from them later in the same log.
///
/// The file is synced through a descriptor opened when the committer starts: on Linux a
/// descriptor hears of every write-back error that happens after it was opened, while one
/// opened for each sync would miss those another descriptor (a checkpoint's) heard first.
/// After one failure nothing more is answered as written: the kernel may have dropped the
/// pages it could not write, and a later sync would succeed without them.
struct WalSync {
    log: LogToSync,
    file: Option<std::fs::File>,
    head: watch::Sender<Position>,
}

impl WalSync {
    async fn run(mut self, mut committed: mpsc::UnboundedReceiver<Committed>) {
        let mut batches = Vec::new();
        while committed.recv_many(&mut batches, usize::MAX).await > 0 {
            let synced = match self.log.failure.get() {
                Some(failure) => Err(failure.clone()),
                None => self.sync().await.map_err(|error| {
                    tracing::error!(%error, wal = %self.log.file.display(),
                        "cannot sync the write-ahead log: no more appends until a restart");
                    self.log.failure.get_or_init(|| error.to_string()).clone()
                }),
            };
            for batch in batches.drain(..) {
                if let (Ok(()), Some(head)) = (&synced, batch.head) {
                    super::advance(&self.head, head);
                }
                for (reply, answer) in batch.replies {
                    let answer = match &synced {
                        Ok(()) => answer,
                        Err(failure) => Err(unsynced(failure)),
                    };
                    // A caller that gave up waiting is no reason to stop serving the others.
                    let _ = reply.send(answer);
                }
            }
        }
    }

    async fn sync(&mut self) -> std::io::Result<()> {
        let path = self.log.file.clone();
        let file = self.file.take();
        let (file, synced) = tokio::task::spawn_blocking(move || sync_file(&path, file))
            .await
            .map_err(std::io::Error::other)?;
        self.file = file;
        synced
    }
}

/// Syncs `path` through `file`, opened on it before; opened now if not, or again if the
/// path names another file since (the log was removed and made anew).
fn sync_file(
    path: &Path,
    file: Option<std::fs::File>,
) -> (Option<std::fs::File>, std::io::Result<()>) {
    let file = match file.filter(|file| names(path, file)) {
        Some(file) => file,
        None => match std::fs::File::open(path) {
            Ok(file) => file,
            Err(error) => return (None, Err(error)),
        },
    };
    let synced = file.sync_data();
    (Some(file), synced)
}

#[cfg(unix)]
fn names(path: &Path, file: &std::fs::File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(named), Ok(opened)) => (named.dev(), named.ino()) == (opened.dev(), opened.ino()),
        _ => false,
    }
}

#[cfg(not(unix))]
fn names(_: &Path, _: &std::fs::File) -> bool {
    true
}

/// The answer to every append once the log could not be synced.
fn unsynced(failure: &str) -> AppendError {
    StoreError::message(format!(
        "the event log could not be synced to disk ({failure}): nothing more is appended \
         until the server restarts"
    ))
    .into()
}

enum CommitFailure {
    /// A unique constraint refused the batch: some request carries an event id that is
    /// already stored. Retried request by request to find out whose.
    UniqueViolation,
    Store(StoreError),
}

impl<B: WriteBackend> GroupCommitter<B> {
    pub(crate) fn new(
        backend: B,
        settings: super::GroupCommitSettings,
        head: watch::Sender<Position>,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> Self {
        Self {
            backend,
            settings,
            head,
            metrics,
        }
    }

    /// Serves appends until every sender is gone.
    pub(crate) async fn run(mut self, mut queue: mpsc::Receiver<PendingAppend>) {
        let answering = match self.backend.synced_after_commit() {
            Some(log) => {
                let path = log.file.clone();
                // Opened before the first commit, to hear of every write-back error after it.
                let file = tokio::task::spawn_blocking(move || std::fs::File::open(path))
                    .await
                    .ok()
                    .and_then(Result::ok);
                let (committed, to_sync) = mpsc::unbounded_channel();
                let failure = Arc::clone(&log.failure);
                let sync = WalSync {
                    log,
                    file,
                    head: self.head.clone(),
                };
                tokio::spawn(sync.run(to_sync));
                Answering::AfterSync { committed, failure }
            }
            None => Answering::AtOnce,
        };
        let max_requests = self.settings.max_requests.max(1);
        let mut batch = Vec::with_capacity(max_requests);
        while let Some(first) = queue.recv().await {
            let mut events = first.append.request.events.len();
            batch.push(first);
            if max_requests > 1 {
                // Let callers that were just answered queue their next append first, so
                // batches stay large under steady load instead of alternating in size.
                tokio::task::yield_now().await;
            }
            while batch.len() < max_requests && events < self.settings.max_events {
                match queue.try_recv() {
                    Ok(next) => {
                        events += next.append.request.events.len();
                        batch.push(next);
                    }
                    Err(_) => break,
                }
            }
            let span = tracing::debug_span!("group_commit", requests = batch.len(), events);
            self.commit_batch(&mut batch, &answering)
                .instrument(span)
                .await;
        }
    }

    async fn commit_batch(&mut self, batch: &mut Vec<PendingAppend>, answering: &Answering) {
        if let Answering::AfterSync { failure, .. } = answering
            && let Some(failure) = failure.get()
        {
            for pending in batch.drain(..) {
                let _ = pending.reply.send(Err(unsynced(failure)));
            }
            return;
        }
        let appends: Vec<&PreparedAppend> = batch.iter().map(|p| &p.append).collect();
        let answers: Vec<Result<AppendOutcome, AppendError>> = match self.try_commit(&appends).await
        {
            Ok(decisions) => decisions.into_iter().map(answer).collect(),
            Err(CommitFailure::UniqueViolation) => {
                let mut answers = Vec::with_capacity(appends.len());
                for append in &appends {
                    answers.push(self.commit_alone(append).await);
                }
                answers
            }
            Err(CommitFailure::Store(error)) => {
                tracing::error!(error = %error, requests = appends.len(), "group commit failed");
                let error = error.to_string();
                appends
                    .iter()
                    .map(|_| Err(AppendError::Store(StoreError::message(error.clone()))))
                    .collect()
            }
        };
        let head = answers
            .iter()
            .filter_map(|answer| answer.as_ref().ok())
            .filter(|outcome| !outcome.already_stored)
            .map(|outcome| outcome.last_position)
            .max();
        let replies = batch
            .drain(..)
            .map(|pending| pending.reply)
            .zip(answers)
            .collect::<Vec<_>>();
        match answering {
            Answering::AtOnce => {
                if let Some(head) = head {
                    super::advance(&self.head, head);
                }
                for (reply, answer) in replies {
                    // A caller that gave up waiting is no reason to stop serving the others.
                    let _ = reply.send(answer);
                }
            }
            // Every answer waits for the sync, refusals and replays too: a replay names a
            // commit that may not be on disk yet either.
            Answering::AfterSync { committed, .. } => {
                if committed.send(Committed { replies, head }).is_err() {
                    tracing::error!("the write-ahead log's sync has stopped");
                }
            }
        }
    }

    /// Commits one request on its own, translating a unique violation into its cause.
    async fn commit_alone(
        &mut self,
        append: &PreparedAppend,
    ) -> Result<AppendOutcome, AppendError> {
        match self.try_commit(&[append]).await {
            Ok(mut decisions) => answer(decisions.remove(0)),
            Err(CommitFailure::Store(error)) => Err(error.into()),
            Err(CommitFailure::UniqueViolation) => {
                let ids: Vec<Uuid> = append.request.events.iter().map(|e| e.event_id).collect();
                match self.backend.find_stored_event_id(&ids).await {
                    Ok(Some(event_id)) => Err(AppendError::DuplicateEventId { event_id }),
                    Ok(None) => Err(StoreError::message(
                        "a unique constraint refused an append that the committer had checked: \
                         is something writing events without the append lock?",
                    )
                    .into()),
                    Err(e) => Err(StoreError::new("looking up a duplicate event id", e).into()),
                }
            }
        }
    }

    /// Commits a batch. Where the backend knows the streams' state already (SQLite, which
    /// has one writer), the batch is first tried in a single round trip on that knowledge;
    /// the unique constraints on position and (stream, version) refuse it if the knowledge
    /// was stale, and anything but a clean write of every request (a conflict, a retried
    /// command) is decided again from the database.
    async fn try_commit(
        &mut self,
        appends: &[&PreparedAppend],
    ) -> Result<Vec<Decision>, CommitFailure> {
        if let Some(known) = self.backend.known_state(appends) {
            let plan = plan_batch(appends, &known);
            let all_written = plan
                .decisions
                .iter()
                .all(|d| matches!(d, Decision::Write(_)));
            if let (true, Some(last)) = (all_written, plan.rows.last()) {
                let head = last.position;
                match self.backend.insert_and_commit(None, &plan, head).await {
                    Ok(()) => {
                        self.metrics.append_batch(plan.rows.len());
                        return Ok(plan.decisions);
                    }
                    Err(e) if is_unique_violation(&e) => {
                        tracing::debug!(
                            "known state was stale or a command was retried; reading it"
                        );
                    }
                    Err(e) => {
                        return Err(CommitFailure::Store(StoreError::new(
                            "inserting and committing events",
                            e,
                        )));
                    }
                }
            }
        }

        let (tx, stored) = self
            .backend
            .begin_and_read_state(appends)
            .await
            .map_err(store("reading stream versions"))?;
        let plan = plan_batch(appends, &stored);
        let Some(last) = plan.rows.last() else {
            // Only replays and rejections: nothing to write.
            self.backend
                .rollback(tx)
                .await
                .map_err(store("ending an append transaction"))?;
            return Ok(plan.decisions);
        };
        let head = last.position;
        self.backend
            .insert_and_commit(Some(tx), &plan, head)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    CommitFailure::UniqueViolation
                } else {
                    CommitFailure::Store(StoreError::new("inserting and committing events", e))
                }
            })?;
        self.metrics.append_batch(plan.rows.len());
        Ok(plan.decisions)
    }
}

fn answer(decision: Decision) -> Result<AppendOutcome, AppendError> {
    match decision {
        Decision::Write(outcome) | Decision::Replay(outcome) => Ok(outcome),
        Decision::Reject(error) => Err(error),
    }
}

fn store(context: &'static str) -> impl FnOnce(sqlx::Error) -> CommitFailure {
    move |e| CommitFailure::Store(StoreError::new(context, e))
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}
