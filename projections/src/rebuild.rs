//! Blue/green rebuilds: a projection is rebuilt from position 0 into twin tables while the
//! live tables keep serving; the twin catches up with the head, then, in one transaction
//! that holds the live checkpoint, both are brought to the same position, compared (row
//! counts and checksums; differences are reported, never hidden) and swapped by renaming.
//! Readers see the old tables until the commit and the new ones after it, never a half-built
//! one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::future::try_join_all;
use infrastructure::database::{Database, READ_MODELS_SCHEMA};
use infrastructure::event_store::{EventStore, Position};

use tokio::sync::mpsc;

use crate::facts::{Fact, decode};
use crate::projection::{ApplyError, Projection, TableRows};
use crate::runner::{Batch, PagePreparer, PageWrites, ProjectionRunner, resume};
use crate::sql::{Value, WriteTx, fetch_all};

/// Events read per batch by a rebuild.
pub const REBUILD_BATCH: u32 = 10_000;

/// How far a rebuild is.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Events applied so far.
    pub events: u64,
    /// The twin's position.
    pub position: Position,
    /// The log's head when last looked at.
    pub head: Position,
    /// Since the rebuild began.
    pub elapsed: Duration,
}

/// One table, live against rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableComparison {
    /// The live table's name.
    pub table: String,
    /// Rows in the live table.
    pub live_rows: usize,
    /// Rows in the rebuilt table.
    pub rebuilt_rows: usize,
    /// True when both hold exactly the same rows.
    pub identical: bool,
}

/// What a rebuild did.
#[derive(Debug, Clone)]
pub struct RebuildReport {
    /// The projection.
    pub name: String,
    /// Events applied to the twin.
    pub events: u64,
    /// The position both were compared and swapped at.
    pub position: Position,
    /// How long it took.
    pub elapsed: Duration,
    /// Table by table.
    pub tables: Vec<TableComparison>,
    /// How long each phase took: the pass over the log and the indexes, shared by every
    /// read model rebuilt together, then this one's levelling, comparison and swap.
    pub phases: Vec<(&'static str, Duration)>,
}

impl RebuildReport {
    /// Events per second over the whole rebuild.
    #[must_use]
    pub fn events_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.events as f64 / seconds
        } else {
            self.events as f64
        }
    }

    /// The tables whose rebuilt rows differ from the live ones.
    #[must_use]
    pub fn differences(&self) -> Vec<&TableComparison> {
        self.tables.iter().filter(|t| !t.identical).collect()
    }
}

fn int(position: Position) -> i64 {
    i64::try_from(position.0).unwrap_or(i64::MAX)
}

/// The twin of an SQLite table's DDL: the `CREATE TABLE` with the table renamed.
fn twin_table_ddl(ddl: &str, live: &str, twin: &str) -> String {
    match ddl.find(live) {
        Some(at) => format!("{}{twin}{}", &ddl[..at], &ddl[at + live.len()..])
            .replace(&format!("\"{twin}\""), twin),
        None => ddl.to_owned(),
    }
}

/// The twin of an SQLite index's DDL, renamed `<twin>_i<n>` on the twin table.
fn twin_index_ddl(ddl: &str, twin: &str, n: usize) -> Option<String> {
    let columns = &ddl[ddl.find(" ON ")?..];
    let columns = &columns[columns.find('(')?..];
    let unique = if ddl.starts_with("CREATE UNIQUE") {
        "UNIQUE "
    } else {
        ""
    };
    Some(format!(
        "CREATE {unique}INDEX {twin}_i{n} ON {twin} {columns}"
    ))
}

