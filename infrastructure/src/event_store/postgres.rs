//! The event store's PostgreSQL adapter.
//!
//! Every append transaction, from any instance, first takes the transaction-scoped advisory
//! lock [`APPEND_LOCK`]; only then does it read the head and number its events after it. The
//! lock is released by the commit itself, after the rows became visible, so positions become
//! visible strictly in order and a reader can never see position N+1 while N is still in
//! flight (ADR 0003). A `pg_notify` sent in the same transaction wakes every instance's
//! readers when, and only when, the commit happened.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgListener;
use sqlx::{PgPool, Postgres, QueryBuilder, Transaction};
use tokio::sync::watch;
use uuid::Uuid;

use super::committer::{ROWS_PER_STATEMENT, WriteBackend};
use super::model::{Position, StreamId};
use super::plan::{ClaimChange, Plan, PreparedAppend, StoredState};
use super::row::{
    EventRow, StateRow, claims_of, event_columns, push_insert_events, stored_state_from, to_u64,
};

/// The advisory lock key that serialises appends across every instance: the bytes of
/// "evappend" read as a big-endian integer, so that it cannot be confused with another
/// application's keys by accident. Anything that inserts events must hold it.
pub const APPEND_LOCK: i64 = 0x6576_6170_7065_6e64;

/// The channel on which commits are announced; the payload is the new head.
pub(crate) const COMMIT_CHANNEL: &str = "expense_tracker_events";

pub(crate) struct PostgresWriter {
    pool: PgPool,
}

