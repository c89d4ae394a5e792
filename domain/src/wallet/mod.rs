//! A customer's wallet: top-ups, expenses and their corrections, spending limits with their
//! warnings, and savings goals. One stream per customer (`wallet-<user id>`).
//!
//! Rules: amounts are in the wallet's currency; the balance may go negative (an expense
//! records money already spent); a limit warns once at 80% and is exceeded once at 100% per
//! period, and voiding an expense afterwards does not re-arm it; savings move money out of
//! the spendable balance and back.

mod values;

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use values::{Category, Description, GoalName, Period, spent_on};

use crate::aggregate::{Aggregate, DomainEvent};
use crate::money::{Currency, Money};
use crate::user::UserId;

/// The share of a limit at which the customer is warned.
pub const WARNING_SHARE: Decimal = Decimal::from_parts(8, 0, 0, false, 1);

/// What a limit applies to: a period, and one category or (`None`) all spending.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LimitKey {
    /// Weekly, or monthly from a given day.
    pub period: Period,
    /// `None`: all spending.
    pub category: Option<Category>,
}

impl LimitKey {
    fn covers(&self, category: &Category) -> bool {
        self.category.as_ref().is_none_or(|c| c == category)
    }
}

/// What can be asked of a wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalletCommand {
    /// Open the wallet of a new customer.
    Open {
        /// The customer.
        owner: UserId,
        /// The currency of every amount in it.
        currency: Currency,
    },
    /// Add money.
    TopUp {
        /// How much.
        amount: Money,
        /// Why, if said.
        note: Description,
    },
    /// Record money spent.
    RecordExpense {
        /// Chosen by the caller.
        expense_id: Uuid,
        /// How much.
        amount: Money,
        /// On what.
        category: Category,
        /// Details.
        description: Description,
        /// The day it was spent (checked with [`spent_on`]).
        spent_on: NaiveDate,
        /// A stored receipt, if any.
        receipt_id: Option<Uuid>,
    },
    /// Take back an expense recorded by mistake.
    VoidExpense {
        /// Which.
        expense_id: Uuid,
        /// Why.
        reason: Description,
    },
    /// Set (or change) a spending limit.
    SetLimit {
        /// Period and category.
        key: LimitKey,
        /// The most to spend per period.
        amount: Money,
    },
    /// Remove a spending limit.
    RemoveLimit {
        /// Period and category.
        key: LimitKey,
    },
    /// Start saving towards something.
    CreateSavingsGoal {
        /// Chosen by the caller.
        goal_id: Uuid,
        /// What for.
        name: GoalName,
        /// How much.
        target: Money,
        /// By when, if at all.
        due: Option<NaiveDate>,
    },
    /// Move money from the spendable balance into a goal.
    ContributeToSavings {
        /// Which goal.
        goal_id: Uuid,
        /// How much.
        amount: Money,
    },
    /// Move money from a goal back into the spendable balance.
    WithdrawFromSavings {
        /// Which goal.
        goal_id: Uuid,
        /// How much.
        amount: Money,
    },
}

/// What happened to a wallet. Amounts are in the wallet's currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum WalletEvent {
    /// The wallet exists.
    WalletOpened {
        /// Its customer.
        owner: UserId,
        /// Its currency.
        currency: Currency,
    },
    /// Money was added.
    WalletToppedUp {
        /// How much.
        amount: Decimal,
        /// Why.
        note: Description,
    },
    /// Money was spent.
    ExpenseRecorded {
        /// Its id.
        expense_id: Uuid,
        /// How much.
        amount: Decimal,
        /// On what.
        category: Category,
        /// Details.
        description: Description,
        /// When.
        spent_on: NaiveDate,
        /// A stored receipt.
        receipt_id: Option<Uuid>,
    },
    /// An expense was taken back.
    ExpenseVoided {
        /// Which.
        expense_id: Uuid,
        /// Why.
        reason: Description,
    },
    /// A limit was set or changed.
    LimitSet {
        /// Period and category.
        key: LimitKey,
        /// The most per period.
        amount: Decimal,
    },
    /// A limit was removed.
    LimitRemoved {
        /// Period and category.
        key: LimitKey,
    },
    /// Spending in a period reached 80% of a limit.
    LimitWarningReached {
        /// The limit.
        key: LimitKey,
        /// Its amount.
        limit: Decimal,
        /// The period's first day.
        period_start: NaiveDate,
        /// Spent in the period, with the expense.
        spent: Decimal,
        /// The expense that reached it.
        expense_id: Uuid,
    },
    /// Spending in a period reached 100% of a limit.
    LimitExceeded {
        /// The limit.
        key: LimitKey,
        /// Its amount.
        limit: Decimal,
        /// The period's first day.
        period_start: NaiveDate,
        /// Spent in the period, with the expense.
        spent: Decimal,
        /// How far past the limit: `spent - limit`. Added in schema version 2; version 1
        /// events get it derived on read (see [`crate::upcast`]).
        overspent: Decimal,
        /// The expense that crossed it.
        expense_id: Uuid,
    },
    /// A savings goal was created.
    SavingsGoalCreated {
        /// Its id.
        goal_id: Uuid,
        /// What for.
        name: GoalName,
        /// How much.
        target: Decimal,
        /// By when.
        due: Option<NaiveDate>,
    },
    /// Money moved into a goal.
    SavingsContributed {
        /// Which goal.
        goal_id: Uuid,
        /// How much.
        amount: Decimal,
    },
    /// Money moved out of a goal.
    SavingsWithdrawn {
        /// Which goal.
        goal_id: Uuid,
        /// How much.
        amount: Decimal,
    },
    /// A goal's savings reached its target.
    SavingsGoalReached {
        /// Which goal.
        goal_id: Uuid,
    },
}

