//! The `wallets` projection: each customer's balance, expenses, categories, limits and
//! savings goals (tables `rm_wallets`, `rm_expenses`, `rm_categories`, `rm_limits`,
//! `rm_goals`). The balance, the expense list and the dashboard are read from them.
//!
//! One projection owns all of them because they move together: voiding an expense changes
//! the balance by the amount only the expense row knows, and one checkpoint keeps them
//! consistent with each other.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use domain::Aggregate;
use domain::wallet::{LimitKey, Period, Wallet, WalletEvent};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use uuid::Uuid;

use infrastructure::event_store::Position;

use crate::facts::{Fact, What};
use crate::projection::{
    ApplyError, Prepared, PreparedWrites, Projection, TableRows, TableShape, suffixed_tables,
    table_rows,
};
use crate::sql::{ExpenseKeys, RowsToInsert, Value, WriteTx};

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

/// Where a batch's new expenses go (copied in on PostgreSQL, multi-row inserts on SQLite), and
/// the multi-row inserts of its new categories.
const EXPENSES_INTO: &str = "rm_expenses (expense_id, owner, amount_milli, category, category_key, \
     description, spent_on, receipt_id, voided, void_reason)";
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

/// Where new wallets go, as [`EXPENSES_INTO`]: rows of (owner, currency, minor units, 0, 0).
const OPEN_WALLETS: &str = "rm_wallets (owner, currency, minor_units, balance_milli, saved_milli)";
const WALLET_WIDTH: usize = 5;
/// Voids of expenses recorded in earlier batches, many per statement: rows of (expense id,
/// owner, reason); each voided expense comes back with its amount.
const VOID_EXPENSES: &str =
    "UPDATE rm_expenses AS e SET voided = 1, void_reason = d.column3 FROM (VALUES ";
/// The rest of [`VOID_EXPENSES`], with the ids typed as `keys` stores them.
fn void_expenses_tail(keys: ExpenseKeys) -> String {
    format!(
        ") AS d WHERE e.expense_id = {} AND e.owner = {} AND e.voided = 0 \
         RETURNING {}, amount_milli",
        keys.id("d.column1"),
        keys.id("d.column2"),
        keys.id_text("expense_id"),
    )
}
const SET_LIMIT: &str = "INSERT INTO rm_limits (owner, limit_key, period, first_day, category, category_key, amount_milli, set_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (owner, limit_key) DO UPDATE SET amount_milli = excluded.amount_milli";
const REMOVE_LIMIT: &str = "DELETE FROM rm_limits WHERE owner = $1 AND limit_key = $2";
const CREATE_GOAL: &str = "INSERT INTO rm_goals (goal_id, owner, name, target_milli, saved_milli, due, reached) \
                     VALUES ($1, $2, $3, $4, 0, $5, 0)";
/// Savings moved per goal: rows of (goal id, amount).
const MOVE_SAVINGS: &str =
    "UPDATE rm_goals AS g SET saved_milli = saved_milli + d.column2 FROM (VALUES ";
const MOVE_SAVINGS_TAIL: &str = ") AS d WHERE g.goal_id = d.column1";
const REACH_GOAL: &str = "UPDATE rm_goals SET reached = 1 WHERE goal_id = $1";
/// What a batch moved per wallet: rows of (owner, balance change, savings change).
const ADD_SUMS: &str = "UPDATE rm_wallets AS w SET balance_milli = balance_milli + d.column2, \
     saved_milli = saved_milli + d.column3 FROM (VALUES ";
const ADD_SUMS_TAIL: &str = ") AS d WHERE w.owner = d.column1";

/// Each table's columns, table by table as in [`TABLES`].
const ROWS: [TableShape; 5] = [
    &[
        "owner",
        "currency",
        "minor_units",
        "balance_milli",
        "saved_milli",
    ],
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
    &["owner", "category_key", "category"],
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
    &[
        "goal_id",
        "owner",
        "name",
        "target_milli",
        "saved_milli",
        "due",
        "reached",
    ],
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
    expenses_into: String,
    insert_categories: String,
    open_wallets: String,
    void_expenses: String,
    /// [`void_expenses_tail`] on SQLite, then on PostgreSQL.
    void_expenses_tails: [String; 2],
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
            expenses_into: suffixed(EXPENSES_INTO, suffix),
            insert_categories: suffixed(INSERT_CATEGORIES, suffix),
            open_wallets: suffixed(OPEN_WALLETS, suffix),
            void_expenses: suffixed(VOID_EXPENSES, suffix),
            void_expenses_tails: [false, true]
                .map(|postgres| void_expenses_tail(ExpenseKeys::on_postgres(postgres))),
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
    sql: Arc<Sql>,
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
            sql: Arc::new(Sql::for_suffix(suffix)),
        }
    }
}

