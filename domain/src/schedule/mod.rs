//! A customer's schedule: reminders (a title and a date, once or repeating) and recurring
//! payments (an expense that comes back weekly, monthly or yearly, with a reminder some
//! days before). One stream per customer (`schedule-<user id>`).
//!
//! The scheduler (a process manager) asks [`Schedule::due_work`] what `today` calls for,
//! does it, and records that it did with the scheduler's commands. Each occurrence of a
//! series has a number (0 is the first date), and every scheduler command names the
//! occurrence it is about: one that was already handled is refused, so the scheduler can
//! redo any step after a crash without mailing or recording anything twice.
//!
//! Rules: a reminder missed while nobody was running is mailed once, for its latest date
//! (a week of downtime does not bring seven "water the plants" mails); every missed
//! occurrence of a recurring payment is recorded, on its own date (the money was spent);
//! a payment's reminder goes out from `remind_before` days ahead up to the day itself and
//! never after the payment was recorded.

mod values;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use values::{Cadence, RemindBefore, ReminderTitle, first_due};

use crate::aggregate::{Aggregate, DomainEvent};
use crate::money::{Currency, Money};
use crate::wallet::{Category, Description};

/// What can be asked of a schedule: the customer's commands, then the scheduler's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleCommand {
    /// Be reminded of something on a date, once or repeatedly.
    SetReminder {
        /// Chosen by the caller.
        reminder_id: Uuid,
        /// What about.
        title: ReminderTitle,
        /// The first date (checked with [`first_due`]).
        due: NaiveDate,
        /// How often it comes back; `None`: once.
        repeat: Option<Cadence>,
    },
    /// Stop a reminder.
    CancelReminder {
        /// Which.
        reminder_id: Uuid,
    },
    /// Record an expense on a cadence, with a reminder before each.
    ScheduleRecurringPayment {
        /// Chosen by the caller.
        payment_id: Uuid,
        /// How much each time, in the wallet's currency.
        amount: Money,
        /// On what.
        category: Category,
        /// Details.
        description: Description,
        /// How often.
        cadence: Cadence,
        /// The first date (checked with [`first_due`]).
        first_due: NaiveDate,
        /// How many days before each date the customer is reminded.
        remind_before: RemindBefore,
    },
    /// Stop a recurring payment; what was recorded stays.
    CancelRecurringPayment {
        /// Which.
        payment_id: Uuid,
    },
    /// The scheduler mailed a due reminder.
    SendReminder {
        /// Which.
        reminder_id: Uuid,
        /// The occurrence mailed (the latest due one).
        occurrence: u32,
        /// The scheduler's today.
        today: NaiveDate,
    },
    /// The scheduler mailed that a payment is coming.
    RemindOfPayment {
        /// Which.
        payment_id: Uuid,
        /// The coming occurrence.
        occurrence: u32,
        /// The scheduler's today.
        today: NaiveDate,
    },
    /// The scheduler recorded a due payment as an expense of the wallet, or could not.
    SettlePayment {
        /// Which.
        payment_id: Uuid,
        /// The occurrence settled.
        occurrence: u32,
        /// What became of it.
        outcome: Settlement,
        /// The scheduler's today.
        today: NaiveDate,
    },
}

/// What became of a due occurrence of a recurring payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Settlement {
    /// Recorded as this expense of the wallet.
    Recorded {
        /// The expense.
        expense_id: Uuid,
    },
    /// The wallet refused it (closed, another currency); the series goes on.
    Refused {
        /// The wallet's reason.
        reason: String,
    },
}

