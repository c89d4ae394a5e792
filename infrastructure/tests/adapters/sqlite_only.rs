//! What only SQLite needs shown: its committer remembers the log instead of reading it
//! before every batch, so a second writer on the same file (an admin command run beside the
//! server) must never make it lose, double or misnumber an event. And its log is synced
//! after each commit rather than inside it (ADR 0028): what could not be synced is never
//! answered as written. And its log is copied back beside the writers, yet still starts
//! again from its beginning under a steady load instead of growing without end.

use infrastructure::database::{Database, SqliteDatabase};
use infrastructure::event_store::{
    AppendError, EventStore, ExpectedVersion, GroupCommitSettings, Position, SqlEventStore,
};
use infrastructure::testing::{ReaderInTheLog, TestDatabase};

use crate::support::{numbered, open, positions, read_everything, request, stream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_on_the_same_file_never_misleads_the_first() {
    let database = TestDatabase::sqlite();
    let server = open(&database).await;
    let admin_command = open(&database).await;

    server
        .append(request("wallet-a", ExpectedVersion::NoStream, numbered(1)))
        .await
        .expect("the server appends");
    // Behind the server's back: the stream grows and the head moves.
    admin_command
        .append(request("wallet-a", ExpectedVersion::Exact(1), numbered(1)))
        .await
        .expect("the other writer appends to the same stream");
    admin_command
        .append(request("users", ExpectedVersion::NoStream, numbered(2)))
        .await
        .expect("the other writer appends elsewhere");

    let stale = server
        .append(request("wallet-a", ExpectedVersion::Exact(1), numbered(1)))
        .await;
    assert!(
        matches!(stale, Err(AppendError::Conflict { actual: 2, .. })),
        "the server learns the real version: {stale:?}"
    );
    let current = server
        .append(request("wallet-a", ExpectedVersion::Exact(2), numbered(1)))
        .await
        .expect("the right version appends although the server remembered 1");
    assert_eq!(
        (current.last_version, current.first_position),
        (3, Position(5))
    );
    let elsewhere = server
        .append(request("wallet-b", ExpectedVersion::NoStream, numbered(1)))
        .await
        .expect("a new stream gets the next free position");
    assert_eq!(elsewhere.first_position, Position(6));

    let all = read_everything(&server).await;
    assert_eq!(positions(&all), (1..=6).collect::<Vec<_>>());
    let versions: Vec<u64> = server
        .read_stream(&stream("wallet-a"), 0)
        .await
        .expect("read")
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(versions, vec![1, 2, 3]);
}

/// A batch that a unique constraint refuses ends its own transaction (`INSERT OR
/// ROLLBACK`): the committer keeps its one writing connection, and the statements prepared
/// on it, instead of closing it and opening another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_batch_keeps_the_writing_connection() {
    let test_database = TestDatabase::sqlite();
    let database = test_database.connect().await;
    let Database::Sqlite(sqlite) = &database else {
        unreachable!("a SQLite test database")
    };
    let store = SqlEventStore::open(database.clone(), GroupCommitSettings::default())
        .await
        .expect("the store opens");
    // A temporary table lives exactly as long as the connection that made it.
    sqlx::query("CREATE TEMP TABLE made_by_this_connection (x INTEGER)")
        .execute(sqlite.writer())
        .await
        .expect("a temporary table on the writing connection");

    let first = request("wallet-a", ExpectedVersion::NoStream, numbered(1));
    let stored_id = first.events[0].event_id;
    store.append(first).await.expect("the first append");
    let mut reusing = request("wallet-b", ExpectedVersion::NoStream, numbered(1));
    reusing.events[0].event_id = stored_id;
    let refused = store.append(reusing).await;
    assert!(
        matches!(refused, Err(AppendError::DuplicateEventId { .. })),
        "{refused:?}"
    );
    store
        .append(request("wallet-c", ExpectedVersion::NoStream, numbered(1)))
        .await
        .expect("an append after the refused one");

    sqlx::query("SELECT COUNT(*) FROM temp.made_by_this_connection")
        .execute(sqlite.writer())
        .await
        .expect("still the connection that made the temporary table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_log_could_not_be_synced_nothing_is_answered_as_written() {
    let test_database = TestDatabase::sqlite();
    let database = test_database.connect().await;
    let store = SqlEventStore::open(database.clone(), GroupCommitSettings::default())
        .await
        .expect("the store opens");
    let first = store
        .append(request("wallet-a", ExpectedVersion::NoStream, numbered(1)))
        .await
        .expect("an append while the log can be synced");
    database.check_ready().await.expect("ready");

    // The log's file disappears under the store: SQLite goes on writing to the file it
    // holds open, but it can no longer be synced where the database will look for it.
    std::fs::remove_file(test_database.sqlite_log()).expect("the log removed");
    let unsynced = store
        .append(request("wallet-a", ExpectedVersion::Exact(1), numbered(1)))
        .await;
    assert!(
        matches!(&unsynced, Err(AppendError::Store(e)) if e.to_string().contains("synced")),
        "{unsynced:?}"
    );
    let later = store
        .append(request("wallet-b", ExpectedVersion::NoStream, numbered(1)))
        .await;
    assert!(
        matches!(&later, Err(AppendError::Store(e)) if e.to_string().contains("restarts")),
        "nothing more is written once a sync failed: {later:?}"
    );
    assert_eq!(
        *store.watch_head().borrow(),
        first.last_position,
        "no one hears of what was not synced"
    );
    assert_eq!(
        store.acknowledged_head().await.expect("acknowledged"),
        first.last_position
    );
    let not_ready = database.check_ready().await;
    assert!(
        matches!(&not_ready, Err(e) if e.to_string().contains("restart")),
        "{not_ready:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_database_copies_the_log_back_and_removes_it() {
    let test_database = TestDatabase::sqlite();
    let database = test_database.connect().await;
    let store = SqlEventStore::open(database.clone(), GroupCommitSettings::default())
        .await
        .expect("the store opens");
    store
        .append(request("wallet-a", ExpectedVersion::NoStream, numbered(3)))
        .await
        .expect("appended");
    assert!(test_database.sqlite_log().exists(), "the log while open");
    assert!(
        test_database.read_models_log().exists(),
        "the read models' log while open"
    );
    database.close().await;
    assert!(
        !test_database.sqlite_log().exists(),
        "a clean close leaves no log behind"
    );
    assert!(
        !test_database.read_models_log().exists(),
        "nor one of the read models' file"
    );
    drop(store);

    let reopened = open(&test_database).await;
    assert_eq!(read_everything(&reopened).await.len(), 3);
}

/// Opening runs the migrations, whose connection is given back to its pool by a task of its
/// own: sqlx's `Pool::close` could return while that connection sat idle in the closed
/// pool, still open, so that the log stayed. And the checkpointer's first pass, cut short
/// while its connection opened, left that connection to be opened and closed later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_at_once_after_opening_still_removes_the_log() {
    for attempt in 0..20 {
        let test_database = TestDatabase::sqlite();
        let database = test_database.connect().await;
        assert!(test_database.sqlite_log().exists(), "the log while open");
        database.close().await;
        assert!(
            !test_database.sqlite_log().exists(),
            "attempt {attempt}: a clean close leaves no log behind"
        );
        assert!(
            !test_database.read_models_log().exists(),
            "attempt {attempt}: nor one of the read models' file"
        );
    }
}

/// The checkpointer holds the writers' turn while it waits for readers to leave the log, so
/// a reader that stays must not keep it there: the pass gives up, the writers write again,
/// and a later pass restarts the log once the reader has gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stays_in_the_log_delays_its_restart_but_never_the_writers() {
    let test_database = TestDatabase::sqlite();
    let Database::Sqlite(sqlite) = test_database.connect().await else {
        unreachable!("a SQLite test database")
    };
    let write = |rows: u32| {
        let writer = sqlite.writer().clone();
        async move {
            // A page of log per row: 20,000 rows are more than the 64 MiB at which it restarts.
            sqlx::query(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
                 INSERT INTO scratch (body) SELECT randomblob(4000) FROM n",
            )
            .bind(rows)
            .execute(&writer)
            .await
            .expect("a write");
        }
    };
    create_scratch_table(&sqlite).await;
    write(1).await;
    let reader = ReaderInTheLog::enter(&sqlite, "scratch").await;
    write(20_000).await;

    // A pass that never gave up on the reader would hang here, holding the writers' turn.
    let held = tokio::time::timeout(std::time::Duration::from_secs(10), sqlite.copy_log_back())
        .await
        .expect("the pass gives up on the reader")
        .expect("a checkpoint pass");
    assert!(
        held.pages_in_log > 16_384 && !held.restarted,
        "a reader in the log keeps it from restarting: {held:?}"
    );
    write(1).await;

    reader.leave().await;
    let freed = sqlite.copy_log_back().await.expect("a checkpoint pass");
    assert!(
        freed.restarted,
        "the reader gone, the log restarts: {freed:?}"
    );
    write(1).await;
    let after = sqlite.copy_log_back().await.expect("a checkpoint pass");
    assert!(
        after.pages_in_log < 100,
        "the next write started the log again: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_starts_again_while_writes_and_reads_never_pause() {
    let test_database = TestDatabase::sqlite();
    let Database::Sqlite(sqlite) = test_database.connect().await else {
        unreachable!("a SQLite test database")
    };
    create_scratch_table(&sqlite).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A page (4 KiB) or more of log per commit, one commit after the other, as under load.
    let writes = tokio::spawn({
        let (writer, stop) = (sqlite.writer().clone(), stop.clone());
        async move {
            let mut rows = 0_u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && rows < 40_000 {
                sqlx::query("INSERT INTO scratch (body) VALUES (randomblob(4000))")
                    .execute(&writer)
                    .await
                    .expect("a write");
                rows += 1;
            }
            rows
        }
    });
    let reads = tokio::spawn({
        let (pool, stop) = (sqlite.pool().clone(), stop.clone());
        async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // The newest row: a read in the log that stays short as the table grows
                // (counting every row took long enough for the restarts to keep missing).
                let _: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM scratch")
                    .fetch_one(&pool)
                    .await
                    .expect("a read");
            }
        }
    });

    // Until a pass finds the log shorter than a pass before it that restarted it: the next
    // write did start it again from its beginning.
    let (mut passes, mut largest, mut restarted_at) = (0, 0, None::<i64>);
    let mut started_again = false;
    while !writes.is_finished() && !started_again {
        let pass = sqlite.copy_log_back().await.expect("a checkpoint pass");
        passes += 1;
        largest = largest.max(pass.pages_in_log);
        started_again = restarted_at.is_some_and(|pages| pass.pages_in_log < pages);
        if pass.restarted {
            restarted_at = restarted_at.max(Some(pass.pages_in_log));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writes.await.expect("the writer");
    reads.await.expect("the reader");

    assert!(
        started_again,
        "{written} writes, {passes} passes: the log reached {largest} pages and never started again"
    );
}

/// A table of the test's own to fill with writes, as large as the log needs.
async fn create_scratch_table(sqlite: &SqliteDatabase) {
    sqlx::query("CREATE TABLE scratch (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        .execute(sqlite.writer())
        .await
        .expect("a table to fill");
}
