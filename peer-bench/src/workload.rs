//! The two workloads of our own bench, driven in-process through cqrs-es: tasks that send
//! `RecordExpense` again as soon as the last one returned (closed loop), each on wallets of
//! its own or all on one hot wallet. The peer's answers are taken as they come: a conflict is
//! counted and the task goes on with its next command, since postgres-es does not retry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{AggregateError, EventStore as _};
use postgres_es::{PostgresCqrs, PostgresEventRepository};
use sqlx::PgPool;
use uuid::Uuid;

use crate::wallet::{Wallet, WalletCommand, WalletRejection};

/// What each wallet starts with: enough that no expense is ever refused for want of money.
pub const TOP_UP_CENTS: i64 = 10_000_000_000;
/// Each expense costs one unit, as in our bench.
const EXPENSE_CENTS: i64 = 100;

/// What one workload saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Commands whose event was stored.
    pub done: u64,
    /// Commands refused because another command on the same wallet stored its event first
    /// (a unique violation on `(aggregate_type, aggregate_id, sequence)`).
    pub conflicts: u64,
    /// Every other failure: rejections by the wallet, connection and database errors.
    pub other_errors: u64,
    pub first_other_error: Option<String>,
    pub elapsed: Duration,
    /// Commands done in the first and in the last whole second, to show a rate that moves as
    /// the wallets' histories grow.
    pub first_second: u64,
    pub last_second: u64,
    /// The longest wallet history at the end, in events.
    pub longest_history: usize,
}