/// What happened to a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ScheduleEvent {
    /// A reminder was set.
    ReminderSet {
        /// Its id.
        reminder_id: Uuid,
        /// What about.
        title: ReminderTitle,
        /// Its first date.
        due: NaiveDate,
        /// How often it comes back.
        repeat: Option<Cadence>,
    },
    /// A reminder was stopped.
    ReminderCancelled {
        /// Which.
        reminder_id: Uuid,
    },
    /// A reminder was mailed.
    ReminderSent {
        /// Which.
        reminder_id: Uuid,
        /// The occurrence mailed.
        occurrence: u32,
        /// Its date.
        due: NaiveDate,
        /// Earlier occurrences missed while nobody was running, mailed as this one.
        skipped: u32,
        /// The next date it comes back on; `None` when it does not.
        next_due: Option<NaiveDate>,
    },
    /// A recurring payment was scheduled.
    RecurringPaymentScheduled {
        /// Its id.
        payment_id: Uuid,
        /// How much each time.
        amount: Decimal,
        /// In what currency.
        currency: Currency,
        /// On what.
        category: Category,
        /// Details.
        description: Description,
        /// How often.
        cadence: Cadence,
        /// The first date.
        first_due: NaiveDate,
        /// Days of warning.
        remind_before: RemindBefore,
    },
    /// A recurring payment was stopped.
    RecurringPaymentCancelled {
        /// Which.
        payment_id: Uuid,
    },
    /// The customer was told a payment is coming.
    PaymentReminderSent {
        /// Which.
        payment_id: Uuid,
        /// The coming occurrence.
        occurrence: u32,
        /// Its date.
        due: NaiveDate,
    },
    /// A due occurrence was recorded in the wallet, or refused by it.
    RecurringPaymentSettled {
        /// Which.
        payment_id: Uuid,
        /// The occurrence.
        occurrence: u32,
        /// Its date.
        due: NaiveDate,
        /// What became of it.
        outcome: Settlement,
        /// The next occurrence's date.
        next_due: Option<NaiveDate>,
    },
}

impl DomainEvent for ScheduleEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::ReminderSet { .. } => "ReminderSet",
            Self::ReminderCancelled { .. } => "ReminderCancelled",
            Self::ReminderSent { .. } => "ReminderSent",
            Self::RecurringPaymentScheduled { .. } => "RecurringPaymentScheduled",
            Self::RecurringPaymentCancelled { .. } => "RecurringPaymentCancelled",
            Self::PaymentReminderSent { .. } => "PaymentReminderSent",
            Self::RecurringPaymentSettled { .. } => "RecurringPaymentSettled",
        }
    }
}

/// Why a schedule refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleRejection {
    /// The id is taken.
    #[error("this reminder or payment already exists")]
    AlreadyExists,
    /// No such reminder or payment.
    #[error("there is no such reminder or payment")]
    Unknown,
    /// Cancelled before, or a one-off reminder already sent.
    #[error("this reminder or payment has ended")]
    Ended,
    /// The occurrence was handled before (a scheduler step done twice).
    #[error("this occurrence was handled already")]
    AlreadyHandled,
    /// The occurrence is not due on the command's day.
    #[error("this occurrence is not due yet")]
    NotDue,
}

/// A reminder as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    /// What about.
    pub title: ReminderTitle,
    /// The first date.
    pub first_due: NaiveDate,
    /// How often.
    pub repeat: Option<Cadence>,
    /// The next occurrence to mail.
    pub next: u32,
    /// Cancelled, or sent when it does not repeat.
    pub ended: bool,
}

impl Reminder {
    /// The date of occurrence `n`.
    #[must_use]
    pub fn date_of(&self, n: u32) -> Option<NaiveDate> {
        match self.repeat {
            Some(cadence) => cadence.nth(self.first_due, n),
            None => (n == 0).then_some(self.first_due),
        }
    }

    /// The date of the occurrence after `n`: `None` when it does not repeat.
    #[must_use]
    pub fn date_after(&self, n: u32) -> Option<NaiveDate> {
        self.date_of(n.checked_add(1)?)
    }

    /// The next date it will be mailed on, while it runs.
    #[must_use]
    pub fn next_due(&self) -> Option<NaiveDate> {
        if self.ended {
            return None;
        }
        self.date_of(self.next)
    }

