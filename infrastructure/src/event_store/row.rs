//! A stored event as both databases return it, and its translation into [`RecordedEvent`].

use serde_json::value::RawValue;
use uuid::Uuid;

use super::model::{AppendOutcome, Position, RecordedEvent, StoreError, StreamId, UniqueClaim};
use super::plan::StoredState;

/// The columns every read of the log selects, as a literal for `concat!`, the same on both
/// databases. The JSON columns are cast to text so that PostgreSQL hands back the stored
/// bytes unchanged.
macro_rules! event_columns {
    () => {
        "position, stream_id, version, event_id, event_type, schema_version, \
         CAST(payload AS TEXT) AS payload, CAST(metadata AS TEXT) AS metadata"
    };
}
pub(crate) use event_columns;

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EventRow {
    position: i64,
    stream_id: String,
    version: i64,
    event_id: Uuid,
    event_type: String,
    schema_version: i32,
    payload: String,
    metadata: String,
}

/// The columns of one event as SQLite's batch read hands them over (see
/// `sqlite::read_all`): the id as hex, the JSON columns as strings.
pub(crate) type PackedEvent = (i64, String, i64, String, String, i32, String, String);

impl EventRow {
    /// An event read as [`PackedEvent`].
    pub(crate) fn unpack(packed: PackedEvent) -> Result<Self, StoreError> {
        let (position, stream_id, version, event_id, event_type, schema_version, payload, metadata) =
            packed;
        let event_id = Uuid::parse_str(&event_id).map_err(|e| {
            StoreError::new(
                format!("stored event at position {position} has an unreadable id"),
                e,
            )
        })?;
        Ok(Self {
            position,
            stream_id,
            version,
            event_id,
            event_type,
            schema_version,
            payload,
            metadata,
        })
    }

    /// Its place in the log.
    pub(crate) fn position(&self) -> i64 {
        self.position
    }

    pub(crate) fn into_recorded(self) -> Result<RecordedEvent, StoreError> {
        let at = self.position;
        let corrupt = move |what: &str, e: Box<dyn std::error::Error + Send + Sync>| {
            StoreError::new(
                format!("stored event at position {at} has an unreadable {what}"),
                e,
            )
        };
        Ok(RecordedEvent {
            position: Position(
                u64::try_from(self.position).map_err(|e| corrupt("position", e.into()))?,
            ),
            stream: StreamId::parse(self.stream_id).map_err(|e| corrupt("stream id", e.into()))?,
            version: u64::try_from(self.version).map_err(|e| corrupt("version", e.into()))?,
            event_id: self.event_id,
            event_type: self.event_type,
            schema_version: u16::try_from(self.schema_version)
                .map_err(|e| corrupt("schema version", e.into()))?,
            payload: RawValue::from_string(self.payload)
                .map_err(|e| corrupt("payload", e.into()))?,
            metadata: serde_json::from_str(&self.metadata)
                .map_err(|e| corrupt("metadata", e.into()))?,
        })
    }
}

/// One row of the committer's state query, the same shape on both databases:
/// kind 0 carries the head in `a`; kind 1 a stream and its version in `a` (NULL when the
/// stream does not exist); kind 2 a stored (stream, command) with its first and last
/// version and position in `a`..`d`; kind 3 a taken claim (`scope`, `value_hash`) and its
/// owner in `stream_id`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StateRow {
    kind: i32,
    stream_id: Option<String>,
    command_id: Option<Uuid>,
    a: Option<i64>,
    b: Option<i64>,
    c: Option<i64>,
    d: Option<i64>,
    scope: Option<String>,
    value_hash: Option<Vec<u8>>,
}

/// Builds the committer's view from the state query's rows.
pub(crate) fn stored_state_from(rows: Vec<StateRow>) -> StoredState {
    let mut state = StoredState::default();
    for row in rows {
        let stream = row.stream_id.and_then(|s| StreamId::parse(s).ok());
        match (row.kind, stream, row.command_id) {
            (0, _, _) => state.head = Position(to_u64(row.a.unwrap_or(0))),
            (1, Some(stream), _) => {
                if let Some(version) = row.a {
                    state.versions.insert(stream, to_u64(version));
                }
            }
            (2, Some(stream), Some(command)) => {
                let outcome = AppendOutcome {
                    first_version: to_u64(row.a.unwrap_or(0)),
                    last_version: to_u64(row.b.unwrap_or(0)),
                    first_position: Position(to_u64(row.c.unwrap_or(0))),
                    last_position: Position(to_u64(row.d.unwrap_or(0))),
                    already_stored: true,
                };
                state
                    .commands
                    .entry(command)
                    .or_default()
                    .push((stream, outcome));
            }
            (3, Some(owner), _) => {
                if let (Some(scope), Some(hash)) = (row.scope, row.value_hash)
                    && let Some(claim) = UniqueClaim::from_stored(scope, &hash)
                {
                    state.claims.insert(claim, owner);
                }
            }
            _ => {}
        }
    }
    state
}

/// The INSERT both adapters use; `$cast` follows each JSON value (`"::json"` on
/// PostgreSQL, `""` on SQLite, which stores JSON as text).
macro_rules! push_insert_events {
    ($builder:expr, $rows:expr, $cast:expr) => {{
        $builder.push(
            "INSERT INTO events (position, stream_id, version, event_id, event_type, schema_version, \
             command_id, recorded_at_us, payload, metadata) ",
        );
        $builder.push_values($rows, |mut values, row| {
            values
                .push_bind($crate::event_store::row::to_i64(row.position.0))
                .push_bind(row.append.request.stream.as_str())
                .push_bind($crate::event_store::row::to_i64(row.version))
                .push_bind(row.event.event_id)
                .push_bind(row.event.event_type.as_str())
                .push_bind(i32::from(row.event.schema_version))
                .push_bind(row.append.request.metadata.command_id)
                .push_bind(row.append.recorded_at_us)
                .push_bind(row.event.payload.get())
                .push_unseparated($cast)
                .push_bind(row.append.metadata_json.as_str())
                .push_unseparated($cast);
        });
    }};
}
pub(crate) use push_insert_events;

/// The claims a batch asks about: everything its requests claim or release.
pub(crate) fn claims_of<'a>(
    appends: &'a [&'a super::plan::PreparedAppend],
) -> impl Iterator<Item = &'a UniqueClaim> + 'a {
    appends
        .iter()
        .flat_map(|a| a.request.claims.iter().chain(&a.request.releases))
}

/// Positions and versions are far below 2^63; the conversions saturate rather than wrap.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
