//! What the customer reads about their wallet: the balance, the expense list and the
//! dashboard, queried from the `wallets` read model (see `projections::wallets`). The
//! shapes here are the API's.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, Months, NaiveDate};
use domain::wallet::{Category, LimitKey, Period};
use infrastructure::database::Database;
use projections::sql::{ExpenseKeys, Value, fetch_all};
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::openapi::PeriodSchema;

/// The most expenses one page holds.
pub const MAX_PAGE: usize = 200;
/// A page's size when none is asked for.
pub const DEFAULT_PAGE: usize = 50;
/// How many expenses the dashboard shows.
const RECENT_EXPENSES: usize = 10;
/// How many months the dashboard's trend covers, this one included.
const TREND_MONTHS: u32 = 12;

/// An amount stored in thousandths, as the API writes it: a string with the currency's
/// minor units, e.g. `"12.50"`.
#[must_use]
pub fn amount_text(milli: i64, minor_units: u32) -> String {
    decimal_text(Decimal::new(milli, 3), minor_units)
}

/// A day as the read models store it (`YYYY-MM-DD`).
///
/// # Errors
/// When the stored text is no such day.
pub(crate) fn stored_day(raw: &str) -> anyhow::Result<NaiveDate> {
    Ok(NaiveDate::parse_from_str(raw, "%Y-%m-%d")?)
}

/// `amount` shown with the currency's `minor_units` decimals.
#[must_use]
pub fn decimal_text(mut amount: Decimal, minor_units: u32) -> String {
    amount.rescale(minor_units);
    amount.to_string()
}

/// Which expenses to list, by their voided mark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VoidedFilter {
    /// Live and voided.
    #[default]
    All,
    /// Live ones only.
    Live,
    /// Voided ones only.
    Voided,
}

/// Which expenses to list.
#[derive(Debug, Clone, Default)]
pub struct ExpenseFilter {
    /// Spent on or after this day.
    pub from: Option<NaiveDate>,
    /// Spent on or before this day.
    pub to: Option<NaiveDate>,
    /// In this category (case does not matter).
    pub category: Option<Category>,
    /// Live, voided, or both.
    pub voided: VoidedFilter,
}

/// Where a page starts: just after the expense this names in the list's order (newest
/// `spent_on` first, then the most recently recorded first). Written `YYYY-MM-DD~<uuid>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    spent_on: NaiveDate,
    expense_id: Uuid,
}

impl Cursor {
    /// # Errors
    /// A message when `raw` is not a cursor this API handed out.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        const MALFORMED: &str = "must be a next_cursor from an earlier page";
        let (day, id) = raw.trim().split_once('~').ok_or(MALFORMED)?;
        Ok(Self {
            spent_on: crate::http::fields::day(day).map_err(|_| MALFORMED)?,
            expense_id: Uuid::parse_str(id).map_err(|_| MALFORMED)?,
        })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}~{}",
            self.spent_on.format("%Y-%m-%d"),
            self.expense_id
        )
    }
}

/// One expense in a list.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ToSchema)]
pub struct ExpenseItem {
    /// Its id.
    pub expense_id: Uuid,
    /// How much.
    pub amount: String,
    /// On what.
    pub category: String,
    /// Details.
    pub description: String,
    /// When, `YYYY-MM-DD`.
    pub spent_on: NaiveDate,
    /// A stored receipt.
    pub receipt_id: Option<Uuid>,
    /// Taken back.
    pub voided: bool,
    /// Why it was taken back.
    pub void_reason: Option<String>,
}

/// A page of expenses.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ExpensePage {
    /// The expenses, newest first.
    pub items: Vec<ExpenseItem>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

type ExpenseRow = (
    String,
    i64,
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<String>,
);

