//! The event store's SQLite adapter.
//!
//! SQLite has one writer at a time by design; the committer takes that write lock up front
//! with `BEGIN IMMEDIATE`, so it never has to upgrade a read lock (which can fail with
//! SQLITE_BUSY) and nothing can slip between reading the head and inserting after it.
//!
//! sqlx runs each SQLite request on the connection's worker thread, and every request costs
//! a thread hand-off, which on a busy 2-core machine is worth more than the work itself. So
//! a batch is at most two requests: `BEGIN IMMEDIATE` with the state query, then the
//! inserts with `COMMIT`. Usually it is one: the product runs one instance per SQLite file,
//! so the committer remembers the head and the versions of the streams it has seen and
//! sends `BEGIN IMMEDIATE`, the inserts and `COMMIT` at once. What it remembers can only be
//! behind the truth (another process, such as an admin command, appended meanwhile), and
//! then the batch reuses a stored position or stream version, the unique constraints refuse
//! it, and the committer decides it again from a fresh read. A retried command is caught
//! the same way: its first attempt took the version it expects, so the retry either
//! conflicts (and is decided again from the database, where its command id is found) or
//! collides. Requests that expect `Any` version carry no such guard and always read.
//!
//! The committer owns its connection outright (no pool): if its task is aborted
//! mid-transaction the connection closes and SQLite rolls the transaction back.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use uuid::Uuid;

use super::chain::Hash;
use super::committer::{LogToSync, ROWS_PER_STATEMENT, WriteBackend};
use super::model::{ExpectedVersion, Position, StoreError, StreamId};
use super::plan::{ClaimChange, Plan, PreparedAppend, StoredState};
use super::row::{
    EventRow, StateRow, claims_of, event_columns, packed_event, push_insert_events,
    stored_state_from, unpack_page,
};
use crate::database::SqliteDatabase;
use crate::encoding::hex;

/// Batches up to this many rows keep their prepared INSERT in the connection's cache.
const PREPARED_BATCH_ROWS: usize = 128;

/// Streams whose version the writer remembers at most; past that it forgets them all and
/// relearns the busy ones on their next append.
const REMEMBERED_STREAMS: usize = 100_000;

pub(crate) struct SqliteWriter {
    /// What the last commits left, or `None` when unknown (at start and after a failure).
    known: Option<KnownState>,
    /// Its one writing connection, which the read side's writers share (see
    /// [`SqliteDatabase::writer`]).
    database: SqliteDatabase,
}

/// The log as this writer last saw it.
struct KnownState {
    head: Position,
    head_chain: Hash,
    /// Every stream it has read or written, including ones known to be empty (version 0),
    /// with the command of its last event.
    streams: HashMap<StreamId, (u64, Option<Uuid>)>,
}

impl KnownState {
    fn remember(&mut self, stream: &StreamId, version: u64, last_command: Option<Uuid>) {
        if self.streams.len() >= REMEMBERED_STREAMS && !self.streams.contains_key(stream) {
            self.streams.clear();
        }
        self.streams.insert(stream.clone(), (version, last_command));
    }
}

/// The writing connection, borrowed for one transaction. Dropped while the transaction may
/// still be open (the committer's task aborted between two requests), it is closed rather
/// than handed to the next writer, and SQLite rolls the transaction back.
pub(crate) struct OpenTransaction {
    connection: PoolConnection<Sqlite>,
    ended: bool,
}

impl OpenTransaction {
    /// Waits for the writing connection.
    async fn take(database: &SqliteDatabase) -> Result<Self, sqlx::Error> {
        Ok(Self {
            connection: database.writer().acquire().await?,
            ended: false,
        })
    }

