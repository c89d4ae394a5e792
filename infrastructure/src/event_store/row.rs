//! A stored event as both databases return it, and its translation into [`RecordedEvent`].

use std::collections::HashMap;

use serde_json::value::RawValue;
use uuid::Uuid;

use super::model::{AppendOutcome, Position, RecordedEvent, StoreError, StreamId};
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

impl EventRow {
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

/// Builds the committer's view from the two state queries, which return these shapes on
/// both databases.
pub(crate) fn stored_state_from(
    streams: Vec<(i64, String, Option<i64>)>,
    commands: Vec<(String, Uuid, i64, i64, i64, i64)>,
) -> StoredState {
    let head = streams.first().map_or(0, |(head, _, _)| *head);
    let versions: HashMap<StreamId, u64> = streams
        .into_iter()
        .filter_map(|(_, stream, version)| Some((StreamId::parse(stream).ok()?, to_u64(version?))))
        .collect();
    let commands = commands
        .into_iter()
        .filter_map(
            |(stream, command, first_version, last_version, first_position, last_position)| {
                let outcome = AppendOutcome {
                    first_version: to_u64(first_version),
                    last_version: to_u64(last_version),
                    first_position: Position(to_u64(first_position)),
                    last_position: Position(to_u64(last_position)),
                    already_stored: true,
                };
                Some(((StreamId::parse(stream).ok()?, command), outcome))
            },
        )
        .collect();
    StoredState {
        head: Position(to_u64(head)),
        versions,
        commands,
    }
}

/// Positions and versions are far below 2^63; the conversions saturate rather than wrap.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