impl Outcome {
    /// Done commands per second.
    #[must_use]
    pub fn rate(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Conflicts and other errors together.
    #[must_use]
    pub fn errors(&self) -> u64 {
        self.conflicts + self.other_errors
    }
}

/// What one task counted, with its done commands by whole second since the start.
#[derive(Debug, Default)]
struct TaskCount {
    done_by_second: Vec<u64>,
    conflicts: u64,
    other_errors: u64,
    first_other_error: Option<String>,
}

/// Runs `tasks` closed-loop tasks for `seconds` over `wallets` fresh wallets, task `t` taking
/// the wallets `t`, `t + tasks`, ... in turn; with one wallet every task shares it. Then checks
/// that no acknowledged command was lost.
///
/// # Errors
/// When the wallets cannot be topped up, a task panics, or the stored histories do not match
/// the acknowledged commands.
pub async fn run(
    cqrs: Arc<PostgresCqrs<Wallet>>,
    pool: &PgPool,
    tasks: usize,
    wallets: usize,
    seconds: f64,
) -> anyhow::Result<Outcome> {
    let wallet_ids: Vec<String> = (0..wallets).map(|_| Uuid::new_v4().to_string()).collect();
    for id in &wallet_ids {
        cqrs.execute(
            id,
            WalletCommand::TopUp {
                amount_cents: TOP_UP_CENTS,
            },
        )
        .await
        .with_context(|| format!("topping up wallet {id}"))?;
    }

    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let mut running = tokio::task::JoinSet::new();
    for task in 0..tasks {
        // Never empty: `task % wallets` is always a wallet's index.
        let own: Vec<String> = wallet_ids
            .iter()
            .skip(task % wallets)
            .step_by(tasks)
            .cloned()
            .collect();
        running.spawn(send_until(Arc::clone(&cqrs), own, started, until));
    }
    let mut counts = Vec::with_capacity(tasks);
    while let Some(joined) = running.join_next().await {
        counts.push(joined.context("a load task panicked")?);
    }
    let elapsed = started.elapsed();

    let mut outcome = Outcome {
        elapsed,
        ..Outcome::default()
    };
    let mut by_second: Vec<u64> = Vec::new();
    for count in counts {
        outcome.conflicts += count.conflicts;
        outcome.other_errors += count.other_errors;
        if outcome.first_other_error.is_none() {
            outcome.first_other_error = count.first_other_error;
        }
        if by_second.len() < count.done_by_second.len() {
            by_second.resize(count.done_by_second.len(), 0);
        }
        for (second, done) in count.done_by_second.iter().enumerate() {
            by_second[second] += done;
        }
    }
    outcome.done = by_second.iter().sum();
    // The last full second; a command that ended past `until` falls in a partial one.
    let full_seconds = (seconds.floor() as usize).max(1);
    outcome.first_second = by_second.first().copied().unwrap_or(0);
    outcome.last_second = by_second.get(full_seconds - 1).copied().unwrap_or(0);
    outcome.longest_history = no_lost_update(pool, &wallet_ids, outcome.done).await?;
    Ok(outcome)
}

async fn send_until(
    cqrs: Arc<PostgresCqrs<Wallet>>,
    wallets: Vec<String>,
    started: Instant,
    until: Instant,
) -> TaskCount {
    let mut count = TaskCount::default();
    for wallet in wallets.iter().cycle() {
        if Instant::now() >= until {
            break;
        }
        let command = WalletCommand::RecordExpense {
            expense_id: Uuid::new_v4(),
            amount_cents: EXPENSE_CENTS,
            category: "food".to_owned(),
            description: "tea".to_owned(),
        };
        match cqrs.execute(wallet, command).await {
            Ok(()) => {
                let second = started.elapsed().as_secs() as usize;
                if count.done_by_second.len() <= second {
                    count.done_by_second.resize(second + 1, 0);
                }
                count.done_by_second[second] += 1;
            }
            Err(AggregateError::AggregateConflict) => count.conflicts += 1,
            Err(error) => {
                count.other_errors += 1;
                count
                    .first_other_error
                    .get_or_insert_with(|| describe(&error));
            }
        }
    }
    count
}

fn describe(error: &AggregateError<WalletRejection>) -> String {
    match error {
        AggregateError::UserError(rejection) => format!("rejected: {rejection}"),
        other => other.to_string(),
    }
}

/// Replays every wallet from the store and checks that the stored expenses are exactly the
/// acknowledged ones: each history is its top-up then gap-free expenses, and the balances
/// together lack exactly one unit per acknowledged command. Returns the longest history.
async fn no_lost_update(
    pool: &PgPool,
    wallet_ids: &[String],
    acknowledged: u64,
) -> anyhow::Result<usize> {
    // A store of its own, so the check reads what is stored rather than anything the
    // framework under test may hold.
    let store: PersistedEventStore<PostgresEventRepository, Wallet> =
        PersistedEventStore::new_event_store(PostgresEventRepository::new(pool.clone()));
    let mut stored_expenses = 0_u64;
    let mut missing_cents = 0_i64;
    let mut longest = 0;
    for id in wallet_ids {
        let history = store
            .load_events(id)
            .await
            .with_context(|| format!("reading wallet {id}"))?;
        let gapless = history
            .iter()
            .zip(1..)
            .all(|(envelope, sequence)| envelope.sequence == sequence);
        anyhow::ensure!(gapless, "wallet {id}: its sequence numbers have gaps");
        let wallet = store
            .load_aggregate(id)
            .await
            .with_context(|| format!("replaying wallet {id}"))?
            .aggregate;
        longest = longest.max(history.len());
        stored_expenses += wallet.expenses.len() as u64;
        missing_cents += TOP_UP_CENTS - wallet.balance_cents;
        anyhow::ensure!(
            history.len() == wallet.expenses.len() + 1,
            "wallet {id}: {} events for {} expenses and one top-up",
            history.len(),
            wallet.expenses.len()
        );
    }
    anyhow::ensure!(
        stored_expenses == acknowledged,
        "{acknowledged} expenses acknowledged but {stored_expenses} stored"
    );
    anyhow::ensure!(
        missing_cents == acknowledged as i64 * EXPENSE_CENTS,
        "{acknowledged} expenses of {EXPENSE_CENTS} cents acknowledged but the balances lack {missing_cents}"
    );
    Ok(longest)
}
