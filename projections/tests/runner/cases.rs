use std::sync::Arc;

use infrastructure::database::Database;
use infrastructure::event_store::{NewEvent, Position};
use projections::sql::{WriteTx, fetch_all};
use projections::{Batch, ProjectionRunner};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::{
    append, balances_from_the_log, dump, projected_balances, store_on, write_random_history,
};

fn wallets() -> Arc<dyn projections::Projection> {
    Arc::new(projections::wallets::WalletsProjection::default())
}

/// A runner of the `wallets` projection alone, whose mechanics these tests follow.
async fn runner(database: &Database, batch: u32) -> ProjectionRunner {
    ProjectionRunner::new(
        store_on(database).await,
        database.clone(),
        vec![wallets()],
        batch,
    )
    .await
    .expect("runner")
}

/// Brings the `wallets` projection up to date with the log.
async fn catch_up_wallets(database: &Database) {
    runner(database, 7)
        .await
        .catch_up()
        .await
        .expect("caught up");
}

pub async fn a_batch_moves_the_checkpoint_and_an_empty_log_is_caught_up(database: Database) {
    let store = store_on(&database).await;
    let runner = runner(&database, 4).await;
    assert_eq!(runner.process_batch().await.expect("step"), Batch::CaughtUp);
    let written = write_random_history(&store, 7, 2, 8).await;
    let mut applied = 0;
    while let Batch::Processed(n) = runner.process_batch().await.expect("step") {
        assert!(n <= 4, "a batch holds at most its size");
        applied += n;
    }
    assert_eq!(applied, written);
    let status = &runner.statuses().await.expect("statuses")[0];
    assert_eq!(status.position, store.head().await.expect("head"));
    assert_eq!(status.failure, None);
    assert_eq!(
        runner.watch().borrow().get("wallets").map(|s| s.position),
        Some(status.position),
        "readers see the progress"
    );
}

pub async fn an_event_that_cannot_be_applied_stops_the_projection_just_before_it(
    database: Database,
) {
    let store = store_on(&database).await;
    let owner = Uuid::new_v4();
    write_random_history(&store, 1, 1, 0).await;
    // A wallet event whose payload the code cannot read, between two good ones.
    let good = |n: u64| write_random_history(&store, n, 1, 3);
    good(2).await;
    let bad = NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "ExpenseRecorded".into(),
        schema_version: 1,
        payload: RawValue::from_string(r#"{"amount":"not money"}"#.into()).expect("json"),
    };
    append(&store, owner, 0, vec![bad]).await;
    let bad_position = store.head().await.expect("head");
    good(3).await;

    let runner = runner(&database, 1_000).await;
    runner
        .catch_up()
        .await
        .expect("the runner itself does not fail");
    let status = &runner.statuses().await.expect("statuses")[0];
    let (at, error) = status.failure.clone().expect("stopped");
    assert_eq!(at, bad_position);
    assert!(
        error.contains("ExpenseRecorded") && error.contains("not money"),
        "{error}"
    );
    assert_eq!(
        status.position,
        Position(bad_position.0 - 1),
        "everything before it applied"
    );
    let wallets: Vec<(i64,)> = fetch_all(&database, "SELECT COUNT(*) FROM rm_wallets", &[])
        .await
        .expect("count");
    assert_eq!(
        wallets[0].0, 2,
        "the two wallets opened before it are there"
    );
    assert_eq!(
        runner.process_batch().await.expect("step"),
        Batch::CaughtUp,
        "a failed projection waits"
    );
}

pub async fn incremental_projection_equals_projection_from_zero(database: Database) {
    let store = store_on(&database).await;
    // Projected a few events at a time while the history is written...
    let runner = runner(&database, 7).await;
    for round in 0..5 {
        write_random_history(&store, 100 + round, 3, 60).await;
        runner.catch_up().await.expect("projected");
    }
    let incremental = dump(&database).await;
    assert_eq!(
        projected_balances(&database).await,
        balances_from_the_log(&store).await
    );

    // ...and again from nothing in big batches.
    forget_the_wallets(&database).await;
    let from_zero = runner_with_batch(&database, 1_000).await;
    from_zero.catch_up().await.expect("projected");
    assert_eq!(dump(&database).await, incremental);
}

/// Empties the `wallets` read model and moves its checkpoint back to the start.
async fn forget_the_wallets(database: &Database) {
    let mut tx = WriteTx::begin(database).await.expect("tx");
    for table in projections::wallets::TABLES {
        tx.execute(&format!("DELETE FROM {table}"), &[])
            .await
            .expect("cleared");
    }
    tx.execute("UPDATE projection_checkpoints SET position = 0", &[])
        .await
        .expect("reset");
    tx.commit().await.expect("commit");
}

