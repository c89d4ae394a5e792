//! The `wallets` projection: each customer's balance, expenses, categories, limits and
//! savings goals (tables `rm_wallets`, `rm_expenses`, `rm_categories`, `rm_limits`,
//! `rm_goals`). The balance, the expense list and the dashboard are read from them.
//!
//! One projection owns all of them because they move together: voiding an expense changes
//! the balance by the amount only the expense row knows, and one checkpoint keeps them
//! consistent with each other.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use domain::wallet::{LimitKey, Period, WalletEvent};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use uuid::Uuid;

use crate::facts::{Fact, What};
use crate::projection::{ApplyError, Projection, TableRows};
use crate::sql::{Value, WriteTx};

/// Thousandths of a currency unit: how amounts are stored.
pub const MILLI: i64 = 1_000;

/// `amount` in thousandths, exactly.
///
/// # Errors
/// When it has more than three decimals or does not fit (never for a validated amount).
pub fn to_milli(amount: Decimal) -> Result<i64, String> {
    let scaled = amount * Decimal::from(MILLI);
    if !scaled.fract().is_zero() {
        return Err(format!("{amount} has more than three decimals"));
    }
    scaled
        .to_i64()
        .ok_or_else(|| format!("{amount} is too large"))
}

/// The multi-row inserts of a batch's new rows.
const INSERT_EXPENSES: &str = "INSERT INTO rm_expenses (expense_id, owner, amount_milli, category, category_key, \
     description, spent_on, receipt_id, voided, void_reason) VALUES ";
const EXPENSE_WIDTH: usize = 10;
const INSERT_CATEGORIES: &str = "INSERT INTO rm_categories (owner, category_key, category) VALUES ";
const CATEGORIES_TAIL: &str = " ON CONFLICT (owner, category_key) DO NOTHING";

/// The text of a limit's key, unique per customer.
fn key_text(key: &LimitKey) -> Result<String, String> {
    serde_json::to_string(key).map_err(|e| e.to_string())
}

/// The read model's tables, as named in the statements below.
pub const TABLES: [&str; 5] = [
    "rm_wallets",
    "rm_expenses",
    "rm_categories",
    "rm_limits",
    "rm_goals",
];

const OPEN_WALLET: &str = "INSERT INTO rm_wallets (owner, currency, minor_units, balance_milli, saved_milli) \
                     VALUES ($1, $2, $3, 0, 0)";
const VOID_EXPENSE: &str = "UPDATE rm_expenses SET voided = 1, void_reason = $3 \
                         WHERE expense_id = $1 AND owner = $2 AND voided = 0 RETURNING amount_milli";
const SET_LIMIT: &str = "INSERT INTO rm_limits (owner, limit_key, period, first_day, category, category_key, amount_milli, set_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (owner, limit_key) DO UPDATE SET amount_milli = excluded.amount_milli";
const REMOVE_LIMIT: &str = "DELETE FROM rm_limits WHERE owner = $1 AND limit_key = $2";
const CREATE_GOAL: &str = "INSERT INTO rm_goals (goal_id, owner, name, target_milli, saved_milli, due, reached) \
                     VALUES ($1, $2, $3, $4, 0, $5, 0)";
const MOVE_SAVINGS: &str = "UPDATE rm_goals SET saved_milli = saved_milli + $2 WHERE goal_id = $1";
const REACH_GOAL: &str = "UPDATE rm_goals SET reached = 1 WHERE goal_id = $1";
const ADD_SUMS: &str = "UPDATE rm_wallets SET balance_milli = balance_milli + $2, saved_milli = saved_milli + $3 \
                 WHERE owner = $1";

