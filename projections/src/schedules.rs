//! The `schedules` projection: each customer's reminders (`rm_reminders`) and recurring
//! payments (`rm_recurring_payments`) with their next dates. The reminders pages and the
//! dashboard's upcoming reminders read them, and the scheduler finds the customers with
//! something due in them.

use std::sync::Arc;

use domain::Aggregate;
use domain::schedule::{RemindBefore, Schedule, ScheduleEvent, Settlement};

use crate::facts::{Fact, What};
use crate::projection::{
    ApplyError, Projection, TableRows, TableShape, suffixed_tables, table_rows,
};
use crate::sql::{Value, WriteTx};
use crate::wallets::to_milli;

/// The read model's tables.
pub const TABLES: [&str; 2] = ["rm_reminders", "rm_recurring_payments"];

const ROWS: [TableShape; 2] = [
    &[
        "reminder_id",
        "customer",
        "title",
        "first_due",
        "repeat",
        "next_due",
        "status",
        "sent",
        "last_sent_on",
        "set_at",
    ],
    &[
        "payment_id",
        "customer",
        "amount_milli",
        "currency",
        "category",
        "description",
        "cadence",
        "first_due",
        "remind_before",
        "next_due",
        "next_reminder",
        "status",
        "recorded",
        "refused",
        "last_settled_on",
        "scheduled_at",
    ],
];

/// The statements, for one set of tables (the live ones, or a rebuild's).
#[derive(Debug, Clone)]
struct Sql {
    set_reminder: String,
    cancel_reminder: String,
    reminder_sent: String,
    schedule_payment: String,
    cancel_payment: String,
    payment_reminded: String,
    remind_before: String,
    payment_settled: String,
}

impl Sql {
    fn for_suffix(suffix: &str) -> Self {
        let reminders = format!("{}{suffix}", TABLES[0]);
        let payments = format!("{}{suffix}", TABLES[1]);
        Self {
            set_reminder: format!(
                "INSERT INTO {reminders} (reminder_id, customer, title, first_due, repeat, \
                 next_due, status, sent, last_sent_on, set_at) \
                 VALUES ($1, $2, $3, $4, $5, $4, 'active', 0, NULL, $6)"
            ),
            cancel_reminder: format!(
                "UPDATE {reminders} SET status = 'cancelled', next_due = NULL WHERE reminder_id = $1"
            ),
            reminder_sent: format!(
                "UPDATE {reminders} SET sent = sent + 1, last_sent_on = $2, next_due = $3, \
                 status = CASE WHEN $3 IS NULL THEN 'done' ELSE status END WHERE reminder_id = $1"
            ),
            schedule_payment: format!(
                "INSERT INTO {payments} (payment_id, customer, amount_milli, currency, category, \
                 description, cadence, first_due, remind_before, next_due, next_reminder, status, \
                 recorded, refused, last_settled_on, scheduled_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $10, 'active', 0, 0, NULL, $11)"
            ),
            cancel_payment: format!(
                "UPDATE {payments} SET status = 'cancelled', next_due = NULL, next_reminder = NULL \
                 WHERE payment_id = $1"
            ),
            payment_reminded: format!(
                "UPDATE {payments} SET next_reminder = NULL WHERE payment_id = $1"
            ),
            remind_before: format!("SELECT remind_before FROM {payments} WHERE payment_id = $1"),
            payment_settled: format!(
                "UPDATE {payments} SET recorded = recorded + $2, refused = refused + $3, \
                 last_settled_on = $4, next_due = $5, next_reminder = $6 WHERE payment_id = $1"
            ),
        }
    }
}

/// The projection, writing to the live tables or (for a rebuild) to suffixed twins.
#[derive(Debug, Clone)]
pub struct SchedulesProjection {
    name: String,
    suffix: String,
    sql: Sql,
}

impl Default for SchedulesProjection {
    fn default() -> Self {
        Self::with_suffix("")
    }
}

impl SchedulesProjection {
    fn with_suffix(suffix: &str) -> Self {
        Self {
            name: format!("schedules{suffix}"),
            suffix: suffix.to_owned(),
            sql: Sql::for_suffix(suffix),
        }
    }