    /// Best effort: the transaction may already be gone (SQLite ends it on some errors,
    /// and a refused `INSERT OR ROLLBACK` always does). Only when it cannot tell is the
    /// connection closed on drop.
    async fn roll_back(mut self) {
        match sqlx::query("ROLLBACK").execute(&mut *self.connection).await {
            Ok(_) => self.ended = true,
            Err(sqlx::Error::Database(error))
                if error.message().contains("no transaction is active") =>
            {
                self.ended = true;
            }
            Err(error) => tracing::debug!(%error, "rollback after a failed append"),
        }
    }
}

impl Drop for OpenTransaction {
    fn drop(&mut self) {
        if !self.ended {
            self.connection.close_on_drop();
        }
    }
}

impl SqliteWriter {
    pub(crate) fn new(database: SqliteDatabase) -> Self {
        Self {
            known: None,
            database,
        }
    }
}

/// A JSON array of strings, for `json_each`: one statement shape whatever the batch size,
/// so the prepared statement is reused instead of re-planned per batch.
fn json_array<'a>(items: impl Iterator<Item = &'a str>) -> String {
    serde_json::to_string(&items.collect::<Vec<&str>>()).unwrap_or_else(|_| "[]".into())
}

/// `[[scope, hex digest], ...]` for the claims a batch asks about.
fn claims_json(appends: &[&PreparedAppend]) -> String {
    let pairs: Vec<(&str, String)> = claims_of(appends)
        .map(|claim| (claim.scope(), hex(claim.digest())))
        .collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into())
}

const TAKE_CLAIM: &str = "INSERT INTO unique_claims (scope, value_hash, stream_id) VALUES (";
const RELEASE_CLAIM: &str = "DELETE FROM unique_claims WHERE (scope, value_hash, stream_id) = (";

fn uuid_hex_array<'a>(ids: impl Iterator<Item = &'a Uuid>) -> String {
    let hex: Vec<String> = ids.map(|id| id.simple().to_string()).collect();
    json_array(hex.iter().map(String::as_str))
}

#[async_trait]
impl WriteBackend for SqliteWriter {
    type Transaction = OpenTransaction;

    async fn begin_and_read_state(
        &mut self,
        appends: &[&PreparedAppend],
    ) -> Result<(OpenTransaction, StoredState), sqlx::Error> {
        let mut tx = OpenTransaction::take(&self.database).await?;
        // A correlated MAX per stream is one index seek each; a GROUP BY over the stream's
        // rows would walk every version of a long stream.
        let read = sqlx::query_as::<_, StateRow>(
            "BEGIN IMMEDIATE;
             SELECT 0 AS kind, NULL AS stream_id, NULL AS command_id,
                    COALESCE(MAX(position), 0) AS a, NULL AS b, NULL AS c, NULL AS d,
                    NULL AS scope,
                    (SELECT chain FROM events ORDER BY position DESC LIMIT 1) AS value_hash
               FROM events
             UNION ALL
             SELECT 1, s.value,
                    (SELECT command_id FROM events WHERE stream_id = s.value ORDER BY version DESC LIMIT 1),
                    (SELECT MAX(version) FROM events WHERE stream_id = s.value),
                    NULL, NULL, NULL, NULL, NULL
               FROM (SELECT DISTINCT value FROM json_each(?1)) AS s
             UNION ALL
             SELECT 2, stream_id, command_id, MIN(version), MAX(version), MIN(position), MAX(position),
                    NULL, NULL
               FROM events WHERE command_id IN (SELECT unhex(value) FROM json_each(?2))
              GROUP BY stream_id, command_id
             UNION ALL
             SELECT 3, c.stream_id, NULL, NULL, NULL, NULL, NULL, c.scope, c.value_hash
               FROM json_each(?3) AS j
               JOIN unique_claims AS c ON c.scope = j.value ->> 0 AND c.value_hash = unhex(j.value ->> 1)",
        )
        .bind(json_array(appends.iter().map(|a| a.request.stream.as_str())))
        .bind(uuid_hex_array(appends.iter().map(|a| &a.request.metadata.command_id)))
        .bind(claims_json(appends))
        .fetch_all(&mut *tx.connection)
        .await;
        match read {
            Ok(rows) => {
                let stored = stored_state_from(rows);
                let known = self.known.get_or_insert_with(|| KnownState {
                    head: stored.head,
                    head_chain: stored.head_chain,
                    streams: HashMap::new(),
                });
                known.head = stored.head;
                known.head_chain = stored.head_chain;
                for append in appends {
                    let stream = &append.request.stream;
                    known.remember(
                        stream,
                        stored.versions.get(stream).copied().unwrap_or(0),
                        stored.last_commands.get(stream).copied(),
                    );
                }
                Ok((tx, stored))
            }
            Err(error) => {
                self.known = None;
                tx.roll_back().await;
                Err(error)
            }
        }
    }