/// Each table's columns and key order, table by table as in [`TABLES`].
const ROWS: [(&[&str], &str); 5] = [
    (
        &[
            "owner",
            "currency",
            "minor_units",
            "balance_milli",
            "saved_milli",
        ],
        "owner",
    ),
    (
        &[
            "expense_id",
            "owner",
            "amount_milli",
            "category",
            "category_key",
            "description",
            "spent_on",
            "receipt_id",
            "voided",
            "void_reason",
        ],
        "expense_id",
    ),
    (
        &["owner", "category_key", "category"],
        "owner, category_key",
    ),
    (
        &[
            "owner",
            "limit_key",
            "period",
            "first_day",
            "category",
            "category_key",
            "amount_milli",
            "set_at",
        ],
        "owner, limit_key",
    ),
    (
        &[
            "goal_id",
            "owner",
            "name",
            "target_milli",
            "saved_milli",
            "due",
            "reached",
        ],
        "goal_id",
    ),
];

/// `template` with every table renamed to `<table><suffix>`.
fn suffixed(template: &str, suffix: &str) -> String {
    if suffix.is_empty() {
        return template.to_owned();
    }
    // Longest names first, so that no table name is replaced inside another.
    let mut tables = TABLES;
    tables.sort_by_key(|t| std::cmp::Reverse(t.len()));
    let mut sql = template.to_owned();
    for table in tables {
        sql = sql.replace(&format!("{table} "), &format!("{table}{suffix} "));
    }
    sql
}

/// The statements, written for one set of tables (the live ones, or a rebuild's).
#[derive(Debug, Clone)]
struct Sql {
    insert_expenses: String,
    insert_categories: String,
    open_wallet: String,
    void_expense: String,
    set_limit: String,
    remove_limit: String,
    create_goal: String,
    move_savings: String,
    reach_goal: String,
    add_sums: String,
}

impl Sql {
    fn for_suffix(suffix: &str) -> Self {
        Self {
            insert_expenses: suffixed(INSERT_EXPENSES, suffix),
            insert_categories: suffixed(INSERT_CATEGORIES, suffix),
            open_wallet: suffixed(OPEN_WALLET, suffix),
            void_expense: suffixed(VOID_EXPENSE, suffix),
            set_limit: suffixed(SET_LIMIT, suffix),
            remove_limit: suffixed(REMOVE_LIMIT, suffix),
            create_goal: suffixed(CREATE_GOAL, suffix),
            move_savings: suffixed(MOVE_SAVINGS, suffix),
            reach_goal: suffixed(REACH_GOAL, suffix),
            add_sums: suffixed(ADD_SUMS, suffix),
        }
    }
}

/// The projection, writing to the live tables or (for a rebuild) to suffixed twins.
#[derive(Debug, Clone)]
pub struct WalletsProjection {
    name: String,
    suffix: String,
    sql: Sql,
}

impl Default for WalletsProjection {
    fn default() -> Self {
        Self::with_suffix("")
    }
}

impl WalletsProjection {
    fn with_suffix(suffix: &str) -> Self {
        Self {
            name: format!("wallets{suffix}"),
            suffix: suffix.to_owned(),
            sql: Sql::for_suffix(suffix),
        }
    }
}

/// What a batch does to each wallet's two sums, written once per wallet at the end.
#[derive(Default)]
struct Sums {
    balance: i64,
    saved: i64,
}

/// What a batch writes at its end, in as few statements as it can: new expense and
/// category rows, savings moves per goal, and the sums per wallet.
#[derive(Default)]
struct Pending {
    sums: HashMap<Uuid, Sums>,
    /// New expense rows, [`EXPENSE_WIDTH`] values each.
    expenses: Vec<Value>,
    /// Where each new expense's row starts in `expenses`.
    expense_at: HashMap<Uuid, usize>,
    categories: Vec<Value>,
    categories_seen: HashSet<(Uuid, String)>,
    goal_moves: HashMap<Uuid, i64>,
}