pub async fn pages_prepared_ahead_write_what_applying_them_would(database: Database) {
    let store = store_on(&database).await;
    write_random_history(&store, 300, 3, 80).await;
    let runner = runner(&database, 25).await;
    runner.catch_up().await.expect("projected");
    let applied = dump(&database).await;

    // The same log, each page's writes prepared before its transaction, as a rebuild
    // does it. Each page is also offered again with the page after it, as a page read
    // ahead may be: only the events after where the projection stands are written then.
    forget_the_wallets(&database).await;
    let preparer = runner.preparer();
    let mut after = Position::START;
    loop {
        let events = store.read_all(after, 50).await.expect("read");
        let Some(last) = events.last().map(|event| event.position) else {
            break;
        };
        let facts: Vec<_> = events.iter().map(projections::facts::decode).collect();
        let first_half = &facts[..facts.len().div_ceil(2)];
        let writes = preparer.prepare(first_half);
        assert_eq!(format!("{writes:?}"), r#"["wallets"]"#, "wallets prepares");
        runner
            .apply_prepared_page(after, first_half, writes)
            .await
            .expect("written");
        runner
            .apply_prepared_page(after, &facts, preparer.prepare(&facts))
            .await
            .expect("the rest written");
        after = last;
    }
    assert_eq!(dump(&database).await, applied);
    assert_eq!(
        projected_balances(&database).await,
        balances_from_the_log(&store).await
    );
}

/// A read model of how each batch was written: the `synchronous_commit` setting of its
/// transaction, and whether its writes were prepared ahead or applied.
#[derive(Debug)]
struct CommitSettings {
    table: String,
}

impl CommitSettings {
    async fn record(
        table: &str,
        tx: &mut WriteTx,
        how: &str,
    ) -> Result<(), projections::ApplyError> {
        tx.execute(
            &format!("INSERT INTO {table} SELECT current_setting('synchronous_commit'), $1"),
            &[how.into()],
        )
        .await?;
        Ok(())
    }
}

/// A batch of [`CommitSettings`] prepared ahead.
struct PreparedRecord {
    table: String,
}

#[async_trait::async_trait]
impl projections::projection::PreparedWrites for PreparedRecord {
    async fn write(self: Box<Self>, tx: &mut WriteTx) -> Result<(), projections::ApplyError> {
        CommitSettings::record(&self.table, tx, "prepared").await
    }
}

#[async_trait::async_trait]
impl projections::Projection for CommitSettings {
    fn name(&self) -> &str {
        &self.table
    }

    fn tables(&self) -> Vec<String> {
        vec![self.table.clone()]
    }

    fn rows(&self) -> Vec<projections::projection::TableRows> {
        vec![projections::projection::TableRows {
            table: self.table.clone(),
            columns: &["setting", "how"],
        }]
    }

    fn twin(&self, suffix: &str) -> Arc<dyn projections::Projection> {
        Arc::new(Self {
            table: format!("{}{suffix}", self.table),
        })
    }

    fn version(&self) -> i64 {
        1
    }

    async fn apply(
        &self,
        tx: &mut WriteTx,
        _: &[&projections::facts::Fact],
    ) -> Result<(), projections::ApplyError> {
        Self::record(&self.table, tx, "applied").await
    }

    fn prepare(
        &self,
        _: &[&projections::facts::Fact],
        _: bool,
    ) -> projections::projection::Prepared {
        Some(Ok(Box::new(PreparedRecord {
            table: self.table.clone(),
        })))
    }
}

/// PostgreSQL only: SQLite's durability is the connection's, not the transaction's.
pub async fn a_rebuild_writes_its_twins_prepared_and_without_waiting_for_the_disk(
    database: Database,
) {
    let store = store_on(&database).await;
    write_random_history(&store, 9, 1, 20).await;
    let mut tx = WriteTx::begin(&database).await.expect("tx");
    tx.execute(
        "CREATE TABLE rm_commit_settings (setting TEXT, how TEXT)",
        &[],
    )
    .await
    .expect("table");
    tx.commit().await.expect("commit");
    let live: Arc<dyn projections::Projection> = Arc::new(CommitSettings {
        table: "rm_commit_settings".into(),
    });
    ProjectionRunner::new(
        store_on(&database).await,
        database.clone(),
        vec![Arc::clone(&live)],
        5,
    )
    .await
    .expect("runner")
    .catch_up()
    .await
    .expect("projected");
    let settings = || async {
        fetch_all::<(String,)>(
            &database,
            "SELECT DISTINCT setting FROM rm_commit_settings",
            &[],
        )
        .await
        .expect("settings")
    };
    let ways = || async {
        fetch_all::<(String,)>(
            &database,
            "SELECT DISTINCT how FROM rm_commit_settings",
            &[],
        )
        .await
        .expect("ways")
    };
    assert_eq!(
        settings().await,
        [("on".to_owned(),)],
        "the live read model waits"
    );
    assert_eq!(
        ways().await,
        [("prepared".to_owned(),)],
        "the live runner prepares a page's writes before its transaction too"
    );

    projections::rebuild::rebuild(
        store_on(&database).await,
        database.clone(),
        live,
        &mut |_| {},
    )
    .await
    .expect("rebuilt");
    // A crash before the swap loses only the rebuild; the swap's own commit waits.
    assert_eq!(settings().await, [("off".to_owned(),)], "the twin did not");
    assert_eq!(
        ways().await,
        [("prepared".to_owned(),)],
        "the rebuild wrote what was prepared ahead"
    );
}

async fn runner_with_batch(database: &Database, batch: u32) -> ProjectionRunner {
    runner(database, batch).await
}

pub async fn concurrent_runners_and_writers_skip_nothing_and_apply_nothing_twice(
    database: Database,
) {
    let store = store_on(&database).await;
    let runners: Vec<Arc<ProjectionRunner>> = vec![
        Arc::new(runner(&database, 5).await),
        Arc::new(runner(&database, 11).await),
    ];
    let writers: Vec<_> = (0..4)
        .map(|seed| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { write_random_history(&store, 1_000 + seed, 2, 40).await })
        })
        .collect();
    let projecting: Vec<_> = runners
        .iter()
        .map(|runner| {
            let runner = Arc::clone(runner);
            tokio::spawn(async move {
                for _ in 0..200 {
                    runner.process_batch().await.expect("step");
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    for projector in projecting {
        projector.await.expect("runner");
    }
    runners[0].catch_up().await.expect("caught up");
    let status = &runners[1].statuses().await.expect("statuses")[0];
    assert_eq!(status.position, store.head().await.expect("head"));
    assert_eq!(
        projected_balances(&database).await,
        balances_from_the_log(&store).await
    );
    let expenses: Vec<(i64,)> = fetch_all(&database, "SELECT COUNT(*) FROM rm_expenses", &[])
        .await
        .expect("count");
    let recorded: Vec<(i64,)> = fetch_all(
        &database,
        "SELECT COUNT(*) FROM events WHERE event_type = 'ExpenseRecorded'",
        &[],
    )
    .await
    .expect("count");
    assert_eq!(expenses[0].0, recorded[0].0, "every expense once");
}

async fn rebuild_now(database: &Database) -> projections::rebuild::RebuildReport {
    let live = wallets();
    let mut heard = 0;
    let report = projections::rebuild::rebuild(
        store_on(database).await,
        database.clone(),
        live,
        &mut |_| heard += 1,
    )
    .await
    .expect("rebuilt");
    assert!(heard > 0, "progress is reported");
    report
}

/// How many indexes each read-model table of `wallets` has, keys included.
async fn index_counts(database: &Database) -> Vec<(String, i64)> {
    let sql = match database {
        Database::Sqlite(_) => {
            "SELECT tbl_name, COUNT(*) FROM read_models.sqlite_master WHERE type = 'index' \
             AND tbl_name LIKE 'rm_%' GROUP BY tbl_name ORDER BY tbl_name"
        }
        Database::Postgres(_) => {
            "SELECT tablename::TEXT, COUNT(*) FROM pg_indexes \
             WHERE schemaname = current_schema() AND tablename LIKE 'rm_%' \
             GROUP BY tablename ORDER BY tablename"
        }
    };
    fetch_all(database, sql, &[]).await.expect("indexes")
}

pub async fn a_rebuild_reports_what_it_repaired_and_matches_the_log(database: Database) {
    let store = store_on(&database).await;
    write_random_history(&store, 40, 4, 150).await;
    let live = runner(&database, 50).await;
    live.catch_up().await.expect("projected");
    let before = dump(&database).await;
    let indexes = index_counts(&database).await;

    let clean = rebuild_now(&database).await;
    assert!(clean.differences().is_empty(), "{:?}", clean.tables);
    assert_eq!(clean.position, store.head().await.expect("head"));
    assert_eq!(
        dump(&database).await,
        before,
        "a rebuild of a sound read model changes nothing"
    );
    assert_eq!(
        index_counts(&database).await,
        indexes,
        "the rebuilt tables have every index the live ones had"
    );

    // Damage the live read model; a rebuild finds it, says so, and repairs it.
    let mut tx = WriteTx::begin(&database).await.expect("tx");
    tx.execute("UPDATE rm_wallets SET balance_milli = 0", &[])
        .await
        .expect("damaged");
    tx.execute("DELETE FROM rm_goals", &[])
        .await
        .expect("damaged");
    tx.commit().await.expect("commit");
    let repaired = rebuild_now(&database).await;
    let differing: Vec<&str> = repaired
        .differences()
        .iter()
        .map(|t| t.table.as_str())
        .collect();
    assert!(differing.contains(&"rm_wallets"), "{differing:?}");
    assert_eq!(dump(&database).await, before);
    assert_eq!(
        projected_balances(&database).await,
        balances_from_the_log(&store).await
    );
    let leftovers: Vec<(i64,)> = fetch_all(
        &database,
        "SELECT COUNT(*) FROM projection_checkpoints",
        &[],
    )
    .await
    .expect("count");
    assert_eq!(leftovers[0].0, 1, "the rebuild's own checkpoint is gone");
}

pub async fn reads_during_a_live_rebuild_never_fail_or_see_half_a_read_model(database: Database) {
    let store = store_on(&database).await;
    write_random_history(&store, 77, 5, 400).await;
    let live = runner(&database, 100).await;
    live.catch_up().await.expect("projected");
    let expected: Vec<(i64,)> = fetch_all(&database, "SELECT COUNT(*) FROM rm_expenses", &[])
        .await
        .expect("count");
    let expected = expected[0].0;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let database = database.clone();
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) || reads == 0 {
                let seen: Vec<(i64,)> =
                    fetch_all(&database, "SELECT COUNT(*) FROM rm_expenses", &[])
                        .await
                        .expect("reads never fail during a rebuild");
                assert_eq!(seen[0].0, expected, "never a half-built read model");
                reads += 1;
                tokio::task::yield_now().await;
            }
            reads
        })
    };
    rebuild_now(&database).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(reader.await.expect("reader") > 0);
}