impl DomainEvent for WalletEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::WalletOpened { .. } => "WalletOpened",
            Self::WalletToppedUp { .. } => "WalletToppedUp",
            Self::ExpenseRecorded { .. } => "ExpenseRecorded",
            Self::ExpenseVoided { .. } => "ExpenseVoided",
            Self::LimitSet { .. } => "LimitSet",
            Self::LimitRemoved { .. } => "LimitRemoved",
            Self::LimitWarningReached { .. } => "LimitWarningReached",
            Self::LimitExceeded { .. } => "LimitExceeded",
            Self::SavingsGoalCreated { .. } => "SavingsGoalCreated",
            Self::SavingsContributed { .. } => "SavingsContributed",
            Self::SavingsWithdrawn { .. } => "SavingsWithdrawn",
            Self::SavingsGoalReached { .. } => "SavingsGoalReached",
        }
    }

    fn schema_version(&self) -> u16 {
        match self {
            Self::LimitExceeded { .. } => 2,
            _ => 1,
        }
    }
}

/// Why a wallet refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletRejection {
    /// The wallet does not exist yet.
    #[error("the wallet is not open")]
    NotOpen,
    /// It exists already.
    #[error("the wallet is already open")]
    AlreadyOpen,
    /// An amount in another currency than the wallet's.
    #[error("amounts must be in {expected}, not {given}")]
    CurrencyMismatch {
        /// The wallet's currency.
        expected: Currency,
        /// The amount's.
        given: Currency,
    },
    /// The expense id is taken.
    #[error("this expense is already recorded")]
    ExpenseAlreadyRecorded,
    /// No such expense.
    #[error("there is no such expense")]
    UnknownExpense,
    /// Voided before.
    #[error("this expense is already voided")]
    AlreadyVoided,
    /// No such limit.
    #[error("there is no such limit")]
    UnknownLimit,
    /// The goal id is taken.
    #[error("this savings goal already exists")]
    GoalExists,
    /// No such goal.
    #[error("there is no such savings goal")]
    UnknownGoal,
    /// Saving more than the spendable balance.
    #[error("the spendable balance is {available}; it cannot fund {asked}")]
    InsufficientBalance {
        /// The balance.
        available: Decimal,
        /// The contribution.
        asked: Decimal,
    },
    /// Withdrawing more than the goal holds.
    #[error("the goal holds {available}; {asked} cannot be withdrawn")]
    InsufficientSavings {
        /// Saved.
        available: Decimal,
        /// Asked.
        asked: Decimal,
    },
}

/// Adds `amount` to `key`'s spending in the period that contains `spent_on`.
fn add_spending(
    spending: &mut HashMap<(LimitKey, NaiveDate), Decimal>,
    key: &LimitKey,
    spent_on: NaiveDate,
    amount: Decimal,
) {
    let start = key.period.start_of(spent_on);
    *spending.entry((key.clone(), start)).or_default() += amount;
}

/// A wallet as its history leaves it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Wallet {
    /// No history yet.
    #[default]
    Unopened,
    /// Open (boxed: the state is large next to the empty variant).
    Open(Box<OpenWallet>),
}