    fn known_state(&mut self, appends: &[&PreparedAppend]) -> Option<StoredState> {
        let known = self.known.as_ref()?;
        let mut versions = HashMap::with_capacity(appends.len());
        let mut last_commands = HashMap::with_capacity(appends.len());
        for append in appends {
            if append.request.expected == ExpectedVersion::Any {
                // Only an expected version makes a retried command collide with its first
                // attempt (on stream and version); without one, look it up.
                return None;
            }
            if !append.request.claims.is_empty() || !append.request.releases.is_empty() {
                // Claims are not remembered: who owns a value is always read.
                return None;
            }
            let stream = &append.request.stream;
            let (version, last_command) = *known.streams.get(stream)?;
            versions.insert(stream.clone(), version);
            if let Some(command) = last_command {
                last_commands.insert(stream.clone(), command);
            }
        }
        Some(StoredState {
            head: known.head,
            head_chain: known.head_chain,
            versions,
            last_commands,
            commands: HashMap::new(),
            claims: HashMap::new(),
        })
    }

    async fn insert_and_commit(
        &mut self,
        tx: Option<OpenTransaction>,
        plan: &Plan<'_>,
        head: Position,
    ) -> Result<(), sqlx::Error> {
        let rows = &plan.rows;
        let begun = tx.is_some();
        // The open transaction's connection, or the writing connection taken for this one.
        let mut tx = match tx {
            Some(tx) => tx,
            None => OpenTransaction::take(&self.database).await?,
        };
        // In-process readers are woken by the committer itself; SQLite has no other instance
        // to tell (the product runs one instance per SQLite file).
        let mut statement =
            QueryBuilder::<Sqlite>::new(if begun { "" } else { "BEGIN IMMEDIATE;\n" });
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            // A refused row ends the whole transaction (it is rolled back below anyway), so
            // SQLite keeps no statement journal: an INSERT that can abort alone copies every
            // page it touches into one first, a tenth of the writer's time under load.
            push_insert_events!(statement, "INSERT OR ROLLBACK", chunk, "");
            statement.push(";\n");
        }
        for change in &plan.claim_changes {
            let (sql, claim, stream) = match change {
                ClaimChange::Take { claim, stream } => (TAKE_CLAIM, claim, stream),
                ClaimChange::Release { claim, stream } => (RELEASE_CLAIM, claim, stream),
            };
            statement.push(sql);
            statement.push_bind(claim.scope());
            statement.push(", ");
            statement.push_bind(claim.digest().as_slice());
            statement.push(", ");
            statement.push_bind(stream.as_str());
            statement.push(");\n");
        }
        for (message, at_us) in &plan.outbox {
            statement.push(
                "INSERT INTO outbox (message_id, kind, payload, created_at_us, next_attempt_at_us) VALUES (",
            );
            let mut values = statement.separated(", ");
            values.push_bind(message.message_id);
            values.push_bind(message.kind.as_str());
            values.push_bind(message.payload.to_string());
            values.push_bind(*at_us);
            values.push_bind(*at_us);
            statement.push(");\n");
        }
        statement.push("COMMIT;");
        // Parsing the statement is a visible share of a small batch's cost; the statement
        // text depends only on the row count, so keep the common (small) shapes prepared.
        let reuse = rows.len() <= PREPARED_BATCH_ROWS
            && plan.claim_changes.is_empty()
            && plan.outbox.is_empty();
        let written = statement
            .build()
            .persistent(reuse)
            .execute(&mut *tx.connection)
            .await;
        match (&written, self.known.as_mut()) {
            (Ok(_), Some(known)) => {
                known.head = head;
                if let Some(last) = rows.last() {
                    known.head_chain = last.chain;
                }
                for row in rows {
                    known.remember(
                        &row.append.request.stream,
                        row.version,
                        Some(row.append.request.metadata.command_id),
                    );
                }
            }
            (Ok(_), None) => {}
            (Err(_), _) => {
                self.known = None;
                tx.roll_back().await;
                return written.map(drop);
            }
        }
        tx.ended = true;
        written.map(drop)
    }

    async fn rollback(&mut self, mut tx: OpenTransaction) -> Result<(), sqlx::Error> {
        sqlx::query("ROLLBACK").execute(&mut *tx.connection).await?;
        tx.ended = true;
        Ok(())
    }

    fn synced_after_commit(&self) -> Option<LogToSync> {
        let database = self.database.connect_options().get_filename();
        if database.as_os_str().is_empty() || database.as_os_str() == ":memory:" {
            // No file, no log to sync: nothing survives the process anyway.
            return None;
        }
        // SQLite names the log after the database file its links lead to.
        let database = std::fs::canonicalize(database).unwrap_or_else(|_| database.to_owned());
        let mut wal = database.into_os_string();
        wal.push("-wal");
        Some(LogToSync {
            file: PathBuf::from(wal),
            failure: Arc::clone(self.database.log_sync_failure()),
        })
    }

    async fn find_stored_event_id(&mut self, ids: &[Uuid]) -> Result<Option<Uuid>, sqlx::Error> {
        sqlx::query_scalar("SELECT event_id FROM events WHERE event_id IN (SELECT unhex(value) FROM json_each(?1)) LIMIT 1")
            .bind(uuid_hex_array(ids.iter()))
            .fetch_optional(self.database.pool())
            .await
    }
}