pub async fn a_rebuild_while_writers_and_the_live_runner_go_on_loses_nothing(database: Database) {
    let store = store_on(&database).await;
    write_random_history(&store, 5, 3, 100).await;
    let live = Arc::new(runner(&database, 20).await);
    live.catch_up().await.expect("projected");
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { write_random_history(&store, 6, 3, 150).await })
    };
    let projecting = {
        let live = Arc::clone(&live);
        tokio::spawn(async move {
            for _ in 0..100 {
                live.process_batch().await.expect("step");
                tokio::task::yield_now().await;
            }
        })
    };
    let report = rebuild_now(&database).await;
    writer.await.expect("writer");
    projecting.await.expect("live runner");
    live.catch_up().await.expect("caught up");
    assert!(report.differences().is_empty(), "{:?}", report.tables);
    assert_eq!(
        projected_balances(&database).await,
        balances_from_the_log(&store).await
    );
}

async fn set_status(database: &Database, status: &str) {
    let mut tx = WriteTx::begin(database).await.expect("tx");
    tx.execute(
        "UPDATE projection_checkpoints SET status = $1 WHERE name = 'wallets'",
        &[status.into()],
    )
    .await
    .expect("status");
    tx.commit().await.expect("commit");
}

pub async fn a_paused_projection_waits_and_a_new_runner_lets_it_go_on(database: Database) {
    let store = store_on(&database).await;
    let runner = runner(&database, 100).await;
    write_random_history(&store, 3, 2, 4).await;
    set_status(&database, "paused").await;
    // Held by a rebuild that compares it: the runner neither moves it nor spins on it.
    assert_eq!(runner.catch_up().await.expect("catch up"), 0);
    let status = &runner.statuses().await.expect("statuses")[0];
    assert!(status.paused);
    assert_eq!(status.position, Position::START);
    // A pause never outlives the process that held it: a new runner resumes the model.
    let restarted = self::runner(&database, 100).await;
    assert!(restarted.catch_up().await.expect("catch up") > 0);
    let status = &restarted.statuses().await.expect("statuses")[0];
    assert!(!status.paused);
    assert_eq!(status.position, store.head().await.expect("head"));
    assert_eq!(
        projected_balances(&database).await,
        balances_from_the_log(&store).await
    );
}

