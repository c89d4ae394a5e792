//! `expense-tracker demo-data`: a realistic history to look at and to measure with.
//! Customers are registered through the real command path (unique emails, sealed personal
//! data); their wallets' histories are decided by the real wallet aggregate, so every event
//! is one the product could have written, and appended in bulk, many commands per append,
//! which is what makes millions of events quick to produce.

use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use domain::Aggregate;
use domain::money::Money;
use domain::user::{
    Email, Mobile, NewPassword, PersonName, Profile, Registrar, Role, User, UserCommand, UserId,
};
use domain::wallet::{
    Category, Description, GoalName, LimitKey, Period, Wallet, WalletCommand, WalletEvent,
};
use infrastructure::event_codec::encode;
use infrastructure::event_store::{AppendRequest, EventMetadata, ExpectedVersion, StreamId};
use uuid::Uuid;

use crate::commands::CommandContext;
use crate::state::AppState;

/// The password of every demo customer.
pub const DEMO_PASSWORD: &str = "demo password 2026";

/// Events appended per request.
const EVENTS_PER_APPEND: usize = 500;

/// (category, smallest amount, largest amount, relative frequency), in whole units.
const SPENDING: [(&str, u64, u64, u64); 8] = [
    ("Groceries", 5, 120, 30),
    ("Dining", 10, 80, 15),
    ("Transport", 2, 50, 20),
    ("Utilities", 30, 150, 5),
    ("Health", 10, 200, 4),
    ("Fun", 5, 100, 12),
    ("Shopping", 10, 300, 10),
    ("Travel", 50, 900, 4),
];

/// What was written.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// The first customer's email (all share [`DEMO_PASSWORD`]).
    pub first_email: String,
    /// Customers created.
    pub customers: usize,
    /// Events appended, accounts included.
    pub events: u64,
    /// How long it took.
    pub elapsed: Duration,
}

/// A small deterministic generator: the same seed gives the same history.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % sides.max(1)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.roll(high - low + 1)
    }
}

/// One customer's wallet while its history is written.
struct WalletWriter {
    owner: Uuid,
    wallet: Wallet,
    version: u64,
    pending: Vec<WalletEvent>,
    expenses: Vec<Uuid>,
    goal: Option<Uuid>,
}

impl WalletWriter {
    /// Decides `command`; a refusal (too little to save, ...) is simply not written.
    fn try_command(&mut self, command: &WalletCommand) -> usize {
        let Ok(events) = self.wallet.decide(command) else {
            return 0;
        };
        for event in &events {
            self.wallet = std::mem::take(&mut self.wallet).evolve(event);
        }
        let n = events.len();
        self.pending.extend(events);
        n
    }

    async fn flush(&mut self, state: &AppState) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let events = std::mem::take(&mut self.pending);
        let encoded = events
            .iter()
            .map(|e| encode(e, Uuid::now_v7()))
            .collect::<Result<Vec<_>, _>>()?;
        let command_id = Uuid::now_v7();
        let request = AppendRequest::new(
            StreamId::for_aggregate(Wallet::CATEGORY, self.owner),
            ExpectedVersion::Exact(self.version),
            EventMetadata {
                command_id,
                correlation_id: command_id,
                causation_id: None,
                actor: "demo-data".into(),
                recorded_at: state.now(),
                request_id: None,
            },
            encoded,
        );
        state.events.append(request).await?;
        self.version += events.len() as u64;
        Ok(())
    }
}

fn money(state: &AppState, whole: u64, cents: u64) -> anyhow::Result<Money> {
    Ok(Money::parse(
        &format!("{whole}.{:02}", cents % 100),
        state.default_currency,
    )?)
}

async fn register(
    state: &AppState,
    email: &str,
    n: usize,
    hash: &domain::user::PasswordHash,
) -> anyhow::Result<Uuid> {
    let user_id = UserId(Uuid::now_v7());
    let command = UserCommand::Register {
        user_id,
        role: Role::Customer,
        profile: Profile {
            name: PersonName::parse(&format!("Demo Customer {n}"))?,
            email: Email::parse(email)?,
            mobile: Some(Mobile::parse(&format!("+91 90000 {:05}", n % 100_000))?),
            gender: None,
            username: None,
        },
        password_hash: hash.clone(),
        registered_by: Registrar::SelfSignUp,
    };
    let context = CommandContext::new("demo-data", state.now());
    state
        .commands
        .execute::<User>(user_id.0, &command, &context)
        .await
        .map_err(|e| anyhow::anyhow!("registering {email}: {e}"))?;
    Ok(user_id.0)
}

