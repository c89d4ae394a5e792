//! The scheduler process manager: mails reminders when they fall due, mails that a
//! recurring payment is coming, and on its date records the payment as an expense of the
//! customer's wallet (through `RecordExpense`, so it may cross a limit like any expense).
//!
//! Time comes from the clock port. Each step finds the customers with something due in the
//! `schedules` read model, then lets each customer's schedule say what today calls for
//! ([`Schedule::due_work`]) and does it. Exactly once, through crashes: a reminder's mail
//! and the event that marks it sent are one append; a payment's expense id derives from the
//! payment and the occurrence, so recording it again after a crash is refused by the wallet
//! as already recorded, and the occurrence is then settled. A server that was down catches
//! up on its first step: every missed payment is recorded on its own date, a missed reminder
//! is mailed once. See ADR 0015.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use domain::schedule::{
    RecurringPayment, Reminder, Schedule, ScheduleCommand, ScheduleRejection, Settlement, Work,
};
use domain::wallet::{Wallet, WalletCommand, WalletRejection};
use infrastructure::event_store::OutboxMessage;
use projections::sql::fetch_all;
use serde_json::json;
use tokio::sync::watch;
use uuid::Uuid;

use crate::commands::{CommandContext, CommandError};
use crate::crash::CrashPoint;
use crate::directory::profile_of;
use crate::mail::{PAYMENT_UPCOMING, REMINDER_DUE};
use crate::state::AppState;
use crate::wallet_views::decimal_text;

/// Who the scheduler's commands are recorded as.
const ACTOR: &str = "system:scheduler";
/// The read model it finds due work in.
const READ_MODEL: &str = "schedules";
/// How long it sleeps at most between two looks, whatever the schedules say: a wall clock
/// that jumps is noticed within this.
const LONGEST_NAP: chrono::Duration = chrono::Duration::hours(1);
/// How long the scheduler lets the log grow before looking at what a write may have made
/// due today.
const LOG_DEBOUNCE: Duration = Duration::from_secs(1);
/// Rounds of work per customer and step: a payment missed for years catches up over
/// several steps instead of holding one step for long.
const ROUNDS: usize = 500;

/// What one step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Done {
    /// Reminder mails queued.
    pub reminders: usize,
    /// Payment reminder mails queued.
    pub payment_reminders: usize,
    /// Occurrences of recurring payments recorded (or refused by the wallet).
    pub payments: usize,
}

impl Done {
    fn total(self) -> usize {
        self.reminders + self.payment_reminders + self.payments
    }
}

/// The process manager; [`Self::run_once`] is one step, for tests.
#[derive(Debug, Clone)]
pub struct Scheduler {
    state: AppState,
    crash: CrashPoint,
}