/// The committer's writer, on the database's writing connection. Its commits do not sync
/// the write-ahead log themselves: the committer syncs the log's file after them, once for
/// all the batches committed meanwhile, before it answers anyone (ADR 0028).
pub(crate) fn open_writer(database: &SqliteDatabase) -> SqliteWriter {
    SqliteWriter::new(database.clone())
}

pub(crate) async fn read_stream(
    pool: &SqlitePool,
    stream: &StreamId,
    from_version: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events WHERE stream_id = ?1 AND version >= ?2 ORDER BY version"
    ))
    .bind(stream.as_str())
    .bind(from_version)
    .fetch_all(pool)
    .await
}

/// A page of the global log, packed by SQLite into one text: one row crosses from SQLite's
/// thread to ours instead of thousands (each row costs a hand-off and several allocations
/// in the driver, which made reading the log the slowest part of a rebuild). Each text
/// travels with its byte length, so it comes back byte for byte and nothing is escaped.
pub(crate) async fn read_all(
    pool: &SqlitePool,
    after: i64,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    let packed: Option<String> = sqlx::query_scalar(concat!(
        "SELECT group_concat(",
        packed_event!(),
        ", '') FROM (SELECT * FROM events WHERE position > ?1 ORDER BY position LIMIT ?2)"
    ))
    .bind(after)
    .bind(limit)
    .fetch_one(pool)
    .await
    .map_err(|e| StoreError::new("reading the global log", e))?;
    let Some(packed) = packed else {
        return Ok(Vec::new());
    };
    let mut rows = unpack_page(&packed)?;
    // An aggregate's input order is SQLite's to choose; the log's order is ours to keep.
    rows.sort_unstable_by_key(EventRow::position);
    Ok(rows)
}