    /// The latest occurrence due by `today`, if any is.
    fn latest_due(&self, today: NaiveDate) -> Option<u32> {
        let mut latest = None;
        let mut n = self.next;
        while self.date_of(n).is_some_and(|date| date <= today) {
            latest = Some(n);
            let Some(after) = n.checked_add(1) else { break };
            n = after;
        }
        latest
    }
}

/// A recurring payment as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecurringPayment {
    /// How much each time.
    pub amount: Decimal,
    /// In what.
    pub currency: Currency,
    /// On what.
    pub category: Category,
    /// Details.
    pub description: Description,
    /// How often.
    pub cadence: Cadence,
    /// The first date.
    pub first_due: NaiveDate,
    /// Days of warning.
    pub remind_before: RemindBefore,
    /// The next occurrence to record.
    pub next: u32,
    /// The occurrence whose reminder went out last.
    pub reminded: Option<u32>,
    /// Cancelled.
    pub cancelled: bool,
}

impl RecurringPayment {
    /// The date of the occurrence after `n`.
    #[must_use]
    pub fn date_after(&self, n: u32) -> Option<NaiveDate> {
        self.cadence.nth(self.first_due, n.checked_add(1)?)
    }

    /// The next date it will be recorded on, while it runs.
    #[must_use]
    pub fn next_due(&self) -> Option<NaiveDate> {
        if self.cancelled {
            return None;
        }
        self.cadence.nth(self.first_due, self.next)
    }

    /// The day the next occurrence's reminder goes out, unless it went out already.
    #[must_use]
    pub fn next_reminder(&self) -> Option<NaiveDate> {
        if self.reminded == Some(self.next) {
            return None;
        }
        Some(self.remind_before.reminder_day(self.next_due()?))
    }

    /// The expense each occurrence records, in the wallet's currency.
    ///
    /// # Errors
    /// When the amount does not fit the currency (never, for a scheduled payment).
    pub fn money(&self) -> Result<Money, crate::money::InvalidAmount> {
        Money::new(self.amount, self.currency)
    }
}

/// A customer's reminders and recurring payments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// Reminders by id.
    pub reminders: BTreeMap<Uuid, Reminder>,
    /// Recurring payments by id.
    pub payments: BTreeMap<Uuid, RecurringPayment>,
}

/// One thing the scheduler has to do today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Mail a reminder.
    SendReminder {
        /// Which.
        reminder_id: Uuid,
        /// The latest due occurrence.
        occurrence: u32,
        /// Its date.
        due: NaiveDate,
    },
    /// Mail that a payment is coming.
    RemindOfPayment {
        /// Which.
        payment_id: Uuid,
        /// The coming occurrence.
        occurrence: u32,
        /// Its date.
        due: NaiveDate,
    },
    /// Record a due payment in the wallet, then settle it.
    RecordPayment {
        /// Which.
        payment_id: Uuid,
        /// The due occurrence.
        occurrence: u32,
        /// Its date, the expense's day.
        due: NaiveDate,
    },
}

impl Schedule {
    /// What `today` calls for, in the order to do it: for each payment its reminder before
    /// its recording. After doing all of it, ask again: a payment down for months has its
    /// next missed occurrence due then.
    #[must_use]
    pub fn due_work(&self, today: NaiveDate) -> Vec<Work> {
        let mut work = Vec::new();
        for (id, reminder) in &self.reminders {
            if reminder.ended {
                continue;
            }
            if let Some(occurrence) = reminder.latest_due(today)
                && let Some(due) = reminder.date_of(occurrence)
            {
                work.push(Work::SendReminder {
                    reminder_id: *id,
                    occurrence,
                    due,
                });
            }
        }
        for (id, payment) in &self.payments {
            let Some(due) = payment.next_due() else {
                continue;
            };
            if payment
                .next_reminder()
                .is_some_and(|day| day <= today && today <= due)
            {
                work.push(Work::RemindOfPayment {
                    payment_id: *id,
                    occurrence: payment.next,
                    due,
                });
            }
            if due <= today {
                work.push(Work::RecordPayment {
                    payment_id: *id,
                    occurrence: payment.next,
                    due,
                });
            }
        }
        work
    }

