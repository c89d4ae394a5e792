use chrono::NaiveDate;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;
use crate::aggregate::given_when_then::given;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a day")
}

const REMINDER: Uuid = Uuid::from_u128(1);
const RENT: Uuid = Uuid::from_u128(2);

fn inr() -> Currency {
    Currency::parse("INR").expect("INR")
}

fn reminder_set(repeat: Option<Cadence>) -> ScheduleEvent {
    ScheduleEvent::ReminderSet {
        reminder_id: REMINDER,
        title: ReminderTitle::parse("Renew the car insurance").expect("title"),
        due: day(2027, 1, 31),
        repeat,
    }
}

fn rent_scheduled() -> ScheduleEvent {
    ScheduleEvent::RecurringPaymentScheduled {
        payment_id: RENT,
        amount: Decimal::new(1_500_000, 2),
        currency: inr(),
        category: Category::parse("Rent").expect("category"),
        description: Description::parse("Flat 4B").expect("description"),
        cadence: Cadence::Monthly,
        first_due: day(2027, 1, 31),
        remind_before: RemindBefore::new(3).expect("days"),
    }
}

fn settled(occurrence: u32, due: NaiveDate) -> ScheduleEvent {
    ScheduleEvent::RecurringPaymentSettled {
        payment_id: RENT,
        occurrence,
        due,
        next_due: Cadence::Monthly.nth(day(2027, 1, 31), occurrence + 1),
        outcome: Settlement::Recorded {
            expense_id: Uuid::from_u128(100 + u128::from(occurrence)),
        },
    }
}

fn work(history: Vec<ScheduleEvent>, today: NaiveDate) -> Vec<Work> {
    Schedule::replay(&history).due_work(today)
}

#[test]
fn series_keep_their_first_day_through_short_months_and_leap_years() {
    let first = day(2027, 1, 31);
    let monthly: Vec<_> = (0..4)
        .filter_map(|n| Cadence::Monthly.nth(first, n))
        .collect();
    assert_eq!(
        monthly,
        [
            day(2027, 1, 31),
            day(2027, 2, 28),
            day(2027, 3, 31),
            day(2027, 4, 30)
        ]
    );
    let leap = day(2028, 2, 29);
    assert_eq!(Cadence::Yearly.nth(leap, 1), Some(day(2029, 2, 28)));
    assert_eq!(Cadence::Yearly.nth(leap, 4), Some(day(2032, 2, 29)));
    assert_eq!(Cadence::Weekly.nth(first, 2), Some(day(2027, 2, 14)));
    assert_eq!(Cadence::parse(" Monthly "), Ok(Cadence::Monthly));
    assert!(Cadence::parse("daily").is_err());
}

#[test]
fn dates_in_the_past_or_beyond_ten_years_cannot_start_a_series() {
    let today = day(2027, 1, 10);
    assert_eq!(first_due(today, today), Ok(today));
    assert!(first_due(day(2027, 1, 9), today).is_err());
    assert!(first_due(day(2037, 1, 11), today).is_err());
    assert!(RemindBefore::new(31).is_err());
    assert!(ReminderTitle::parse("  ").is_err());
}

#[test]
fn a_reminder_is_set_once_per_id() {
    given::<Schedule>([])
        .when(ScheduleCommand::SetReminder {
            reminder_id: REMINDER,
            title: ReminderTitle::parse("Renew the car insurance").expect("title"),
            due: day(2027, 1, 31),
            repeat: None,
        })
        .then([reminder_set(None)]);
    given::<Schedule>([rent_scheduled()])
        .when(ScheduleCommand::SetReminder {
            reminder_id: RENT,
            title: ReminderTitle::parse("Again").expect("title"),
            due: day(2027, 1, 31),
            repeat: None,
        })
        .then_rejected(ScheduleRejection::AlreadyExists);
}

#[test]
fn a_one_off_reminder_is_due_on_its_day_and_sent_once() {
    assert_eq!(work(vec![reminder_set(None)], day(2027, 1, 30)), []);
    assert_eq!(
        work(vec![reminder_set(None)], day(2027, 1, 31)),
        [Work::SendReminder {
            reminder_id: REMINDER,
            occurrence: 0,
            due: day(2027, 1, 31)
        }]
    );
    given::<Schedule>([reminder_set(None)])
        .when(ScheduleCommand::SendReminder {
            reminder_id: REMINDER,
            occurrence: 0,
            today: day(2027, 1, 30),
        })
        .then_rejected(ScheduleRejection::NotDue);
    let sent = ScheduleEvent::ReminderSent {
        reminder_id: REMINDER,
        occurrence: 0,
        due: day(2027, 1, 31),
        skipped: 0,
        next_due: None,
    };
    given::<Schedule>([reminder_set(None)])
        .when(ScheduleCommand::SendReminder {
            reminder_id: REMINDER,
            occurrence: 0,
            today: day(2027, 1, 31),
        })
        .then([sent.clone()]);
    assert_eq!(
        work(vec![reminder_set(None), sent.clone()], day(2028, 1, 1)),
        []
    );
    given::<Schedule>([reminder_set(None), sent])
        .when(ScheduleCommand::SendReminder {
            reminder_id: REMINDER,
            occurrence: 0,
            today: day(2027, 1, 31),
        })
        .then_rejected(ScheduleRejection::Ended);
}