fn item(row: ExpenseRow, minor_units: u32) -> anyhow::Result<ExpenseItem> {
    let (expense_id, amount, category, description, spent_on, receipt_id, voided, void_reason) =
        row;
    Ok(ExpenseItem {
        expense_id: Uuid::parse_str(&expense_id)?,
        amount: amount_text(amount, minor_units),
        category,
        description,
        spent_on: stored_day(&spent_on)?,
        receipt_id: receipt_id.as_deref().map(Uuid::parse_str).transpose()?,
        voided: voided != 0,
        void_reason,
    })
}

/// A customer's wallet as the read model holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletRow {
    /// ISO 4217 code.
    pub currency: String,
    /// Decimals the currency shows.
    pub minor_units: u32,
    /// Spendable balance, thousandths.
    pub balance_milli: i64,
    /// In savings goals, thousandths.
    pub saved_milli: i64,
}

/// The customer's wallet, or `None` when the read model has none (yet).
///
/// # Errors
/// When the database fails.
pub async fn wallet(database: &Database, owner: Uuid) -> anyhow::Result<Option<WalletRow>> {
    let rows: Vec<(String, i64, i64, i64)> = fetch_all(
        database,
        "SELECT currency, minor_units, balance_milli, saved_milli FROM rm_wallets WHERE owner = $1",
        &[owner.to_string().into()],
    )
    .await?;
    Ok(rows
        .into_iter()
        .next()
        .map(
            |(currency, minor_units, balance_milli, saved_milli)| WalletRow {
                currency,
                minor_units: u32::try_from(minor_units).unwrap_or(2),
                balance_milli,
                saved_milli,
            },
        ))
}

/// The statements on the expense read model, written once for each database: on
/// PostgreSQL its ids and days are typed and its text parameters cast (ADR 0031).
struct ExpenseStatements {
    /// A page of the list: owner, from, to, category key, voided (-1 for both), the
    /// cursor's day and id ('' for the first page), rows.
    page: String,
    /// What was spent: owner, from, until (excluded), category key ('' for all).
    spent_between: String,
    /// Spending by category: owner, from, until.
    by_category: String,
    /// Spending by month: owner, from, until.
    months: String,
}

impl ExpenseStatements {
    fn of(database: &Database) -> &'static Self {
        static ON: std::sync::LazyLock<[ExpenseStatements; 2]> = std::sync::LazyLock::new(|| {
            [false, true]
                .map(|postgres| ExpenseStatements::written_for(ExpenseKeys::on_postgres(postgres)))
        });
        &ON[usize::from(matches!(database, Database::Postgres(_)))]
    }

    fn written_for(keys: ExpenseKeys) -> Self {
        let (owner, from, until) = (keys.id("$1"), keys.day("$2"), keys.day("$3"));
        let (first_day, last_day, after_day) = (
            keys.optional_day("$2"),
            keys.optional_day("$3"),
            keys.optional_day("$6"),
        );
        let month = keys.month_text("spent_on");
        Self {
            page: format!(
                "SELECT {}, amount_milli, category, description, {}, receipt_id, voided, void_reason \
                 FROM rm_expenses WHERE owner = {owner} \
                 AND ($2 = '' OR spent_on >= {first_day}) AND ($3 = '' OR spent_on <= {last_day}) \
                 AND ($4 = '' OR category_key = $4) AND ($5 = -1 OR voided = $5) \
                 AND ($6 = '' OR spent_on < {after_day} \
                      OR (spent_on = {after_day} AND expense_id < {})) \
                 ORDER BY spent_on DESC, expense_id DESC LIMIT $8",
                keys.id_text("expense_id"),
                keys.day_text("spent_on"),
                keys.optional_id("$7"),
            ),
            spent_between: format!(
                "SELECT CAST(COALESCE(SUM(amount_milli), 0) AS BIGINT) FROM rm_expenses \
                 WHERE owner = {owner} AND voided = 0 AND spent_on >= {from} AND spent_on < {until} \
                 AND ($4 = '' OR category_key = $4)"
            ),
            // The categories' owner is text on either database, the expenses' a uuid on
            // PostgreSQL: each is matched with the parameter in its own type.
            by_category: format!(
                "SELECT c.category, CAST(SUM(e.amount_milli) AS BIGINT) AS spent FROM rm_expenses e \
                 JOIN rm_categories c ON c.owner = $1 AND c.category_key = e.category_key \
                 WHERE e.owner = {owner} AND e.voided = 0 AND e.spent_on >= {from} \
                 AND e.spent_on < {until} \
                 GROUP BY e.category_key, c.category ORDER BY spent DESC, e.category_key"
            ),
            months: format!(
                "SELECT {month} AS month, CAST(SUM(amount_milli) AS BIGINT) FROM rm_expenses \
                 WHERE owner = {owner} AND voided = 0 AND spent_on >= {from} AND spent_on < {until} \
                 GROUP BY {month}"
            ),
        }
    }
}

