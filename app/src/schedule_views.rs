//! What customers read about their reminders and recurring payments: the lists, and the
//! dashboard's upcoming reminders. Read from the `schedules` read model, never from the
//! schedule aggregate.

use chrono::NaiveDate;
use infrastructure::database::Database;
use projections::sql::{Value, fetch_all};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::wallet_views::{amount_text, stored_day, wallet};

/// How many upcoming reminders the dashboard shows.
pub const UPCOMING: i64 = 5;
/// The most reminders or payments one list shows.
pub const MAX_LISTED: i64 = 500;

/// A reminder of the customer's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReminderView {
    /// The reminder.
    pub reminder_id: Uuid,
    /// What about.
    pub title: String,
    /// Its first date.
    pub first_due: NaiveDate,
    /// `weekly`, `monthly`, `yearly`, or `None` for once.
    pub repeat: Option<String>,
    /// The next date it is mailed on; `None` once it has ended.
    pub next_due: Option<NaiveDate>,
    /// `active`, `done` or `cancelled`.
    pub status: String,
    /// How many times it was mailed.
    pub sent: i64,
    /// The date of the last one mailed.
    pub last_sent_on: Option<NaiveDate>,
}

/// A recurring payment of the customer's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PaymentView {
    /// The payment.
    pub payment_id: Uuid,
    /// Each occurrence's amount.
    pub amount: String,
    /// Its currency.
    pub currency: String,
    /// The expenses' category.
    pub category: String,
    /// The expenses' description.
    pub description: String,
    /// `weekly`, `monthly` or `yearly`.
    pub cadence: String,
    /// Its first date.
    pub first_due: NaiveDate,
    /// Days of warning before each date.
    pub remind_days_before: i64,
    /// The next date an expense is recorded on; `None` once cancelled.
    pub next_due: Option<NaiveDate>,
    /// The day the next reminder goes out; `None` when it went out or the payment ended.
    pub next_reminder: Option<NaiveDate>,
    /// `active` or `cancelled`.
    pub status: String,
    /// Occurrences recorded as expenses.
    pub recorded: i64,
    /// Occurrences the wallet refused.
    pub refused: i64,
    /// The date of the last occurrence settled.
    pub last_settled_on: Option<NaiveDate>,
}

/// Something coming up, for the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Upcoming {
    /// `reminder` or `payment`.
    pub kind: String,
    /// The reminder or payment.
    pub id: Uuid,
    /// A reminder's title, or a payment's category (and description).
    pub title: String,
    /// Its next date.
    pub due: NaiveDate,
    /// A payment's amount.
    pub amount: Option<String>,
}

fn optional_day(raw: Option<&str>) -> anyhow::Result<Option<NaiveDate>> {
    raw.map(stored_day).transpose()
}

/// The customer's reminders, the running ones first by their next date, then the ended
/// ones, newest first.
///
/// # Errors
/// When the database fails.
pub async fn reminders(database: &Database, customer: Uuid) -> anyhow::Result<Vec<ReminderView>> {
    type Row = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        String,
        i64,
        Option<String>,
    );
    let rows: Vec<Row> = fetch_all(
        database,
        "SELECT reminder_id, title, first_due, repeat, next_due, status, sent, last_sent_on \
         FROM rm_reminders WHERE customer = $1 \
         ORDER BY CASE WHEN status = 'active' THEN 0 ELSE 1 END, next_due, set_at DESC \
         LIMIT $2",
        &[Value::Text(customer.to_string()), Value::Int(MAX_LISTED)],
    )
    .await?;
    rows.into_iter()
        .map(
            |(id, title, first_due, repeat, next_due, status, sent, last_sent_on)| {
                Ok(ReminderView {
                    reminder_id: Uuid::parse_str(&id)?,
                    title,
                    first_due: stored_day(&first_due)?,
                    repeat,
                    next_due: optional_day(next_due.as_deref())?,
                    status,
                    sent,
                    last_sent_on: optional_day(last_sent_on.as_deref())?,
                })
            },
        )
        .collect()
}

/// The customer's recurring payments, the running ones first by their next date.
///
/// # Errors
/// When the database fails.
pub async fn payments(database: &Database, customer: Uuid) -> anyhow::Result<Vec<PaymentView>> {
    // The wallet's decimals (2 before it exists).
    let units = wallet(database, customer)
        .await?
        .map_or(2, |w| w.minor_units);
    type Row = (
        String,
        i64,
        String,
        String,
        String,
        String,
        String,
        i64,
        Option<String>,
        Option<String>,
        String,
        i64,
        i64,
        Option<String>,
    );
    let rows: Vec<Row> = fetch_all(
        database,
        "SELECT payment_id, amount_milli, currency, category, description, cadence, first_due, \
         remind_before, next_due, next_reminder, status, recorded, refused, last_settled_on \
         FROM rm_recurring_payments WHERE customer = $1 \
         ORDER BY CASE WHEN status = 'active' THEN 0 ELSE 1 END, next_due, scheduled_at DESC \
         LIMIT $2",
        &[Value::Text(customer.to_string()), Value::Int(MAX_LISTED)],
    )
    .await?;
    rows.into_iter()
        .map(|row| {
            let (id, milli, currency, category, description, cadence, first_due, before) =
                (row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7);
            Ok(PaymentView {
                payment_id: Uuid::parse_str(&id)?,
                amount: amount_text(milli, units),
                currency,
                category,
                description,
                cadence,
                first_due: stored_day(&first_due)?,
                remind_days_before: before,
                next_due: optional_day(row.8.as_deref())?,
                next_reminder: optional_day(row.9.as_deref())?,
                status: row.10,
                recorded: row.11,
                refused: row.12,
                last_settled_on: optional_day(row.13.as_deref())?,
            })
        })
        .collect()
}

/// The next reminders and payments of the customer's, soonest first.
///
/// # Errors
/// When the database fails.
pub async fn upcoming(
    database: &Database,
    customer: Uuid,
    units: u32,
) -> anyhow::Result<Vec<Upcoming>> {
    let rows: Vec<(String, String, String, String, String, Option<i64>)> = fetch_all(
        database,
        "SELECT kind, id, title, description, due, amount_milli FROM ( \
         SELECT 'reminder' AS kind, reminder_id AS id, title, '' AS description, \
         next_due AS due, NULL AS amount_milli FROM rm_reminders \
         WHERE customer = $1 AND status = 'active' \
         UNION ALL SELECT 'payment', payment_id, category, description, next_due, amount_milli \
         FROM rm_recurring_payments WHERE customer = $1 AND status = 'active') AS coming \
         ORDER BY due, kind, id LIMIT $2",
        &[Value::Text(customer.to_string()), Value::Int(UPCOMING)],
    )
    .await?;
    rows.into_iter()
        .map(|(kind, id, title, description, due, amount)| {
            Ok(Upcoming {
                kind,
                id: Uuid::parse_str(&id)?,
                title: if description.is_empty() {
                    title
                } else {
                    format!("{title}: {description}")
                },
                due: stored_day(&due)?,
                amount: amount.map(|milli| amount_text(milli, units)),
            })
        })
        .collect()
}
