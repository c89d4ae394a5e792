//! A stored event as both databases return it, and its translation into [`RecordedEvent`].

use serde_json::value::RawValue;
use uuid::Uuid;

use super::chain;
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

/// The columns of an event, in the order of a packed page (see `sqlite::read_all`): four
/// numbers and the hex id, then the byte lengths of the four texts that follow them. A
/// literal for `concat!`, so the statement is built once, at compile time.
macro_rules! packed_event {
    () => {
        "position || ',' || version || ',' || schema_version \
         || ',' || hex(event_id) || ',' || octet_length(stream_id) || ',' || octet_length(event_type) \
         || ',' || octet_length(payload) || ',' || octet_length(metadata) || ',' \
         || stream_id || event_type || payload || metadata"
    };
}
pub(crate) use packed_event;

/// Reads a page packed as `packed_event!()`s, one after the other.
pub(crate) fn unpack_page(mut packed: &str) -> Result<Vec<EventRow>, StoreError> {
    let damaged = || StoreError::new("unpacking a page of the global log", PageDamaged);
    let mut rows = Vec::new();
    while !packed.is_empty() {
        let mut numbers = [0_i64; 3];
        for number in &mut numbers {
            let (text, rest) = packed.split_once(',').ok_or_else(damaged)?;
            *number = text.parse().map_err(|_| damaged())?;
            packed = rest;
        }
        let (id, rest) = packed.split_once(',').ok_or_else(damaged)?;
        let event_id = Uuid::parse_str(id).map_err(|_| damaged())?;
        packed = rest;
        let mut lengths = [0_usize; 4];
        for length in &mut lengths {
            let (text, rest) = packed.split_once(',').ok_or_else(damaged)?;
            *length = text.parse().map_err(|_| damaged())?;
            packed = rest;
        }
        let mut texts = lengths.map(|length| {
            let text = packed.get(..length)?;
            packed = &packed[length..];
            Some(text.to_owned())
        });
        let mut take = |at: usize| texts[at].take().ok_or_else(damaged);
        let [position, version, schema_version] = numbers;
        rows.push(EventRow {
            position,
            stream_id: take(0)?,
            version,
            event_id,
            event_type: take(1)?,
            schema_version: i32::try_from(schema_version).map_err(|_| damaged())?,
            payload: take(2)?,
            metadata: take(3)?,
        });
    }
    Ok(rows)
}

/// A packed page that does not read as packed events.
#[derive(Debug, thiserror::Error)]
#[error("a packed page of events is damaged")]
struct PageDamaged;

impl EventRow {
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
/// kind 0 carries the head in `a` and its chain value in `value_hash`; kind 1 a stream, its
/// version in `a` and the command of its last event in `command_id` (both NULL when the
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
            (0, _, _) => {
                state.head = Position(to_u64(row.a.unwrap_or(0)));
                state.head_chain = row
                    .value_hash
                    .as_deref()
                    .and_then(chain::from_stored)
                    .unwrap_or(chain::GENESIS);
            }
            (1, Some(stream), last_command) => {
                if let Some(command) = last_command {
                    state.last_commands.insert(stream.clone(), command);
                }
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

/// The INSERT both adapters use, after `$insert` (`INSERT` or SQLite's `INSERT OR
/// ROLLBACK`); `$cast` follows each JSON value (`"::json"` on PostgreSQL, `""` on SQLite,
/// which stores JSON as text).
macro_rules! push_insert_events {
    ($builder:expr, $insert:expr, $rows:expr, $cast:expr) => {{
        $builder.push($insert);
        $builder.push(
            " INTO events (position, stream_id, version, event_id, event_type, schema_version, \
             command_id, recorded_at_us, payload, metadata, chain) ",
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
                .push_unseparated($cast)
                .push_bind(row.chain.as_slice());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(stream: &str, event_type: &str, payload: &str, metadata: &str) -> String {
        format!(
            "7,2,1,{},{},{},{},{},{stream}{event_type}{payload}{metadata}",
            "0123456789ABCDEF0123456789ABCDEF",
            stream.len(),
            event_type.len(),
            payload.len(),
            metadata.len()
        )
    }

    #[test]
    fn texts_come_back_byte_for_byte_whatever_they_hold() {
        // Commas, digits and multi-byte letters inside the texts: only the lengths count.
        let payload = r#"{"a": "é, ✓,12", "n":1}"#;
        let page = format!(
            "{}{}",
            packed("wallet-1", "ExpenseRecorded", payload, "{}"),
            packed("user-2", "UserRegistered", "{}", r#"{"x":","}"#)
        );
        let rows = unpack_page(&page).expect("unpacked");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].payload, payload);
        assert_eq!(rows[0].stream_id, "wallet-1");
        assert_eq!(rows[0].position, 7);
        assert_eq!(rows[1].event_type, "UserRegistered");
        assert_eq!(rows[1].metadata, r#"{"x":","}"#);
    }

    #[test]
    fn a_damaged_page_is_an_error_not_a_panic() {
        let good = packed("wallet-1", "ExpenseRecorded", r#"{"a":"é"}"#, "{}");
        for damaged in [
            good[..good.len() - 1].to_owned(),
            good.replacen("7,", "x,", 1),
            good.replacen(",8,", ",99,", 1),
            // A length that ends inside a multi-byte letter.
            packed("wallet-1", "ExpenseRecorded", r#"{"a":"é"}"#, "{}").replacen(",10,", ",7,", 1),
            "7,2".to_owned(),
        ] {
            assert!(unpack_page(&damaged).is_err(), "{damaged}");
        }
    }
}