pub async fn a_page_read_ahead_is_never_applied_over_a_gap(database: Database) {
    let store = store_on(&database).await;
    let runner = runner(&database, 100).await;
    write_random_history(&store, 4, 1, 6).await;
    let events = store.read_all(Position(3), 100).await.expect("read");
    let facts: Vec<_> = events.iter().map(projections::facts::decode).collect();
    // The projection stands at 0: the page after 3 would skip events 1..=3, so it is
    // left alone, and the runner then goes on from where the projection stands.
    runner
        .apply_page(Position(3), &facts)
        .await
        .expect("applied");
    let status = &runner.statuses().await.expect("statuses")[0];
    assert_eq!(status.position, Position::START);
    runner.catch_up().await.expect("catch up");
    assert_eq!(
        projected_balances(&database).await,
        balances_from_the_log(&store).await
    );
}

pub async fn of_two_bad_events_in_a_batch_the_projection_stops_before_the_first(
    database: Database,
) {
    let store = store_on(&database).await;
    write_random_history(&store, 5, 2, 6).await;
    // A void of an expense that never was (found only when the batch's voids are written)
    // followed by a payload the code cannot read (found at once): the first is reported.
    let owner = Uuid::new_v4();
    let opened = domain::wallet::WalletEvent::WalletOpened {
        owner: domain::user::UserId(owner),
        currency: domain::money::Currency::parse("INR").expect("known"),
    };
    let void = domain::wallet::WalletEvent::ExpenseVoided {
        expense_id: Uuid::new_v4(),
        reason: domain::wallet::Description::parse("twice").expect("valid"),
    };
    let encode =
        |event| infrastructure::event_codec::encode(&event, Uuid::new_v4()).expect("encoded");
    append(&store, owner, 0, vec![encode(opened), encode(void)]).await;
    let first_bad = store.head().await.expect("head");
    let unreadable = NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "ExpenseRecorded".into(),
        schema_version: 1,
        payload: RawValue::from_string(r#"{"amount":"not money"}"#.into()).expect("json"),
    };
    append(&store, owner, 2, vec![unreadable]).await;

    let runner = runner(&database, 1_000).await;
    runner
        .catch_up()
        .await
        .expect("the runner itself does not fail");
    let status = &runner.statuses().await.expect("statuses")[0];
    let (at, error) = status.failure.clone().expect("stopped");
    assert_eq!(at, first_bad, "{error}");
    assert!(error.contains("no live expense"), "{error}");
    assert_eq!(status.position, Position(first_bad.0 - 1));
}

