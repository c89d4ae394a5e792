//! The projection runner on real databases: batches, checkpoints, failures, concurrent
//! runners and writers, and incremental projection against projection from zero.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use domain::Aggregate;
use domain::money::{Currency, Money};
use domain::user::UserId;
use domain::wallet::{
    Category, Description, GoalName, LimitKey, Period, Wallet, WalletCommand, WalletEvent,
};
use infrastructure::database::Database;
use infrastructure::event_codec::encode;
use infrastructure::event_store::{
    AppendRequest, EventMetadata, EventStore, ExpectedVersion, GroupCommitSettings, NewEvent,
    Position, SqlEventStore, StreamId,
};
use projections::sql::fetch_all;
use uuid::Uuid;

async fn store_on(database: &Database) -> Arc<dyn EventStore> {
    Arc::new(
        SqlEventStore::open(database.clone(), GroupCommitSettings::default())
            .await
            .expect("store"),
    )
}

fn metadata() -> EventMetadata {
    EventMetadata {
        command_id: Uuid::new_v4(),
        correlation_id: Uuid::new_v4(),
        causation_id: None,
        actor: "test".into(),
        recorded_at: Utc::now(),
        request_id: None,
    }
}

async fn append(store: &Arc<dyn EventStore>, owner: Uuid, version: u64, events: Vec<NewEvent>) {
    let expected = if version == 0 {
        ExpectedVersion::NoStream
    } else {
        ExpectedVersion::Exact(version)
    };
    let request = AppendRequest::new(
        StreamId::for_aggregate(Wallet::CATEGORY, owner),
        expected,
        metadata(),
        events,
    );
    store.append(request).await.expect("appended");
}

/// A deterministic pseudo-random sequence (no dependency, same history every run).
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % sides
    }
}

fn eur(amount: u64) -> Money {
    Money::parse(
        &format!("{}.{:02}", amount / 100, amount % 100),
        Currency::parse("EUR").expect("currency"),
    )
    .expect("amount")
}

/// A customer being written: id, wallet, stream version, expense ids, goal ids.
type Customer = (Uuid, Wallet, u64, Vec<Uuid>, Vec<Uuid>);

