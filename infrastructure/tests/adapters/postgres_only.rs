//! What only PostgreSQL can show: transactions from several connections and instances in
//! flight at once.

use std::sync::Arc;
use std::time::Duration;

use infrastructure::database::Database;
use infrastructure::event_store::{
    EventStore, ExpectedVersion, GroupCommitSettings, POSTGRES_APPEND_LOCK, Position, SqlEventStore,
};
use infrastructure::testing::TestDatabase;
use sqlx::PgPool;

use crate::support::{
    append_concurrently, metadata, numbered, open, positions, read_everything, request,
};

fn pool(store: &SqlEventStore) -> &PgPool {
    match store.database() {
        Database::Postgres(pool) => pool,
        Database::Sqlite(_) => unreachable!("a PostgreSQL test runs on PostgreSQL"),
    }
}

/// Waits (bounded) until `count` sessions are blocked on the append lock.
async fn until_waiting_for_the_append_lock(pool: &PgPool, count: i64) {
    for _ in 0..500 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(pool)
        .await
        .expect("reading pg_locks");
        if waiting >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no append ever waited for the append lock");
}

/// The hazard of ADR 0003: a transaction takes a low position and stays open while later
/// ones commit. A reader that moved its checkpoint past the higher positions would lose the
/// low one forever. Here the low position is held open by hand (exactly as the committer
/// holds it: lock, read head, insert), appends from the store queue behind it, and a
/// checkpointing reader must see nothing past its checkpoint until the low one commits,
/// then everything, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_position_held_open_is_never_skipped_by_a_reader() {
    let Some(database) =
        TestDatabase::postgres("a_low_position_held_open_is_never_skipped_by_a_reader").await
    else {
        return;
    };
    let store = Arc::new(open(&database).await);
    store
        .append(request("before", ExpectedVersion::NoStream, numbered(1)))
        .await
        .expect("setup");
    let mut checkpoint = Position(1);

    let slow_metadata = metadata();
    let mut slow = pool(&store).begin().await.expect("begin");
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(POSTGRES_APPEND_LOCK)
        .execute(&mut *slow)
        .await
        .expect("lock");
    sqlx::query(
        "INSERT INTO events (position, stream_id, version, event_id, event_type, schema_version, \
         command_id, recorded_at_us, payload, metadata) \
         SELECT MAX(position) + 1, 'slow', 1, gen_random_uuid(), 'Slow', 1, $1, 0, '{}'::json, $2::json \
         FROM events",
    )
    .bind(slow_metadata.command_id)
    .bind(serde_json::to_string(&slow_metadata).expect("metadata serialises"))
    .execute(&mut *slow)
    .await
    .expect("the slow insert takes position 2");

    let fast: Vec<_> = (0..5)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .append(request(
                        &format!("fast-{i}"),
                        ExpectedVersion::NoStream,
                        numbered(1),
                    ))
                    .await
                    .expect("a fast append")
            })
        })
        .collect();
    until_waiting_for_the_append_lock(pool(&store), 1).await;

    let while_open = store.read_all(checkpoint, 100).await.expect("read");
    assert!(
        while_open.is_empty(),
        "nothing past the open transaction may be visible: {:?}",
        positions(&while_open)
    );

    slow.commit().await.expect("the slow transaction commits");
    for append in fast {
        let outcome = append.await.expect("task");
        assert!(
            outcome.first_position > Position(2),
            "fast appends come after the slow one"
        );
    }
    let after = store.read_all(checkpoint, 100).await.expect("read");
    assert_eq!(positions(&after), vec![2, 3, 4, 5, 6, 7]);
    assert_eq!(after[0].stream.as_str(), "slow");
    checkpoint = after.last().map(|e| e.position).unwrap_or(checkpoint);
    assert_eq!(checkpoint, Position(7));
}

/// Two instances on one database share one contiguous log, and each hears the other's
/// commits without polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_contiguous_log_and_hear_each_other() {
    let Some(database) =
        TestDatabase::postgres("two_instances_share_one_contiguous_log_and_hear_each_other").await
    else {
        return;
    };
    let first = Arc::new(open(&database).await);
    let second = Arc::new(
        SqlEventStore::open(database.connect().await, GroupCommitSettings::default())
            .await
            .expect("second instance"),
    );
    let mut first_hears = first.watch_head();

    second
        .append(request(
            "from-second",
            ExpectedVersion::NoStream,
            numbered(2),
        ))
        .await
        .expect("append on the second instance");
    tokio::time::timeout(
        Duration::from_secs(10),
        first_hears.wait_for(|head| *head >= Position(2)),
    )
    .await
    .expect("the first instance is told of the second's commit")
    .expect("store alive");

    append_concurrently(&[Arc::clone(&first), Arc::clone(&second)], 16, 25).await;
    let all = read_everything(first.as_ref()).await;
    assert_eq!(positions(&all), (1..=402).collect::<Vec<_>>());
}