pub async fn expense_texts_come_back_as_written(database: Database) {
    let store = store_on(&database).await;
    write_random_history(&store, 11, 3, 120).await;
    runner(&database, 1_000)
        .await
        .catch_up()
        .await
        .expect("caught up");
    let stored: Vec<(String,)> = fetch_all(
        &database,
        "SELECT DISTINCT description FROM rm_expenses",
        &[],
    )
    .await
    .expect("descriptions");
    let mut stored: Vec<String> = stored.into_iter().map(|(text,)| text).collect();
    stored.sort();
    assert_eq!(
        stored,
        [
            "C:\\receipts\\N",
            "bought something",
            "two\tcolumns\nand a line"
        ]
    );
}

/// Decides `commands` on a new ticket and appends what it records, one append each.
async fn ticket_history(
    store: &Arc<dyn infrastructure::event_store::EventStore>,
    ticket: Uuid,
    commands: Vec<domain::ticket::TicketCommand>,
) {
    use domain::Aggregate;
    use domain::ticket::Ticket;
    use infrastructure::event_store::{AppendRequest, ExpectedVersion, StreamId};
    let mut state = Ticket::default();
    let mut version = 0;
    for command in commands {
        let events = state.decide(&command).expect("allowed");
        let encoded = events
            .iter()
            .map(|e| infrastructure::event_codec::encode(e, Uuid::new_v4()).expect("encoded"))
            .collect();
        let expected = if version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        };
        store
            .append(AppendRequest::new(
                StreamId::for_aggregate(Ticket::CATEGORY, ticket),
                expected,
                crate::metadata(),
                encoded,
            ))
            .await
            .expect("appended");
        version += events.len() as u64;
        state = events.iter().fold(state, |s, e| s.evolve(e));
    }
}

/// Ticket, status, assignee, spending, comments, resolution.
type TicketRow = (String, String, Option<String>, i64, i64, Option<String>);

pub async fn tickets_show_where_they_stand_and_rebuild_identically(database: Database) {
    use domain::ticket::{Actor, Crossing, TicketCommand, TicketText};
    use domain::user::UserId;
    let store = store_on(&database).await;
    let (customer, agent, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let crossing = Crossing {
        limit: domain::wallet::LimitKey {
            period: domain::wallet::Period::Monthly { first_day: 1 },
            category: Some(domain::wallet::Category::parse("Food").expect("valid")),
        },
        limit_amount: "500".parse().expect("decimal"),
        period_start: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).expect("day"),
        spent: "540.25".parse().expect("decimal"),
        expense_id: Uuid::new_v4(),
        cause: Uuid::new_v4(),
    };
    let open = |crossing: &Crossing| TicketCommand::Open {
        customer: UserId(customer),
        crossing: crossing.clone(),
        assignee: None,
    };
    let text = |t: &str| TicketText::parse(t).expect("valid");
    let (worked, waiting) = (Uuid::new_v4(), Uuid::new_v4());
    ticket_history(
        &store,
        worked,
        vec![
            open(&crossing),
            TicketCommand::Assign {
                assignee: UserId(agent),
                by: Actor::System,
            },
            TicketCommand::Comment {
                author: Actor::Customer(UserId(customer)),
                text: text("Why?\tIt was\na gift."),
            },
            TicketCommand::Assign {
                assignee: UserId(other),
                by: Actor::Admin(UserId(Uuid::new_v4())),
            },
            TicketCommand::Resolve {
                by: Actor::Agent(UserId(other)),
                resolution: text("Explained"),
            },
            TicketCommand::Reopen {
                by: Actor::Customer(UserId(customer)),
                reason: text("Not yet"),
            },
        ],
    )
    .await;
    ticket_history(&store, waiting, vec![open(&crossing)]).await;

    let runner = ProjectionRunner::new(
        store_on(&database).await,
        database.clone(),
        vec![Arc::new(projections::tickets::TicketsProjection::default())],
        2,
    )
    .await
    .expect("runner");
    runner.catch_up().await.expect("caught up");
    let rows: Vec<TicketRow> = fetch_all(
        &database,
        "SELECT ticket_id, status, assignee, spent_milli, comments, resolution FROM rm_tickets \
         ORDER BY opened_at",
        &[],
    )
    .await
    .expect("tickets");
    assert_eq!(
        rows,
        [
            (
                worked.to_string(),
                "assigned".into(),
                Some(other.to_string()),
                540_250,
                1,
                None
            ),
            (
                waiting.to_string(),
                "unassigned".into(),
                None,
                540_250,
                0,
                None
            ),
        ]
    );
    let said: Vec<(String, String)> = fetch_all(
        &database,
        "SELECT author_kind, body FROM rm_ticket_comments",
        &[],
    )
    .await
    .expect("comments");
    assert_eq!(said, [("customer".into(), "Why?\tIt was\na gift.".into())]);

    let report = projections::rebuild::rebuild(
        store_on(&database).await,
        database.clone(),
        Arc::new(projections::tickets::TicketsProjection::default()),
        &mut |_| {},
    )
    .await
    .expect("rebuilt");
    assert!(report.differences().is_empty(), "{:?}", report.tables);
    assert_eq!(report.tables.len(), 2);
}