impl Scheduler {
    /// The scheduler of `state`.
    #[must_use]
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            crash: CrashPoint::default(),
        }
    }

    /// The same scheduler, stopping with an error right after `step` (`reminder sent`,
    /// `payment reminder sent`, `expense recorded`, `payment settled`), as a crash there
    /// would.
    #[must_use]
    pub fn crashing_after(mut self, step: &'static str) -> Self {
        self.crash = CrashPoint::after(step);
        self
    }

    /// Does everything due at the clock's current day.
    ///
    /// # Errors
    /// When the store, the database or a command fails; what was done stays done, and the
    /// rest is done on the next step.
    pub async fn run_once(&self) -> anyhow::Result<Done> {
        let today = self.state.now().date_naive();
        // The customers' latest schedule commands must be in the read model to be found.
        let head = self.state.events.head().await?;
        self.state.read_models.wait_for(READ_MODEL, head).await;
        let mut done = Done::default();
        for customer in self.customers_with_work(today).await? {
            self.work_for(customer, today, &mut done).await?;
        }
        if done.reminders + done.payment_reminders > 0 {
            self.state.mail_wake.notify_one();
        }
        Ok(done)
    }

    /// Steps whenever the day changes, something is due or a schedule changes, until `stop`
    /// turns true; a failure is logged and the step tried again a minute later.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut head = self.state.events.watch_head();
        loop {
            if *stop.borrow() {
                return;
            }
            let wake_at = match self.run_once().await {
                Ok(done) => {
                    if done.total() > 0 {
                        tracing::info!(?done, "scheduled work done");
                    }
                    self.next_look().await.unwrap_or_else(|error| {
                        tracing::error!(
                            error = format!("{error:#}"),
                            "cannot plan the scheduler's next look"
                        );
                        self.state.now() + chrono::Duration::minutes(1)
                    })
                }
                Err(error) => {
                    tracing::error!(
                        error = format!("{error:#}"),
                        "the scheduler failed; retrying"
                    );
                    self.state.now() + chrono::Duration::minutes(1)
                }
            };
            let log_grew = tokio::select! {
                () = self.state.clock.sleep_until(wake_at) => false,
                changed = head.changed() => if changed.is_err() { return } else { true },
                _ = stop.changed() => false,
            };
            if log_grew {
                // Most new events are not about schedules, and under load they come by
                // thousands a second: look at most once a second for them.
                tokio::select! {
                    () = tokio::time::sleep(LOG_DEBOUNCE) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// When to look again: the start of the next day something falls due on, or the next
    /// midnight (UTC) when that is today or past, never later than [`LONGEST_NAP`].
    async fn next_look(&self) -> anyhow::Result<DateTime<Utc>> {
        let now = self.state.now();
        let tomorrow = now.date_naive().succ_opt().unwrap_or(NaiveDate::MAX);
        let rows: Vec<(Option<String>,)> = fetch_all(
            &self.state.database,
            "SELECT MIN(day) FROM ( \
             SELECT MIN(next_due) AS day FROM rm_reminders WHERE status = 'active' \
             UNION ALL SELECT MIN(next_due) FROM rm_recurring_payments WHERE status = 'active' \
             UNION ALL SELECT MIN(next_reminder) FROM rm_recurring_payments \
             WHERE status = 'active') AS due",
            &[],
        )
        .await?;
        let next_day = rows
            .first()
            .and_then(|(day,)| day.as_deref())
            .and_then(|day| day.parse::<NaiveDate>().ok())
            .map_or(tomorrow, |day| day.max(tomorrow));
        let midnight = next_day.and_time(chrono::NaiveTime::MIN).and_utc();
        Ok(midnight.min(now + LONGEST_NAP))
    }

    /// The customers whose schedules the read model shows with something due by `today`.
    async fn customers_with_work(&self, today: NaiveDate) -> anyhow::Result<Vec<Uuid>> {
        let rows: Vec<(String,)> = fetch_all(
            &self.state.database,
            "SELECT customer FROM rm_reminders WHERE status = 'active' AND next_due <= $1 \
             UNION SELECT customer FROM rm_recurring_payments WHERE status = 'active' \
             AND (next_due <= $1 OR next_reminder <= $1)",
            &[today.into()],
        )
        .await?;
        rows.into_iter()
            .map(|(id,)| Ok(Uuid::parse_str(&id)?))
            .collect()
    }

    /// Does what `customer`'s schedule calls for by `today`, round after round until
    /// nothing is left (a payment missed for months has one occurrence due per round).
    async fn work_for(
        &self,
        customer: Uuid,
        today: NaiveDate,
        done: &mut Done,
    ) -> anyhow::Result<()> {
        for _ in 0..ROUNDS {
            let (schedule, _) = self.state.commands.load::<Schedule>(customer).await?;
            let work = schedule.due_work(today);
            if work.is_empty() {
                return Ok(());
            }
            let before = done.total();
            for item in work {
                self.perform(customer, &schedule, &item, today, done)
                    .await?;
            }
            if done.total() == before {
                // Everything was done by someone else in between: look again next step.
                return Ok(());
            }
        }
        Ok(())
    }

    async fn perform(
        &self,
        customer: Uuid,
        schedule: &Schedule,
        work: &Work,
        today: NaiveDate,
        done: &mut Done,
    ) -> anyhow::Result<()> {
        // What the step records on the schedule, under which step name, with which mail,
        // what it counts as, and the crash point after it.
        let (command, step, mail, count, crash_point) = match *work {
            Work::SendReminder {
                reminder_id,
                occurrence,
                due,
            } => {
                let Some(reminder) = schedule.reminders.get(&reminder_id) else {
                    return Ok(());
                };
                (
                    ScheduleCommand::SendReminder {
                        reminder_id,
                        occurrence,
                        today,
                    },
                    format!("reminder:{reminder_id}:{occurrence}"),
                    self.reminder_mail(customer, reminder_id, reminder, occurrence, due)
                        .await?,
                    &mut done.reminders,
                    "reminder sent",
                )
            }
            Work::RemindOfPayment {
                payment_id,
                occurrence,
                due,
            } => {
                let Some(payment) = schedule.payments.get(&payment_id) else {
                    return Ok(());
                };
                (
                    ScheduleCommand::RemindOfPayment {
                        payment_id,
                        occurrence,
                        today,
                    },
                    format!("payment-reminder:{payment_id}:{occurrence}"),
                    self.payment_mail(customer, payment_id, payment, occurrence, due)
                        .await?,
                    &mut done.payment_reminders,
                    "payment reminder sent",
                )
            }
            Work::RecordPayment {
                payment_id,
                occurrence,
                due,
            } => {
                let Some(payment) = schedule.payments.get(&payment_id) else {
                    return Ok(());
                };
                let outcome = self
                    .record_payment(customer, payment_id, payment, occurrence, due)
                    .await?;
                self.crash.passed("expense recorded")?;
                (
                    ScheduleCommand::SettlePayment {
                        payment_id,
                        occurrence,
                        outcome,
                        today,
                    },
                    format!("settle:{payment_id}:{occurrence}"),
                    Vec::new(),
                    &mut done.payments,
                    "payment settled",
                )
            }
        };
        if self.on_schedule(customer, &command, &step, mail).await? {
            *count += 1;
        }
        self.crash.passed(crash_point)
    }

    /// The context of one step, its command id derived from the step so that a retried
    /// append writes nothing.
    fn context(&self, customer: Uuid, step: &str) -> CommandContext {
        let command_id = Uuid::new_v5(&customer, step.as_bytes());
        CommandContext {
            command_id,
            correlation_id: command_id,
            causation_id: None,
            actor: ACTOR.to_owned(),
            now: self.state.now(),
            request_id: None,
        }
    }

    /// Applies a scheduler command to `customer`'s schedule with its mail; false when the
    /// step was done before (by this process before a crash, or by another instance).
    async fn on_schedule(
        &self,
        customer: Uuid,
        command: &ScheduleCommand,
        step: &str,
        mail: Vec<OutboxMessage>,
    ) -> anyhow::Result<bool> {
        match self
            .state
            .commands
            .execute_with_outbox::<Schedule>(customer, command, &self.context(customer, step), mail)
            .await
        {
            Ok(done) => Ok(done.outcome.is_some()),
            Err(CommandError::Rejected(
                ScheduleRejection::AlreadyHandled
                | ScheduleRejection::Ended
                | ScheduleRejection::NotDue
                | ScheduleRejection::Unknown,
            )) => Ok(false),
            Err(error) => Err(anyhow::anyhow!("scheduler step {step}: {error}")),
        }
    }

    /// Records occurrence `occurrence` of a payment as an expense dated `due`: the expense
    /// id derives from the payment and the occurrence, so a second try finds it recorded.
    async fn record_payment(
        &self,
        customer: Uuid,
        payment_id: Uuid,
        payment: &RecurringPayment,
        occurrence: u32,
        due: NaiveDate,
    ) -> anyhow::Result<Settlement> {
        let expense_id = Uuid::new_v5(&payment_id, format!("expense:{occurrence}").as_bytes());
        let command = WalletCommand::RecordExpense {
            expense_id,
            amount: payment.money()?,
            category: payment.category.clone(),
            description: payment.description.clone(),
            spent_on: due,
            receipt_id: None,
        };
        let step = format!("record:{payment_id}:{occurrence}");
        let context = self.context(customer, &step);
        match self
            .state
            .commands
            .execute::<Wallet>(customer, &command, &context)
            .await
        {
            Ok(_) | Err(CommandError::Rejected(WalletRejection::ExpenseAlreadyRecorded)) => {
                Ok(Settlement::Recorded { expense_id })
            }
            Err(CommandError::Rejected(refusal)) => {
                tracing::warn!(%customer, %payment_id, %refusal, "a recurring payment was refused by the wallet");
                Ok(Settlement::Refused {
                    reason: refusal.to_string(),
                })
            }
            Err(error) => Err(anyhow::anyhow!("recording payment {payment_id}: {error}")),
        }
    }

    fn link(&self) -> String {
        format!("{}/reminders", self.state.base_url.trim_end_matches('/'))
    }

    /// The customer's name and address, unless they were erased.
    async fn recipient(&self, customer: Uuid) -> anyhow::Result<Option<(String, String)>> {
        let profile = profile_of(
            &self.state.database,
            &self.state.vault,
            &customer.to_string(),
        )
        .await?;
        Ok(profile.map(|p| (p.name.to_string(), p.email.to_string())))
    }

    /// A mail to `customer` (none when erased), its id derived from what it is about.
    async fn mail_to(
        &self,
        customer: Uuid,
        about: Uuid,
        kind: &str,
        occurrence: u32,
        mut payload: serde_json::Value,
    ) -> anyhow::Result<Vec<OutboxMessage>> {
        let Some((name, email)) = self.recipient(customer).await? else {
            return Ok(Vec::new());
        };
        payload["to"] = json!(email);
        payload["name"] = json!(name);
        payload["link"] = json!(self.link());
        Ok(vec![OutboxMessage {
            message_id: Uuid::new_v5(&about, format!("{kind}:{occurrence}").as_bytes()),
            kind: kind.to_owned(),
            payload,
        }])
    }

    async fn reminder_mail(
        &self,
        customer: Uuid,
        reminder_id: Uuid,
        reminder: &Reminder,
        occurrence: u32,
        due: NaiveDate,
    ) -> anyhow::Result<Vec<OutboxMessage>> {
        let payload = json!({
            "title": reminder.title.as_str(),
            "due": due.to_string(),
            "skipped": occurrence.saturating_sub(reminder.next),
            "next_due": reminder.date_after(occurrence).map(|d| d.to_string()),
        });
        self.mail_to(customer, reminder_id, REMINDER_DUE, occurrence, payload)
            .await
    }

    async fn payment_mail(
        &self,
        customer: Uuid,
        payment_id: Uuid,
        payment: &RecurringPayment,
        occurrence: u32,
        due: NaiveDate,
    ) -> anyhow::Result<Vec<OutboxMessage>> {
        let payload = json!({
            "category": payment.category.as_str(),
            "description": payment.description.as_str(),
            "amount": decimal_text(payment.amount, payment.currency.minor_units()),
            "currency": payment.currency.code(),
            "due": due.to_string(),
        });
        self.mail_to(customer, payment_id, PAYMENT_UPCOMING, occurrence, payload)
            .await
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use domain::money::{Currency, Money};
    use domain::schedule::{Cadence, RemindBefore, ReminderTitle};
    use domain::user::{Role, UserId};
    use domain::wallet::{Category, Description, LimitKey, Period};
    use infrastructure::clock::FakeClock;
    use projections::ProjectionRunner;

    use super::*;
    use crate::test_support::{fresh, on_wallet, outbox_kinds, person, stream_types};

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2027, 1, d).expect("a day")
    }

    /// Asha, with a wallet limited to 100 a month, a one-off reminder and a recurring
    /// payment of 150 both due on 31 January (the payment's reminder from the 29th).
    async fn asha(state: &AppState, runner: &ProjectionRunner) -> UserId {
        let asha = person(state, Role::Customer, "Asha Rao").await;
        let inr = Currency::parse("INR").expect("INR");
        on_wallet(
            state,
            asha,
            vec![
                WalletCommand::Open {
                    owner: asha,
                    currency: inr,
                },
                WalletCommand::SetLimit {
                    key: LimitKey {
                        period: Period::Monthly { first_day: 1 },
                        category: None,
                    },
                    amount: Money::parse("100", inr).expect("amount"),
                },
            ],
        )
        .await;
        let commands = [
            ScheduleCommand::SetReminder {
                reminder_id: Uuid::now_v7(),
                title: ReminderTitle::parse("Renew the car insurance").expect("title"),
                due: day(31),
                repeat: None,
            },
            ScheduleCommand::ScheduleRecurringPayment {
                payment_id: Uuid::now_v7(),
                amount: Money::parse("150", inr).expect("amount"),
                category: Category::parse("Rent").expect("category"),
                description: Description::parse("Flat 4B").expect("description"),
                cadence: Cadence::Monthly,
                first_due: day(31),
                remind_before: RemindBefore::new(2).expect("days"),
            },
        ];
        for command in commands {
            state
                .commands
                .execute::<Schedule>(asha.0, &command, &CommandContext::new("test", state.now()))
                .await
                .expect("scheduled");
        }
        runner.catch_up().await.expect("projected");
        asha
    }

    #[tokio::test]
    async fn a_crash_after_any_step_then_a_restart_records_and_mails_everything_once() {
        for step in [
            "reminder sent",
            "payment reminder sent",
            "expense recorded",
            "payment settled",
        ] {
            let clock = FakeClock::at(Utc.with_ymd_and_hms(2027, 1, 20, 9, 0, 0).unwrap());
            let data = tempfile::tempdir().expect("a data directory");
            let (state, runner) = fresh(&data, |config| config.clock = clock.clone().into()).await;
            let asha = asha(&state, &runner).await;
            assert_eq!(
                Scheduler::new(state.clone())
                    .run_once()
                    .await
                    .expect("step"),
                Done::default(),
                "nothing due on the 20th"
            );

            clock.set(Utc.with_ymd_and_hms(2027, 1, 31, 9, 0, 0).unwrap());
            let crashed = Scheduler::new(state.clone())
                .crashing_after(step)
                .run_once()
                .await
                .expect_err("the scheduler dies");
            assert!(crashed.to_string().contains(step), "{crashed}");
            runner.catch_up().await.expect("projected");
            Scheduler::new(state.clone())
                .run_once()
                .await
                .expect("the restarted scheduler catches up");
            runner.catch_up().await.expect("projected");
            assert_eq!(
                Scheduler::new(state.clone())
                    .run_once()
                    .await
                    .expect("step"),
                Done::default(),
                "nothing left after a crash after {step}"
            );

            let mut schedule = stream_types(&state, &format!("schedule-{asha}")).await;
            schedule.sort();
            assert_eq!(
                schedule,
                [
                    "PaymentReminderSent",
                    "RecurringPaymentScheduled",
                    "RecurringPaymentSettled",
                    "ReminderSent",
                    "ReminderSet"
                ],
                "crash after {step}"
            );
            assert_eq!(
                stream_types(&state, &format!("wallet-{asha}")).await,
                [
                    "WalletOpened",
                    "LimitSet",
                    "ExpenseRecorded",
                    "LimitExceeded"
                ],
                "one expense, through the wallet's rules; crash after {step}"
            );
            assert_eq!(
                outbox_kinds(&state).await,
                [
                    (PAYMENT_UPCOMING.to_owned(), 1),
                    (REMINDER_DUE.to_owned(), 1)
                ],
                "crash after {step}"
            );
        }
    }
}
