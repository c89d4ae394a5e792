//! Finding events for auditors: by streams, type and time, one event by id, and the events
//! of one command. Reads only; the log's order (position) is the order of every answer.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder, Sqlite};
use uuid::Uuid;

use super::model::{Position, RecordedEvent, StoreError};
use super::row::{EventRow, event_columns};
use crate::database::Database;

/// Which events, after which position, how many.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only these streams (`None`: every stream).
    pub streams: Option<Vec<String>>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Recorded at or after.
    pub from: Option<DateTime<Utc>>,
    /// Recorded before.
    pub to: Option<DateTime<Utc>>,
    /// Recorded at or before: "as of" an instant.
    pub until: Option<DateTime<Utc>>,
    /// Only after this position.
    pub after: Position,
    /// At most this many.
    pub limit: u32,
}

/// Pushes the query's conditions; the placeholders are the builder's own, so the same code
/// serves both databases except for the list of streams.
macro_rules! push_conditions {
    ($builder:expr, $query:expr, $streams:expr) => {{
        let query: &EventQuery = $query;
        $builder.push(" WHERE position > ");
        $builder.push_bind(i64::try_from(query.after.0).unwrap_or(i64::MAX));
        if let Some(streams) = &query.streams {
            $streams(&mut $builder, streams);
        }
        if let Some(event_type) = &query.event_type {
            $builder.push(" AND event_type = ");
            $builder.push_bind(event_type.clone());
        }
        if let Some(from) = query.from {
            $builder.push(" AND recorded_at_us >= ");
            $builder.push_bind(from.timestamp_micros());
        }
        if let Some(to) = query.to {
            $builder.push(" AND recorded_at_us < ");
            $builder.push_bind(to.timestamp_micros());
        }
        if let Some(until) = query.until {
            $builder.push(" AND recorded_at_us <= ");
            $builder.push_bind(until.timestamp_micros());
        }
        $builder.push(" ORDER BY position LIMIT ");
        $builder.push_bind(i64::from(query.limit));
    }};
}

/// The events the query asks for, oldest first.
///
/// # Errors
/// [`StoreError`] when the database fails or a stored row is unreadable.
pub async fn search(
    database: &Database,
    query: &EventQuery,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let select = concat!("SELECT ", event_columns!(), " FROM events");
    let rows: Vec<EventRow> = match database {
        Database::Sqlite(sqlite) => {
            let mut builder = QueryBuilder::<Sqlite>::new(select);
            push_conditions!(
                builder,
                query,
                |b: &mut QueryBuilder<Sqlite>, streams: &Vec<String>| {
                    b.push(" AND stream_id IN (SELECT value FROM json_each(");
                    b.push_bind(serde_json::to_string(streams).unwrap_or_else(|_| "[]".into()));
                    b.push("))");
                }
            );
            builder.build_query_as().fetch_all(sqlite.pool()).await
        }
        Database::Postgres(pool) => {
            let mut builder = QueryBuilder::<Postgres>::new(select);
            push_conditions!(
                builder,
                query,
                |b: &mut QueryBuilder<Postgres>, streams: &Vec<String>| {
                    b.push(" AND stream_id = ANY(");
                    b.push_bind(streams.clone());
                    b.push(")");
                }
            );
            builder.build_query_as().fetch_all(pool).await
        }
    }
    .map_err(|e| StoreError::new("searching the log", e))?;
    rows.into_iter().map(EventRow::into_recorded).collect()
}

/// The event with this id, if stored.
///
/// # Errors
/// [`StoreError`] when the database fails or the row is unreadable.
pub async fn event_by_id(
    database: &Database,
    event_id: Uuid,
) -> Result<Option<RecordedEvent>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        event_columns!(),
        " FROM events WHERE event_id = $1"
    );
    let row: Option<EventRow> = crate::database::on_pool!(database, pool => {
        sqlx::query_as(SQL).bind(event_id).fetch_optional(pool).await
    })
    .map_err(|e| StoreError::new("reading an event by id", e))?;
    row.map(EventRow::into_recorded).transpose()
}

/// Every event one command wrote, in order.
///
/// # Errors
/// [`StoreError`] when the database fails or a row is unreadable.
pub async fn events_of_command(
    database: &Database,
    command_id: Uuid,
) -> Result<Vec<RecordedEvent>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        event_columns!(),
        " FROM events WHERE command_id = $1 ORDER BY position"
    );
    let rows: Vec<EventRow> = crate::database::on_pool!(database, pool => {
        sqlx::query_as(SQL).bind(command_id).fetch_all(pool).await
    })
    .map_err(|e| StoreError::new("reading a command's events", e))?;
    rows.into_iter().map(EventRow::into_recorded).collect()
}