/// A registration and what follows it in the same batch: registrations are written many
/// rows per statement, and must be written before the changes to them.
pub async fn accounts_changed_in_the_batch_that_registers_them_read_as_in_the_log(
    database: Database,
) {
    use domain::user::{PasswordHash, Registrar, Role, User, UserEvent, UserId};
    use infrastructure::event_store::{AppendRequest, ExpectedVersion, StreamId};
    let store = store_on(&database).await;
    let (staff, customer) = (Uuid::new_v4(), Uuid::new_v4());
    for (user, role, later) in [
        (
            staff,
            Role::Agent,
            vec![UserEvent::UserDeactivated {
                by: UserId(Uuid::new_v4()),
            }],
        ),
        (customer, Role::Customer, vec![]),
    ] {
        let mut events = vec![UserEvent::UserRegistered {
            user_id: UserId(user),
            role,
            profile: None,
            password_hash: PasswordHash::from_phc("$argon2id$x".into()),
            registered_by: Registrar::Operator,
        }];
        events.extend(later);
        let request = AppendRequest::new(
            StreamId::for_aggregate(<User as domain::Aggregate>::CATEGORY, user),
            ExpectedVersion::NoStream,
            crate::metadata(),
            events
                .iter()
                .map(|e| infrastructure::event_codec::encode(e, Uuid::new_v4()).expect("encodes"))
                .collect(),
        );
        store.append(request).await.expect("appended");
    }
    let runner = ProjectionRunner::new(
        store,
        database.clone(),
        vec![Arc::new(projections::users::UsersProjection::default())],
        100,
    )
    .await
    .expect("runner");
    assert!(matches!(
        runner.process_batch().await.expect("batch"),
        Batch::Processed(3)
    ));
    let mut active: Vec<(String, i64)> =
        fetch_all(&database, "SELECT user_id, active FROM rm_users", &[])
            .await
            .expect("users");
    active.sort();
    let mut expected = vec![(staff.to_string(), 0), (customer.to_string(), 1)];
    expected.sort();
    assert_eq!(active, expected);
}

/// A projection of tickets, which a page of wallet events does not concern: it counts the
/// times it is asked to apply a page.
#[derive(Debug, Default)]
struct TicketsOnly {
    applied: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl projections::Projection for TicketsOnly {
    fn name(&self) -> &str {
        "tickets_only"
    }

    fn tables(&self) -> Vec<String> {
        Vec::new()
    }

    fn rows(&self) -> Vec<projections::projection::TableRows> {
        Vec::new()
    }

    fn twin(&self, _: &str) -> Arc<dyn projections::Projection> {
        Arc::new(Self::default())
    }

    fn version(&self) -> i64 {
        1
    }

    fn reads(&self, fact: &projections::facts::Fact) -> bool {
        fact.is_of("ticket")
    }

    async fn apply(
        &self,
        _: &mut WriteTx,
        _: &[&projections::facts::Fact],
    ) -> Result<(), projections::ApplyError> {
        self.applied
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

pub async fn a_page_with_nothing_for_a_projection_only_moves_its_checkpoint(database: Database) {
    let store = store_on(&database).await;
    write_random_history(&store, 5, 3, 6).await;
    let unconcerned = Arc::new(TicketsOnly::default());
    let runner = ProjectionRunner::new(
        store_on(&database).await,
        database.clone(),
        vec![wallets(), unconcerned.clone()],
        7,
    )
    .await
    .expect("runner");
    runner.catch_up().await.expect("caught up");

    assert_eq!(
        unconcerned
            .applied
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "asked to apply wallet events"
    );
    let head = store.head().await.expect("head");
    for status in runner.statuses().await.expect("statuses") {
        assert_eq!(
            (status.position, status.failure),
            (head, None),
            "{}",
            status.name
        );
    }
    assert_eq!(
        projected_balances(&database).await,
        balances_from_the_log(&store).await
    );
}

/// SQLite only: the log and the read models are in two files, each written on one
/// connection of its own that does not wait for the disk (the committer syncs the log
/// itself; the read models are made again from it); everything else waits. A projection's
/// transaction holds the read models' file, never the log's (ADR 0030).
pub async fn the_log_and_the_read_models_are_written_on_a_connection_each_that_does_not_sync(
    database: Database,
) {
    let Database::Sqlite(sqlite) = &database else {
        panic!("SQLite only");
    };
    let pragma = |name: &'static str| {
        let pool = sqlite.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>(&format!("PRAGMA {name}"))
                .fetch_one(&pool)
                .await
                .expect("pragma")
        }
    };
    assert_eq!(pragma("synchronous").await, 2, "FULL for what must survive");
    assert_eq!(
        pragma("temp_store").await,
        2,
        "statement journals in memory"
    );
    assert_eq!(
        pragma("wal_autocheckpoint").await,
        0,
        "checkpoints run beside"
    );
    for schema in ["main", "read_models"] {
        let mode: String = sqlx::query_scalar(&format!("PRAGMA {schema}.journal_mode"))
            .fetch_one(sqlite.pool())
            .await
            .expect("pragma");
        assert_eq!(mode, "wal", "{schema}: readers never wait for the writer");
    }
    for begun in [
        WriteTx::begin(&database).await.expect("tx"),
        WriteTx::begin_beside_the_log(&database).await.expect("tx"),
    ] {
        let mut tx = begun;
        assert_eq!(
            tx.fetch_int("PRAGMA synchronous", &[])
                .await
                .expect("pragma"),
            Some(1),
            "NORMAL on the writing connections"
        );
        tx.commit().await.expect("commit");
    }

    let mut tx = WriteTx::begin(&database).await.expect("tx");
    tx.execute(
        "UPDATE projection_checkpoints SET updated_at_us = updated_at_us",
        &[],
    )
    .await
    .expect("a read-model write");
    assert!(
        sqlite.read_model_writer().try_acquire().is_none(),
        "another writer could go ahead of an open transaction"
    );
    // The log's file is not locked by it: a writer there gets its lock at once (no busy
    // handler on this connection, so a lock held by the read models' transaction would
    // fail it, not delay it).
    let mut beside = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(
        &sqlite
            .connect_options()
            .clone()
            .busy_timeout(std::time::Duration::ZERO),
    )
    .await
    .expect("a connection to the log's file");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut beside)
        .await
        .expect("the log's file takes a writer while the read models are written");
    sqlx::query("ROLLBACK")
        .execute(&mut beside)
        .await
        .expect("rollback");
    sqlx::Connection::close(beside).await.expect("close");
    tx.commit().await.expect("commit");
    // The connection goes back to the pool on a task of its own: waited for, bounded.
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        sqlite.read_model_writer().acquire(),
    )
    .await
    .expect("the next writer's turn comes once the transaction ended")
    .expect("the writer");
}

