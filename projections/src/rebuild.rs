//! Blue/green rebuilds: a projection is rebuilt from position 0 into twin tables while the
//! live tables keep serving; the twin catches up with the head, then, in one transaction
//! that holds the live checkpoint, both are brought to the same position, compared (row
//! counts and checksums; differences are reported, never hidden) and swapped by renaming.
//! Readers see the old tables until the commit and the new ones after it, never a half-built
//! one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use infrastructure::database::Database;
use infrastructure::event_store::{EventStore, Position};
use sha2::{Digest, Sha256};

use crate::facts::{Fact, decode};
use crate::projection::{ApplyError, Projection};
use crate::runner::{Batch, ProjectionRunner};
use crate::sql::{Value, WriteTx, fetch_all};

/// Events read per batch by a rebuild.
pub const REBUILD_BATCH: u32 = 5_000;

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

async fn create_twin_tables(
    database: &Database,
    live: &[String],
    suffix: &str,
) -> anyhow::Result<()> {
    let mut statements = Vec::new();
    for table in live {
        let twin = format!("{table}{suffix}");
        match database {
            Database::Postgres(_) => {
                statements.push(format!("CREATE TABLE {twin} (LIKE {table} INCLUDING ALL)"));
            }
            Database::Sqlite(_) => {
                let tables: Vec<(String,)> = fetch_all(
                    database,
                    "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = $1",
                    &[table.as_str().into()],
                )
                .await?;
                let (ddl,) = tables
                    .into_iter()
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("the table {table} does not exist"))?;
                statements.push(twin_table_ddl(&ddl, table, &twin));
                let indexes: Vec<(String,)> = fetch_all(
                    database,
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL",
                    &[table.as_str().into()],
                )
                .await?;
                for (n, (ddl,)) in indexes.into_iter().enumerate() {
                    statements.extend(twin_index_ddl(&ddl, &twin, n));
                }
            }
        }
    }
    let mut tx = WriteTx::begin(database).await?;
    for statement in statements {
        tx.execute(&statement, &[]).await?;
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

/// Rows per checksum chunk: each chunk crosses from the database as one string.
const CHECKSUM_CHUNK: i64 = 50_000;

/// The row count and a digest of a row query's rows. On SQLite the database joins each
/// chunk of rows into one string, so a million rows cross as twenty values instead of a
/// million, and they are hashed here; PostgreSQL computes the digest itself.
async fn checksum(tx: &mut WriteTx, query: &str) -> anyhow::Result<(usize, Vec<u8>)> {
    if tx.is_postgres() {
        // PostgreSQL digests the rows itself in one pass; only the count and the digest
        // cross (its OFFSET would compute every skipped row's text again for each chunk).
        let digest = format!(
            "SELECT CAST(COUNT(*) AS TEXT) || ':' || md5(COALESCE(string_agg(r, chr(10)), '')) \
             FROM ({query}) AS rows"
        );
        let packed = tx
            .fetch_texts(&digest, &[])
            .await?
            .pop()
            .unwrap_or_default();
        let (rows, digest) = packed.split_once(':').unwrap_or(("0", ""));
        return Ok((rows.parse()?, digest.as_bytes().to_vec()));
    }
    let join = "group_concat(r, char(10))";
    let chunk = format!(
        "SELECT CAST(COUNT(*) AS TEXT) || ':' || COALESCE({join}, '') \
         FROM (SELECT r FROM ({query}) AS rows LIMIT $1 OFFSET $2) AS chunk"
    );
    let mut hash = Sha256::new();
    let mut count = 0_usize;
    loop {
        let offset = i64::try_from(count).unwrap_or(i64::MAX);
        let packed = tx
            .fetch_texts(&chunk, &[Value::Int(CHECKSUM_CHUNK), Value::Int(offset)])
            .await?
            .pop()
            .unwrap_or_default();
        let (rows, joined) = packed.split_once(':').unwrap_or(("0", ""));
        let rows: usize = rows.parse()?;
        if rows == 0 {
            break;
        }
        hash.update(joined.as_bytes());
        hash.update([b'\n']);
        count += rows;
        if rows < CHECKSUM_CHUNK as usize {
            break;
        }
    }
    Ok((count, hash.finalize().to_vec()))
}

/// Rebuilds `live` from position 0 beside its live tables and swaps the result in.
/// `on_progress` hears after every batch.
///
/// # Errors
/// When the store or the database fails, or the rebuilt projection stops on an event (the
/// live tables are then left as they were, and the twin tables are dropped).
pub async fn rebuild(
    store: Arc<dyn EventStore>,
    database: Database,
    live: Arc<dyn Projection>,
    on_progress: &mut (dyn FnMut(Progress) + Send),
) -> anyhow::Result<RebuildReport> {
    let started = Instant::now();
    let suffix = format!("_r{}", Utc::now().timestamp_micros());
    let twin = live.twin(&suffix);
    let result = async {
        create_twin_tables(&database, &live.tables(), &suffix).await?;
        let runner = ProjectionRunner::new(
            Arc::clone(&store),
            database.clone(),
            vec![Arc::clone(&twin)],
            REBUILD_BATCH,
        )
        .await?;
        let mut events = 0_u64;
        loop {
            let batch = runner.process_batch().await?;
            let status = runner
                .statuses()
                .await?
                .into_iter()
                .find(|s| s.name == twin.name());
            if let Some((at, error)) = status.as_ref().and_then(|s| s.failure.clone()) {
                anyhow::bail!("the rebuilt {} stopped at event {at}: {error}", live.name());
            }
            let position = status.map_or(Position::START, |s| s.position);
            if let Batch::Processed(n) = batch {
                events += n as u64;
            }
            on_progress(Progress {
                events,
                position,
                head: store.head().await?,
                elapsed: started.elapsed(),
            });
            if batch == Batch::CaughtUp {
                break;
            }
        }
        swap(&store, &database, &live, &twin, events, started).await
    }
    .await;
    if result.is_err() {
        drop_twin(&database, &twin).await;
    }
    result
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

async fn swap(
    store: &Arc<dyn EventStore>,
    database: &Database,
    live: &Arc<dyn Projection>,
    twin: &Arc<dyn Projection>,
    mut events: u64,
    started: Instant,
) -> anyhow::Result<RebuildReport> {
    let mut tx = WriteTx::begin(database).await?;
    let lock = if tx.is_postgres() { " FOR UPDATE" } else { "" };
    let checkpoint = format!("SELECT position FROM projection_checkpoints WHERE name = $1{lock}");
    let live_at = tx
        .fetch_int(&checkpoint, &[live.name().into()])
        .await?
        .unwrap_or(0);
    let live_running = tx
        .fetch_int(
            "SELECT position FROM projection_checkpoints WHERE name = $1 AND status = 'running'",
            &[live.name().into()],
        )
        .await?
        .is_some();
    let twin_at = tx
        .fetch_int(&checkpoint, &[twin.name().into()])
        .await?
        .unwrap_or(0);
    let live_at = Position(u64::try_from(live_at).unwrap_or(0));
    let twin_at = Position(u64::try_from(twin_at).unwrap_or(0));
    let target = live_at.max(twin_at);
    // The live runner waits on the checkpoint lock meanwhile, so both stop at `target`.
    if twin_at < target {
        if let Err(error) = advance(store, &mut tx, twin, twin_at, target).await? {
            anyhow::bail!("the rebuilt {} stopped at {error}", live.name());
        }
        events += target.0 - twin_at.0;
    }
    if live_running && live_at < target {
        tx.execute("SAVEPOINT live", &[]).await?;
        match advance(store, &mut tx, live, live_at, target).await? {
            Ok(()) => tx.execute("RELEASE SAVEPOINT live", &[]).await?,
            Err(_) => tx.execute("ROLLBACK TO SAVEPOINT live", &[]).await?,
        };
    }
    let mut tables = Vec::new();
    for ((table, live_query), (_, twin_query)) in
        live.row_queries().into_iter().zip(twin.row_queries())
    {
        let (live_rows, live_sum) = checksum(&mut tx, &live_query).await?;
        let (rebuilt_rows, twin_sum) = checksum(&mut tx, &twin_query).await?;
        tables.push(TableComparison {
            table,
            live_rows,
            rebuilt_rows,
            identical: live_rows == rebuilt_rows && live_sum == twin_sum,
        });
    }
    for (live_table, twin_table) in live.tables().into_iter().zip(twin.tables()) {
        let retired = format!("{twin_table}_retired");
        tx.execute(
            &format!("ALTER TABLE {live_table} RENAME TO {retired}"),
            &[],
        )
        .await?;
        tx.execute(
            &format!("ALTER TABLE {twin_table} RENAME TO {live_table}"),
            &[],
        )
        .await?;
        tx.execute(&format!("DROP TABLE {retired}"), &[]).await?;
    }
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