/// The customer's expenses that `filter` admits, newest first, `limit` of them after
/// `after`.
///
/// # Errors
/// When the database fails.
pub async fn expense_page(
    database: &Database,
    owner: Uuid,
    minor_units: u32,
    filter: &ExpenseFilter,
    after: Option<Cursor>,
    limit: usize,
) -> anyhow::Result<ExpensePage> {
    let limit = limit.clamp(1, MAX_PAGE);
    let voided = match filter.voided {
        VoidedFilter::All => -1,
        VoidedFilter::Live => 0,
        VoidedFilter::Voided => 1,
    };
    let text = |value: Option<String>| Value::Text(value.unwrap_or_default());
    let rows: Vec<ExpenseRow> = fetch_all(
        database,
        &ExpenseStatements::of(database).page,
        &[
            owner.to_string().into(),
            text(filter.from.map(|d| d.format("%Y-%m-%d").to_string())),
            text(filter.to.map(|d| d.format("%Y-%m-%d").to_string())),
            text(filter.category.as_ref().map(|c| c.as_str().to_lowercase())),
            Value::Int(voided),
            text(after.map(|c| c.spent_on.format("%Y-%m-%d").to_string())),
            text(after.map(|c| c.expense_id.to_string())),
            Value::Int(i64::try_from(limit + 1).unwrap_or(i64::MAX)),
        ],
    )
    .await?;
    let mut items = rows
        .into_iter()
        .map(|row| item(row, minor_units))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let next_cursor = (items.len() > limit).then(|| {
        let last = &items[limit - 1];
        Cursor {
            spent_on: last.spent_on,
            expense_id: last.expense_id,
        }
        .to_string()
    });
    items.truncate(limit);
    Ok(ExpensePage { items, next_cursor })
}

/// A limit with this period's spending against it.
#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct LimitStatus {
    /// Weekly or monthly.
    #[schema(value_type = PeriodSchema)]
    pub period: Period,
    /// One category, or all spending.
    pub category: Option<String>,
    /// The most to spend per period.
    pub amount: String,
    /// Spent in the period that contains today.
    pub spent: String,
    /// `spent` as a whole percentage of `amount`, rounded down.
    pub percent: u32,
    /// Whether `spent` is past `amount` (`percent` is rounded down, so 100 may be past it).
    pub over: bool,
    /// The first day of that period.
    pub period_start: NaiveDate,
}

/// Spending in one category.
#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct CategorySpending {
    /// The category as first typed.
    pub category: String,
    /// How much.
    pub spent: String,
}

/// Spending in one calendar month.
#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct MonthSpending {
    /// `YYYY-MM`.
    pub month: String,
    /// How much.
    pub spent: String,
}

/// A savings goal's progress.
#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct GoalProgress {
    /// Its id.
    pub goal_id: Uuid,
    /// What for.
    pub name: String,
    /// How much to save.
    pub target: String,
    /// Saved so far.
    pub saved: String,
    /// `saved` as a whole percentage of `target`, rounded down.
    pub percent: u32,
    /// By when.
    pub due: Option<NaiveDate>,
    /// The target was reached.
    pub reached: bool,
}

