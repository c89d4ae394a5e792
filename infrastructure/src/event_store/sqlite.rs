//! The event store's SQLite adapter.
//!
//! SQLite has one writer at a time by design; the committer takes that write lock up front
//! with `BEGIN IMMEDIATE`, so it never has to upgrade a read lock (which can fail with
//! SQLITE_BUSY) and nothing can slip between reading the head and inserting after it.
//! sqlx runs each SQLite statement on the connection's worker thread, so every statement
//! costs a thread hand-off: a batch is three statements whatever its size.

use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite, SqlitePool, Transaction};
use uuid::Uuid;

use super::committer::WriteBackend;
use super::model::{Position, StreamId};
use super::plan::{PlannedRow, PreparedAppend, StoredState};
use super::row::{EventRow, event_columns, stored_state_from, to_i64};

pub(crate) struct SqliteWriter {
    pool: SqlitePool,
}

impl SqliteWriter {
    /// `pool` must be the database's dedicated event-writer pool.
    pub(crate) fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

/// A JSON array of strings, for `json_each`: one statement shape whatever the batch size,
/// so the prepared statement is reused instead of re-planned per batch.
fn json_array<T: AsRef<str>>(items: impl Iterator<Item = T>) -> String {
    let items: Vec<T> = items.collect();
    serde_json::to_string(&items.iter().map(AsRef::as_ref).collect::<Vec<&str>>())
        .unwrap_or_else(|_| "[]".into())
}

fn uuid_hex_array<'a>(ids: impl Iterator<Item = &'a Uuid>) -> String {
    json_array(ids.map(|id| id.simple().to_string()))
}

#[async_trait]
impl WriteBackend for SqliteWriter {
    type Transaction = Transaction<'static, Sqlite>;

    async fn begin(&self) -> Result<Self::Transaction, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    async fn stored_state(
        &self,
        tx: &mut Self::Transaction,
        appends: &[&PreparedAppend],
    ) -> Result<StoredState, sqlx::Error> {
        let streams = json_array(appends.iter().map(|a| a.request.stream.as_str()));
        // A correlated MAX per stream is one index seek each; a GROUP BY over the stream's
        // rows would walk every version of a long stream.
        let rows: Vec<(i64, String, Option<i64>)> = sqlx::query_as(
            "SELECT (SELECT COALESCE(MAX(position), 0) FROM events), s.value, \
                    (SELECT MAX(version) FROM events WHERE stream_id = s.value) \
             FROM (SELECT DISTINCT value FROM json_each(?1)) AS s",
        )
        .bind(streams)
        .fetch_all(&mut **tx)
        .await?;

        let commands = uuid_hex_array(appends.iter().map(|a| &a.request.metadata.command_id));
        let stored_commands: Vec<(String, Uuid, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT stream_id, command_id, MIN(version), MAX(version), MIN(position), MAX(position) \
             FROM events WHERE command_id IN (SELECT unhex(value) FROM json_each(?1)) \
             GROUP BY stream_id, command_id",
        )
        .bind(commands)
        .fetch_all(&mut **tx)
        .await?;

        Ok(stored_state_from(rows, stored_commands))
    }

    async fn insert(
        &self,
        tx: &mut Self::Transaction,
        rows: &[PlannedRow<'_>],
    ) -> Result<(), sqlx::Error> {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (position, stream_id, version, event_id, event_type, schema_version, \
             command_id, recorded_at_us, payload, metadata) ",
        );
        insert.push_values(rows, |mut values, row| {
            values
                .push_bind(to_i64(row.position.0))
                .push_bind(row.append.request.stream.as_str())
                .push_bind(to_i64(row.version))
                .push_bind(row.event.event_id)
                .push_bind(row.event.event_type.as_str())
                .push_bind(i32::from(row.event.schema_version))
                .push_bind(row.append.request.metadata.command_id)
                .push_bind(row.append.recorded_at_us)
                .push_bind(row.event.payload.get())
                .push_bind(row.append.metadata_json.as_str());
        });
        insert.build().persistent(false).execute(&mut **tx).await?;
        Ok(())
    }

    async fn commit(&self, tx: Self::Transaction, _head: Position) -> Result<(), sqlx::Error> {
        // In-process readers are woken by the committer itself; SQLite has no other instance
        // to tell (the product runs one instance per SQLite file).
        tx.commit().await
    }

    async fn find_stored_event_id(&self, ids: &[Uuid]) -> Result<Option<Uuid>, sqlx::Error> {
        sqlx::query_scalar("SELECT event_id FROM events WHERE event_id IN (SELECT unhex(value) FROM json_each(?1)) LIMIT 1")
            .bind(uuid_hex_array(ids.iter()))
            .fetch_optional(&self.pool)
            .await
    }
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

pub(crate) async fn read_all(
    pool: &SqlitePool,
    after: i64,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events WHERE position > ?1 ORDER BY position LIMIT ?2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}