/// Random but valid histories: every command is decided by the real wallet, so the log
/// holds only what the product could have written. Returns the appended event count.
async fn write_random_history(
    store: &Arc<dyn EventStore>,
    seed: u64,
    customers: usize,
    commands: usize,
) -> usize {
    let mut dice = Dice(seed);
    let categories = ["Food", "food", "Rent", "travel", "Fun"];
    let mut wallets: Vec<Customer> = Vec::new();
    let mut written = 0;
    for _ in 0..customers {
        let owner = Uuid::new_v4();
        let open = WalletCommand::Open {
            owner: UserId(owner),
            currency: Currency::parse("EUR").expect("currency"),
        };
        let events = Wallet::default().decide(&open).expect("opens");
        let wallet = Wallet::replay(&events);
        append(
            store,
            owner,
            0,
            events
                .iter()
                .map(|e| encode(e, Uuid::new_v4()).expect("encodes"))
                .collect(),
        )
        .await;
        written += events.len();
        wallets.push((owner, wallet, events.len() as u64, Vec::new(), Vec::new()));
    }
    for _ in 0..commands {
        let index = dice.roll(wallets.len() as u64) as usize;
        let (owner, wallet, version, expenses, goals) = &mut wallets[index];
        let day = NaiveDate::from_ymd_opt(2026, 1 + dice.roll(11) as u32, 1 + dice.roll(28) as u32)
            .expect("day");
        let command = match dice.roll(10) {
            0 | 1 => WalletCommand::TopUp {
                amount: eur(1 + dice.roll(50_000)),
                note: Description::parse("").expect("note"),
            },
            2 if !expenses.is_empty() => WalletCommand::VoidExpense {
                expense_id: expenses[dice.roll(expenses.len() as u64) as usize],
                reason: Description::parse("mistake").expect("reason"),
            },
            3 => WalletCommand::SetLimit {
                key: LimitKey {
                    period: if dice.roll(2) == 0 {
                        Period::Weekly
                    } else {
                        Period::Monthly {
                            first_day: 1 + dice.roll(28) as u8,
                        }
                    },
                    category: (dice.roll(2) == 0).then(|| {
                        Category::parse(categories[dice.roll(5) as usize]).expect("category")
                    }),
                },
                amount: eur(1_000 + dice.roll(100_000)),
            },
            4 if goals.is_empty() => {
                let goal_id = Uuid::new_v4();
                goals.push(goal_id);
                WalletCommand::CreateSavingsGoal {
                    goal_id,
                    name: GoalName::parse("Bike").expect("name"),
                    target: eur(50_000),
                    due: None,
                }
            }
            5 if !goals.is_empty() => WalletCommand::ContributeToSavings {
                goal_id: goals[0],
                amount: eur(1 + dice.roll(5_000)),
            },
            _ => {
                let expense_id = Uuid::new_v4();
                expenses.push(expense_id);
                WalletCommand::RecordExpense {
                    expense_id,
                    amount: eur(1 + dice.roll(20_000)),
                    category: Category::parse(categories[dice.roll(5) as usize]).expect("category"),
                    // Tabs, line breaks and backslashes must survive every way rows are
                    // written (PostgreSQL copies them in as text).
                    description: Description::parse(
                        [
                            "bought something",
                            "two\tcolumns\nand a line",
                            "C:\\receipts\\N",
                        ][dice.roll(3) as usize],
                    )
                    .expect("text"),
                    spent_on: day,
                    receipt_id: None,
                }
            }
        };
        // Refusals (a second void, too little to save) are part of random use: skip them.
        let Ok(events) = wallet.decide(&command) else {
            continue;
        };
        if events.is_empty() {
            continue;
        }
        append(
            store,
            *owner,
            *version,
            events
                .iter()
                .map(|e| encode(e, Uuid::new_v4()).expect("encodes"))
                .collect(),
        )
        .await;
        *version += events.len() as u64;
        written += events.len();
        *wallet = events.iter().fold(std::mem::take(wallet), Wallet::evolve);
    }
    written
}

/// Every read-model row as text, table by table, in a fixed order.
async fn dump(database: &Database) -> Vec<String> {
    let queries = [
        "SELECT owner || '|' || currency || '|' || CAST(balance_milli AS TEXT) || '|' || CAST(saved_milli AS TEXT) FROM rm_wallets ORDER BY owner",
        "SELECT expense_id || '|' || owner || '|' || CAST(amount_milli AS TEXT) || '|' || category || '|' || spent_on || '|' || CAST(voided AS TEXT) || '|' || COALESCE(void_reason, '') FROM rm_expenses ORDER BY expense_id",
        "SELECT owner || '|' || category_key || '|' || category FROM rm_categories ORDER BY owner, category_key",
        "SELECT owner || '|' || limit_key || '|' || CAST(amount_milli AS TEXT) || '|' || CAST(set_at AS TEXT) FROM rm_limits ORDER BY owner, limit_key",
        "SELECT goal_id || '|' || CAST(saved_milli AS TEXT) || '|' || CAST(reached AS TEXT) FROM rm_goals ORDER BY goal_id",
    ];
    let mut rows = Vec::new();
    for sql in queries {
        let table: Vec<(String,)> = fetch_all(database, sql, &[]).await.expect("dump");
        rows.push(format!("-- {} rows", table.len()));
        rows.extend(table.into_iter().map(|(row,)| row));
    }
    rows
}

