//! The value types of reminders and recurring payments.

use chrono::{Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::text::bounded_text;
pub use crate::user::InvalidValue;

/// What a reminder is about, e.g. `Renew the car insurance`: trimmed, 1 to 200 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReminderTitle(String);

impl ReminderTitle {
    /// # Errors
    /// [`InvalidValue`] when empty, longer than 200 characters or holding control characters.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        bounded_text(raw, 1, 200).map(Self)
    }

    /// The title.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

crate::text::string_conversions!(ReminderTitle);

/// How often something comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cadence {
    /// Every 7 days.
    Weekly,
    /// The same day every month (the month's last day when it is shorter).
    Monthly,
    /// The same day every year (28 February in common years for 29 February).
    Yearly,
}

impl Cadence {
    /// `weekly`, `monthly` or `yearly`.
    ///
    /// # Errors
    /// [`InvalidValue::Malformed`] for anything else.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "weekly" => Ok(Self::Weekly),
            "monthly" => Ok(Self::Monthly),
            "yearly" => Ok(Self::Yearly),
            _ => Err(InvalidValue::Malformed("must be weekly, monthly or yearly")),
        }
    }

    /// Its name, as [`Self::parse`] reads it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
            Self::Yearly => "yearly",
        }
    }

    /// The `n`-th date of a series that starts on `first` (`n = 0` is `first`). Counted from
    /// the first date, not from the previous one, so that a series starting on the 31st
    /// comes back on the 31st after a short month; `None` past the calendar's end.
    #[must_use]
    pub fn nth(self, first: NaiveDate, n: u32) -> Option<NaiveDate> {
        match self {
            Self::Weekly => first.checked_add_days(Days::new(7 * u64::from(n))),
            Self::Monthly => first.checked_add_months(Months::new(n)),
            Self::Yearly => first.checked_add_months(Months::new(n.checked_mul(12)?)),
        }
    }
}

/// How many days before a recurring payment's date its reminder goes out: 0 (on the day)
/// to 30.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct RemindBefore(u16);

impl RemindBefore {
    /// The most days ahead a reminder can go out.
    pub const MAX: u16 = 30;

    /// # Errors
    /// [`InvalidValue::Malformed`] above [`Self::MAX`].
    pub fn new(days: u16) -> Result<Self, InvalidValue> {
        if days > Self::MAX {
            return Err(InvalidValue::Malformed("must be from 0 to 30 days"));
        }
        Ok(Self(days))
    }

    /// The days.
    #[must_use]
    pub fn days(self) -> u16 {
        self.0
    }

    /// The day the reminder of a payment due on `due` goes out.
    #[must_use]
    pub fn reminder_day(self, due: NaiveDate) -> NaiveDate {
        due.checked_sub_days(Days::new(u64::from(self.0)))
            .unwrap_or(due)
    }
}

impl TryFrom<u16> for RemindBefore {
    type Error = InvalidValue;
    fn try_from(days: u16) -> Result<Self, InvalidValue> {
        Self::new(days)
    }
}

impl From<RemindBefore> for u16 {
    fn from(days: RemindBefore) -> Self {
        days.0
    }
}

