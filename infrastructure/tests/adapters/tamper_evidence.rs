//! Tamper evidence on both databases: an attacker with database access drops the triggers
//! that keep events append-only and then alters, inserts or removes rows; `verify` must name
//! the exact position (ADR 0018).

use std::sync::Arc;

use chrono::Utc;
use infrastructure::database::Database;
use infrastructure::event_store::{
    EventStore, ExpectedVersion, GroupCommitSettings, SqlEventStore,
};
use infrastructure::tamper_evidence::{self, Seal, Verification};

use crate::support::{append_concurrently, event, numbered, request};

/// Runs raw SQL on whichever database the store uses, as an attacker with a SQL prompt.
async fn attack(store: &SqlEventStore, statement: &str) {
    let done = match store.database() {
        Database::Sqlite(sqlite) => sqlx::raw_sql(statement)
            .execute(sqlite.pool())
            .await
            .map(drop),
        Database::Postgres(pool) => sqlx::raw_sql(statement).execute(pool).await.map(drop),
    };
    done.unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// What an attacker does first: the triggers refuse every change.
async fn drop_the_guards(store: &SqlEventStore) {
    let statement = match store.database() {
        Database::Sqlite(_) => {
            "DROP TRIGGER events_are_never_updated; DROP TRIGGER events_are_never_deleted; \
             DROP TRIGGER events_chain_is_written_once; DROP TRIGGER seals_are_never_deleted;"
        }
        Database::Postgres(_) => {
            "ALTER TABLE events DISABLE TRIGGER USER; ALTER TABLE seals DISABLE TRIGGER USER;"
        }
    };
    attack(store, statement).await;
}

async fn verify(store: &SqlEventStore, outside: &[Seal]) -> Verification {
    tamper_evidence::verify(store.database(), outside, |_| {})
        .await
        .expect("verify runs")
}

/// Ten events over three streams: positions 1..=10, position 4 in `wallet-b`.
async fn ten_events(store: &SqlEventStore) {
    for (name, count) in [("wallet-a", 3), ("wallet-b", 4), ("wallet-c", 3)] {
        store
            .append(request(name, ExpectedVersion::NoStream, numbered(count)))
            .await
            .expect("append");
    }
}

#[track_caller]
fn assert_bad_at(report: &Verification, position: u64, stream: Option<&str>) {
    assert!(!report.ok, "{report:?}");
    assert_eq!(report.first_bad_position, Some(position), "{report:?}");
    assert_eq!(report.first_bad_stream.as_deref(), stream, "{report:?}");
}

pub async fn an_untouched_log_verifies_and_its_seal_matches(store: SqlEventStore) {
    // Many concurrent appends: group commit links whole batches at once.
    append_concurrently(&[Arc::new(store.clone())], 16, 10).await;
    let sealed = tamper_evidence::seal(store.database(), Utc::now())
        .await
        .expect("seal")
        .expect("a head to seal");
    assert_eq!(sealed.position, 160);
    assert_eq!(stored_seal(&store).await, sealed);
    ten_events(&store).await;

    let report = verify(&store, &[]).await;

    assert!(report.ok, "{report:?}");
    assert_eq!((report.checked, report.seals_checked), (170, 1));
    assert_eq!(report.first_bad_position, None);
}

/// The newest seal, as the table has it.
async fn stored_seal(store: &SqlEventStore) -> Seal {
    let seals = tamper_evidence::stored_seals(store.database())
        .await
        .expect("seals");
    seals.last().expect("a seal").0
}

pub async fn an_altered_event_is_named_by_its_position_and_stream(store: SqlEventStore) {
    ten_events(&store).await;
    drop_the_guards(&store).await;
    attack(
        &store,
        "UPDATE events SET payload = '{\"n\":999}' WHERE position = 4",
    )
    .await;

    assert_bad_at(&verify(&store, &[]).await, 4, Some("wallet-b"));
}

pub async fn an_event_inserted_behind_the_application_is_named(store: SqlEventStore) {
    ten_events(&store).await;
    drop_the_guards(&store).await;
    // A plausible copy of the last event, carrying the last chain value.
    attack(
        &store,
        "INSERT INTO events (position, stream_id, version, event_id, event_type, schema_version, \
         command_id, recorded_at_us, payload, metadata, chain) \
         SELECT 11, stream_id, 4, command_id, event_type, schema_version, command_id, \
                recorded_at_us, payload, metadata, chain FROM events WHERE position = 10",
    )
    .await;

    assert_bad_at(&verify(&store, &[]).await, 11, Some("wallet-c"));
}

pub async fn a_removed_event_is_named_by_its_position(store: SqlEventStore) {
    ten_events(&store).await;
    drop_the_guards(&store).await;
    attack(&store, "DELETE FROM events WHERE position = 6").await;

    let report = verify(&store, &[]).await;
    assert_bad_at(&report, 6, None);
    assert_eq!(report.checked, 5);
}

pub async fn removing_the_newest_events_is_caught_against_the_last_seal(store: SqlEventStore) {
    ten_events(&store).await;
    let seal = tamper_evidence::seal(store.database(), Utc::now())
        .await
        .expect("seal")
        .expect("a head to seal");
    assert_eq!(seal.position, 10);
    drop_the_guards(&store).await;
    attack(&store, "DELETE FROM events WHERE position > 8").await;

    assert_bad_at(&verify(&store, &[]).await, 9, None);

    // Removing the seal from the database too is caught by the copy kept outside it.
    attack(&store, "DELETE FROM seals").await;
    assert!(verify(&store, &[]).await.ok);
    assert_bad_at(&verify(&store, &[seal]).await, 9, None);
}

pub async fn a_rewritten_chain_is_caught_by_a_seal_kept_outside(store: SqlEventStore) {
    ten_events(&store).await;
    let outside: Seal = tamper_evidence::seal(store.database(), Utc::now())
        .await
        .expect("seal")
        .expect("a head")
        .to_string()
        .parse()
        .expect("a printed seal reads back");
    drop_the_guards(&store).await;
    // The careful attacker alters an event and recomputes every chain value after it.
    attack(
        &store,
        "UPDATE events SET payload = '{\"n\":999}' WHERE position = 4; \
         UPDATE events SET chain = NULL; DELETE FROM seals;",
    )
    .await;
    tamper_evidence::chain_earlier_events(store.database())
        .await
        .expect("rechained");
    assert!(verify(&store, &[]).await.ok, "a full rewrite needs a seal");

    let report = verify(&store, &[outside]).await;
    assert_bad_at(&report, 10, Some("wallet-c"));
    assert!(report.problem.as_deref().unwrap_or("").contains("seal"));
}

pub async fn events_stored_before_the_chain_are_chained_once_at_start(store: SqlEventStore) {
    ten_events(&store).await;
    // The log as an earlier release left it: no chain values at all.
    drop_the_guards(&store).await;
    attack(&store, "UPDATE events SET chain = NULL").await;
    let database = store.database().clone();
    drop(store);

    let reopened = SqlEventStore::open(database.clone(), GroupCommitSettings::default())
        .await
        .expect("reopened");
    reopened
        .append(request(
            "wallet-d",
            ExpectedVersion::NoStream,
            vec![event("Later", "{}")],
        ))
        .await
        .expect("append after the upgrade");
    let report = verify(&reopened, &[]).await;
    assert!(report.ok, "{report:?}");
    assert_eq!(report.checked, 11);

    // Once the chain has started, a row without a chain value is damage, not history: a
    // restart does not paper over it.
    attack(
        &reopened,
        "UPDATE events SET chain = NULL WHERE position = 7",
    )
    .await;
    drop(reopened);
    let again = SqlEventStore::open(database, GroupCommitSettings::default())
        .await
        .expect("reopened");
    assert_bad_at(&verify(&again, &[]).await, 7, Some("wallet-b"));
}

pub async fn a_chain_value_cannot_be_changed_through_the_application_role(store: SqlEventStore) {
    ten_events(&store).await;
    let refused = match store.database() {
        Database::Sqlite(sqlite) => {
            sqlx::query("UPDATE events SET chain = NULL WHERE position = 1")
                .execute(sqlite.pool())
                .await
                .map(drop)
        }
        Database::Postgres(pool) => {
            sqlx::query("UPDATE events SET chain = NULL WHERE position = 1")
                .execute(pool)
                .await
                .map(drop)
        }
    };
    let error = refused
        .expect_err("a chain value is written once")
        .to_string();
    assert!(error.contains("append-only"), "{error}");
    assert_eq!(store.head().await.expect("head").0, 10);
}
