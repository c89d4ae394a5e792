//! What every event store backend must do. Each function gets a store on a fresh database.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use infrastructure::database::Database;
use infrastructure::event_store::{
    AppendError, EventStore, ExpectedVersion, Position, SqlEventStore, UniqueClaim,
};

use crate::support::{
    append_concurrently, event, numbered, positions, read_everything, request, stream,
};

pub async fn a_new_stream_gets_versions_from_one_and_the_next_positions(store: SqlEventStore) {
    let first = store
        .append(request("wallet-a", ExpectedVersion::NoStream, numbered(2)))
        .await
        .expect("first append");
    let second = store
        .append(request("wallet-b", ExpectedVersion::NoStream, numbered(1)))
        .await
        .expect("second append");

    assert_eq!((first.first_version, first.last_version), (1, 2));
    assert_eq!(
        (first.first_position, first.last_position),
        (Position(1), Position(2))
    );
    assert!(!first.already_stored);
    assert_eq!(
        (second.first_version, second.first_position),
        (1, Position(3))
    );
    assert_eq!(store.head().await.expect("head"), Position(3));
}

pub async fn payload_and_metadata_come_back_exactly_as_appended(store: SqlEventStore) {
    // Odd spacing and key order: the store must keep the bytes, not a re-serialisation.
    let payload = r#"{"z": 1,  "a": "é ✓", "amount":"12.50"}"#;
    let appended = request(
        "wallet-a",
        ExpectedVersion::NoStream,
        vec![event("ExpenseRecorded", payload)],
    );
    let expected_metadata = appended.metadata.clone();
    let expected_event_id = appended.events[0].event_id;
    store.append(appended).await.expect("append");

    let events = store
        .read_stream(&stream("wallet-a"), 0)
        .await
        .expect("read");
    assert_eq!(events.len(), 1);
    let stored = &events[0];
    assert_eq!(stored.payload.get(), payload);
    assert_eq!(stored.metadata, expected_metadata);
    assert_eq!(stored.event_id, expected_event_id);
    assert_eq!(stored.event_type, "ExpenseRecorded");
    assert_eq!(stored.schema_version, 1);
    assert_eq!(stored.stream, stream("wallet-a"));
}

