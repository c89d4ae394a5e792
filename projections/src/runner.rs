//! The projection runner: reads the global log once per batch for every projection, and
//! applies each projection's share in one transaction that also moves its checkpoint.
//!
//! - It never skips an event: it reads strictly after the checkpoint, and the store never
//!   shows a position before the ones below it are committed (ADR 0003).
//! - A projection that cannot apply an event stops there, marked `failed` with the position
//!   and the error, while the others go on; a database failure aborts the batch, which is
//!   tried again.
//! - Several runners (one per instance) may run at once: each batch re-reads and locks the
//!   checkpoint inside its transaction and leaves alone a projection someone else moved.
//! - [`ProjectionRunner::process_batch`] is one step, for tests; [`keep_up`]
//!   repeats it and sleeps on the store's head watch when caught up (no polling).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use infrastructure::database::Database;
use infrastructure::event_store::{EventStore, Position};
use tokio::sync::watch;

use crate::facts::{Fact, decode};
use crate::projection::{ApplyError, Preparation, Prepared, Projection};
use crate::sql::{Value, WriteTx};

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// Applied this many events of the log (to at least one projection).
    Processed(usize),
    /// Nothing new for any running projection.
    CaughtUp,
}

/// A projection's standing, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    /// Its name.
    pub name: String,
    /// The version of the code that built it.
    pub version: i64,
    /// The last event applied.
    pub position: Position,
    /// Where and why it stopped, if it did.
    pub failure: Option<(Position, String)>,
    /// Held still for a moment by a rebuild comparing it with its rebuilt twin.
    pub paused: bool,
}

/// A page's writes, prepared ahead for each projection of a runner that prepares (see
/// [`Projection::prepare`]), by projection name.
pub struct PageWrites(Vec<(String, Preparation)>);

impl std::fmt::Debug for PageWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

impl PageWrites {
    fn take(&mut self, name: &str) -> Prepared {
        let at = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.swap_remove(at).1)
    }
}

/// Prepares pages for a runner's projections, on a task of its own (see
/// [`ProjectionRunner::preparer`]).
#[derive(Debug, Clone)]
pub struct PagePreparer {
    projections: Vec<Arc<dyn Projection>>,
    postgres: bool,
}

impl PagePreparer {
    /// The writes of `facts`, a whole page, for each projection that prepares.
    #[must_use]
    pub fn prepare(&self, facts: &[Fact]) -> PageWrites {
        let share: Vec<&Fact> = facts.iter().collect();
        PageWrites(
            self.projections
                .iter()
                .filter_map(|projection| {
                    let prepared = projection.prepare(&share, self.postgres)?;
                    Some((projection.name().to_owned(), prepared))
                })
                .collect(),
        )
    }
}

/// Feeds projections from the log.
#[derive(Debug)]
pub struct ProjectionRunner {
    store: Arc<dyn EventStore>,
    database: Database,
    projections: Vec<Arc<dyn Projection>>,
    batch_size: u32,
    published: watch::Sender<BTreeMap<String, ProjectionStatus>>,
    /// Whether a batch's commit waits until it is on disk (see [`Self::committing_lazily`]).
    lazy_commits: bool,
}

/// How often a following instance re-reads the standings while a read model is behind.
const FOLLOW_POLL: Duration = Duration::from_millis(20);
/// The longest pause between two such reads.
const FOLLOW_POLL_MAX: Duration = Duration::from_secs(1);

/// While writes keep coming, the shortest time from one batch's start to the next's (see
/// [`keep_up`]): reads wait at most about this long more for a write under
/// load.
pub const GATHER: Duration = Duration::from_millis(25);

/// Events read per batch when none is configured.
pub const DEFAULT_BATCH: u32 = 1_000;