    async fn apply_one(
        &self,
        tx: &mut WriteTx,
        fact: &Fact,
        event: &ScheduleEvent,
    ) -> Result<(), ApplyError> {
        let customer = fact.subject.to_string();
        let position = i64::try_from(fact.position.0).unwrap_or(i64::MAX);
        let bad = |reason: String| ApplyError::Event {
            position: fact.position,
            reason,
        };
        match event {
            ScheduleEvent::ReminderSet {
                reminder_id,
                title,
                due,
                repeat,
            } => {
                tx.execute(
                    &self.sql.set_reminder,
                    &[
                        reminder_id.to_string().into(),
                        customer.into(),
                        title.as_str().into(),
                        (*due).into(),
                        repeat.map(|r| r.as_str().to_owned()).into(),
                        position.into(),
                    ],
                )
                .await?;
            }
            ScheduleEvent::ReminderCancelled { reminder_id } => {
                tx.execute(&self.sql.cancel_reminder, &[reminder_id.to_string().into()])
                    .await?;
            }
            ScheduleEvent::ReminderSent {
                reminder_id,
                due,
                next_due,
                ..
            } => {
                tx.execute(
                    &self.sql.reminder_sent,
                    &[
                        reminder_id.to_string().into(),
                        (*due).into(),
                        (*next_due).into(),
                    ],
                )
                .await?;
            }
            ScheduleEvent::RecurringPaymentScheduled {
                payment_id,
                amount,
                currency,
                category,
                description,
                cadence,
                first_due,
                remind_before,
            } => {
                let days = i64::from(remind_before.days());
                tx.execute(
                    &self.sql.schedule_payment,
                    &[
                        payment_id.to_string().into(),
                        customer.into(),
                        to_milli(*amount).map_err(bad)?.into(),
                        currency.code().into(),
                        category.as_str().into(),
                        description.as_str().into(),
                        cadence.as_str().into(),
                        (*first_due).into(),
                        days.into(),
                        remind_before.reminder_day(*first_due).into(),
                        position.into(),
                    ],
                )
                .await?;
            }
            ScheduleEvent::RecurringPaymentCancelled { payment_id } => {
                tx.execute(&self.sql.cancel_payment, &[payment_id.to_string().into()])
                    .await?;
            }
            ScheduleEvent::PaymentReminderSent { payment_id, .. } => {
                tx.execute(&self.sql.payment_reminded, &[payment_id.to_string().into()])
                    .await?;
            }
            ScheduleEvent::RecurringPaymentSettled {
                payment_id,
                due,
                outcome,
                next_due,
                ..
            } => {
                let id = payment_id.to_string();
                let days = tx
                    .fetch_int(&self.sql.remind_before, &[id.clone().into()])
                    .await?
                    .ok_or_else(|| bad(format!("payment {payment_id} was never scheduled")))?;
                let remind_before = u16::try_from(days)
                    .ok()
                    .and_then(|days| RemindBefore::new(days).ok())
                    .ok_or_else(|| bad(format!("{days} days is no reminder lead")))?;
                let (recorded, refused) = match outcome {
                    Settlement::Recorded { .. } => (1, 0),
                    Settlement::Refused { .. } => (0, 1),
                };
                tx.execute(
                    &self.sql.payment_settled,
                    &[
                        id.into(),
                        Value::Int(recorded),
                        Value::Int(refused),
                        (*due).into(),
                        (*next_due).into(),
                        next_due.map(|next| remind_before.reminder_day(next)).into(),
                    ],
                )
                .await?;
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Projection for SchedulesProjection {
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
        fact.is_of(Schedule::CATEGORY)
    }

    fn version(&self) -> i64 {
        1
    }

    async fn apply(&self, tx: &mut WriteTx, facts: &[&Fact]) -> Result<(), ApplyError> {
        for fact in facts {
            fact.readable_in(Schedule::CATEGORY)?;
            if let What::Schedule(event) = &fact.what {
                self.apply_one(tx, fact, event).await?;
            }
        }
        Ok(())
    }
}