#[test]
fn a_repeating_reminder_missed_for_months_is_mailed_once_for_its_latest_date() {
    let history = vec![reminder_set(Some(Cadence::Monthly))];
    assert_eq!(
        work(history.clone(), day(2027, 4, 2)),
        [Work::SendReminder {
            reminder_id: REMINDER,
            occurrence: 2,
            due: day(2027, 3, 31)
        }]
    );
    let sent = ScheduleEvent::ReminderSent {
        reminder_id: REMINDER,
        occurrence: 2,
        due: day(2027, 3, 31),
        skipped: 2,
        next_due: Some(day(2027, 4, 30)),
    };
    given::<Schedule>(history.clone())
        .when(ScheduleCommand::SendReminder {
            reminder_id: REMINDER,
            occurrence: 2,
            today: day(2027, 4, 2),
        })
        .then([sent.clone()]);
    let after: Vec<_> = history.into_iter().chain([sent]).collect();
    given::<Schedule>(after.clone())
        .when(ScheduleCommand::SendReminder {
            reminder_id: REMINDER,
            occurrence: 1,
            today: day(2027, 4, 2),
        })
        .then_rejected(ScheduleRejection::AlreadyHandled);
    let schedule = Schedule::replay(&after);
    assert_eq!(schedule.next_work_day(), Some(day(2027, 4, 30)));
    assert_eq!(schedule.due_work(day(2027, 4, 29)), []);
}

#[test]
fn a_payment_reminds_from_its_lead_days_then_records_on_its_day_then_moves_on() {
    let history = vec![rent_scheduled()];
    assert_eq!(work(history.clone(), day(2027, 1, 27)), []);
    let remind = Work::RemindOfPayment {
        payment_id: RENT,
        occurrence: 0,
        due: day(2027, 1, 31),
    };
    assert_eq!(work(history.clone(), day(2027, 1, 28)), [remind]);
    let reminded = ScheduleEvent::PaymentReminderSent {
        payment_id: RENT,
        occurrence: 0,
        due: day(2027, 1, 31),
    };
    given::<Schedule>(history.clone())
        .when(ScheduleCommand::RemindOfPayment {
            payment_id: RENT,
            occurrence: 0,
            today: day(2027, 1, 28),
        })
        .then([reminded.clone()]);
    let history: Vec<_> = history.into_iter().chain([reminded]).collect();
    given::<Schedule>(history.clone())
        .when(ScheduleCommand::RemindOfPayment {
            payment_id: RENT,
            occurrence: 0,
            today: day(2027, 1, 29),
        })
        .then_rejected(ScheduleRejection::AlreadyHandled);
    assert_eq!(work(history.clone(), day(2027, 1, 30)), []);
    assert_eq!(
        work(history.clone(), day(2027, 1, 31)),
        [Work::RecordPayment {
            payment_id: RENT,
            occurrence: 0,
            due: day(2027, 1, 31)
        }]
    );
    let settle = |occurrence, today| ScheduleCommand::SettlePayment {
        payment_id: RENT,
        occurrence,
        outcome: Settlement::Recorded {
            expense_id: Uuid::from_u128(100 + u128::from(occurrence)),
        },
        today,
    };
    given::<Schedule>(history.clone())
        .when(settle(0, day(2027, 1, 30)))
        .then_rejected(ScheduleRejection::NotDue);
    given::<Schedule>(history.clone())
        .when(settle(0, day(2027, 1, 31)))
        .then([settled(0, day(2027, 1, 31))]);
    let history: Vec<_> = history
        .into_iter()
        .chain([settled(0, day(2027, 1, 31))])
        .collect();
    given::<Schedule>(history.clone())
        .when(settle(0, day(2027, 1, 31)))
        .then_rejected(ScheduleRejection::AlreadyHandled);
    let schedule = Schedule::replay(&history);
    assert_eq!(schedule.payments[&RENT].next_due(), Some(day(2027, 2, 28)));
    assert_eq!(schedule.next_work_day(), Some(day(2027, 2, 25)));
}

#[test]
fn payments_missed_while_down_are_each_recorded_on_their_own_day_without_late_reminders() {
    let mut history = vec![rent_scheduled()];
    let today = day(2027, 3, 31);
    let mut recorded = Vec::new();
    loop {
        let work = Schedule::replay(&history).due_work(today);
        let Some(Work::RecordPayment {
            occurrence, due, ..
        }) = work.last().cloned()
        else {
            break;
        };
        // On the last one's day its reminder is still in its window; earlier ones are not.
        assert_eq!(work.len(), if due == today { 2 } else { 1 }, "{work:?}");
        recorded.push(due);
        history.push(settled(occurrence, due));
    }
    assert_eq!(
        recorded,
        [day(2027, 1, 31), day(2027, 2, 28), day(2027, 3, 31)]
    );
}

#[test]
fn a_cancelled_payment_has_no_work_and_refuses_the_scheduler() {
    let cancelled = ScheduleEvent::RecurringPaymentCancelled { payment_id: RENT };
    given::<Schedule>([rent_scheduled()])
        .when(ScheduleCommand::CancelRecurringPayment { payment_id: RENT })
        .then([cancelled.clone()]);
    let history = vec![rent_scheduled(), cancelled];
    assert_eq!(work(history.clone(), day(2027, 6, 1)), []);
    assert_eq!(Schedule::replay(&history).next_work_day(), None);
    given::<Schedule>(history.clone())
        .when(ScheduleCommand::CancelRecurringPayment { payment_id: RENT })
        .then_rejected(ScheduleRejection::Ended);
    given::<Schedule>(history)
        .when(ScheduleCommand::SettlePayment {
            payment_id: RENT,
            occurrence: 0,
            outcome: Settlement::Refused { reason: "x".into() },
            today: day(2027, 6, 1),
        })
        .then_rejected(ScheduleRejection::Ended);
    given::<Schedule>([])
        .when(ScheduleCommand::CancelReminder {
            reminder_id: REMINDER,
        })
        .then_rejected(ScheduleRejection::Unknown);
}