/// An expense as the rules need it: what it counts against limits and the balance, nothing
/// more. Its description, receipt and void reason are in the log and the read models; a
/// wallet holds every expense it ever recorded, so each byte here is paid per expense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpenseState {
    /// How much.
    pub amount: Decimal,
    /// When.
    pub spent_on: NaiveDate,
    /// Taken back.
    pub voided: bool,
    /// Which of the wallet's categories; [`OpenWallet::category_of`] names it.
    category: u32,
}

/// A savings goal as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goal {
    /// What for.
    pub name: GoalName,
    /// By when, if at all.
    pub due: Option<NaiveDate>,
    /// How much to save.
    pub target: Decimal,
    /// Saved so far.
    pub saved: Decimal,
    /// The target was reached once.
    pub reached: bool,
}

/// Which alert was raised for a limit in a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Alert {
    Warning,
    Exceeded,
}

/// An open wallet's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenWallet {
    /// The customer.
    pub owner: UserId,
    /// The currency.
    pub currency: Currency,
    /// Top-ups minus live expenses minus net savings.
    pub balance: Decimal,
    /// Every expense by id.
    pub expenses: HashMap<Uuid, ExpenseState>,
    /// Each category the wallet has seen, once, as first spelled; expenses point into it.
    categories: Vec<Category>,
    category_numbers: HashMap<Category, u32>,
    /// Limits in the order they were first set.
    pub limits: Vec<(LimitKey, Decimal)>,
    /// Savings goals by id.
    pub goals: HashMap<Uuid, Goal>,
    alerts: HashSet<(LimitKey, NaiveDate, Alert)>,
    /// Live spending per limit and period start, kept as expenses come and go, so that an
    /// expense is checked against its limits without going through the whole history.
    period_spending: HashMap<(LimitKey, NaiveDate), Decimal>,
}

impl OpenWallet {
    /// The category `expense` was recorded under (as first spelled in this wallet:
    /// categories compare without regard to case).
    #[must_use]
    pub fn category_of(&self, expense: &ExpenseState) -> &Category {
        &self.categories[expense.category as usize]
    }

    fn category_number(&mut self, category: &Category) -> u32 {
        if let Some(number) = self.category_numbers.get(category) {
            return *number;
        }
        let number = u32::try_from(self.categories.len())
            .expect("a wallet holds fewer than 2^32 categories: each takes an event");
        self.categories.push(category.clone());
        self.category_numbers.insert(category.clone(), number);
        number
    }

    /// Live spending in the period starting `start` that `key` covers.
    #[must_use]
    pub fn spent(&self, key: &LimitKey, start: NaiveDate) -> Decimal {
        if self.limits.iter().any(|(k, _)| k == key) {
            return self
                .period_spending
                .get(&(key.clone(), start))
                .copied()
                .unwrap_or(Decimal::ZERO);
        }
        // A key that is no limit has no running sum: count it.
        self.expenses
            .values()
            .filter(|e| {
                !e.voided
                    && key.covers(self.category_of(e))
                    && key.period.start_of(e.spent_on) == start
            })
            .map(|e| e.amount)
            .sum()
    }

    /// Adds `amount` (negative for a void) to the spending of every limit that covers
    /// `category`, in the period that contains `spent_on`.
    fn add_to_periods(&mut self, category: &Category, spent_on: NaiveDate, amount: Decimal) {
        for (key, _) in &self.limits {
            if key.covers(category) {
                add_spending(&mut self.period_spending, key, spent_on, amount);
            }
        }
    }

    fn check(&self, money: &Money) -> Result<Decimal, WalletRejection> {
        if money.currency() == self.currency {
            Ok(money.amount())
        } else {
            Err(WalletRejection::CurrencyMismatch {
                expected: self.currency,
                given: money.currency(),
            })
        }
    }

    fn record_expense(
        &self,
        expense_id: Uuid,
        amount: Decimal,
        category: &Category,
        spent_on: NaiveDate,
    ) -> Vec<WalletEvent> {
        let mut alerts = Vec::new();
        for (key, limit) in &self.limits {
            if !key.covers(category) {
                continue;
            }
            let period_start = key.period.start_of(spent_on);
            let spent = self.spent(key, period_start) + amount;
            let raised = |alert| self.alerts.contains(&(key.clone(), period_start, alert));
            if raised(Alert::Exceeded) {
                continue;
            }
            if spent >= *limit {
                alerts.push(WalletEvent::LimitExceeded {
                    key: key.clone(),
                    limit: *limit,
                    period_start,
                    spent,
                    overspent: spent - *limit,
                    expense_id,
                });
            } else if spent >= *limit * WARNING_SHARE && !raised(Alert::Warning) {
                alerts.push(WalletEvent::LimitWarningReached {
                    key: key.clone(),
                    limit: *limit,
                    period_start,
                    spent,
                    expense_id,
                });
            }
        }
        alerts
    }
}