impl PostgresWriter {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// A transaction holding the append lock. Other instances append too, so this writer
    /// never trusts what it remembers: it always reads the state under the lock.
    async fn begin(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(APPEND_LOCK)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

#[async_trait]
impl WriteBackend for PostgresWriter {
    type Transaction = Transaction<'static, Postgres>;

    async fn begin_and_read_state(
        &mut self,
        appends: &[&PreparedAppend],
    ) -> Result<(Self::Transaction, StoredState), sqlx::Error> {
        let mut tx = self.begin().await?;
        let mut streams: Vec<&str> = appends.iter().map(|a| a.request.stream.as_str()).collect();
        streams.sort_unstable();
        streams.dedup();
        let commands: Vec<Uuid> = appends
            .iter()
            .map(|a| a.request.metadata.command_id)
            .collect();
        let (claim_scopes, claim_digests): (Vec<&str>, Vec<&[u8]>) = claims_of(appends)
            .map(|claim| (claim.scope(), claim.digest().as_slice()))
            .unzip();
        // A correlated MAX per stream, and its last event's command, are one backward index
        // seek each.
        //
        // Planned for every batch, never prepared once: a prepared statement's plan is made
        // generic after five runs, with the table as it was then. Planned on a young, small
        // log it reads the whole table for the commands' ids, and keeps doing so as the log
        // grows: 25-35 ms a batch after a few tens of thousands of events (bench all).
        let rows = sqlx::query_as::<_, StateRow>(
            "SELECT 0 AS kind, NULL::text AS stream_id, NULL::uuid AS command_id,
                    COALESCE(MAX(position), 0) AS a, NULL::bigint AS b, NULL::bigint AS c, NULL::bigint AS d,
                    NULL::text AS scope,
                    (SELECT chain FROM events ORDER BY position DESC LIMIT 1) AS value_hash
               FROM events
             UNION ALL
             SELECT 1, s,
                    (SELECT command_id FROM events WHERE stream_id = s ORDER BY version DESC LIMIT 1),
                    (SELECT MAX(version) FROM events WHERE stream_id = s), NULL, NULL, NULL, NULL, NULL
               FROM unnest($1::text[]) AS s
             UNION ALL
             SELECT 2, stream_id, command_id, MIN(version), MAX(version), MIN(position), MAX(position), NULL, NULL
               FROM events WHERE command_id = ANY($2)
              GROUP BY stream_id, command_id
             UNION ALL
             SELECT 3, c.stream_id, NULL, NULL, NULL, NULL, NULL, c.scope, c.value_hash
               FROM unnest($3::text[], $4::bytea[]) AS j(scope, value_hash)
               JOIN unique_claims AS c ON c.scope = j.scope AND c.value_hash = j.value_hash",
        )
        .bind(&streams)
        .bind(&commands)
        .bind(&claim_scopes)
        .bind(&claim_digests)
        .persistent(false)
        .fetch_all(&mut *tx)
        .await?;
        Ok((tx, stored_state_from(rows)))
    }

    async fn insert_and_commit(
        &mut self,
        tx: Option<Self::Transaction>,
        plan: &Plan<'_>,
        head: Position,
    ) -> Result<(), sqlx::Error> {
        let mut tx = match tx {
            Some(tx) => tx,
            None => self.begin().await?,
        };
        for chunk in plan.rows.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Postgres>::new("");
            push_insert_events!(insert, "INSERT", chunk, "::json");
            insert.build().persistent(false).execute(&mut *tx).await?;
        }
        for change in &plan.claim_changes {
            let (sql, claim, stream) = match change {
                ClaimChange::Take { claim, stream } => (
                    "INSERT INTO unique_claims (scope, value_hash, stream_id) VALUES ($1, $2, $3)",
                    claim,
                    stream,
                ),
                ClaimChange::Release { claim, stream } => (
                    "DELETE FROM unique_claims WHERE scope = $1 AND value_hash = $2 AND stream_id = $3",
                    claim,
                    stream,
                ),
            };
            sqlx::query(sql)
                .bind(claim.scope())
                .bind(claim.digest().as_slice())
                .bind(stream.as_str())
                .execute(&mut *tx)
                .await?;
        }
        for (message, at_us) in &plan.outbox {
            sqlx::query(
                "INSERT INTO outbox (message_id, kind, payload, created_at_us, next_attempt_at_us) \
                 VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(message.message_id)
            .bind(message.kind.as_str())
            .bind(message.payload.to_string())
            .bind(*at_us)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(COMMIT_CHANNEL)
            .bind(head.0.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    async fn rollback(&mut self, tx: Self::Transaction) -> Result<(), sqlx::Error> {
        tx.rollback().await
    }

    async fn find_stored_event_id(&mut self, ids: &[Uuid]) -> Result<Option<Uuid>, sqlx::Error> {
        sqlx::query_scalar("SELECT event_id FROM events WHERE event_id = ANY($1) LIMIT 1")
            .bind(ids)
            .fetch_optional(&self.pool)
            .await
    }
}

/// Keeps `head` up to date with commits made by any instance, until the store is dropped.
///
/// After a lost connection the listener reconnects, and because notifications sent in the
/// meantime are gone, the head is read again from the table.
pub(crate) async fn listen_for_commits(pool: PgPool, head: watch::Sender<Position>) {
    let mut listener = loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(COMMIT_CHANNEL).await {
                Ok(()) => break listener,
                Err(error) => tracing::warn!(%error, "cannot listen for event commits; retrying"),
            },
            Err(error) => tracing::warn!(%error, "cannot connect the commit listener; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                if let Ok(position) = notification.payload().parse::<u64>() {
                    super::advance(&head, Position(position));
                }
            }
            Ok(None) => {
                tracing::warn!("commit listener lost its connection; reconnecting");
                let read: Result<i64, _> =
                    sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
                        .fetch_one(&pool)
                        .await;
                if let Ok(position) = read {
                    super::advance(&head, Position(to_u64(position)));
                }
            }
            Err(error) => {
                tracing::warn!(%error, "commit listener failed; retrying in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

pub(crate) async fn read_stream(
    pool: &PgPool,
    stream: &StreamId,
    from_version: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events WHERE stream_id = $1 AND version >= $2 ORDER BY version"
    ))
    .bind(stream.as_str())
    .bind(from_version)
    .fetch_all(pool)
    .await
}

pub(crate) async fn read_all(
    pool: &PgPool,
    after: i64,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events WHERE position > $1 ORDER BY position LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}