    /// The earliest day after which something may fall due: when the scheduler must look
    /// again at the latest.
    #[must_use]
    pub fn next_work_day(&self) -> Option<NaiveDate> {
        let reminders = self.reminders.values().filter_map(Reminder::next_due);
        let payments = self
            .payments
            .values()
            .flat_map(|p| [p.next_reminder(), p.next_due()])
            .flatten();
        reminders.chain(payments).min()
    }

    fn running_reminder(&self, id: &Uuid) -> Result<&Reminder, ScheduleRejection> {
        let reminder = self.reminders.get(id).ok_or(ScheduleRejection::Unknown)?;
        if reminder.ended {
            return Err(ScheduleRejection::Ended);
        }
        Ok(reminder)
    }

    fn running_payment(&self, id: &Uuid) -> Result<&RecurringPayment, ScheduleRejection> {
        let payment = self.payments.get(id).ok_or(ScheduleRejection::Unknown)?;
        if payment.cancelled {
            return Err(ScheduleRejection::Ended);
        }
        Ok(payment)
    }

    fn taken(&self, id: &Uuid) -> bool {
        self.reminders.contains_key(id) || self.payments.contains_key(id)
    }
}

/// The next occurrence of a payment, checked against the one a scheduler command names.
fn current_occurrence(
    payment: &RecurringPayment,
    occurrence: u32,
) -> Result<NaiveDate, ScheduleRejection> {
    if occurrence < payment.next {
        return Err(ScheduleRejection::AlreadyHandled);
    }
    if occurrence > payment.next {
        return Err(ScheduleRejection::NotDue);
    }
    payment.next_due().ok_or(ScheduleRejection::Ended)
}

impl Aggregate for Schedule {
    type Command = ScheduleCommand;
    type Event = ScheduleEvent;
    type Rejection = ScheduleRejection;

    const CATEGORY: &'static str = "schedule";