impl Aggregate for Wallet {
    type Command = WalletCommand;
    type Event = WalletEvent;
    type Rejection = WalletRejection;

    const CATEGORY: &'static str = "wallet";

    fn decide(&self, command: &WalletCommand) -> Result<Vec<WalletEvent>, WalletRejection> {
        let wallet = match (self, command) {
            (Self::Unopened, WalletCommand::Open { owner, currency }) => {
                return Ok(vec![WalletEvent::WalletOpened {
                    owner: *owner,
                    currency: *currency,
                }]);
            }
            (Self::Open(_), WalletCommand::Open { .. }) => {
                return Err(WalletRejection::AlreadyOpen);
            }
            (Self::Unopened, _) => return Err(WalletRejection::NotOpen),
            (Self::Open(wallet), _) => wallet,
        };
        let events = match command {
            WalletCommand::Open { .. } => return Err(WalletRejection::AlreadyOpen),
            WalletCommand::TopUp { amount, note } => vec![WalletEvent::WalletToppedUp {
                amount: wallet.check(amount)?,
                note: note.clone(),
            }],
            WalletCommand::RecordExpense {
                expense_id,
                amount,
                category,
                description,
                spent_on,
                receipt_id,
            } => {
                let amount = wallet.check(amount)?;
                if wallet.expenses.contains_key(expense_id) {
                    return Err(WalletRejection::ExpenseAlreadyRecorded);
                }
                let mut events = vec![WalletEvent::ExpenseRecorded {
                    expense_id: *expense_id,
                    amount,
                    category: category.clone(),
                    description: description.clone(),
                    spent_on: *spent_on,
                    receipt_id: *receipt_id,
                }];
                events.extend(wallet.record_expense(*expense_id, amount, category, *spent_on));
                events
            }
            WalletCommand::VoidExpense { expense_id, reason } => {
                let expense = wallet
                    .expenses
                    .get(expense_id)
                    .ok_or(WalletRejection::UnknownExpense)?;
                if expense.voided {
                    return Err(WalletRejection::AlreadyVoided);
                }
                vec![WalletEvent::ExpenseVoided {
                    expense_id: *expense_id,
                    reason: reason.clone(),
                }]
            }
            WalletCommand::SetLimit { key, amount } => vec![WalletEvent::LimitSet {
                key: key.clone(),
                amount: wallet.check(amount)?,
            }],
            WalletCommand::RemoveLimit { key } => {
                if !wallet.limits.iter().any(|(k, _)| k == key) {
                    return Err(WalletRejection::UnknownLimit);
                }
                vec![WalletEvent::LimitRemoved { key: key.clone() }]
            }
            WalletCommand::CreateSavingsGoal {
                goal_id,
                name,
                target,
                due,
            } => {
                let target = wallet.check(target)?;
                if wallet.goals.contains_key(goal_id) {
                    return Err(WalletRejection::GoalExists);
                }
                vec![WalletEvent::SavingsGoalCreated {
                    goal_id: *goal_id,
                    name: name.clone(),
                    target,
                    due: *due,
                }]
            }
            WalletCommand::ContributeToSavings { goal_id, amount } => {
                let amount = wallet.check(amount)?;
                let goal = wallet
                    .goals
                    .get(goal_id)
                    .ok_or(WalletRejection::UnknownGoal)?;
                if amount > wallet.balance {
                    return Err(WalletRejection::InsufficientBalance {
                        available: wallet.balance,
                        asked: amount,
                    });
                }
                let mut events = vec![WalletEvent::SavingsContributed {
                    goal_id: *goal_id,
                    amount,
                }];
                if !goal.reached && goal.saved + amount >= goal.target {
                    events.push(WalletEvent::SavingsGoalReached { goal_id: *goal_id });
                }
                events
            }
            WalletCommand::WithdrawFromSavings { goal_id, amount } => {
                let amount = wallet.check(amount)?;
                let goal = wallet
                    .goals
                    .get(goal_id)
                    .ok_or(WalletRejection::UnknownGoal)?;
                if amount > goal.saved {
                    return Err(WalletRejection::InsufficientSavings {
                        available: goal.saved,
                        asked: amount,
                    });
                }
                vec![WalletEvent::SavingsWithdrawn {
                    goal_id: *goal_id,
                    amount,
                }]
            }
        };
        Ok(events)
    }