/// The first date of a reminder or payment: from `today` (which comes with the command)
/// to ten years ahead. Past dates are refused: scheduling would otherwise record or mail
/// everything that fell between them and today at once.
///
/// # Errors
/// [`InvalidValue::Malformed`] outside that range.
pub fn first_due(date: NaiveDate, today: NaiveDate) -> Result<NaiveDate, InvalidValue> {
    let latest = today
        .checked_add_months(Months::new(120))
        .unwrap_or(NaiveDate::MAX);
    if date < today || date > latest {
        return Err(InvalidValue::Malformed(
            "must be between today and ten years from today",
        ));
    }
    Ok(date)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::fuzz::{
        any_date, any_json, check_json_goes_through_parse, check_reads_back, check_text_rules,
        config, everyday_date, fail, text_around, years_after,
    };

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn a_reminder_title_is_trimmed_printable_text_of_1_to_200_characters(raw in text_around(200)) {
            let parsed = ReminderTitle::parse(&raw);

            check_text_rules(&raw, (1, 200), &[], parsed.as_ref().map(ReminderTitle::as_str))?;
            if let Ok(title) = &parsed {
                check_reads_back(title, ReminderTitle::parse)?;
            }
        }

        #[test]
        fn json_becomes_a_reminder_title_only_through_its_parse(
            json in any_json(&["title"]),
            text in text_around(200),
        ) {
            for json in [json, Value::String(text)] {
                check_json_goes_through_parse(&json, ReminderTitle::parse)?;
            }
        }

        #[test]
        fn a_cadence_is_its_name_in_any_case_and_reads_back_as_name_and_json(
            raw in prop_oneof![
                (
                    prop::sample::select(vec!["weekly", "monthly", "yearly", "daily", "week"]),
                    any::<u16>(),
                    "[ \t]{0,2}",
                )
                    .prop_map(|(name, flips, pad)| {
                        let cased: String = name.chars().enumerate()
                            .map(|(i, c)| if flips >> i & 1 == 1 { c.to_ascii_uppercase() } else { c })
                            .collect();
                        format!("{pad}{cased}{pad}")
                    }),
                text_around(8),
            ],
        ) {
            let parsed = Cadence::parse(&raw);

            let name = raw.trim().to_ascii_lowercase();
            let known = ["weekly", "monthly", "yearly"].contains(&name.as_str());
            prop_assert_eq!(parsed.is_ok(), known, "{:?}", raw);
            if let Ok(cadence) = parsed {
                prop_assert_eq!(cadence.as_str(), name);
                prop_assert_eq!(Cadence::parse(cadence.as_str()), Ok(cadence));
                let json = serde_json::to_value(cadence).map_err(fail)?;
                prop_assert_eq!(&json, &json!(cadence.as_str()));
                prop_assert_eq!(serde_json::from_value::<Cadence>(json).map_err(fail)?, cadence);
            }
        }

        /// Serde also reads a name given as `{"weekly": null}`, its map form of a variant.
        #[test]
        fn json_becomes_a_cadence_only_from_its_exact_name(json in any_json(&["weekly", "yearly"])) {
            if let Ok(cadence) = serde_json::from_value::<Cadence>(json.clone()) {
                let name = cadence.as_str();
                prop_assert!(json == json!(name) || json == json!({ name: null }), "{json} gave {cadence:?}");
            }
        }

        #[test]
        fn the_occurrences_of_a_series_come_in_order_and_end_at_the_calendar_end(
            cadence in prop::sample::select(vec![Cadence::Weekly, Cadence::Monthly, Cadence::Yearly]),
            first in prop_oneof![everyday_date(1990), any_date()],
            n in prop_oneof![0..1_000_u32, any::<u32>()],
        ) {
            let (this, next) = (cadence.nth(first, n), cadence.nth(first, n.saturating_add(1)));

            prop_assert_eq!(cadence.nth(first, 0), Some(first));
            if let (Some(this), Some(next)) = (this, next) {
                prop_assert!(n == u32::MAX || this < next, "{this} then {next}");
            }
            if this.is_none() {
                prop_assert!(next.is_none() || n == u32::MAX, "a series does not come back after its end");
            }
        }

        #[test]
        fn remind_before_is_0_to_30_days_and_reads_back_from_json(
            days in prop_oneof![0..=40_u16, any::<u16>()],
        ) {
            let remind = RemindBefore::new(days);

            prop_assert_eq!(remind.is_ok(), days <= RemindBefore::MAX);
            if let Ok(remind) = remind {
                prop_assert_eq!(remind.days(), days);
                let json = serde_json::to_value(remind).map_err(fail)?;
                prop_assert_eq!(&json, &json!(days));
                prop_assert_eq!(serde_json::from_value::<RemindBefore>(json).map_err(fail)?, remind);
            }
        }

        #[test]
        fn json_becomes_remind_before_only_when_new_would_accept_it(
            json in prop_oneof![
                any::<i64>().prop_map(Value::from),
                (-5..=40_i64).prop_map(Value::from),
                any_json(&["days"]),
            ],
        ) {
            if let Ok(remind) = serde_json::from_value::<RemindBefore>(json.clone()) {
                prop_assert_eq!(RemindBefore::new(remind.days()), Ok(remind));
                prop_assert_eq!(json, json!(remind.days()));
            }
        }

        #[test]
        fn a_first_due_date_is_accepted_from_today_to_ten_years_ahead(
            (date, today) in prop_oneof![everyday_date(1990), any_date()].prop_flat_map(|today| {
                let edge = prop_oneof![Just(today), Just(years_after(today, 10).unwrap_or(today))];
                let near_an_edge = (edge, -2..=2_i64).prop_map(|(edge, days)| {
                    edge.checked_add_signed(chrono::TimeDelta::days(days)).unwrap_or(edge)
                });
                (prop_oneof![near_an_edge, everyday_date(1990), any_date()], Just(today))
            }),
        ) {
            let answer = first_due(date, today);

            let latest = years_after(today, 10).unwrap_or(NaiveDate::MAX);
            prop_assert_eq!(answer.is_ok(), today <= date && date <= latest, "{} with today {}", date, today);
        }
    }
}