/// What the balances must be, from the aggregates themselves.
async fn balances_from_the_log(store: &Arc<dyn EventStore>) -> Vec<String> {
    let mut wallets: std::collections::BTreeMap<String, Wallet> = std::collections::BTreeMap::new();
    let mut after = Position::START;
    loop {
        let page = store.read_all(after, 500).await.expect("read");
        let Some(last) = page.last() else { break };
        after = last.position;
        for event in &page {
            let decoded: WalletEvent =
                infrastructure::event_codec::decode_payload(event, &event.payload)
                    .expect("decodes");
            let owner = event
                .stream
                .as_str()
                .trim_start_matches("wallet-")
                .to_owned();
            let wallet = wallets.remove(&owner).unwrap_or_default();
            wallets.insert(owner, wallet.evolve(&decoded));
        }
    }
    wallets
        .into_iter()
        .map(|(owner, wallet)| match wallet {
            Wallet::Open(open) => format!(
                "{owner}|{}",
                projections::wallets::to_milli(open.balance).expect("milli")
            ),
            Wallet::Unopened => format!("{owner}|unopened"),
        })
        .collect()
}

async fn projected_balances(database: &Database) -> Vec<String> {
    let rows: Vec<(String,)> = fetch_all(
        database,
        "SELECT owner || '|' || CAST(balance_milli AS TEXT) FROM rm_wallets ORDER BY owner",
        &[],
    )
    .await
    .expect("balances");
    rows.into_iter().map(|(row,)| row).collect()
}

mod cases;

/// A test of each case on a PostgreSQL database of its own (skipped, loudly, without one).
macro_rules! on_postgres {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(database) = infrastructure::testing::TestDatabase::postgres(concat!("runner_", stringify!($name))).await else {
                    return;
                };
                crate::cases::$name(database.connect().await).await;
            }
        )*
    };
}

macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let database = infrastructure::testing::TestDatabase::sqlite();
                    crate::cases::$name(database.connect().await).await;
                }
            )*
        }
        mod postgres {
            on_postgres!($($name),*);
        }
    };
}

on_both_databases!(
    a_batch_moves_the_checkpoint_and_an_empty_log_is_caught_up,
    an_event_that_cannot_be_applied_stops_the_projection_just_before_it,
    incremental_projection_equals_projection_from_zero,
    pages_prepared_ahead_write_what_applying_them_would,
    concurrent_runners_and_writers_skip_nothing_and_apply_nothing_twice,
    a_rebuild_reports_what_it_repaired_and_matches_the_log,
    reads_during_a_live_rebuild_never_fail_or_see_half_a_read_model,
    a_rebuild_while_writers_and_the_live_runner_go_on_loses_nothing,
    a_paused_projection_waits_and_a_new_runner_lets_it_go_on,
    a_page_read_ahead_is_never_applied_over_a_gap,
    of_two_bad_events_in_a_batch_the_projection_stops_before_the_first,
    expense_texts_come_back_as_written,
    tickets_show_where_they_stand_and_rebuild_identically,
    accounts_changed_in_the_batch_that_registers_them_read_as_in_the_log,
    a_page_with_nothing_for_a_projection_only_moves_its_checkpoint,
);

mod sqlite_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_models_not_made_from_this_log_are_made_again_from_it() {
        let first = infrastructure::testing::TestDatabase::sqlite();
        let second = infrastructure::testing::TestDatabase::sqlite();
        crate::cases::read_models_not_made_from_this_log_are_made_again_from_it(&first, &second)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_with_its_read_models_inside_rebuilds_them_beside_from_its_log() {
        let database = infrastructure::testing::TestDatabase::sqlite();
        crate::cases::a_database_with_its_read_models_inside_rebuilds_them_beside_from_its_log(
            &database,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_and_the_read_models_are_written_on_a_connection_each_that_does_not_sync() {
        let database = infrastructure::testing::TestDatabase::sqlite();
        crate::cases::the_log_and_the_read_models_are_written_on_a_connection_each_that_does_not_sync(
            database.connect().await,
        )
        .await;
    }
}

mod postgres_only {
    on_postgres!(
        migration_0021_drops_an_expenses_twin_with_text_columns,
        the_expense_read_model_keeps_typed_keys_through_a_rebuild,
        a_rebuild_writes_its_twins_prepared_and_without_waiting_for_the_disk,
    );
}