pub async fn a_wrong_expected_version_is_a_conflict_and_writes_nothing(store: SqlEventStore) {
    store
        .append(request("wallet-a", ExpectedVersion::NoStream, numbered(2)))
        .await
        .expect("setup");

    let again_new = store
        .append(request("wallet-a", ExpectedVersion::NoStream, numbered(1)))
        .await;
    let stale = store
        .append(request("wallet-a", ExpectedVersion::Exact(1), numbered(1)))
        .await;
    let ahead = store
        .append(request("wallet-a", ExpectedVersion::Exact(5), numbered(3)))
        .await;
    let missing = store
        .append(request("wallet-z", ExpectedVersion::Exact(1), numbered(1)))
        .await;

    for (result, actual) in [(again_new, 2), (stale, 2), (ahead, 2), (missing, 0)] {
        match result {
            Err(AppendError::Conflict {
                actual: reported, ..
            }) => assert_eq!(reported, actual),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    assert_eq!(
        read_everything(&store).await.len(),
        2,
        "nothing of a refused append is stored"
    );
    let next = store
        .append(request("wallet-a", ExpectedVersion::Exact(2), numbered(1)))
        .await
        .expect("the right version still appends");
    assert_eq!(
        next.first_position,
        Position(3),
        "refused appends leave no gap"
    );
}

pub async fn any_version_appends_whatever_the_stream_holds(store: SqlEventStore) {
    let first = store
        .append(request("log", ExpectedVersion::Any, numbered(1)))
        .await
        .expect("any on a new stream");
    let second = store
        .append(request("log", ExpectedVersion::Any, numbered(2)))
        .await
        .expect("any on an existing stream");
    assert_eq!(first.last_version, 1);
    assert_eq!((second.first_version, second.last_version), (2, 3));
}

pub async fn retrying_a_command_returns_the_original_outcome_and_writes_nothing(
    store: SqlEventStore,
) {
    let original_request = request("wallet-a", ExpectedVersion::NoStream, numbered(2));
    let retry = original_request.clone();
    let original = store.append(original_request).await.expect("first attempt");
    store
        .append(request("wallet-a", ExpectedVersion::Exact(2), numbered(1)))
        .await
        .expect("a later command");

    let replayed = store
        .append(retry.clone())
        .await
        .expect("a retry is not an error");
    let concurrent: Vec<_> =
        futures_util::future::join_all((0..5).map(|_| store.append(retry.clone()))).await;

    assert!(replayed.already_stored);
    assert_eq!(
        (
            replayed.first_version,
            replayed.last_version,
            replayed.first_position,
            replayed.last_position
        ),
        (
            original.first_version,
            original.last_version,
            original.first_position,
            original.last_position
        )
    );
    for result in concurrent {
        assert_eq!(
            result.expect("a concurrent retry").first_position,
            original.first_position
        );
    }
    assert_eq!(
        read_everything(&store).await.len(),
        3,
        "retries store nothing"
    );
}

pub async fn a_retried_command_with_any_version_is_stored_once(store: SqlEventStore) {
    let original = request("log", ExpectedVersion::Any, numbered(2));
    let retry = original.clone();
    let first = store.append(original).await.expect("first attempt");
    let again = store.append(retry).await.expect("the retry");
    assert!(again.already_stored);
    assert_eq!(again.first_position, first.first_position);
    assert_eq!(read_everything(&store).await.len(), 2);
}

pub async fn the_same_command_id_on_another_stream_is_a_new_append(store: SqlEventStore) {
    let first = request("wallet-a", ExpectedVersion::NoStream, numbered(1));
    let mut elsewhere = request("wallet-b", ExpectedVersion::NoStream, numbered(1));
    elsewhere.metadata.command_id = first.metadata.command_id;
    store.append(first).await.expect("first");
    let outcome = store
        .append(elsewhere)
        .await
        .expect("same command, other stream");
    assert!(!outcome.already_stored);
    assert_eq!(read_everything(&store).await.len(), 2);
}

pub async fn an_empty_batch_is_refused(store: SqlEventStore) {
    let result = store
        .append(request("wallet-a", ExpectedVersion::Any, Vec::new()))
        .await;
    assert!(matches!(result, Err(AppendError::EmptyBatch)), "{result:?}");
    assert_eq!(store.head().await.expect("head"), Position::START);
}

pub async fn a_stored_event_id_fails_only_the_append_that_reuses_it(store: SqlEventStore) {
    let first = request("wallet-a", ExpectedVersion::NoStream, numbered(1));
    let reused_id = first.events[0].event_id;
    store.append(first).await.expect("setup");

    // Queued together so that they are likely to share one group commit: the bad one must
    // not take the others down with it.
    let mut reusing = request("wallet-b", ExpectedVersion::NoStream, numbered(2));
    reusing.events[1].event_id = reused_id;
    let innocent: Vec<_> = (0..8)
        .map(|i| {
            request(
                &format!("other-{i}"),
                ExpectedVersion::NoStream,
                numbered(1),
            )
        })
        .collect();
    let (bad, good) = tokio::join!(
        store.append(reusing),
        futures_util::future::join_all(innocent.into_iter().map(|r| store.append(r)))
    );

    assert!(
        matches!(bad, Err(AppendError::DuplicateEventId { event_id }) if event_id == reused_id),
        "{bad:?}"
    );
    assert!(good.iter().all(Result::is_ok), "{good:?}");
    assert!(
        store
            .read_stream(&stream("wallet-b"), 0)
            .await
            .expect("read")
            .is_empty()
    );
    assert_eq!(read_everything(&store).await.len(), 9);
}

pub async fn reading_a_stream_from_a_version_skips_the_earlier_events(store: SqlEventStore) {
    store
        .append(request("wallet-a", ExpectedVersion::NoStream, numbered(5)))
        .await
        .expect("setup");
    store
        .append(request("wallet-b", ExpectedVersion::NoStream, numbered(1)))
        .await
        .expect("setup");

    let tail = store
        .read_stream(&stream("wallet-a"), 4)
        .await
        .expect("read");
    assert_eq!(
        tail.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![4, 5]
    );
    assert!(
        store
            .read_stream(&stream("nobody"), 0)
            .await
            .expect("read")
            .is_empty()
    );
}

pub async fn the_global_log_is_read_in_pages_in_position_order(store: SqlEventStore) {
    for round in 0..5 {
        for name in ["a", "b", "c", "d", "e"] {
            store
                .append(request(name, ExpectedVersion::Exact(round), numbered(1)))
                .await
                .expect("append");
        }
    }
    let first = store.read_all(Position::START, 10).await.expect("page 1");
    let second = store.read_all(Position(10), 10).await.expect("page 2");
    let third = store.read_all(Position(20), 10).await.expect("page 3");
    let past_the_end = store.read_all(Position(25), 10).await.expect("page 4");

    assert_eq!(positions(&first), (1..=10).collect::<Vec<_>>());
    assert_eq!(positions(&second), (11..=20).collect::<Vec<_>>());
    assert_eq!(positions(&third), (21..=25).collect::<Vec<_>>());
    assert!(past_the_end.is_empty());
    assert_eq!(first[0].stream.as_str(), "a");
    assert_eq!(first[5].version, 2);
}

pub async fn racing_appenders_on_one_stream_produce_exactly_one_winner(store: SqlEventStore) {
    store
        .append(request("hot", ExpectedVersion::NoStream, numbered(1)))
        .await
        .expect("setup");
    let store = Arc::new(store);
    let racers: Vec<_> = (0..32)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .append(request("hot", ExpectedVersion::Exact(1), numbered(1)))
                    .await
            })
        })
        .collect();
    let mut winners = 0;
    for racer in racers {
        match racer.await.expect("task") {
            Ok(outcome) => {
                winners += 1;
                assert_eq!(outcome.last_version, 2);
            }
            Err(AppendError::Conflict { actual: 2, .. }) => {}
            Err(other) => panic!("a loser must get a conflict, got {other:?}"),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(read_everything(store.as_ref()).await.len(), 2);
}

pub async fn sixty_four_concurrent_appenders_give_contiguous_positions_and_versions(
    store: SqlEventStore,
) {
    let store = Arc::new(store);
    append_concurrently(&[Arc::clone(&store)], 64, 100).await;

    let all = read_everything(store.as_ref()).await;
    assert_eq!(all.len(), 6_400);
    assert_eq!(
        positions(&all),
        (1..=6_400).collect::<Vec<_>>(),
        "unique, increasing, no gaps"
    );
    let mut versions: HashMap<String, Vec<u64>> = HashMap::new();
    for recorded in &all {
        versions
            .entry(recorded.stream.to_string())
            .or_default()
            .push(recorded.version);
    }
    assert_eq!(versions.len(), 64);
    for (stream, versions) in versions {
        assert_eq!(
            versions,
            (1..=100).collect::<Vec<_>>(),
            "versions of {stream}"
        );
    }
}

pub async fn a_follower_running_during_concurrent_appends_sees_every_event_once_in_order(
    store: SqlEventStore,
) {
    const WRITERS: u64 = 16;
    const EACH: u64 = 50;
    let store = Arc::new(store);
    let follower = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut head = store.watch_head();
            let mut checkpoint = Position::START;
            let mut seen = Vec::new();
            while checkpoint.0 < WRITERS * EACH {
                let page = store.read_all(checkpoint, 37).await.expect("follower read");
                match page.last() {
                    Some(last) => {
                        checkpoint = last.position;
                        seen.extend(page.iter().map(|e| e.position.0));
                    }
                    None => {
                        tokio::time::timeout(Duration::from_secs(10), head.changed())
                            .await
                            .expect("the head watch wakes the follower")
                            .expect("store alive");
                    }
                }
            }
            seen
        })
    };
    append_concurrently(&[Arc::clone(&store)], WRITERS as usize, EACH).await;
    let seen = tokio::time::timeout(Duration::from_secs(30), follower)
        .await
        .expect("the follower catches up")
        .expect("follower task");
    assert_eq!(seen, (1..=WRITERS * EACH).collect::<Vec<_>>());
}

