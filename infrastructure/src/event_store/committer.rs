//! The group committer: the one task per process that writes events (ADR 0004).
//!
//! Callers queue their append and wait for an answer. The committer takes whatever is
//! queued (up to a limit), opens one transaction holding the database's write lock, reads
//! the state of the touched streams, lets [`plan_batch`] decide each request, inserts every
//! accepted event in a few multi-row statements and commits once: one disk sync for the
//! whole batch. Each caller is then answered on its own, so a conflict in one stream fails
//! only that caller.

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
}

pub(crate) struct GroupCommitter<B> {
    backend: B,
    settings: super::GroupCommitSettings,
    head: watch::Sender<Position>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
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
            self.commit_batch(&mut batch).instrument(span).await;
        }
    }

    async fn commit_batch(&mut self, batch: &mut Vec<PendingAppend>) {
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
        for (pending, result) in batch.drain(..).zip(answers) {
            // A caller that gave up waiting is no reason to stop serving the others.
            let _ = pending.reply.send(result);
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
                        super::advance(&self.head, head);
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
        super::advance(&self.head, head);
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