/// SQLite only: a database from before ADR 0030 has its read models in the main file, and
/// no file beside it. Migrated, it keeps its log, loses those tables (which would otherwise
/// hide the new file's under the same names), and its projections build the new file from
/// the log.
pub async fn a_database_with_its_read_models_inside_rebuilds_them_beside_from_its_log(
    test_database: &infrastructure::testing::TestDatabase,
) {
    let database = test_database.connect().await;
    let store = store_on(&database).await;
    write_random_history(&store, 11, 4, 40).await;
    catch_up_wallets(&database).await;
    let expected = balances_from_the_log(&store).await;
    assert_eq!(projected_balances(&database).await, expected);
    drop(store);
    database.close().await;

    // The layout before: the read models in the main file (one off here, to tell them
    // apart), the last migration not applied, no file beside.
    let [file, _, _] = test_database.sqlite_files();
    let beside = infrastructure::database::read_models_file(&file).expect("a file beside");
    let mut old = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new().filename(&file),
    )
    .await
    .expect("the main file");
    sqlx::query("ATTACH DATABASE $1 AS beside")
        .bind(beside.display().to_string())
        .execute(&mut old)
        .await
        .expect("attached");
    sqlx::raw_sql(
        "CREATE TABLE main.rm_wallets AS SELECT * FROM beside.rm_wallets; \
         UPDATE main.rm_wallets SET balance_milli = balance_milli + 1; \
         CREATE TABLE main.projection_checkpoints AS SELECT * FROM beside.projection_checkpoints; \
         DETACH DATABASE beside; \
         DELETE FROM _sqlx_migrations WHERE version = 20;",
    )
    .execute(&mut old)
    .await
    .expect("the old layout");
    sqlx::Connection::close(old).await.expect("closed");
    std::fs::remove_file(&beside).expect("no read models' file");

    let database = test_database.connect().await;
    let left: Vec<(String,)> = fetch_all(
        &database,
        "SELECT name FROM main.sqlite_master \
         WHERE name LIKE 'rm%' OR name = 'projection_checkpoints'",
        &[],
    )
    .await
    .expect("the main file's tables");
    assert_eq!(
        left,
        Vec::<(String,)>::new(),
        "read models left in the main file"
    );
    assert_eq!(
        projected_balances(&database).await,
        Vec::<String>::new(),
        "the new file starts empty"
    );
    catch_up_wallets(&database).await;
    assert_eq!(projected_balances(&database).await, expected);
    database.close().await;
}

