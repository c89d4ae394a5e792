//! What the customer reads about their wallet: the expense list and the dashboard. Until the
//! read models serve them, both are computed from the wallet's decoded state (kept warm by
//! the command service's cache); the shapes here are the API's and stay when the source
//! changes.

use std::collections::BTreeMap;

use chrono::{Datelike, Months, NaiveDate};
use domain::money::Currency;
use domain::wallet::{Category, ExpenseState, OpenWallet, Period};
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

/// An amount as the API writes it: a string with the currency's minor units, e.g. `"12.50"`.
#[must_use]
pub fn amount_text(amount: Decimal, currency: Currency) -> String {
    let mut amount = amount;
    amount.rescale(currency.minor_units());
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

impl ExpenseFilter {
    fn admits(&self, expense: &ExpenseState) -> bool {
        self.from.is_none_or(|from| expense.spent_on >= from)
            && self.to.is_none_or(|to| expense.spent_on <= to)
            && self
                .category
                .as_ref()
                .is_none_or(|category| *category == expense.category)
            && match self.voided {
                VoidedFilter::All => true,
                VoidedFilter::Live => !expense.voided,
                VoidedFilter::Voided => expense.voided,
            }
    }
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
            spent_on: NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| MALFORMED)?,
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
#[derive(Debug, Serialize, ToSchema)]
pub struct ExpensePage {
    /// The expenses, newest first.
    pub items: Vec<ExpenseItem>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

fn item(wallet: &OpenWallet, expense_id: Uuid, expense: &ExpenseState) -> ExpenseItem {
    ExpenseItem {
        expense_id,
        amount: amount_text(expense.amount, wallet.currency),
        category: expense.category.as_str().to_owned(),
        description: expense.description.as_str().to_owned(),
        spent_on: expense.spent_on,
        receipt_id: expense.receipt_id,
        voided: expense.voided,
        void_reason: expense.void_reason.as_ref().map(|r| r.as_str().to_owned()),
    }
}

/// The wallet's expenses that `filter` admits, newest first, `limit` of them after `after`.
#[must_use]
pub fn expense_page(
    wallet: &OpenWallet,
    filter: &ExpenseFilter,
    after: Option<Cursor>,
    limit: usize,
) -> ExpensePage {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut matching: Vec<(Cursor, &ExpenseState)> = wallet
        .expenses
        .iter()
        .filter(|(_, expense)| filter.admits(expense))
        .map(|(id, expense)| {
            let at = Cursor {
                spent_on: expense.spent_on,
                expense_id: *id,
            };
            (at, expense)
        })
        .filter(|(at, _)| after.is_none_or(|after| *at < after))
        .collect();
    matching.sort_unstable_by_key(|(at, _)| std::cmp::Reverse(*at));
    let next_cursor = (matching.len() > limit).then(|| matching[limit - 1].0.to_string());
    matching.truncate(limit);
    ExpensePage {
        items: matching
            .into_iter()
            .map(|(at, expense)| item(wallet, at.expense_id, expense))
            .collect(),
        next_cursor,
    }
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
    /// Tickets opened for this customer that are not resolved yet.
    #[schema(value_type = Vec<Object>)]
    pub open_tickets: Vec<serde_json::Value>,
}

fn percent(part: Decimal, whole: Decimal) -> u32 {
    if whole <= Decimal::ZERO {
        return 0;
    }
    (part * Decimal::ONE_HUNDRED / whole)
        .floor()
        .try_into()
        .unwrap_or(u32::MAX)
}

fn month_start(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// The dashboard of `wallet` on `today`.
#[must_use]
pub fn dashboard(wallet: &OpenWallet, today: NaiveDate) -> Dashboard {
    let currency = wallet.currency;
    let this_month = month_start(today);
    let first_month = this_month
        .checked_sub_months(Months::new(TREND_MONTHS - 1))
        .unwrap_or(this_month);
    // Oldest first, so that a category's name is shown as it was first typed.
    let mut live: Vec<(Cursor, &ExpenseState)> = wallet
        .expenses
        .iter()
        .filter(|(_, e)| !e.voided)
        .map(|(id, e)| {
            let at = Cursor {
                spent_on: e.spent_on,
                expense_id: *id,
            };
            (at, e)
        })
        .collect();
    live.sort_unstable_by_key(|(at, _)| *at);

    let mut by_month: BTreeMap<NaiveDate, Decimal> = (0..TREND_MONTHS)
        .filter_map(|i| first_month.checked_add_months(Months::new(i)))
        .map(|month| (month, Decimal::ZERO))
        .collect();
    // Keyed by the category itself so that "Food" and "food" count together; the name
    // shown is the first one met.
    let mut by_category: Vec<(Category, Decimal)> = Vec::new();
    for (_, expense) in &live {
        if let Some(spent) = by_month.get_mut(&month_start(expense.spent_on)) {
            *spent += expense.amount;
        }
        if month_start(expense.spent_on) == this_month {
            match by_category.iter_mut().find(|(c, _)| *c == expense.category) {
                Some((_, spent)) => *spent += expense.amount,
                None => by_category.push((expense.category.clone(), expense.amount)),
            }
        }
    }
    by_category.sort_by(|a, b| {
        b.1.cmp(&a.1).then_with(|| {
            a.0.as_str()
                .to_lowercase()
                .cmp(&b.0.as_str().to_lowercase())
        })
    });
    let spent_this_month = by_category.iter().map(|(_, spent)| *spent).sum();

    let limits = wallet
        .limits
        .iter()
        .map(|(key, amount)| {
            let period_start = key.period.start_of(today);
            let spent = wallet.spent(key, period_start);
            LimitStatus {
                period: key.period,
                category: key.category.as_ref().map(|c| c.as_str().to_owned()),
                amount: amount_text(*amount, currency),
                spent: amount_text(spent, currency),
                percent: percent(spent, *amount),
                period_start,
            }
        })
        .collect();

    let recent = live.iter().rev().take(RECENT_EXPENSES);

    let mut savings_goals: Vec<GoalProgress> = wallet
        .goals
        .iter()
        .map(|(goal_id, goal)| GoalProgress {
            goal_id: *goal_id,
            name: goal.name.as_str().to_owned(),
            target: amount_text(goal.target, currency),
            saved: amount_text(goal.saved, currency),
            percent: percent(goal.saved, goal.target).min(100),
            due: goal.due,
            reached: goal.reached,
        })
        .collect();
    savings_goals.sort_by(|a, b| a.name.cmp(&b.name).then(a.goal_id.cmp(&b.goal_id)));

    Dashboard {
        balance: amount_text(wallet.balance, currency),
        currency: currency.code().to_owned(),
        spent_this_month: amount_text(spent_this_month, currency),
        by_category: by_category
            .into_iter()
            .map(|(category, spent)| CategorySpending {
                category: category.as_str().to_owned(),
                spent: amount_text(spent, currency),
            })
            .collect(),
        trend: by_month
            .into_iter()
            .map(|(month, spent)| MonthSpending {
                month: month.format("%Y-%m").to_string(),
                spent: amount_text(spent, currency),
            })
            .collect(),
        limits,
        recent_expenses: recent
            .map(|(at, expense)| item(wallet, at.expense_id, expense))
            .collect(),
        savings_goals,
        // Tickets are opened by the support process, which reads the wallet's limit events
        // and keeps its own streams; until it exists no customer has one.
        open_tickets: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use domain::Aggregate;
    use domain::user::UserId;
    use domain::wallet::{Description, GoalName, LimitKey, Wallet, WalletEvent};

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

    fn wallet(events: &[WalletEvent]) -> OpenWallet {
        let opened = WalletEvent::WalletOpened {
            owner: UserId(Uuid::from_u128(99)),
            currency: Currency::parse("EUR").expect("currency"),
        };
        match Wallet::replay(std::iter::once(&opened).chain(events)) {
            Wallet::Open(wallet) => *wallet,
            Wallet::Unopened => panic!("opened above"),
        }
    }

    fn ids(page: &ExpensePage) -> Vec<u128> {
        page.items.iter().map(|i| i.expense_id.as_u128()).collect()
    }

    #[test]
    fn pages_walk_every_expense_once_newest_first() {
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
        let wallet = wallet(&history);
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = expense_page(&wallet, &ExpenseFilter::default(), after, 3);
            seen.extend(ids(&page));
            match page.next_cursor {
                Some(next) => after = Some(Cursor::parse(&next).expect("our own cursor")),
                None => break,
            }
        }
        // Days: 1,4,7 -> the 2nd; 2,5 -> the 3rd; 3,6 -> the 1st.
        assert_eq!(seen, vec![5, 2, 7, 4, 1, 6, 3]);
    }

    #[test]
    fn filters_combine_and_the_last_page_has_no_cursor() {
        let wallet = wallet(&[
            expense(1, "5", "Food", day(2026, 10, 31)),
            expense(2, "6", "food", day(2026, 11, 1)),
            expense(3, "7", "rent", day(2026, 11, 1)),
            expense(4, "8", "food", day(2026, 11, 30)),
            WalletEvent::ExpenseVoided {
                expense_id: Uuid::from_u128(4),
                reason: Description::parse("twice").expect("text"),
            },
        ]);
        let filter = ExpenseFilter {
            from: Some(day(2026, 11, 1)),
            to: None,
            category: Some(category("FOOD")),
            voided: VoidedFilter::All,
        };
        let page = expense_page(&wallet, &filter, None, 10);
        assert_eq!(ids(&page), vec![4, 2]);
        assert_eq!(page.next_cursor, None);
        assert_eq!(page.items[0].void_reason.as_deref(), Some("twice"));
        assert_eq!(page.items[1].amount, "6.00");

        let live = ExpenseFilter {
            voided: VoidedFilter::Live,
            to: Some(day(2026, 11, 1)),
            ..ExpenseFilter::default()
        };
        assert_eq!(ids(&expense_page(&wallet, &live, None, 10)), vec![3, 2, 1]);
        let voided = ExpenseFilter {
            voided: VoidedFilter::Voided,
            ..ExpenseFilter::default()
        };
        assert_eq!(ids(&expense_page(&wallet, &voided, None, 10)), vec![4]);
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

    #[test]
    fn the_dashboard_sums_this_month_per_category_and_tracks_limits_and_goals() {
        let today = day(2026, 11, 21);
        let goal = Uuid::from_u128(50);
        let wallet = wallet(&[
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
        ]);
        let board = dashboard(&wallet, today);
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