/// Everything the customer sees first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Dashboard {
    /// Spendable balance; may be negative.
    pub balance: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Live spending this calendar month.
    pub spent_this_month: String,
    /// This month's spending per category, largest first.
    pub by_category: Vec<CategorySpending>,
    /// Spending per calendar month, the last twelve, oldest first.
    pub trend: Vec<MonthSpending>,
    /// Each limit with this period's spending.
    pub limits: Vec<LimitStatus>,
    /// The latest live expenses.
    pub recent_expenses: Vec<ExpenseItem>,
    /// Savings goals, by name.
    pub savings_goals: Vec<GoalProgress>,
    /// Tickets opened for this customer that are not resolved yet, oldest first.
    pub open_tickets: Vec<OpenTicket>,
    /// The next reminders and recurring payments, soonest first.
    pub upcoming_reminders: Vec<crate::schedule_views::Upcoming>,
}

/// A ticket of the customer's that is not resolved yet (`GET /api/v1/tickets` has the
/// whole list, with who works each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OpenTicket {
    /// The ticket.
    pub ticket_id: Uuid,
    /// `unassigned` or `assigned`.
    pub status: String,
    /// The crossed limit's period, `weekly` or `monthly`.
    pub period: String,
    /// Its category, or `None` for all spending.
    pub category: Option<String>,
    /// Spent when it was crossed.
    pub spent: String,
    /// When the ticket opened.
    pub opened_at: chrono::DateTime<chrono::Utc>,
}

pub(crate) async fn open_tickets(
    database: &Database,
    owner: Uuid,
    units: u32,
) -> anyhow::Result<Vec<OpenTicket>> {
    let rows: Vec<(String, String, String, Option<String>, i64, i64)> = fetch_all(
        database,
        "SELECT ticket_id, status, limit_period, limit_category, spent_milli, opened_at_us \
         FROM rm_tickets WHERE customer = $1 AND status <> 'resolved' ORDER BY opened_at",
        &[Value::Text(owner.to_string())],
    )
    .await?;
    rows.into_iter()
        .map(|(ticket_id, status, period, category, spent, opened_us)| {
            Ok(OpenTicket {
                ticket_id: Uuid::parse_str(&ticket_id)?,
                status,
                period,
                category,
                spent: amount_text(spent, units),
                opened_at: chrono::DateTime::from_timestamp_micros(opened_us)
                    .ok_or_else(|| anyhow::anyhow!("{opened_us} is not an instant"))?,
            })
        })
        .collect()
}

fn percent(part: i64, whole: i64) -> u32 {
    if whole <= 0 || part <= 0 {
        return 0;
    }
    u32::try_from(i128::from(part) * 100 / i128::from(whole)).unwrap_or(u32::MAX)
}