/// Creates the twins of `live`'s tables with their keys and unique indexes, and returns
/// the statements that create their other indexes: those are built once the twins are
/// filled, in one sorted pass each, instead of being kept up to date row by row (no write
/// of a projection looks rows up by them; every write goes by key).
async fn create_twin_tables(
    database: &Database,
    live: &[String],
    suffix: &str,
) -> anyhow::Result<Vec<String>> {
    let mut statements = Vec::new();
    let mut deferred = Vec::new();
    for table in live {
        let twin = format!("{table}{suffix}");
        match database {
            Database::Postgres(_) => {
                // The twin gets the live table's keys and indexes; the plain indexes are
                // dropped below and built again after the fill.
                statements.push(format!("CREATE TABLE {twin} (LIKE {table} INCLUDING ALL)"));
                // `LIKE` copies everything but the owner. The twin takes the live table's
                // (the group every serving role belongs to, ADR 0024), not the role that
                // happens to rebuild: the next migration and every other instance must be
                // able to alter or swap it again.
                let owner = about_table(
                    database,
                    "SELECT tableowner::TEXT FROM pg_tables \
                     WHERE schemaname = current_schema() AND tablename = $1",
                    table,
                )
                .await?
                .replace('"', "\"\"");
                statements.push(format!("ALTER TABLE {twin} OWNER TO \"{owner}\""));
            }
            Database::Sqlite(_) => {
                // Read on a reading connection, where the read models' file is attached
                // (ADR 0030); the twins are made on its writer, where it is `main`.
                let ddl = about_table(
                    database,
                    &format!(
                        "SELECT sql FROM {READ_MODELS_SCHEMA}.sqlite_master \
                         WHERE type = 'table' AND name = $1"
                    ),
                    table,
                )
                .await?;
                statements.push(twin_table_ddl(&ddl, table, &twin));
                let indexes: Vec<(String,)> = fetch_all(
                    database,
                    &format!(
                        "SELECT sql FROM {READ_MODELS_SCHEMA}.sqlite_master \
                         WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL"
                    ),
                    &[table.as_str().into()],
                )
                .await?;
                // On SQLite the indexes are kept up to date during the fill: building the
                // expenses' index afterwards took longer (1.7 s for a million rows) than
                // keeping it did.
                for (n, (ddl,)) in indexes.into_iter().enumerate() {
                    statements.extend(twin_index_ddl(&ddl, &twin, n));
                }
            }
        }
    }
    execute_all(database, &statements).await?;
    if matches!(database, Database::Postgres(_)) {
        let mut drops = Vec::new();
        for table in live {
            let plain: Vec<(String, String)> = fetch_all(
                database,
                "SELECT indexname, indexdef FROM pg_indexes \
                 WHERE schemaname = current_schema() AND tablename = $1 \
                 AND indexdef NOT LIKE 'CREATE UNIQUE%' ORDER BY indexname",
                &[format!("{table}{suffix}").into()],
            )
            .await?;
            for (name, ddl) in plain {
                drops.push(format!("DROP INDEX {name}"));
                deferred.push(ddl);
            }
        }
        execute_all(database, &drops).await?;
    }
    Ok(deferred)
}

/// The one text `sql` finds about `table` (bound as `$1`): its DDL, its owner.
async fn about_table(database: &Database, sql: &str, table: &str) -> anyhow::Result<String> {
    let found: Vec<(String,)> = fetch_all(database, sql, &[table.into()]).await?;
    let (text,) = found
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the table {table} does not exist"))?;
    Ok(text)
}