/// SQLite only: at each start, read models made from another log, or ahead of this one,
/// are emptied and made again from this log (ADR 0030), instead of being served as if they
/// were this log's.
pub async fn read_models_not_made_from_this_log_are_made_again_from_it(
    first: &infrastructure::testing::TestDatabase,
    second: &infrastructure::testing::TestDatabase,
) {
    // Two databases of their own; the second's log shorter, so that only its first event
    // tells its read models apart.
    for (test_database, seed, commands) in [(first, 21, 40), (second, 22, 10)] {
        let database = test_database.connect().await;
        let store = store_on(&database).await;
        write_random_history(&store, seed, 3, commands).await;
        catch_up_wallets(&database).await;
        drop(store);
        database.close().await;
    }
    let [file, _, _] = first.sqlite_files();
    let [other, _, _] = second.sqlite_files();
    let read_models_of = |file: &std::path::Path| {
        infrastructure::database::read_models_file(file).expect("a file beside")
    };
    let made_again = async |why: &str| {
        let database = first.connect().await;
        let store = store_on(&database).await;
        assert_eq!(
            projected_balances(&database).await,
            Vec::<String>::new(),
            "{why}: emptied"
        );
        catch_up_wallets(&database).await;
        assert_eq!(
            projected_balances(&database).await,
            balances_from_the_log(&store).await,
            "{why}: made again"
        );
        (database, store)
    };

    std::fs::copy(read_models_of(&other), read_models_of(&file)).expect("copied");
    let (database, store) = made_again("another log's read models").await;
    drop(store);
    database.close().await;

    // A backup of the log; then the log grows, and its read models with it.
    let backup = file.with_extension("backup");
    std::fs::copy(&file, &backup).expect("a backup");
    let database = first.connect().await;
    let store = store_on(&database).await;
    write_random_history(&store, 23, 2, 10).await;
    catch_up_wallets(&database).await;
    drop(store);
    database.close().await;

    std::fs::copy(&backup, &file).expect("the log restored");
    let (database, store) = made_again("read models ahead of the log").await;
    drop(store);
    database.close().await;

    // Read models of this log, behind it or not, are kept.
    let database = first.connect().await;
    assert_ne!(
        projected_balances(&database).await,
        Vec::<String>::new(),
        "this log's read models kept"
    );
    database.close().await;
}

/// PostgreSQL keeps the expense read model's ids as `uuid` and its days as `date`
/// (migration 0021: its index sorts in half the time), and a rebuild's twin, made after the
/// live table, keeps them: the expenses and their voids, written both ways, read the same.
pub async fn the_expense_read_model_keeps_typed_keys_through_a_rebuild(database: Database) {
    let store = store_on(&database).await;
    write_random_history(&store, 21, 4, 120).await;
    catch_up_wallets(&database).await;
    let types = || async {
        fetch_all::<(String, String)>(
            &database,
            "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'rm_expenses' \
             AND column_name IN ('expense_id', 'owner', 'spent_on') ORDER BY column_name",
            &[],
        )
        .await
        .expect("column types")
    };
    let typed = [
        ("expense_id".to_owned(), "uuid".to_owned()),
        ("owner".to_owned(), "uuid".to_owned()),
        ("spent_on".to_owned(), "date".to_owned()),
    ];
    assert_eq!(types().await, typed, "the live table");
    let incremental = dump(&database).await;
    // An expense row is `id|owner|amount|category|day|voided|reason`.
    assert!(
        incremental
            .iter()
            .any(|row| row.split('|').nth(5) == Some("1")),
        "the history voids expenses: {incremental:?}"
    );

    let report = projections::rebuild::rebuild(store, database.clone(), wallets(), &mut |_| {})
        .await
        .expect("rebuilt");
    assert!(report.differences().is_empty(), "{:?}", report.tables);
    assert_eq!(types().await, typed, "the rebuilt table swapped in");
    assert_eq!(dump(&database).await, incremental);
}

/// A rebuild begun by the build before migration 0021 made its expenses twin with text
/// columns; the migration drops it, so it can never be swapped in over the typed table.
pub async fn migration_0021_drops_an_expenses_twin_with_text_columns(database: Database) {
    let Database::Postgres(pool) = &database else {
        panic!("a PostgreSQL migration")
    };
    let mut tx = WriteTx::begin(&database).await.expect("tx");
    for statement in [
        "CREATE TABLE rm_expenses_r1 (expense_id TEXT PRIMARY KEY, owner TEXT, spent_on TEXT)",
        "CREATE TABLE rm_wallets_r1 (LIKE rm_wallets INCLUDING ALL)",
    ] {
        tx.execute(statement, &[])
            .await
            .expect("a twin of the build before");
    }
    tx.commit().await.expect("commit");

    // Run again on a database it has already typed: it must also be safe to repeat.
    sqlx::raw_sql(include_str!(
        "../../../migrations/postgres/0021_typed_expense_keys.sql"
    ))
    .execute(pool)
    .await
    .expect("migration 0021");

    let twins: Vec<(String,)> = fetch_all(
        &database,
        "SELECT tablename::TEXT FROM pg_tables WHERE schemaname = current_schema() \
         AND tablename LIKE 'rm\\_%\\_r1' ORDER BY tablename",
        &[],
    )
    .await
    .expect("tables");
    assert_eq!(
        twins,
        [("rm_wallets_r1".to_owned(),)],
        "only the expenses' twin goes"
    );
}