/// Writes `customers` customers and about `events` events in total, telling `on_progress`
/// the events written so far.
///
/// # Errors
/// When a command or an append fails.
pub async fn generate(
    state: &AppState,
    customers: usize,
    events: u64,
    on_progress: &mut (dyn FnMut(u64) + Send),
) -> anyhow::Result<DemoReport> {
    let started = Instant::now();
    let customers = customers.max(1);
    let run = &Uuid::new_v4().simple().to_string()[..6];
    let hash = state
        .passwords
        .hash(&NewPassword::parse(DEMO_PASSWORD)?)
        .await?;
    let mut dice = Dice(u64::from_str_radix(run, 16).unwrap_or(7));
    let today = state.now().date_naive();
    let mut written = 0_u64;
    let mut wallets = Vec::with_capacity(customers);
    let first_email = format!("demo-{run}-1@example.com");
    for n in 1..=customers {
        let email = format!("demo-{run}-{n}@example.com");
        let owner = register(state, &email, n, &hash).await?;
        let mut writer = WalletWriter {
            owner,
            wallet: Wallet::default(),
            version: 0,
            pending: Vec::new(),
            expenses: Vec::new(),
            goal: None,
        };
        // The account's event; the wallet's are counted when appended.
        written += 1;
        writer.try_command(&WalletCommand::Open {
            owner: UserId(owner),
            currency: state.default_currency,
        });
        wallets.push(writer);
    }
    on_progress(written);
    // Each customer's share of the history, oldest first, spread over the last year.
    let per_customer = events.saturating_sub(written) / customers as u64;
    let per_customer = per_customer.max(1);
    for writer in &mut wallets {
        let mut own = 0_u64;
        let monthly_limit = money(state, dice.between(1_500, 4_000), 0)?;
        own += writer.try_command(&WalletCommand::SetLimit {
            key: LimitKey {
                period: Period::Monthly { first_day: 1 },
                category: None,
            },
            amount: monthly_limit,
        }) as u64;
        own += writer.try_command(&WalletCommand::SetLimit {
            key: LimitKey {
                period: Period::Weekly,
                category: Some(Category::parse("Dining")?),
            },
            amount: money(state, dice.between(60, 150), 0)?,
        }) as u64;
        let goal = Uuid::now_v7();
        own += writer.try_command(&WalletCommand::CreateSavingsGoal {
            goal_id: goal,
            name: GoalName::parse("Holiday")?,
            target: money(state, dice.between(1_000, 5_000), 0)?,
            due: today.checked_add_days(Days::new(180)),
        }) as u64;
        writer.goal = Some(goal);
        let mut day_offset = 365_u64;
        while own < per_customer {
            // Walk forward through the year: about three expenses a day, salary monthly.
            if dice.roll(90) == 0 && day_offset > 0 {
                day_offset -= 1;
            }
            let spent_on: NaiveDate = today
                .checked_sub_days(Days::new(day_offset))
                .unwrap_or(today);
            let pick = dice.roll(100);
            let command = if pick < 3 {
                WalletCommand::TopUp {
                    amount: money(state, dice.between(2_000, 6_000), 0)?,
                    note: Description::parse("salary")?,
                }
            } else if pick < 5 && !writer.expenses.is_empty() {
                let at = dice.roll(writer.expenses.len() as u64) as usize;
                WalletCommand::VoidExpense {
                    expense_id: writer.expenses.swap_remove(at),
                    reason: Description::parse("recorded twice")?,
                }
            } else if pick < 7 {
                WalletCommand::ContributeToSavings {
                    goal_id: goal,
                    amount: money(state, dice.between(20, 200), 0)?,
                }
            } else {
                let total: u64 = SPENDING.iter().map(|s| s.3).sum();
                let mut ticket = dice.roll(total);
                let (name, low, high, _) = SPENDING
                    .iter()
                    .find(|s| {
                        let hit = ticket < s.3;
                        ticket = ticket.saturating_sub(s.3);
                        hit
                    })
                    .copied()
                    .unwrap_or(SPENDING[0]);
                let expense_id = Uuid::now_v7();
                writer.expenses.push(expense_id);
                WalletCommand::RecordExpense {
                    expense_id,
                    amount: money(state, dice.between(low, high), dice.roll(100))?,
                    category: Category::parse(name)?,
                    description: Description::parse(&format!("{name} on {spent_on}"))?,
                    spent_on,
                    receipt_id: None,
                }
            };
            let n = writer.try_command(&command) as u64;
            own += n;
            if n == 0 && matches!(command, WalletCommand::ContributeToSavings { .. }) {
                own += writer.try_command(&WalletCommand::TopUp {
                    amount: money(state, 3_000, 0)?,
                    note: Description::parse("salary")?,
                }) as u64;
            }
            if writer.pending.len() >= EVENTS_PER_APPEND {
                written += writer.pending.len() as u64;
                writer.flush(state).await?;
                on_progress(written);
            }
        }
        written += writer.pending.len() as u64;
        writer.flush(state).await?;
        on_progress(written);
    }
    Ok(DemoReport {
        first_email,
        customers,
        events: written,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::config::Config;
    use crate::startup::build_parts;

    #[tokio::test]
    async fn a_demo_history_is_valid_readable_and_signs_in() {
        let data = tempfile::tempdir().expect("a data directory");
        let config = Config::for_tests(data.path().to_path_buf(), None);
        let (state, runner) = build_parts(&config).await.expect("state");
        let mut heard = Vec::new();
        let report = generate(&state, 3, 600, &mut |n| heard.push(n))
            .await
            .expect("generated");
        assert_eq!(report.customers, 3);
        assert!(report.events >= 600, "{}", report.events);
        assert_eq!(
            state.events.head().await.expect("head").0,
            report.events,
            "every event counted once"
        );
        assert!(
            heard.windows(2).all(|w| w[0] <= w[1]),
            "progress only grows"
        );

        runner.catch_up().await.expect("projected");
        for status in runner.statuses().await.expect("statuses") {
            assert_eq!(
                status.failure, None,
                "{} reads every demo event",
                status.name
            );
        }
        let account = crate::accounts::sign_in(
            &state,
            &report.first_email,
            DEMO_PASSWORD,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        )
        .await
        .expect("a demo customer signs in");
        let board =
            crate::wallet_views::dashboard(&state.database, account.id.0, state.now().date_naive())
                .await
                .expect("read")
                .expect("a wallet");
        assert_eq!(board.trend.len(), 12);
        assert!(board.recent_expenses.len() == 10, "a full dashboard");
        assert!(!board.limits.is_empty() && !board.savings_goals.is_empty());
    }
}
