//! Building blocks shared by the contract tests.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use infrastructure::event_store::{
    AppendRequest, EventMetadata, EventStore, ExpectedVersion, GroupCommitSettings, NewEvent,
    Position, RecordedEvent, SqlEventStore, StreamId,
};
use infrastructure::testing::TestDatabase;
use serde_json::value::RawValue;
use uuid::Uuid;

pub async fn open(database: &TestDatabase) -> SqlEventStore {
    SqlEventStore::open(database.connect().await, GroupCommitSettings::default())
        .await
        .expect("opening the event store")
}

pub fn stream(name: &str) -> StreamId {
    StreamId::parse(name).expect("a valid stream id")
}

pub fn event(event_type: &str, payload: &str) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: event_type.into(),
        schema_version: 1,
        payload: RawValue::from_string(payload.into()).expect("valid JSON"),
    }
}

pub fn metadata() -> EventMetadata {
    EventMetadata {
        command_id: Uuid::new_v4(),
        correlation_id: Uuid::new_v4(),
        causation_id: Some(Uuid::new_v4()),
        actor: "user:test".into(),
        recorded_at: Utc
            .with_ymd_and_hms(2026, 11, 21, 9, 30, 15)
            .single()
            .expect("a valid instant")
            + chrono::Duration::microseconds(123_456),
        request_id: None,
    }
}

/// A request with a fresh command id.
pub fn request(
    stream_name: &str,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> AppendRequest {
    AppendRequest::new(stream(stream_name), expected, metadata(), events)
}

/// `count` single-event payloads `{"n":i}`.
pub fn numbered(count: usize) -> Vec<NewEvent> {
    (0..count)
        .map(|n| event("Numbered", &format!("{{\"n\":{n}}}")))
        .collect()
}

/// Reads the whole log page by page.
pub async fn read_everything(store: &dyn EventStore) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    let mut after = Position::START;
    loop {
        let page = store.read_all(after, 500).await.expect("reading the log");
        let Some(last) = page.last() else { return all };
        after = last.position;
        all.extend(page);
    }
}

pub fn positions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.position.0).collect()
}

/// `writers` tasks, each appending `each` single events to its own stream `w-{n}` with the
/// exact expected version, spread round-robin over `stores`; waits for all of them.
pub async fn append_concurrently(stores: &[Arc<SqlEventStore>], writers: usize, each: u64) {
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let store = Arc::clone(&stores[writer % stores.len()]);
            tokio::spawn(async move {
                for version in 0..each {
                    store
                        .append(request(
                            &format!("w-{writer}"),
                            ExpectedVersion::Exact(version),
                            numbered(1),
                        ))
                        .await
                        .expect("every append succeeds");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer task");
    }
}