/// `$from, $from+1, ...`: `count` numbered placeholders, as both databases take them.
fn placeholders(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn position_of(value: i64) -> Position {
    Position(u64::try_from(value).unwrap_or(0))
}

fn int(position: Position) -> i64 {
    i64::try_from(position.0).unwrap_or(i64::MAX)
}

impl ProjectionRunner {
    /// A runner for `projections`, registering each one's checkpoint at position 0 if new.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn new(
        store: Arc<dyn EventStore>,
        database: Database,
        projections: Vec<Arc<dyn Projection>>,
        batch_size: u32,
    ) -> anyhow::Result<Self> {
        let mut tx = WriteTx::begin(&database).await?;
        for projection in &projections {
            tx.execute(
                "INSERT INTO projection_checkpoints (name, version, position, status, updated_at_us) \
                 VALUES ($1, $2, 0, 'running', $3) ON CONFLICT (name) DO NOTHING",
                &[
                    projection.name().into(),
                    projection.version().into(),
                    Utc::now().timestamp_micros().into(),
                ],
            )
            .await?;
        }
        tx.commit().await?;
        // A pause is held by a rebuild of this process: one that outlived its process
        // would stop the read model for good. (If another instance is comparing just now,
        // its swap sees the read model moved and fails rather than swap a stale twin.)
        for projection in &projections {
            resume(&database, projection.name()).await?;
        }
        let runner = Self {
            store,
            database,
            projections,
            batch_size: batch_size.max(1),
            published: watch::Sender::new(BTreeMap::new()),
            lazy_commits: false,
        };
        runner.publish(runner.statuses().await?);
        Ok(runner)
    }

    /// The same runner, whose batches commit without waiting for the disk on PostgreSQL
    /// (`synchronous_commit = off` for their transactions): for a rebuild's twins. A crash
    /// may then lose the last batches, but a batch's rows and its checkpoint are lost
    /// together, and nothing reads a twin before the swap, whose own commit waits for the
    /// disk and so flushes every batch before it. The fill then no longer stops at every
    /// page while the server writes it to disk.
    #[must_use]
    pub fn committing_lazily(mut self) -> Self {
        self.lazy_commits = true;
        self
    }

    /// What prepares this runner's pages ahead (see [`Self::apply_prepared_page`]).
    #[must_use]
    pub fn preparer(&self) -> PagePreparer {
        PagePreparer {
            projections: self.projections.clone(),
            postgres: matches!(self.database, Database::Postgres(_)),
        }
    }

    /// Every projection's stored standing.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn statuses(&self) -> anyhow::Result<Vec<ProjectionStatus>> {
        statuses(&self.database).await
    }

    /// A watch on the standings this runner last saw; readers wait on it for their writes.
    #[must_use]
    pub fn watch(&self) -> watch::Receiver<BTreeMap<String, ProjectionStatus>> {
        self.published.subscribe()
    }

    fn publish(&self, statuses: Vec<ProjectionStatus>) {
        let map = statuses.into_iter().map(|s| (s.name.clone(), s)).collect();
        self.published.send_replace(map);
    }

    /// Applies the next batch of the log to every running projection that has not seen it.
    ///
    /// # Errors
    /// When the store or the database fails (nothing of the batch is kept then).
    pub async fn process_batch(&self) -> anyhow::Result<Batch> {
        let stored = self.statuses().await?;
        let Some(from) = self.running(&stored).map(|(_, position)| position).min() else {
            self.publish(stored);
            return Ok(Batch::CaughtUp);
        };
        let events = self.store.read_all(from, self.batch_size).await?;
        if events.is_empty() {
            self.publish(stored);
            return Ok(Batch::CaughtUp);
        }
        let facts: Vec<Fact> = events.iter().map(decode).collect();
        // Worked out before the transaction: on SQLite it holds the one writing connection,
        // which the appends of events wait for.
        let writes = self.preparer().prepare(&facts);
        self.apply_read(from, &facts, &stored, Some(writes)).await
    }

    /// The standings this runner last published of the projections it feeds.
    #[must_use]
    pub fn own_statuses(&self) -> Vec<ProjectionStatus> {
        self.published
            .borrow()
            .values()
            .filter(|status| self.runs(&status.name))
            .cloned()
            .collect()
    }

    /// True when this runner feeds the projection named `name`.
    #[must_use]
    pub fn runs(&self, name: &str) -> bool {
        self.projections.iter().any(|p| p.name() == name)
    }

    /// The projections that are running (not failed, not paused), with their positions.
    fn running<'a>(
        &'a self,
        stored: &'a [ProjectionStatus],
    ) -> impl Iterator<Item = (&'a Arc<dyn Projection>, Position)> + 'a {
        self.projections.iter().filter_map(|projection| {
            let status = stored.iter().find(|s| s.name == projection.name())?;
            (status.failure.is_none() && !status.paused).then_some((projection, status.position))
        })
    }

    /// Applies `facts`, the page of the log that follows position `after`, to every running
    /// projection that stands at `after` or later: the step of [`Self::process_batch`]
    /// after its read, for a caller that reads ahead while the previous page is written.
    /// A projection that stands before `after` would miss events, so it is left alone.
    ///
    /// # Errors
    /// When the database fails (nothing of the page is kept then).
    pub async fn apply_page(&self, after: Position, facts: &[Fact]) -> anyhow::Result<Batch> {
        let stored = self.statuses().await?;
        self.apply_read(after, facts, &stored, None).await
    }

    /// [`Self::apply_page`] with the page's writes prepared by [`Self::preparer`]: they
    /// are written for every projection that stands exactly at `after` (the others get
    /// their share applied as usual).
    ///
    /// # Errors
    /// As [`Self::apply_page`].
    pub async fn apply_prepared_page(
        &self,
        after: Position,
        facts: &[Fact],
        writes: PageWrites,
    ) -> anyhow::Result<Batch> {
        let stored = self.statuses().await?;
        self.apply_read(after, facts, &stored, Some(writes)).await
    }

    /// [`Self::apply_page`] with the standings already read.
    async fn apply_read(
        &self,
        after: Position,
        facts: &[Fact],
        stored: &[ProjectionStatus],
        mut prepared: Option<PageWrites>,
    ) -> anyhow::Result<Batch> {
        let running: Vec<(&Arc<dyn Projection>, Position)> = self
            .running(stored)
            .filter(|(_, position)| *position >= after)
            .collect();
        let Some(last) = facts.last().map(|fact| fact.position) else {
            return Ok(Batch::CaughtUp);
        };
        let mut tx = WriteTx::begin(&self.database).await?;
        if self.lazy_commits && tx.is_postgres() {
            tx.execute("SET LOCAL synchronous_commit = off", &[])
                .await?;
        }
        // Where each of them stands now, inside the transaction (and, on PostgreSQL, locked
        // until it ends), in one statement: a transaction on SQLite holds the only write
        // lock, and each statement in it is a hand-off to SQLite's thread.
        let names: Vec<Value> = running.iter().map(|(p, _)| p.name().into()).collect();
        let lock = match &self.database {
            Database::Sqlite(_) => "",
            Database::Postgres(_) => " FOR UPDATE",
        };
        let current: Vec<(String, i64)> = if names.is_empty() {
            Vec::new()
        } else {
            let list = placeholders(1, names.len());
            tx.fetch_all(
                &format!(
                    "SELECT name, position FROM projection_checkpoints \
                     WHERE status = 'running' AND name IN ({list}){lock}"
                ),
                &names,
            )
            .await?
        };
        let mut moved: Vec<Value> = Vec::new();
        for (projection, seen) in running {
            if !current
                .iter()
                .any(|(name, at)| name == projection.name() && *at == int(seen))
            {
                // Another runner moved it (or it failed) since we looked: leave it.
                continue;
            }
            let share: Vec<&Fact> = facts.iter().filter(|f| f.position > seen).collect();
            if share.is_empty() {
                continue;
            }
            // Prepared for the whole page: right only for a projection that stands at its start.
            let ready = match prepared.as_mut() {
                Some(writes) if seen == after => writes.take(projection.name()),
                _ => None,
            };
            if !share.iter().any(|fact| projection.reads(fact)) {
                // Nothing of this page is for it: its checkpoint moves, nothing else.
                moved.push(projection.name().into());
                continue;
            }
            tx.execute("SAVEPOINT projection", &[]).await?;
            let applied = match ready {
                Some(Ok(writes)) => writes.write(&mut tx).await,
                Some(Err(error)) => Err(error),
                None => projection.apply(&mut tx, &share).await,
            };
            match applied {
                Ok(()) => {
                    tx.execute("RELEASE SAVEPOINT projection", &[]).await?;
                    moved.push(projection.name().into());
                }
                Err(ApplyError::Event {
                    mut position,
                    mut reason,
                }) => {
                    tx.execute("ROLLBACK TO SAVEPOINT projection", &[]).await?;
                    // The events before the bad one are applied again on their own, so the
                    // projection stops exactly before the first event it cannot apply (a
                    // batch may find a later bad event before an earlier one: then again).
                    let mut applied = seen;
                    loop {
                        let before: Vec<&Fact> = share
                            .iter()
                            .copied()
                            .filter(|f| f.position < position)
                            .collect();
                        let Some(last_good) = before.last().map(|f| f.position) else {
                            break;
                        };
                        match projection.apply(&mut tx, &before).await {
                            Ok(()) => {
                                applied = last_good;
                                break;
                            }
                            Err(ApplyError::Event {
                                position: earlier,
                                reason: why,
                            }) if earlier < position => {
                                tx.execute("ROLLBACK TO SAVEPOINT projection", &[]).await?;
                                (position, reason) = (earlier, why);
                            }
                            Err(ApplyError::Event { .. }) => {
                                tx.execute("ROLLBACK TO SAVEPOINT projection", &[]).await?;
                                break;
                            }
                            Err(ApplyError::Database(error)) => return Err(error.into()),
                        }
                    }
                    tx.execute("RELEASE SAVEPOINT projection", &[]).await?;
                    tracing::error!(projection = projection.name(), %position, %reason, "a projection stopped");
                    tx.execute(
                        "UPDATE projection_checkpoints SET status = 'failed', position = $2, \
                         failed_position = $3, error = $4, updated_at_us = $5 WHERE name = $1",
                        &[
                            projection.name().into(),
                            int(applied).into(),
                            int(position).into(),
                            Value::Text(reason),
                            Utc::now().timestamp_micros().into(),
                        ],
                    )
                    .await?;
                }
                Err(ApplyError::Database(error)) => return Err(error.into()),
            }
        }
        if !moved.is_empty() {
            let list = placeholders(3, moved.len());
            let mut args = vec![int(last).into(), Utc::now().timestamp_micros().into()];
            args.append(&mut moved);
            tx.execute(
                &format!(
                    "UPDATE projection_checkpoints SET position = $1, updated_at_us = $2 \
                     WHERE name IN ({list})"
                ),
                &args,
            )
            .await?;
        }
        tx.commit().await?;
        self.publish(self.statuses().await?);
        Ok(Batch::Processed(facts.len()))
    }

    /// Applies batches until every running projection has caught up.
    ///
    /// # Errors
    /// As [`ProjectionRunner::process_batch`].
    pub async fn catch_up(&self) -> anyhow::Result<u64> {
        let mut events = 0;
        while let Batch::Processed(n) = self.process_batch().await? {
            events += n as u64;
        }
        Ok(events)
    }

    /// Keeps the projections up to date until `stop` turns true (see [`keep_up`]).
    pub async fn run(&self, stop: watch::Receiver<bool>) {
        let full = self.batch_size as usize;
        keep_up(
            self.store.watch_head(),
            stop,
            full,
            "the projection runner",
            || self.process_batch(),
        )
        .await;
    }

    /// Re-reads the standings another instance's runner stored and publishes them, so that
    /// reads served here wait for what that runner applied: one step of [`Self::follow`].
    /// True when every running projection has reached `head`.
    ///
    /// # Errors
    /// When the database fails.
    async fn refresh(&self, head: Position) -> anyhow::Result<bool> {
        let stored = self.statuses().await?;
        let caught_up = self.running(&stored).all(|(_, position)| position >= head);
        self.publish(stored);
        Ok(caught_up)
    }

    /// The lowest position among the standings last published.
    fn lowest_published(&self) -> Option<Position> {
        self.published.borrow().values().map(|s| s.position).min()
    }

    /// What an instance does while another one runs the projections: after every commit
    /// it hears of (any instance's, through the store's head watch), it re-reads the
    /// standings until they reach that head, briefly apart, then sleeps again. It polls
    /// only while a read model is behind a known write.
    pub async fn follow(&self, mut stop: watch::Receiver<bool>) {
        let mut head = self.store.watch_head();
        let mut pause = FOLLOW_POLL;
        loop {
            if *stop.borrow() {
                return;
            }
            let target = *head.borrow_and_update();
            let before = self.lowest_published();
            let caught_up = self.refresh(target).await.unwrap_or_else(|error| {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "cannot read the read models' standings"
                );
                false
            });
            if caught_up {
                pause = FOLLOW_POLL;
                tokio::select! {
                    changed = head.changed() => if changed.is_err() { return },
                    _ = stop.changed() => {}
                }
            } else {
                // Under steady writes the head keeps moving ahead of the standings: while
                // they move, look again soon. Longer pauses only while nobody moves them (no
                // worker instance running, or one taking over).
                if self.lowest_published() != before {
                    pause = FOLLOW_POLL;
                }
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = stop.changed() => {}
                }
                pause = (pause * 2).min(FOLLOW_POLL_MAX);
            }
        }
    }
}