fn month_start(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// period, first day, category, category key, amount.
type LimitRow = (String, Option<i64>, Option<String>, Option<String>, i64);

/// A limit's period as the read models store it.
pub(crate) fn period_of(period: &str, first_day: Option<i64>) -> Period {
    match (period, first_day.and_then(|d| u8::try_from(d).ok())) {
        ("monthly", Some(first_day)) => Period::Monthly { first_day },
        ("monthly", None) => Period::Monthly { first_day: 1 },
        _ => Period::Weekly,
    }
}

/// The first day after the period that starts on `start`.
fn period_end(period: Period, start: NaiveDate) -> NaiveDate {
    match period {
        Period::Weekly => start.checked_add_days(Days::new(7)),
        Period::Monthly { .. } => start.checked_add_months(Months::new(1)),
    }
    .unwrap_or(start)
}

async fn spent_between(
    database: &Database,
    owner: Uuid,
    from: NaiveDate,
    until: NaiveDate,
    category_key: Option<&str>,
) -> anyhow::Result<i64> {
    let rows: Vec<(i64,)> = fetch_all(
        database,
        &ExpenseStatements::of(database).spent_between,
        &[
            owner.to_string().into(),
            from.into(),
            until.into(),
            Value::Text(category_key.unwrap_or_default().to_owned()),
        ],
    )
    .await?;
    Ok(rows.first().map_or(0, |row| row.0))
}

/// Each of the customer's limits with what was spent in its current period.
///
/// # Errors
/// When the database fails.
pub async fn limit_statuses(
    database: &Database,
    owner: Uuid,
    units: u32,
    today: NaiveDate,
) -> anyhow::Result<Vec<LimitStatus>> {
    let limit_rows: Vec<LimitRow> = fetch_all(
        database,
        "SELECT period, first_day, category, category_key, amount_milli FROM rm_limits \
         WHERE owner = $1 ORDER BY set_at",
        &[Value::Text(owner.to_string())],
    )
    .await?;
    let mut limits = Vec::with_capacity(limit_rows.len());
    for (period, first_day, category, category_key, amount) in limit_rows {
        let period = period_of(&period, first_day);
        let period_start = period.start_of(today);
        let spent = spent_between(
            database,
            owner,
            period_start,
            period_end(period, period_start),
            category_key.as_deref(),
        )
        .await?;
        limits.push(LimitStatus {
            period,
            category,
            amount: amount_text(amount, units),
            spent: amount_text(spent, units),
            percent: percent(spent, amount),
            over: spent > amount,
            period_start,
        });
    }
    Ok(limits)
}

/// One period of a limit's history: what was spent against it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ToSchema)]
pub struct PeriodSpending {
    /// The period's first day.
    pub period_start: NaiveDate,
    /// The day after its last.
    pub period_end: NaiveDate,
    /// Live spending in it that the limit covers.
    pub spent: String,
    /// Spending against `limit_amount`, in percent.
    pub percent: u32,
    /// At or past the limit.
    pub over: bool,
}

/// The spending against the limit `key` (of `limit_milli`) over the `count` periods up to
/// the one that holds `last_start`, oldest first.
///
/// # Errors
/// When the database fails.
pub async fn limit_history(
    database: &Database,
    owner: Uuid,
    units: u32,
    key: &LimitKey,
    limit_milli: i64,
    last_start: NaiveDate,
    count: usize,
) -> anyhow::Result<Vec<PeriodSpending>> {
    let period = key.period;
    let category = key
        .category
        .as_ref()
        .map(|c| c.as_str().to_lowercase())
        .unwrap_or_default();
    let mut starts = vec![period.start_of(last_start)];
    while starts.len() < count {
        let Some(before) = starts.last().and_then(|start| start.pred_opt()) else {
            break;
        };
        starts.push(period.start_of(before));
    }
    let mut history = Vec::with_capacity(starts.len());
    for start in starts.into_iter().rev() {
        let end = period_end(period, start);
        let spent = spent_between(database, owner, start, end, Some(&category)).await?;
        history.push(PeriodSpending {
            period_start: start,
            period_end: end,
            spent: amount_text(spent, units),
            percent: percent(spent, limit_milli),
            over: spent >= limit_milli,
        });
    }
    Ok(history)
}

/// The customer's latest live expenses.
///
/// # Errors
/// When the database fails.
pub async fn recent_expenses(
    database: &Database,
    owner: Uuid,
    units: u32,
) -> anyhow::Result<Vec<ExpenseItem>> {
    Ok(expense_page(
        database,
        owner,
        units,
        &ExpenseFilter {
            voided: VoidedFilter::Live,
            ..ExpenseFilter::default()
        },
        None,
        RECENT_EXPENSES,
    )
    .await?
    .items)
}

/// The customer's savings goals with their progress, by name.
///
/// # Errors
/// When the database fails.
pub async fn savings_goals(
    database: &Database,
    owner: Uuid,
    units: u32,
) -> anyhow::Result<Vec<GoalProgress>> {
    let goal_rows: Vec<(String, String, i64, i64, Option<String>, i64)> = fetch_all(
        database,
        "SELECT goal_id, name, target_milli, saved_milli, due, reached FROM rm_goals \
         WHERE owner = $1 ORDER BY name, goal_id",
        &[Value::Text(owner.to_string())],
    )
    .await?;
    goal_rows
        .into_iter()
        .map(|(goal_id, name, target, saved, due, reached)| {
            Ok(GoalProgress {
                goal_id: Uuid::parse_str(&goal_id)?,
                name,
                target: amount_text(target, units),
                saved: amount_text(saved, units),
                percent: percent(saved, target).min(100),
                due: due.as_deref().map(stored_day).transpose()?,
                reached: reached != 0,
            })
        })
        .collect()
}

/// The customer's dashboard on `today`, or `None` when the read model has no wallet.
///
/// # Errors
/// When the database fails.
pub async fn dashboard(
    database: &Database,
    owner: Uuid,
    today: NaiveDate,
) -> anyhow::Result<Option<Dashboard>> {
    let Some(wallet) = wallet(database, owner).await? else {
        return Ok(None);
    };
    let units = wallet.minor_units;
    let id = || Value::Text(owner.to_string());
    let this_month = month_start(today);
    let next_month = this_month
        .checked_add_months(Months::new(1))
        .unwrap_or(this_month);
    let first_month = this_month
        .checked_sub_months(Months::new(TREND_MONTHS - 1))
        .unwrap_or(this_month);

    let statements = ExpenseStatements::of(database);
    let by_category: Vec<(String, i64)> = fetch_all(
        database,
        &statements.by_category,
        &[id(), this_month.into(), next_month.into()],
    )
    .await?;
    let spent_this_month = by_category.iter().map(|(_, spent)| spent).sum();

    let months: Vec<(String, i64)> = fetch_all(
        database,
        &statements.months,
        &[id(), first_month.into(), next_month.into()],
    )
    .await?;
    let months: BTreeMap<String, i64> = months.into_iter().collect();
    let trend = (0..TREND_MONTHS)
        .filter_map(|i| first_month.checked_add_months(Months::new(i)))
        .map(|month| {
            let key = month.format("%Y-%m").to_string();
            let spent = months.get(&key).copied().unwrap_or(0);
            MonthSpending {
                month: key,
                spent: amount_text(spent, units),
            }
        })
        .collect();

    let limits = limit_statuses(database, owner, units, today).await?;
    let recent = recent_expenses(database, owner, units).await?;

    let savings_goals = savings_goals(database, owner, units).await?;

    Ok(Some(Dashboard {
        balance: amount_text(wallet.balance_milli, units),
        currency: wallet.currency,
        spent_this_month: amount_text(spent_this_month, units),
        by_category: by_category
            .into_iter()
            .map(|(category, spent)| CategorySpending {
                category,
                spent: amount_text(spent, units),
            })
            .collect(),
        trend,
        limits,
        recent_expenses: recent,
        savings_goals,
        open_tickets: open_tickets(database, owner, units).await?,
        upcoming_reminders: crate::schedule_views::upcoming(database, owner, units).await?,
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use domain::money::Currency;
    use domain::user::UserId;
    use domain::wallet::{Description, GoalName, LimitKey, WalletEvent};
    use infrastructure::event_codec::encode;
    use infrastructure::event_store::{
        AppendRequest, EventMetadata, EventStore, ExpectedVersion, GroupCommitSettings,
        SqlEventStore, StreamId,
    };
    use infrastructure::testing::TestDatabase;
    use projections::ProjectionRunner;

    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a date")
    }

    fn money(text: &str) -> Decimal {
        text.parse().expect("a decimal")
    }

    fn category(name: &str) -> Category {
        Category::parse(name).expect("a category")
    }

    fn expense(n: u128, amount: &str, name: &str, spent_on: NaiveDate) -> WalletEvent {
        WalletEvent::ExpenseRecorded {
            expense_id: Uuid::from_u128(n),
            amount: money(amount),
            category: category(name),
            description: Description::parse(&format!("expense {n}")).expect("text"),
            spent_on,
            receipt_id: None,
        }
    }

    /// A read model built by the real projection from the wallet of customer 99 opened
    /// in EUR, followed by `events`.
    async fn read_model(events: &[WalletEvent]) -> (TestDatabase, Database) {
        let test_database = TestDatabase::sqlite();
        let database = test_database.connect().await;
        let store = SqlEventStore::open(database.clone(), GroupCommitSettings::default())
            .await
            .expect("store");
        let store: Arc<dyn EventStore> = Arc::new(store);
        let opened = WalletEvent::WalletOpened {
            owner: UserId(OWNER),
            currency: Currency::parse("EUR").expect("currency"),
        };
        let encoded = std::iter::once(&opened)
            .chain(events)
            .map(|event| encode(event, Uuid::new_v4()).expect("encodes"))
            .collect();
        let request = AppendRequest::new(
            StreamId::for_aggregate("wallet", OWNER),
            ExpectedVersion::NoStream,
            EventMetadata {
                command_id: Uuid::new_v4(),
                correlation_id: Uuid::new_v4(),
                causation_id: None,
                actor: "test".into(),
                recorded_at: chrono::Utc::now(),
                request_id: None,
            },
            encoded,
        );
        store.append(request).await.expect("appended");
        let runner = ProjectionRunner::new(store, database.clone(), projections::all(), 3)
            .await
            .expect("runner");
        runner.catch_up().await.expect("projected");
        (test_database, database)
    }

    const OWNER: Uuid = Uuid::from_u128(99);

    async fn page(
        database: &Database,
        filter: &ExpenseFilter,
        after: Option<Cursor>,
        limit: usize,
    ) -> ExpensePage {
        expense_page(database, OWNER, 2, filter, after, limit)
            .await
            .expect("a page")
    }

    fn ids(page: &ExpensePage) -> Vec<u128> {
        page.items.iter().map(|i| i.expense_id.as_u128()).collect()
    }

    #[tokio::test]
    async fn pages_walk_every_expense_once_newest_first() {
        let history: Vec<WalletEvent> = (1..=7)
            .map(|n| {
                expense(
                    n,
                    "1",
                    "food",
                    day(2026, 11, u32::try_from(n % 3 + 1).expect("small")),
                )
            })
            .collect();
        let (_kept, database) = read_model(&history).await;
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = page(&database, &ExpenseFilter::default(), after, 3).await;
            seen.extend(ids(&page));
            match page.next_cursor {
                Some(next) => after = Some(Cursor::parse(&next).expect("our own cursor")),
                None => break,
            }
        }
        // Days: 1,4,7 -> the 2nd; 2,5 -> the 3rd; 3,6 -> the 1st.
        assert_eq!(seen, vec![5, 2, 7, 4, 1, 6, 3]);
    }

    #[tokio::test]
    async fn filters_combine_and_the_last_page_has_no_cursor() {
        let (_kept, database) = read_model(&[
            expense(1, "5", "Food", day(2026, 10, 31)),
            expense(2, "6", "food", day(2026, 11, 1)),
            expense(3, "7", "rent", day(2026, 11, 1)),
            expense(4, "8", "food", day(2026, 11, 30)),
            WalletEvent::ExpenseVoided {
                expense_id: Uuid::from_u128(4),
                reason: Description::parse("twice").expect("text"),
            },
        ])
        .await;
        let filter = ExpenseFilter {
            from: Some(day(2026, 11, 1)),
            to: None,
            category: Some(category("FOOD")),
            voided: VoidedFilter::All,
        };
        let found = page(&database, &filter, None, 10).await;
        assert_eq!(ids(&found), vec![4, 2]);
        assert_eq!(found.next_cursor, None);
        assert_eq!(found.items[0].void_reason.as_deref(), Some("twice"));
        assert_eq!(found.items[1].amount, "6.00");

        let live = ExpenseFilter {
            voided: VoidedFilter::Live,
            to: Some(day(2026, 11, 1)),
            ..ExpenseFilter::default()
        };
        assert_eq!(ids(&page(&database, &live, None, 10).await), vec![3, 2, 1]);
        let voided = ExpenseFilter {
            voided: VoidedFilter::Voided,
            ..ExpenseFilter::default()
        };
        assert_eq!(ids(&page(&database, &voided, None, 10).await), vec![4]);
    }

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let cursor = Cursor {
            spent_on: day(2026, 1, 2),
            expense_id: Uuid::from_u128(7),
        };
        assert_eq!(Cursor::parse(&cursor.to_string()), Ok(cursor));
        for bad in [
            "",
            "2026-01-02",
            "2026-13-02~00000000-0000-0000-0000-000000000007",
            "x~y",
        ] {
            assert!(Cursor::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_dashboard_sums_this_month_per_category_and_tracks_limits_and_goals() {
        let today = day(2026, 11, 21);
        let goal = Uuid::from_u128(50);
        let (_kept, database) = read_model(&[
            WalletEvent::WalletToppedUp {
                amount: money("100"),
                note: Description::parse("").expect("text"),
            },
            WalletEvent::LimitSet {
                key: LimitKey {
                    period: Period::Monthly { first_day: 1 },
                    category: Some(category("food")),
                },
                amount: money("40"),
            },
            expense(1, "12.5", "Food", day(2026, 11, 2)),
            expense(2, "20", "food", day(2026, 11, 20)),
            expense(3, "30", "rent", day(2026, 11, 3)),
            expense(4, "9", "food", day(2025, 12, 31)),
            expense(5, "99", "food", day(2026, 11, 21)),
            WalletEvent::ExpenseVoided {
                expense_id: Uuid::from_u128(5),
                reason: Description::parse("wrong").expect("text"),
            },
            WalletEvent::SavingsGoalCreated {
                goal_id: goal,
                name: GoalName::parse("Bike").expect("name"),
                target: money("300"),
                due: None,
            },
            WalletEvent::SavingsContributed {
                goal_id: goal,
                amount: money("75"),
            },
        ])
        .await;
        let board = dashboard(&database, OWNER, today)
            .await
            .expect("read")
            .expect("a wallet");
        assert_eq!(board.balance, "-46.50");
        assert_eq!(board.currency, "EUR");
        assert_eq!(board.spent_this_month, "62.50");
        assert_eq!(
            board.by_category,
            vec![
                CategorySpending {
                    category: "Food".into(),
                    spent: "32.50".into()
                },
                CategorySpending {
                    category: "rent".into(),
                    spent: "30.00".into()
                },
            ]
        );
        assert_eq!(board.trend.len(), 12);
        assert_eq!(board.trend[0].month, "2025-12");
        assert_eq!(board.trend[0].spent, "9.00");
        assert_eq!(board.trend[11].spent, "62.50");
        assert_eq!(board.limits[0].spent, "32.50");
        assert_eq!(board.limits[0].percent, 81);
        assert_eq!(board.limits[0].period_start, day(2026, 11, 1));
        assert_eq!(
            board
                .recent_expenses
                .iter()
                .map(|e| e.expense_id.as_u128())
                .collect::<Vec<_>>(),
            vec![2, 3, 1, 4],
            "live ones only, newest first"
        );
        assert_eq!(board.savings_goals[0].saved, "75.00");
        assert_eq!(board.savings_goals[0].percent, 25);
    }
}