/// What a batch does to each wallet's two sums, written once per wallet at the end.
#[derive(Default)]
struct Sums {
    balance: i64,
    saved: i64,
}

/// A void of an expense whose row an earlier batch wrote.
struct EarlierVoid {
    position: Position,
    expense_id: Uuid,
    owner: Uuid,
    reason: String,
}

/// A statement a page runs once per event, in log order, before its many-row writes.
#[derive(Debug, Clone, Copy)]
enum OneByOne {
    SetLimit,
    RemoveLimit,
    CreateGoal,
    ReachGoal,
}

impl OneByOne {
    fn sql(self, sql: &Sql) -> &str {
        match self {
            Self::SetLimit => &sql.set_limit,
            Self::RemoveLimit => &sql.remove_limit,
            Self::CreateGoal => &sql.create_goal,
            Self::ReachGoal => &sql.reach_goal,
        }
    }
}

/// What a page of events writes, gathered event by event: first the few statements that
/// go one by one, then, in as few statements as it can, new wallet, expense and category
/// rows, savings moves per goal, and the sums per wallet.
#[derive(Default)]
struct Pending {
    /// Limits and goals, in log order (a limit may be set, removed and set again).
    one_by_one: Vec<(OneByOne, Vec<Value>)>,
    /// New wallet rows, [`WALLET_WIDTH`] values each; written before the sums.
    wallets: Vec<Value>,
    sums: HashMap<Uuid, Sums>,
    /// New expense rows, [`EXPENSE_WIDTH`] values each.
    expenses: Vec<Value>,
    /// Where each new expense's row starts in `expenses`.
    expense_at: HashMap<Uuid, usize>,
    categories: Vec<Value>,
    categories_seen: HashSet<(Uuid, String)>,
    goal_moves: HashMap<Uuid, i64>,
    /// Voids of expenses recorded in earlier batches, in log order.
    voids: Vec<EarlierVoid>,
    /// Their expenses, to catch one voided twice.
    voided: HashSet<Uuid>,
}

/// A page's writes, ready before its transaction begins (see [`Projection::prepare`]).
struct PreparedPage {
    sql: Arc<Sql>,
    one_by_one: Vec<(OneByOne, Vec<Value>)>,
    wallets: RowsToInsert,
    expenses: RowsToInsert,
    categories: Vec<Value>,
    voids: Vec<EarlierVoid>,
    /// Rows of (goal id, amount).
    goal_moves: Vec<Value>,
    sums: HashMap<Uuid, Sums>,
}

impl PreparedPage {
    async fn write_page(mut self, tx: &mut WriteTx) -> Result<(), ApplyError> {
        let sql = Arc::clone(&self.sql);
        for (statement, args) in &self.one_by_one {
            tx.execute(statement.sql(&sql), args).await?;
        }
        // Only the sums below read these rows; no other statement touches the table.
        tx.insert_rows(&sql.open_wallets, self.wallets).await?;
        tx.insert_rows(&sql.expenses_into, self.expenses).await?;
        tx.write_rows(&sql.insert_categories, CATEGORIES_TAIL, 3, self.categories)
            .await?;
        Self::void_earlier(&sql, tx, &self.voids, &mut self.sums).await?;
        tx.write_rows(&sql.move_savings, MOVE_SAVINGS_TAIL, 2, self.goal_moves)
            .await?;
        let sums = self
            .sums
            .into_iter()
            .flat_map(|(owner, sums)| {
                [
                    owner.to_string().into(),
                    Value::Int(sums.balance),
                    Value::Int(sums.saved),
                ]
            })
            .collect();
        tx.write_rows(&sql.add_sums, ADD_SUMS_TAIL, 3, sums).await?;
        Ok(())
    }