    fn decide(&self, command: &ScheduleCommand) -> Result<Vec<ScheduleEvent>, ScheduleRejection> {
        let event = match command {
            ScheduleCommand::SetReminder {
                reminder_id,
                title,
                due,
                repeat,
            } => {
                if self.taken(reminder_id) {
                    return Err(ScheduleRejection::AlreadyExists);
                }
                ScheduleEvent::ReminderSet {
                    reminder_id: *reminder_id,
                    title: title.clone(),
                    due: *due,
                    repeat: *repeat,
                }
            }
            ScheduleCommand::CancelReminder { reminder_id } => {
                self.running_reminder(reminder_id)?;
                ScheduleEvent::ReminderCancelled {
                    reminder_id: *reminder_id,
                }
            }
            ScheduleCommand::ScheduleRecurringPayment {
                payment_id,
                amount,
                category,
                description,
                cadence,
                first_due,
                remind_before,
            } => {
                if self.taken(payment_id) {
                    return Err(ScheduleRejection::AlreadyExists);
                }
                ScheduleEvent::RecurringPaymentScheduled {
                    payment_id: *payment_id,
                    amount: amount.amount(),
                    currency: amount.currency(),
                    category: category.clone(),
                    description: description.clone(),
                    cadence: *cadence,
                    first_due: *first_due,
                    remind_before: *remind_before,
                }
            }
            ScheduleCommand::CancelRecurringPayment { payment_id } => {
                self.running_payment(payment_id)?;
                ScheduleEvent::RecurringPaymentCancelled {
                    payment_id: *payment_id,
                }
            }
            ScheduleCommand::SendReminder {
                reminder_id,
                occurrence,
                today,
            } => {
                let reminder = self.running_reminder(reminder_id)?;
                if *occurrence < reminder.next {
                    return Err(ScheduleRejection::AlreadyHandled);
                }
                let due = reminder
                    .date_of(*occurrence)
                    .filter(|due| due <= today)
                    .ok_or(ScheduleRejection::NotDue)?;
                ScheduleEvent::ReminderSent {
                    reminder_id: *reminder_id,
                    occurrence: *occurrence,
                    due,
                    skipped: occurrence - reminder.next,
                    next_due: reminder.date_after(*occurrence),
                }
            }
            ScheduleCommand::RemindOfPayment {
                payment_id,
                occurrence,
                today,
            } => {
                let payment = self.running_payment(payment_id)?;
                let due = current_occurrence(payment, *occurrence)?;
                if payment.reminded == Some(*occurrence) {
                    return Err(ScheduleRejection::AlreadyHandled);
                }
                if payment.next_reminder().is_none_or(|day| *today < day) || *today > due {
                    return Err(ScheduleRejection::NotDue);
                }
                ScheduleEvent::PaymentReminderSent {
                    payment_id: *payment_id,
                    occurrence: *occurrence,
                    due,
                }
            }
            ScheduleCommand::SettlePayment {
                payment_id,
                occurrence,
                outcome,
                today,
            } => {
                let payment = self.running_payment(payment_id)?;
                let due = current_occurrence(payment, *occurrence)?;
                if due > *today {
                    return Err(ScheduleRejection::NotDue);
                }
                ScheduleEvent::RecurringPaymentSettled {
                    payment_id: *payment_id,
                    occurrence: *occurrence,
                    due,
                    outcome: outcome.clone(),
                    next_due: payment.date_after(*occurrence),
                }
            }
        };
        Ok(vec![event])
    }

    fn evolve(mut self, event: &ScheduleEvent) -> Self {
        match event {
            ScheduleEvent::ReminderSet {
                reminder_id,
                title,
                due,
                repeat,
            } => {
                self.reminders.insert(
                    *reminder_id,
                    Reminder {
                        title: title.clone(),
                        first_due: *due,
                        repeat: *repeat,
                        next: 0,
                        ended: false,
                    },
                );
            }
            ScheduleEvent::ReminderCancelled { reminder_id } => {
                if let Some(reminder) = self.reminders.get_mut(reminder_id) {
                    reminder.ended = true;
                }
            }
            ScheduleEvent::ReminderSent {
                reminder_id,
                occurrence,
                ..
            } => {
                if let Some(reminder) = self.reminders.get_mut(reminder_id) {
                    reminder.next = occurrence.saturating_add(1);
                    reminder.ended = reminder.repeat.is_none();
                }
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
                self.payments.insert(
                    *payment_id,
                    RecurringPayment {
                        amount: *amount,
                        currency: *currency,
                        category: category.clone(),
                        description: description.clone(),
                        cadence: *cadence,
                        first_due: *first_due,
                        remind_before: *remind_before,
                        next: 0,
                        reminded: None,
                        cancelled: false,
                    },
                );
            }
            ScheduleEvent::RecurringPaymentCancelled { payment_id } => {
                if let Some(payment) = self.payments.get_mut(payment_id) {
                    payment.cancelled = true;
                }
            }
            ScheduleEvent::PaymentReminderSent {
                payment_id,
                occurrence,
                ..
            } => {
                if let Some(payment) = self.payments.get_mut(payment_id) {
                    payment.reminded = Some(*occurrence);
                }
            }
            ScheduleEvent::RecurringPaymentSettled {
                payment_id,
                occurrence,
                ..
            } => {
                if let Some(payment) = self.payments.get_mut(payment_id) {
                    payment.next = occurrence.saturating_add(1);
                }
            }
        }
        self
    }
}

#[cfg(test)]
mod tests;