/// Lets a paused projection run again.
///
/// # Errors
/// When the database fails.
pub async fn resume(database: &Database, name: &str) -> Result<(), sqlx::Error> {
    let mut tx = WriteTx::begin(database).await?;
    tx.execute(
        "UPDATE projection_checkpoints SET status = 'running' WHERE name = $1 AND status = 'paused'",
        &[name.into()],
    )
    .await?;
    tx.commit().await
}

/// Every projection's stored standing.
///
/// # Errors
/// When the database fails.
pub async fn statuses(database: &Database) -> anyhow::Result<Vec<ProjectionStatus>> {
    type Row = (String, i64, i64, String, Option<i64>, Option<String>);
    let sql = "SELECT name, version, position, status, failed_position, error \
               FROM projection_checkpoints ORDER BY name";
    let rows: Vec<Row> = match database {
        Database::Sqlite(sqlite) => sqlx::query_as(sql).fetch_all(sqlite.pool()).await?,
        Database::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await?,
    };
    Ok(rows
        .into_iter()
        .map(
            |(name, version, position, status, failed_position, error)| ProjectionStatus {
                name,
                version,
                position: position_of(position),
                failure: (status == "failed").then(|| {
                    (
                        position_of(failed_position.unwrap_or(0)),
                        error.unwrap_or_default(),
                    )
                }),
                paused: status == "paused",
            },
        )
        .collect())
}