impl WalletsProjection {
    async fn apply_one(
        sql: &Sql,
        tx: &mut WriteTx,
        fact: &Fact,
        event: &WalletEvent,
        pending: &mut Pending,
    ) -> Result<(), ApplyError> {
        let owner = fact.subject.to_string();
        let bad = |reason: String| ApplyError::Event {
            position: fact.position,
            reason,
        };
        let milli = |amount: Decimal| to_milli(amount).map_err(bad);
        match event {
            WalletEvent::WalletOpened { currency, .. } => {
                tx.execute(
                    &sql.open_wallet,
                    &[
                        owner.into(),
                        currency.code().into(),
                        i64::from(currency.minor_units()).into(),
                    ],
                )
                .await?;
            }
            WalletEvent::WalletToppedUp { amount, .. } => {
                pending.sums.entry(fact.subject).or_default().balance += milli(*amount)?;
            }
            WalletEvent::ExpenseRecorded {
                expense_id,
                amount,
                category,
                description,
                spent_on,
                receipt_id,
            } => {
                let amount = milli(*amount)?;
                let category_key = category.as_str().to_lowercase();
                if pending
                    .categories_seen
                    .insert((fact.subject, category_key.clone()))
                {
                    pending.categories.extend([
                        owner.clone().into(),
                        category_key.clone().into(),
                        category.as_str().into(),
                    ]);
                }
                pending
                    .expense_at
                    .insert(*expense_id, pending.expenses.len());
                pending.expenses.extend([
                    expense_id.to_string().into(),
                    owner.into(),
                    amount.into(),
                    category.as_str().into(),
                    category_key.into(),
                    description.as_str().into(),
                    spent_on.format("%Y-%m-%d").to_string().into(),
                    receipt_id.map(|id| id.to_string()).into(),
                    Value::Int(0),
                    Value::NullText,
                ]);
                pending.sums.entry(fact.subject).or_default().balance -= amount;
            }
            WalletEvent::ExpenseVoided { expense_id, reason } => {
                let amount = match pending.expense_at.get(expense_id) {
                    // Recorded in this very batch: its row is not written yet.
                    Some(&at) => {
                        let row = &mut pending.expenses[at..at + EXPENSE_WIDTH];
                        match (&row[2], &row[8]) {
                            (Value::Int(amount), Value::Int(0)) => {
                                let amount = *amount;
                                row[8] = Value::Int(1);
                                row[9] = reason.as_str().into();
                                Some(amount)
                            }
                            _ => None,
                        }
                    }
                    None => {
                        tx.fetch_int(
                            &sql.void_expense,
                            &[
                                expense_id.to_string().into(),
                                owner.into(),
                                reason.as_str().into(),
                            ],
                        )
                        .await?
                    }
                };
                // The wallet only records a void of a live expense of its own.
                let amount =
                    amount.ok_or_else(|| bad(format!("no live expense {expense_id} to void")))?;
                pending.sums.entry(fact.subject).or_default().balance += amount;
            }
            WalletEvent::LimitSet { key, amount } => {
                let (period, first_day) = match key.period {
                    Period::Weekly => ("weekly", None),
                    Period::Monthly { first_day } => ("monthly", Some(i64::from(first_day))),
                };
                tx.execute(
                    &sql.set_limit,
                    &[
                        owner.into(),
                        key_text(key).map_err(bad)?.into(),
                        period.into(),
                        first_day.into(),
                        key.category.as_ref().map(|c| c.as_str().to_owned()).into(),
                        key.category
                            .as_ref()
                            .map(|c| c.as_str().to_lowercase())
                            .into(),
                        milli(*amount)?.into(),
                        i64::try_from(fact.position.0).unwrap_or(i64::MAX).into(),
                    ],
                )
                .await?;
            }
            WalletEvent::LimitRemoved { key } => {
                tx.execute(
                    &sql.remove_limit,
                    &[owner.into(), key_text(key).map_err(bad)?.into()],
                )
                .await?;
            }
            // Alerts open tickets; they change nothing the customer's read models show.
            WalletEvent::LimitWarningReached { .. } | WalletEvent::LimitExceeded { .. } => {}
            WalletEvent::SavingsGoalCreated {
                goal_id,
                name,
                target,
                due,
            } => {
                tx.execute(
                    &sql.create_goal,
                    &[
                        goal_id.to_string().into(),
                        owner.into(),
                        name.as_str().into(),
                        milli(*target)?.into(),
                        due.map(|d| d.format("%Y-%m-%d").to_string()).into(),
                    ],
                )
                .await?;
            }
            WalletEvent::SavingsContributed { goal_id, amount }
            | WalletEvent::SavingsWithdrawn { goal_id, amount } => {
                let mut amount = milli(*amount)?;
                if matches!(event, WalletEvent::SavingsWithdrawn { .. }) {
                    amount = -amount;
                }
                *pending.goal_moves.entry(*goal_id).or_default() += amount;
                let wallet = pending.sums.entry(fact.subject).or_default();
                wallet.balance -= amount;
                wallet.saved += amount;
            }
            WalletEvent::SavingsGoalReached { goal_id } => {
                tx.execute(&sql.reach_goal, &[goal_id.to_string().into()])
                    .await?;
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Projection for WalletsProjection {
    fn name(&self) -> &str {
        &self.name
    }

    fn tables(&self) -> Vec<String> {
        TABLES
            .iter()
            .map(|t| format!("{t}{}", self.suffix))
            .collect()
    }

    fn rows(&self) -> Vec<TableRows> {
        ROWS.iter()
            .zip(self.tables())
            .map(|(&(columns, order_by), table)| TableRows {
                table,
                columns,
                order_by,
            })
            .collect()
    }

    fn twin(&self, suffix: &str) -> Arc<dyn Projection> {
        Arc::new(Self::with_suffix(suffix))
    }

    fn version(&self) -> i64 {
        1
    }

    async fn apply(&self, tx: &mut WriteTx, facts: &[&Fact]) -> Result<(), ApplyError> {
        let mut pending = Pending::default();
        for fact in facts {
            match &fact.what {
                What::Wallet(event) => {
                    Self::apply_one(&self.sql, tx, fact, event, &mut pending).await?;
                }
                What::Undecodable(reason) => {
                    return Err(ApplyError::Event {
                        position: fact.position,
                        reason: reason.clone(),
                    });
                }
                What::Other | What::User(_) => {}
            }
        }
        tx.insert_rows(
            &self.sql.insert_expenses,
            "",
            EXPENSE_WIDTH,
            pending.expenses,
        )
        .await?;
        tx.insert_rows(
            &self.sql.insert_categories,
            CATEGORIES_TAIL,
            3,
            pending.categories,
        )
        .await?;
        for (goal_id, amount) in pending.goal_moves {
            tx.execute(
                &self.sql.move_savings,
                &[goal_id.to_string().into(), amount.into()],
            )
            .await?;
        }
        for (owner, sums) in pending.sums {
            tx.execute(
                &self.sql.add_sums,
                &[
                    owner.to_string().into(),
                    Value::Int(sums.balance),
                    Value::Int(sums.saved),
                ],
            )
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_twin_writes_only_to_its_own_tables() {
        let twin = Sql::for_suffix("_r7");
        let statements = format!("{twin:?}");
        for table in TABLES {
            assert!(statements.contains(&format!("{table}_r7 ")), "{table}");
            assert!(
                !statements.contains(&format!("{table} ")),
                "{table} left live"
            );
        }
    }

    #[test]
    fn amounts_become_exact_thousandths() {
        assert_eq!(to_milli("12.5".parse().expect("decimal")), Ok(12_500));
        assert_eq!(to_milli("0.001".parse().expect("decimal")), Ok(1));
        assert_eq!(
            to_milli("1000000000000".parse().expect("decimal")),
            Ok(1_000_000_000_000_000)
        );
        assert!(to_milli("0.0001".parse().expect("decimal")).is_err());
    }
}