    fn evolve(self, event: &WalletEvent) -> Self {
        let mut wallet = match (self, event) {
            (Self::Unopened, WalletEvent::WalletOpened { owner, currency }) => {
                return Self::Open(Box::new(OpenWallet {
                    owner: *owner,
                    currency: *currency,
                    balance: Decimal::ZERO,
                    expenses: HashMap::new(),
                    categories: Vec::new(),
                    category_numbers: HashMap::new(),
                    limits: Vec::new(),
                    goals: HashMap::new(),
                    alerts: HashSet::new(),
                    period_spending: HashMap::new(),
                }));
            }
            // A history that does not start with the opening is not one `decide` makes.
            (state @ Self::Unopened, _) => return state,
            (Self::Open(wallet), _) => wallet,
        };
        match event {
            WalletEvent::WalletOpened { .. } => {}
            WalletEvent::WalletToppedUp { amount, .. } => wallet.balance += *amount,
            WalletEvent::ExpenseRecorded {
                expense_id,
                amount,
                category,
                spent_on,
                ..
            } => {
                wallet.balance -= *amount;
                wallet.add_to_periods(category, *spent_on, *amount);
                let category = wallet.category_number(category);
                wallet.expenses.insert(
                    *expense_id,
                    ExpenseState {
                        amount: *amount,
                        spent_on: *spent_on,
                        voided: false,
                        category,
                    },
                );
            }
            WalletEvent::ExpenseVoided { expense_id, .. } => {
                if let Some(expense) = wallet.expenses.get_mut(expense_id).filter(|e| !e.voided) {
                    expense.voided = true;
                    let expense = *expense;
                    wallet.balance += expense.amount;
                    let category = wallet.categories[expense.category as usize].clone();
                    wallet.add_to_periods(&category, expense.spent_on, -expense.amount);
                }
            }
            WalletEvent::LimitSet { key, amount } => {
                match wallet.limits.iter_mut().find(|(k, _)| k == key) {
                    Some((_, limit)) => *limit = *amount,
                    None => {
                        // A new limit counts the spending recorded before it, once.
                        for expense in wallet.expenses.values().filter(|e| !e.voided) {
                            if key.covers(&wallet.categories[expense.category as usize]) {
                                let spending = &mut wallet.period_spending;
                                add_spending(spending, key, expense.spent_on, expense.amount);
                            }
                        }
                        wallet.limits.push((key.clone(), *amount));
                    }
                }
            }
            WalletEvent::LimitRemoved { key } => {
                wallet.limits.retain(|(k, _)| k != key);
                wallet.period_spending.retain(|(k, _), _| k != key);
            }
            WalletEvent::LimitWarningReached {
                key, period_start, ..
            } => {
                wallet
                    .alerts
                    .insert((key.clone(), *period_start, Alert::Warning));
            }
            WalletEvent::LimitExceeded {
                key, period_start, ..
            } => {
                wallet
                    .alerts
                    .insert((key.clone(), *period_start, Alert::Exceeded));
            }
            WalletEvent::SavingsGoalCreated {
                goal_id,
                name,
                target,
                due,
            } => {
                wallet.goals.insert(
                    *goal_id,
                    Goal {
                        name: name.clone(),
                        due: *due,
                        target: *target,
                        saved: Decimal::ZERO,
                        reached: false,
                    },
                );
            }
            WalletEvent::SavingsContributed { goal_id, amount } => {
                if let Some(goal) = wallet.goals.get_mut(goal_id) {
                    goal.saved += *amount;
                    wallet.balance -= *amount;
                }
            }
            WalletEvent::SavingsWithdrawn { goal_id, amount } => {
                if let Some(goal) = wallet.goals.get_mut(goal_id) {
                    goal.saved -= *amount;
                    wallet.balance += *amount;
                }
            }
            WalletEvent::SavingsGoalReached { goal_id } => {
                if let Some(goal) = wallet.goals.get_mut(goal_id) {
                    goal.reached = true;
                }
            }
        }
        Self::Open(wallet)
    }
}

#[cfg(test)]
mod tests;