pub async fn the_head_watch_wakes_a_waiting_reader(store: SqlEventStore) {
    let mut head = store.watch_head();
    assert_eq!(*head.borrow_and_update(), Position::START);
    let waiter = tokio::spawn(async move {
        tokio::time::timeout(Duration::from_secs(10), head.changed())
            .await
            .expect("woken within the timeout")
            .expect("store alive");
        *head.borrow()
    });
    store
        .append(request("wallet-a", ExpectedVersion::NoStream, numbered(3)))
        .await
        .expect("append");
    assert_eq!(waiter.await.expect("waiter"), Position(3));
}

pub async fn the_schema_refuses_updates_and_deletes_of_events(store: SqlEventStore) {
    store
        .append(request(
            "wallet-a",
            ExpectedVersion::NoStream,
            vec![event("Original", r#"{"amount":"1.00"}"#)],
        ))
        .await
        .expect("setup");
    let tampering = [
        "UPDATE events SET payload = '{\"amount\":\"999.00\"}' WHERE position = 1",
        "UPDATE events SET version = 7",
        "DELETE FROM events WHERE position = 1",
        "DELETE FROM events",
    ];
    for statement in tampering {
        let refused = match store.database() {
            Database::Sqlite(sqlite) => sqlx::query(statement)
                .execute(sqlite.pool())
                .await
                .map(drop),
            Database::Postgres(pool) => sqlx::query(statement).execute(pool).await.map(drop),
        };
        let error = refused.expect_err(statement).to_string();
        assert!(error.contains("append-only"), "{statement}: {error}");
    }
    if let Database::Postgres(pool) = store.database() {
        let truncate = sqlx::query("TRUNCATE events").execute(pool).await;
        assert!(
            truncate
                .expect_err("TRUNCATE")
                .to_string()
                .contains("append-only")
        );
    }
    let events = read_everything(&store).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].payload.get(), r#"{"amount":"1.00"}"#);
}

fn claiming(stream_name: &str, email: &str) -> infrastructure::event_store::AppendRequest {
    let mut append = request(stream_name, ExpectedVersion::NoStream, numbered(1));
    append.claims.push(UniqueClaim::new("email", email));
    append
}

pub async fn a_value_claimed_by_one_stream_refuses_another_stream(store: SqlEventStore) {
    store
        .append(claiming("user-a", "asha@example.com"))
        .await
        .expect("the first claim");
    let second = store.append(claiming("user-b", "asha@example.com")).await;

    match second {
        Err(AppendError::ClaimTaken { scope, owner }) => {
            assert_eq!(scope, "email");
            assert_eq!(owner.as_str(), "user-a");
        }
        other => panic!("expected ClaimTaken, got {other:?}"),
    }
    assert!(
        store
            .read_stream(&stream("user-b"), 0)
            .await
            .expect("read")
            .is_empty()
    );
    store
        .append(claiming("user-c", "ravi@example.com"))
        .await
        .expect("another value is free");
}

pub async fn concurrent_claims_on_one_value_let_exactly_one_through(store: SqlEventStore) {
    let store = Arc::new(store);
    let contenders: Vec<_> = (0..20)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .append(claiming(&format!("user-{i}"), "same@example.com"))
                    .await
            })
        })
        .collect();
    let mut winners = 0;
    for contender in contenders {
        match contender.await.expect("task") {
            Ok(_) => winners += 1,
            Err(AppendError::ClaimTaken { .. }) => {}
            Err(other) => panic!("a loser must be told the value is taken, got {other:?}"),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(read_everything(store.as_ref()).await.len(), 1);
}

pub async fn a_released_value_can_be_claimed_again(store: SqlEventStore) {
    store
        .append(claiming("user-a", "asha@example.com"))
        .await
        .expect("claim");
    let mut release = request("user-a", ExpectedVersion::Exact(1), numbered(1));
    release
        .releases
        .push(UniqueClaim::new("email", "asha@example.com"));
    store.append(release).await.expect("release");

    store
        .append(claiming("user-b", "asha@example.com"))
        .await
        .expect("the released value is free again");
}

pub async fn a_stream_may_claim_what_it_already_owns(store: SqlEventStore) {
    store
        .append(claiming("user-a", "asha@example.com"))
        .await
        .expect("claim");
    let mut again = request("user-a", ExpectedVersion::Exact(1), numbered(1));
    again
        .claims
        .push(UniqueClaim::new("email", "asha@example.com"));
    store
        .append(again)
        .await
        .expect("claiming one's own value again");
}

pub async fn claims_keep_no_readable_value(store: SqlEventStore) {
    store
        .append(claiming("user-a", "asha@example.com"))
        .await
        .expect("claim");
    let stored: Vec<String> = match store.database() {
        Database::Sqlite(sqlite) => sqlx::query_scalar("SELECT scope || ' ' || stream_id || ' ' || lower(hex(value_hash)) FROM unique_claims")
            .fetch_all(sqlite.pool())
            .await,
        Database::Postgres(pool) => sqlx::query_scalar("SELECT scope || ' ' || stream_id || ' ' || encode(value_hash, 'hex') FROM unique_claims")
            .fetch_all(pool)
            .await,
    }
    .expect("reading claims");
    assert_eq!(stored.len(), 1);
    let plain_hex: String = "asha@example.com"
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        !stored[0].contains("asha") && !stored[0].contains(&plain_hex),
        "{:?}",
        stored[0]
    );
    assert_eq!(
        stored[0].split(' ').nth(2).map(str::len),
        Some(64),
        "a SHA-256 digest"
    );
}