    /// Voids the expenses of earlier batches in a few statements and adds their amounts
    /// back to their wallets; the first void that finds no live expense of its wallet
    /// stops the batch at its position.
    async fn void_earlier(
        sql: &Sql,
        tx: &mut WriteTx,
        voids: &[EarlierVoid],
        sums: &mut HashMap<Uuid, Sums>,
    ) -> Result<(), ApplyError> {
        let rows = voids
            .iter()
            .flat_map(|void| {
                [
                    void.expense_id.to_string().into(),
                    void.owner.to_string().into(),
                    void.reason.as_str().into(),
                ]
            })
            .collect();
        let voided: HashMap<String, i64> = tx
            .write_rows_returning(
                &sql.void_expenses,
                &sql.void_expenses_tails[usize::from(tx.is_postgres())],
                3,
                rows,
            )
            .await?
            .into_iter()
            .collect();
        for void in voids {
            let amount =
                voided
                    .get(&void.expense_id.to_string())
                    .ok_or_else(|| ApplyError::Event {
                        position: void.position,
                        reason: format!("no live expense {} to void", void.expense_id),
                    })?;
            sums.entry(void.owner).or_default().balance += amount;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl PreparedWrites for PreparedPage {
    async fn write(self: Box<Self>, tx: &mut WriteTx) -> Result<(), ApplyError> {
        self.write_page(tx).await
    }
}

impl WalletsProjection {
    /// The writes of `facts`, worked out without the database.
    fn prepared(&self, facts: &[&Fact], postgres: bool) -> Result<PreparedPage, ApplyError> {
        let mut pending = Pending::default();
        for fact in facts {
            fact.readable_in(Wallet::CATEGORY)?;
            if let What::Wallet(event) = &fact.what {
                Self::gather(fact, event, &mut pending)?;
            }
        }
        Ok(PreparedPage {
            sql: Arc::clone(&self.sql),
            one_by_one: pending.one_by_one,
            wallets: RowsToInsert::new(postgres, WALLET_WIDTH, pending.wallets),
            expenses: RowsToInsert::new(postgres, EXPENSE_WIDTH, pending.expenses),
            categories: pending.categories,
            voids: pending.voids,
            goal_moves: pending
                .goal_moves
                .into_iter()
                .flat_map(|(goal_id, amount)| [goal_id.to_string().into(), amount.into()])
                .collect(),
            sums: pending.sums,
        })
    }

    /// What one event adds to its page's writes.
    fn gather(fact: &Fact, event: &WalletEvent, pending: &mut Pending) -> Result<(), ApplyError> {
        let owner = fact.subject.to_string();
        let bad = |reason: String| ApplyError::Event {
            position: fact.position,
            reason,
        };
        let milli = |amount: Decimal| to_milli(amount).map_err(bad);
        match event {
            WalletEvent::WalletOpened { currency, .. } => {
                pending.wallets.extend([
                    owner.into(),
                    currency.code().into(),
                    i64::from(currency.minor_units()).into(),
                    Value::Int(0),
                    Value::Int(0),
                ]);
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
                    Value::from(*spent_on),
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
                    // Written by an earlier batch: voided with the others at the end.
                    None if pending.voided.insert(*expense_id) => {
                        pending.voids.push(EarlierVoid {
                            position: fact.position,
                            expense_id: *expense_id,
                            owner: fact.subject,
                            reason: reason.as_str().to_owned(),
                        });
                        return Ok(());
                    }
                    None => None,
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
                pending.one_by_one.push((
                    OneByOne::SetLimit,
                    vec![
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
                ));
            }
            WalletEvent::LimitRemoved { key } => {
                pending.one_by_one.push((
                    OneByOne::RemoveLimit,
                    vec![owner.into(), key_text(key).map_err(bad)?.into()],
                ));
            }
            // Alerts open tickets; they change nothing the customer's read models show.
            WalletEvent::LimitWarningReached { .. } | WalletEvent::LimitExceeded { .. } => {}
            WalletEvent::SavingsGoalCreated {
                goal_id,
                name,
                target,
                due,
            } => {
                pending.one_by_one.push((
                    OneByOne::CreateGoal,
                    vec![
                        goal_id.to_string().into(),
                        owner.into(),
                        name.as_str().into(),
                        milli(*target)?.into(),
                        Value::from(*due),
                    ],
                ));
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
                pending
                    .one_by_one
                    .push((OneByOne::ReachGoal, vec![goal_id.to_string().into()]));
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
        suffixed_tables(&TABLES, &self.suffix)
    }

    fn rows(&self) -> Vec<TableRows> {
        table_rows(self.tables(), &ROWS)
    }

    fn twin(&self, suffix: &str) -> Arc<dyn Projection> {
        Arc::new(Self::with_suffix(suffix))
    }

    fn reads(&self, fact: &Fact) -> bool {
        fact.is_of(Wallet::CATEGORY)
    }

    fn version(&self) -> i64 {
        1
    }

    async fn apply(&self, tx: &mut WriteTx, facts: &[&Fact]) -> Result<(), ApplyError> {
        self.prepared(facts, tx.is_postgres())?.write_page(tx).await
    }

    fn prepare(&self, facts: &[&Fact], postgres: bool) -> Prepared {
        Some(
            self.prepared(facts, postgres)
                .map(|page| Box::new(page) as Box<dyn PreparedWrites>),
        )
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