/// Runs `statements` in one transaction.
async fn execute_all(database: &Database, statements: &[String]) -> anyhow::Result<()> {
    let mut tx = WriteTx::begin(database).await?;
    for statement in statements {
        tx.execute(statement, &[]).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Applies the events in `(from, to]` to `projection` inside `tx`.
async fn advance(
    store: &Arc<dyn EventStore>,
    tx: &mut WriteTx,
    projection: &Arc<dyn Projection>,
    from: Position,
    to: Position,
) -> anyhow::Result<Result<(), String>> {
    let mut after = from;
    while after < to {
        let events = store.read_all(after, REBUILD_BATCH).await?;
        let facts: Vec<Fact> = events
            .iter()
            .map(decode)
            .filter(|f| f.position <= to)
            .collect();
        let Some(last) = facts.last().map(|f| f.position) else {
            break;
        };
        let share: Vec<&Fact> = facts.iter().collect();
        match projection.apply(tx, &share).await {
            Ok(()) => after = last,
            Err(ApplyError::Event { position, reason }) => {
                return Ok(Err(format!("event {position}: {reason}")));
            }
            Err(ApplyError::Database(error)) => return Err(error.into()),
        }
    }
    Ok(Ok(()))
}

/// Rows per checksum chunk: each chunk crosses from SQLite as one string.
const CHECKSUM_CHUNK: i64 = 50_000;

/// The row count and a digest of a table's rows, the same whatever order the rows are in
/// (the live tables and their rebuilt twins store them in different orders): the sum of a
/// 128-bit hash of every row, so a changed, missing or extra row changes it. The digest
/// finds differences; it is not a seal against anyone (ADR 0018 is).
///
/// PostgreSQL computes it itself in one unsorted pass: `hash_record_extended` hashes each
/// column with its type's own hash function (a sixth of the cost of turning the row into
/// text and hashing that), 64 bits, summed as an exact number.
///
/// SQLite has no hash function: it walks the table in `rowid` order (its storage order:
/// no sort, and each chunk starts where the last ended instead of skipping the rows
/// before it) and joins each chunk's rows, as JSON arrays of their columns so that `NULL`
/// and `''` differ, into one string; a million rows cross as twenty values instead of a
/// million, and each row is hashed here.
async fn checksum(database: &Database, rows: &TableRows) -> anyhow::Result<(usize, Vec<u8>)> {
    let (columns, table) = (rows.columns.join(", "), &rows.table);
    if let Database::Postgres(_) = database {
        let digest = format!(
            "SELECT CAST(COUNT(*) AS TEXT) || ':' || \
             CAST(COALESCE(SUM(hash_record_extended(ROW({columns}), 0)), 0) AS TEXT) \
             FROM {table}"
        );
        let packed: Vec<(String,)> = fetch_all(database, &digest, &[]).await?;
        let packed = packed.into_iter().next().map(|(p,)| p).unwrap_or_default();
        let (count, digest) = packed.split_once(':').unwrap_or(("0", ""));
        return Ok((count.parse()?, digest.as_bytes().to_vec()));
    }
    // A JSON text has no raw line break, so rows are joined by one.
    let chunk = format!(
        "SELECT COUNT(*), COALESCE(MAX(id), 0), COALESCE(group_concat(r, char(10)), '') \
         FROM (SELECT rowid AS id, json_array({columns}) AS r FROM {table} \
               WHERE rowid > $1 ORDER BY rowid LIMIT $2) AS chunk"
    );
    let mut sum = RowHashSum::default();
    let mut after = 0_i64;
    loop {
        let packed: Vec<(i64, i64, String)> = fetch_all(
            database,
            &chunk,
            &[Value::Int(after), Value::Int(CHECKSUM_CHUNK)],
        )
        .await?;
        let Some((rows, last, joined)) = packed.into_iter().next() else {
            break;
        };
        if rows == 0 {
            break;
        }
        joined.split('\n').for_each(|row| sum.add(row));
        after = last;
        if rows < CHECKSUM_CHUNK {
            break;
        }
    }
    Ok((sum.rows, sum.digest()))
}

/// An order-free digest of rows: their count and the wrapping sum of a 128-bit hash of
/// each (two SipHash passes with different seeds).
#[derive(Default)]
struct RowHashSum {
    rows: usize,
    sum: u128,
}

impl RowHashSum {
    fn add(&mut self, row: &str) {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let hash = |seed: u8| {
            let mut hasher = DefaultHasher::new();
            seed.hash(&mut hasher);
            row.hash(&mut hasher);
            hasher.finish()
        };
        self.rows += 1;
        let row_hash = (u128::from(hash(0)) << 64) | u128::from(hash(1));
        self.sum = self.sum.wrapping_add(row_hash);
    }

    fn digest(&self) -> Vec<u8> {
        self.sum.to_be_bytes().to_vec()
    }
}

/// Rebuilds `live` from position 0 beside its live tables and swaps the result in.
/// `on_progress` hears after every batch.
///
/// # Errors
/// As [`rebuild_all`].
pub async fn rebuild(
    store: Arc<dyn EventStore>,
    database: Database,
    live: Arc<dyn Projection>,
    on_progress: &mut (dyn FnMut(Progress) + Send),
) -> anyhow::Result<RebuildReport> {
    rebuild_all(store, database, vec![live], on_progress)
        .await?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("a rebuild of one read model reported none"))
}

/// Rebuilds every projection of `lives` from position 0 beside its live tables, reading
/// the log once for all of them, and swaps each result in. `on_progress` hears after
/// every batch.
///
/// # Errors
/// When the store or the database fails, or a rebuilt projection stops on an event (the
/// live tables not yet swapped are then left as they were, and the twin tables dropped).
pub async fn rebuild_all(
    store: Arc<dyn EventStore>,
    database: Database,
    lives: Vec<Arc<dyn Projection>>,
    on_progress: &mut (dyn FnMut(Progress) + Send),
) -> anyhow::Result<Vec<RebuildReport>> {
    let started = Instant::now();
    let suffix = format!("_r{}", Utc::now().timestamp_micros());
    let twins: Vec<Arc<dyn Projection>> = lives.iter().map(|live| live.twin(&suffix)).collect();
    let result = async {
        let mut deferred_indexes = Vec::new();
        for live in &lives {
            deferred_indexes.extend(create_twin_tables(&database, &live.tables(), &suffix).await?);
        }
        let runners = twin_runners(&store, &database, &twins).await?;
        let events = fill(&store, &runners, started, on_progress).await?;
        let filled = started.elapsed();
        build_indexes(&database, &deferred_indexes).await?;
        let shared = [("fill", filled), ("indexes", started.elapsed() - filled)];
        let mut reports = Vec::new();
        for (live, twin) in lives.iter().zip(&twins) {
            let mut report = swap(&store, &database, live, twin, events, started).await?;
            report.phases.splice(0..0, shared);
            reports.push(report);
        }
        Ok(reports)
    }
    .await;
    if result.is_err() {
        for (live, twin) in lives.iter().zip(&twins) {
            drop_twin(&database, twin).await;
            if let Err(error) = resume(&database, live.name()).await {
                tracing::error!(%error, projection = live.name(), "could not resume a read model");
            }
        }
    }
    result
}

/// The runners that fill `twins`. SQLite has one writer, so one runner applies each page
/// to every twin in one transaction. PostgreSQL writes concurrently: each twin gets a
/// runner (a connection and a transaction per page) of its own, and a page is applied to
/// all twins at once, so the server works on one twin while this process prepares the
/// statements of another instead of waiting between them.
async fn twin_runners(
    store: &Arc<dyn EventStore>,
    database: &Database,
    twins: &[Arc<dyn Projection>],
) -> anyhow::Result<Vec<ProjectionRunner>> {
    let groups: Vec<Vec<Arc<dyn Projection>>> = match database {
        Database::Sqlite(_) => vec![twins.to_vec()],
        Database::Postgres(_) => twins.iter().map(|twin| vec![Arc::clone(twin)]).collect(),
    };
    let mut runners = Vec::with_capacity(groups.len());
    for group in groups {
        runners.push(
            ProjectionRunner::new(Arc::clone(store), database.clone(), group, REBUILD_BATCH)
                .await?
                .committing_lazily(),
        );
    }
    Ok(runners)
}

/// Builds the twins' deferred indexes: on PostgreSQL each one on a connection of its own
/// at the same time (they are on tables nobody else uses yet).
async fn build_indexes(database: &Database, statements: &[String]) -> anyhow::Result<()> {
    match database {
        Database::Sqlite(_) => execute_all(database, statements).await,
        Database::Postgres(_) => {
            try_join_all(
                statements
                    .iter()
                    .map(|statement| execute_all(database, std::slice::from_ref(statement))),
            )
            .await?;
            Ok(())
        }
    }
}

/// Pages of the log read ahead of the one being written, per runner.
const PAGES_AHEAD: usize = 2;

/// A page of the log as the reader hands it to every runner: the position it follows and
/// its decoded events, shared rather than copied.
type Page = (Position, Arc<Vec<Fact>>);

/// Fills the twins up to the head. One task reads and decodes the log page after page;
/// each runner takes the pages from a queue of its own, so reading and writing overlap and
/// no runner waits for a slower one to finish a page before starting the next (a twin that
/// writes little runs ahead, bounded by its queue). Between the two, each runner's next
/// page is prepared (its rows worked out, see `Projection::prepare`) on a thread of its
/// own while the current one is written. Then every runner catches up with what was
/// written since the reader reached the head.
async fn fill(
    store: &Arc<dyn EventStore>,
    runners: &[ProjectionRunner],
    started: Instant,
    on_progress: &mut (dyn FnMut(Progress) + Send),
) -> anyhow::Result<u64> {
    let (queues_in, queues_out): (Vec<_>, Vec<_>) = runners
        .iter()
        .map(|_| mpsc::channel::<Page>(PAGES_AHEAD))
        .unzip();
    let mut reader = AbortOnDrop(tokio::spawn(read_pages(Arc::clone(store), queues_in)));
    let (ready_in, ready_out): (Vec<_>, Vec<_>) = runners
        .iter()
        .map(|_| mpsc::channel::<(Page, PageWrites)>(1))
        .unzip();
    let mut preparers = runners
        .iter()
        .zip(queues_out)
        .zip(ready_in)
        .map(|((runner, pages), ready)| {
            AbortOnDrop(tokio::spawn(prepare_pages(runner.preparer(), pages, ready)))
        })
        .collect::<Vec<_>>();
    // Runner `i` applied `n` events up to position `p`. Bounded like every queue here: a
    // slow progress report holds the writers back rather than piling up their news.
    let (applied_out, mut applied) =
        mpsc::channel::<(usize, usize, Position)>(runners.len() * (PAGES_AHEAD + 1));
    let writers = runners
        .iter()
        .zip(ready_out)
        .enumerate()
        .map(|(index, (runner, mut pages))| {
            let applied_out = applied_out.clone();
            async move {
                while let Some(((after, facts), writes)) = pages.recv().await {
                    runner.apply_prepared_page(after, &facts, writes).await?;
                    stopped_twin(runner)?;
                    let last = facts.last().map_or(after, |fact| fact.position);
                    // The receiver outlives every writer; a failed send only means it ended.
                    let _ = applied_out.send((index, facts.len(), last)).await;
                }
                anyhow::Ok(())
            }
        })
        .collect::<Vec<_>>();
    drop(applied_out);
    let report = async {
        let mut counts = vec![(0_u64, Position::START); runners.len()];
        let mut reported = 0;
        while let Some((index, n, last)) = applied.recv().await {
            counts[index].0 += n as u64;
            counts[index].1 = last;
            // As far as the slowest twin.
            let (events, position) = counts.iter().copied().min().unwrap_or_default();
            if events > reported {
                reported = events;
                on_progress(Progress {
                    events,
                    position,
                    head: store.head().await?,
                    elapsed: started.elapsed(),
                });
            }
        }
        anyhow::Ok(reported)
    };
    let (_, mut events) = tokio::try_join!(try_join_all(writers), report)?;
    (&mut reader.0).await??;
    for preparer in &mut preparers {
        (&mut preparer.0).await??;
    }
    // What was written since the reader reached the head it saw.
    loop {
        let batch =
            combined(&try_join_all(runners.iter().map(ProjectionRunner::process_batch)).await?);
        for runner in runners {
            stopped_twin(runner)?;
        }
        let Batch::Processed(n) = batch else {
            return Ok(events);
        };
        events += n as u64;
        let position = runners
            .iter()
            .flat_map(ProjectionRunner::own_statuses)
            .map(|status| status.position)
            .min()
            .unwrap_or(Position::START);
        on_progress(Progress {
            events,
            position,
            head: store.head().await?,
            elapsed: started.elapsed(),
        });
    }
}

/// Reads and decodes the log from the start to the head it finds, handing each page to
/// every queue. Stops early, without an error, once a queue's runner is gone (it failed,
/// and the rebuild reports why).
async fn read_pages(
    store: Arc<dyn EventStore>,
    queues: Vec<mpsc::Sender<Page>>,
) -> anyhow::Result<()> {
    let mut after = Position::START;
    loop {
        let page = store.read_all(after, REBUILD_BATCH).await?;
        let Some(last) = page.last().map(|event| event.position) else {
            return Ok(());
        };
        let facts = Arc::new(page.iter().map(decode).collect::<Vec<_>>());
        for queue in &queues {
            if queue.send((after, Arc::clone(&facts))).await.is_err() {
                return Ok(());
            }
        }
        after = last;
    }
}

/// Prepares each page of `pages` for a runner (on a blocking thread: it is CPU work that
/// would otherwise hold up the tasks of a serving instance) and hands it on. Stops once
/// the writer is gone.
async fn prepare_pages(
    preparer: PagePreparer,
    mut pages: mpsc::Receiver<Page>,
    ready: mpsc::Sender<(Page, PageWrites)>,
) -> anyhow::Result<()> {
    let preparer = Arc::new(preparer);
    while let Some((after, facts)) = pages.recv().await {
        let (preparer, shared) = (Arc::clone(&preparer), Arc::clone(&facts));
        let writes = tokio::task::spawn_blocking(move || preparer.prepare(&shared)).await?;
        if ready.send(((after, facts), writes)).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// An error when a twin of `runner` stopped on an event, as its last step published.
fn stopped_twin(runner: &ProjectionRunner) -> anyhow::Result<()> {
    match runner
        .own_statuses()
        .into_iter()
        .find_map(|s| s.failure.map(|f| (s.name, f)))
    {
        Some((name, (at, error))) => {
            anyhow::bail!("the rebuilt {name} stopped at event {at}: {error}")
        }
        None => Ok(()),
    }
}

/// One step of several runners over the same page: the most events any of them applied,
/// and caught up only when all are.
fn combined(steps: &[Batch]) -> Batch {
    steps
        .iter()
        .filter_map(|step| match step {
            Batch::Processed(n) => Some(*n),
            Batch::CaughtUp => None,
        })
        .max()
        .map_or(Batch::CaughtUp, Batch::Processed)
}

/// Aborts a task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn drop_twin(database: &Database, twin: &Arc<dyn Projection>) {
    let cleanup = async {
        let mut tx = WriteTx::begin(database).await?;
        for table in twin.tables() {
            tx.execute(&format!("DROP TABLE IF EXISTS {table}"), &[])
                .await?;
        }
        tx.execute(
            "DELETE FROM projection_checkpoints WHERE name = $1",
            &[twin.name().into()],
        )
        .await?;
        tx.commit().await
    };
    if let Err(error) = cleanup.await {
        tracing::error!(%error, twin = twin.name(), "could not drop a failed rebuild's tables");
    }
}

/// Drops the replaced tables. On SQLite their pages are freed without being zeroed first
/// (`secure_delete` is otherwise on): zeroing a million rows doubled the time of a swap,
/// and they hold nothing the live tables do not, erased personal data included (erasing
/// wipes it from the live rows, which secure deletion zeroes).
async fn drop_retired(tx: &mut WriteTx, tables: &[String]) -> Result<(), sqlx::Error> {
    let sqlite = !tx.is_postgres();
    if sqlite {
        tx.execute("PRAGMA secure_delete = FAST", &[]).await?;
    }
    let mut dropped = Ok(0);
    for table in tables {
        dropped = tx.execute(&format!("DROP TABLE {table}"), &[]).await;
        if dropped.is_err() {
            break;
        }
    }
    // The connection goes back to the pool: it must delete securely again, whatever happened.
    if sqlite {
        tx.execute("PRAGMA secure_delete = ON", &[]).await?;
    }
    dropped.map(drop)
}

/// A projection's checkpoint inside `tx`, locked against other runners on PostgreSQL:
/// its position and status.
async fn checkpoint(tx: &mut WriteTx, name: &str) -> anyhow::Result<(Position, String)> {
    let lock = if tx.is_postgres() { " FOR UPDATE" } else { "" };
    let position = tx
        .fetch_int(
            &format!("SELECT position FROM projection_checkpoints WHERE name = $1{lock}"),
            &[name.into()],
        )
        .await?
        .unwrap_or(0);
    let status = tx
        .fetch_texts(
            "SELECT status FROM projection_checkpoints WHERE name = $1",
            &[name.into()],
        )
        .await?
        .pop()
        .unwrap_or_default();
    Ok((Position(u64::try_from(position).unwrap_or(0)), status))
}

/// Brings the live read model and its twin to the same position, compares them and swaps
/// the twin in. The live read model is paused (not locked) while they are compared, so
/// the log keeps taking writes and readers keep reading the live tables meanwhile; only
/// the bringing level and the renaming hold the write lock, briefly.
async fn swap(
    store: &Arc<dyn EventStore>,
    database: &Database,
    live: &Arc<dyn Projection>,
    twin: &Arc<dyn Projection>,
    mut events: u64,
    started: Instant,
) -> anyhow::Result<RebuildReport> {
    let phase = Instant::now();
    let mut tx = WriteTx::begin(database).await?;
    let (live_at, live_status) = checkpoint(&mut tx, live.name()).await?;
    let (twin_at, _) = checkpoint(&mut tx, twin.name()).await?;
    let target = live_at.max(twin_at);
    if twin_at < target {
        if let Err(error) = advance(store, &mut tx, twin, twin_at, target).await? {
            anyhow::bail!("the rebuilt {} stopped at {error}", live.name());
        }
        events += target.0 - twin_at.0;
    }
    let mut live_reached = live_at;
    if live_status == "running" && live_at < target {
        tx.execute("SAVEPOINT live", &[]).await?;
        match advance(store, &mut tx, live, live_at, target).await? {
            Ok(()) => {
                tx.execute("RELEASE SAVEPOINT live", &[]).await?;
                live_reached = target;
            }
            // The live code cannot apply what the rebuilt one did: the comparison shows it.
            Err(_) => {
                tx.execute("ROLLBACK TO SAVEPOINT live", &[]).await?;
            }
        }
    }
    tx.execute(
        "UPDATE projection_checkpoints SET position = $2, status = 'paused', updated_at_us = $3 \
         WHERE name = $1 AND status = 'running'",
        &[
            live.name().into(),
            Value::Int(int(live_reached)),
            Utc::now().timestamp_micros().into(),
        ],
    )
    .await?;
    tx.commit().await?;
    let levelled = phase.elapsed();

    let mut tables = Vec::new();
    for (live_rows, twin_rows) in live.rows().iter().zip(twin.rows()) {
        let ((live_count, live_sum), (twin_count, twin_sum)) = tokio::try_join!(
            checksum(database, live_rows),
            checksum(database, &twin_rows)
        )?;
        tables.push(TableComparison {
            table: live_rows.table.clone(),
            live_rows: live_count,
            rebuilt_rows: twin_count,
            identical: live_count == twin_count && live_sum == twin_sum,
        });
    }

    let compared = phase.elapsed();
    let mut tx = WriteTx::begin(database).await?;
    let (now_at, now_status) = checkpoint(&mut tx, live.name()).await?;
    if now_at != live_reached || !matches!(now_status.as_str(), "paused" | "failed") {
        anyhow::bail!(
            "the live {} moved while it was compared with its rebuilt twin; nothing was swapped",
            live.name()
        );
    }
    let mut retired = Vec::new();
    for (live_table, twin_table) in live.tables().into_iter().zip(twin.tables()) {
        let old = format!("{twin_table}_retired");
        tx.execute(&format!("ALTER TABLE {live_table} RENAME TO {old}"), &[])
            .await?;
        tx.execute(
            &format!("ALTER TABLE {twin_table} RENAME TO {live_table}"),
            &[],
        )
        .await?;
        retired.push(old);
    }
    drop_retired(&mut tx, &retired).await?;
    tx.execute(
        "UPDATE projection_checkpoints SET position = $2, version = $3, status = 'running', \
         failed_position = NULL, error = NULL, updated_at_us = $4 WHERE name = $1",
        &[
            live.name().into(),
            Value::Int(int(target)),
            live.version().into(),
            Utc::now().timestamp_micros().into(),
        ],
    )
    .await?;
    tx.execute(
        "DELETE FROM projection_checkpoints WHERE name = $1",
        &[twin.name().into()],
    )
    .await?;
    tx.commit().await?;
    let report = RebuildReport {
        name: live.name().to_owned(),
        events,
        position: target,
        elapsed: started.elapsed(),
        tables,
        phases: vec![
            ("level", levelled),
            ("compare", compared - levelled),
            ("swap", phase.elapsed() - compared),
        ],
    };
    for difference in report.differences() {
        tracing::warn!(
            projection = %report.name,
            table = %difference.table,
            live_rows = difference.live_rows,
            rebuilt_rows = difference.rebuilt_rows,
            "the rebuilt read model differs from the one it replaced"
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(rows: &[&str]) -> (usize, Vec<u8>) {
        let mut sum = RowHashSum::default();
        rows.iter().for_each(|row| sum.add(row));
        (sum.rows, sum.digest())
    }

    #[test]
    fn row_digest_ignores_order_but_not_content() {
        let rows = ["[\"a\",1,null]", "[\"b\",2,\"\"]", "[\"c\",3,null]"];
        let given = digest_of(&rows);
        assert_eq!(digest_of(&[rows[2], rows[0], rows[1]]), given);
        assert_ne!(
            digest_of(&["[\"a\",1,null]", "[\"b\",2,null]", rows[2]]),
            given
        );
        assert_ne!(digest_of(&rows[..2]), given);
        // The same row twice is not the same as the row once and another one dropped.
        assert_ne!(digest_of(&[rows[0], rows[0], rows[2]]).1, given.1);
    }

    #[test]
    fn sqlite_ddl_is_copied_onto_the_twin() {
        assert_eq!(
            twin_table_ddl(
                "CREATE TABLE rm_goals (\n goal_id TEXT PRIMARY KEY)",
                "rm_goals",
                "rm_goals_r1"
            ),
            "CREATE TABLE rm_goals_r1 (\n goal_id TEXT PRIMARY KEY)"
        );
        assert_eq!(
            twin_table_ddl(
                "CREATE TABLE \"rm_goals\" (goal_id TEXT)",
                "rm_goals",
                "rm_goals_r1"
            ),
            "CREATE TABLE rm_goals_r1 (goal_id TEXT)"
        );
        assert_eq!(
            twin_index_ddl(
                "CREATE INDEX rm_goals_by_owner ON \"rm_goals\" (owner)",
                "rm_goals_r1",
                0
            )
            .as_deref(),
            Some("CREATE INDEX rm_goals_r1_i0 ON rm_goals_r1 (owner)")
        );
    }
}