/// Runs `step` until `stop` turns true: steps while there is something to do, then sleeps
/// until `head` moves. A failure is logged and the step tried again a second later.
///
/// While writes keep coming, a step starts at most every [`GATHER`] after the one before
/// (unless the one before was `full`: more is waiting already), so that the log is handled
/// in steps of many events, each one transaction (on SQLite, the file's one write lock,
/// taken from the writers of events), instead of a transaction for every few events. A
/// write after a quiet moment is handled at once.
pub async fn keep_up<F, Fut>(
    mut head: watch::Receiver<Position>,
    mut stop: watch::Receiver<bool>,
    full: usize,
    worker: &str,
    mut step: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Batch>>,
{
    let mut previous: Option<tokio::time::Instant> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        if let Some(started) = previous {
            tokio::select! {
                () = tokio::time::sleep_until(started + GATHER) => {}
                _ = stop.changed() => continue,
            }
        }
        let started = tokio::time::Instant::now();
        match step().await {
            Ok(Batch::Processed(n)) if n >= full => previous = None,
            Ok(Batch::Processed(_)) => previous = Some(started),
            Ok(Batch::CaughtUp) => {
                previous = None;
                tokio::select! {
                    changed = head.changed() => if changed.is_err() { return },
                    _ = stop.changed() => {}
                }
            }
            Err(error) => {
                previous = None;
                tracing::error!(error = format!("{error:#}"), "{worker} failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}
