//! The value types of expenses and limits.

use chrono::{Datelike, Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::text::bounded_text;
pub use crate::user::InvalidValue;

/// What an expense was for, e.g. `groceries`: trimmed, 1 to 64 characters. Categories
/// compare without regard to case.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Category(String);

impl Category {
    /// # Errors
    /// [`InvalidValue`] when empty, longer than 64 characters or holding control characters.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        bounded_text(raw, 1, 64).map(Self)
    }

    /// As typed.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Category {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_lowercase() == other.0.to_lowercase()
    }
}

impl Eq for Category {}

impl std::hash::Hash for Category {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_lowercase().hash(state);
    }
}

/// The name of a savings goal: trimmed, 1 to 100 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GoalName(String);

impl GoalName {
    /// # Errors
    /// [`InvalidValue`] when empty, longer than 100 characters or holding control characters.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        bounded_text(raw, 1, 100).map(Self)
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text about an expense or a top-up: at most 500 characters (may be empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Description(String);

impl Description {
    /// # Errors
    /// [`InvalidValue`] when longer than 500 characters or holding control characters other
    /// than line breaks.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        Ok(Self(crate::text::free_text(raw, 500)?.to_owned()))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

crate::text::string_conversions!(Category, Description, GoalName);

/// The day money was spent: from 1900-01-01 to a year after `today` (which comes with the
/// command; the domain has no clock).
///
/// # Errors
/// [`InvalidValue::Malformed`] for a date outside that range.
pub fn spent_on(date: NaiveDate, today: NaiveDate) -> Result<NaiveDate, InvalidValue> {
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
    let latest = today
        .checked_add_months(Months::new(12))
        .unwrap_or(NaiveDate::MAX);
    if date < earliest || date > latest {
        return Err(InvalidValue::Malformed(
            "must be between 1900-01-01 and a year from today",
        ));
    }
    Ok(date)
}

/// The span a limit counts spending over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Period {
    /// Monday to Sunday.
    Weekly,
    /// From `first_day` of one month to the day before it in the next (payday to payday);
    /// 1 to 28 so that every month has it.
    Monthly {
        /// Day of the month the period starts on.
        #[serde(deserialize_with = "first_day_of_month")]
        first_day: u8,
    },
}

/// Reads a monthly period's first day through [`Period::monthly`]: a stored 0 or 31 would
/// otherwise become a period that some months do not have.
fn first_day_of_month<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u8, D::Error> {
    let first_day = u8::deserialize(deserializer)?;
    Period::monthly(first_day)
        .map(|_| first_day)
        .map_err(serde::de::Error::custom)
}

impl Period {
    /// A monthly period starting on `first_day`.
    ///
    /// # Errors
    /// [`InvalidValue::Malformed`] unless 1 to 28.
    pub fn monthly(first_day: u8) -> Result<Self, InvalidValue> {
        if (1..=28).contains(&first_day) {
            Ok(Self::Monthly { first_day })
        } else {
            Err(InvalidValue::Malformed(
                "the first day of a monthly period must be 1 to 28",
            ))
        }
    }

    /// The first day of the period that contains `date`: what identifies "this period".
    #[must_use]
    pub fn start_of(self, date: NaiveDate) -> NaiveDate {
        match self {
            Self::Weekly => date
                .checked_sub_days(Days::new(u64::from(date.weekday().num_days_from_monday())))
                .unwrap_or(date),
            Self::Monthly { first_day } => {
                let this_month = date.with_day(u32::from(first_day)).unwrap_or(date);
                if date.day() >= u32::from(first_day) {
                    this_month
                } else {
                    this_month
                        .checked_sub_months(Months::new(1))
                        .unwrap_or(this_month)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a date")
    }

    #[test]
    fn weeks_start_on_monday() {
        assert_eq!(
            Period::Weekly.start_of(day(2026, 11, 21)),
            day(2026, 11, 16)
        );
        assert_eq!(
            Period::Weekly.start_of(day(2026, 11, 16)),
            day(2026, 11, 16)
        );
        assert_eq!(Period::Weekly.start_of(day(2027, 1, 2)), day(2026, 12, 28));
    }

    #[test]
    fn months_run_from_payday_to_payday() {
        let payday = Period::monthly(25).expect("valid");
        assert_eq!(payday.start_of(day(2026, 11, 25)), day(2026, 11, 25));
        assert_eq!(payday.start_of(day(2026, 11, 24)), day(2026, 10, 25));
        assert_eq!(payday.start_of(day(2026, 1, 3)), day(2025, 12, 25));
        assert_eq!(
            Period::monthly(1)
                .expect("valid")
                .start_of(day(2026, 2, 28)),
            day(2026, 2, 1)
        );
        assert!(Period::monthly(0).is_err() && Period::monthly(29).is_err());
    }

    #[test]
    fn categories_are_trimmed_bounded_and_compared_without_case() {
        assert_eq!(
            Category::parse(" Groceries ").expect("valid").as_str(),
            "Groceries"
        );
        assert_eq!(
            Category::parse("groceries").expect("valid"),
            Category::parse("GROCERIES").expect("valid")
        );
        assert_eq!(Category::parse("  "), Err(InvalidValue::Empty));
        assert_eq!(
            Category::parse(&"c".repeat(65)),
            Err(InvalidValue::TooLong { max: 64 })
        );
    }

    #[test]
    fn descriptions_hold_at_most_500_characters() {
        assert!(Description::parse("").is_ok());
        assert!(Description::parse(&"d".repeat(500)).is_ok());
        assert_eq!(
            Description::parse(&"d".repeat(501)),
            Err(InvalidValue::TooLong { max: 500 })
        );
    }

    #[test]
    fn expense_dates_are_between_1900_and_a_year_from_today() {
        let today = day(2026, 11, 21);
        assert!(spent_on(day(1900, 1, 1), today).is_ok());
        assert!(spent_on(day(2027, 11, 21), today).is_ok());
        assert!(spent_on(day(1899, 12, 31), today).is_err());
        assert!(spent_on(day(2027, 11, 22), today).is_err());
    }

    mod fuzz {
        use std::hash::{BuildHasher, RandomState};

        use proptest::prelude::*;
        use serde_json::{Value, json};

        use super::super::*;
        use crate::fuzz::{
            any_date, any_json, check_json_goes_through_parse, check_reads_back, check_text_rules,
            config, everyday_date, fail, text_around, years_after,
        };

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn a_category_is_trimmed_printable_text_of_1_to_64_characters(raw in text_around(64)) {
                let parsed = Category::parse(&raw);

                check_text_rules(&raw, (1, 64), &[], parsed.as_ref().map(Category::as_str))?;
                if let Ok(category) = &parsed {
                    check_reads_back(category, Category::parse)?;
                }
            }

            #[test]
            fn categories_equal_without_case_hash_alike(
                raw in "[a-zA-Z ]{1,10}",
                flips in any::<u16>(),
            ) {
                let other: String = raw.chars().enumerate()
                    .map(|(i, c)| {
                        if flips >> (i % 16) & 1 == 1 { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() }
                    })
                    .collect();
                let (Ok(one), Ok(two)) = (Category::parse(&raw), Category::parse(&other)) else {
                    return Ok(());
                };

                prop_assert_eq!(&one, &two);
                let hasher = RandomState::new();
                prop_assert_eq!(hasher.hash_one(&one), hasher.hash_one(&two));
            }

            #[test]
            fn a_goal_name_is_trimmed_printable_text_of_1_to_100_characters(raw in text_around(100)) {
                let parsed = GoalName::parse(&raw);

                check_text_rules(&raw, (1, 100), &[], parsed.as_ref().map(GoalName::as_str))?;
                if let Ok(name) = &parsed {
                    check_reads_back(name, GoalName::parse)?;
                }
            }

            #[test]
            fn a_description_is_trimmed_text_of_at_most_500_characters_with_only_line_breaks_and_tabs(
                raw in text_around(500),
            ) {
                let parsed = Description::parse(&raw);

                let answer = parsed.as_ref().map(Description::as_str);
                check_text_rules(&raw, (0, 500), &['\n', '\r', '\t'], answer)?;
                if let Ok(description) = &parsed {
                    check_reads_back(description, Description::parse)?;
                }
            }

            #[test]
            fn json_becomes_an_expense_text_only_through_its_parse(
                json in any_json(&["kind"]),
                text in text_around(64),
            ) {
                for json in [json, Value::String(text)] {
                    check_json_goes_through_parse(&json, Category::parse)?;
                    check_json_goes_through_parse(&json, GoalName::parse)?;
                    check_json_goes_through_parse(&json, Description::parse)?;
                }
            }

            #[test]
            fn a_monthly_period_starts_on_day_1_to_28_and_reads_back_from_json(first_day in any::<u8>()) {
                let period = Period::monthly(first_day);

                prop_assert_eq!(period.is_ok(), (1..=28).contains(&first_day));
                if let Ok(period) = period {
                    let json = serde_json::to_value(period).map_err(fail)?;
                    prop_assert_eq!(&json, &json!({"kind": "monthly", "first_day": first_day}));
                    prop_assert_eq!(serde_json::from_value::<Period>(json).map_err(fail)?, period);
                }
            }

            /// Periods are stored in events; serde must not build one `monthly` refuses.
            #[test]
            fn json_becomes_a_period_only_when_monthly_would_accept_it(
                json in prop_oneof![
                    any::<i64>().prop_map(|day| json!({"kind": "monthly", "first_day": day})),
                    (-3..=40_i64).prop_map(|day| json!({"kind": "monthly", "first_day": day})),
                    any_json(&["kind", "first_day"])
                        .prop_map(|day| json!({"kind": "monthly", "first_day": day})),
                    any_json(&["kind", "first_day"]),
                ],
            ) {
                match serde_json::from_value::<Period>(json.clone()) {
                    Ok(Period::Monthly { first_day }) => {
                        let read = Period::Monthly { first_day };
                        prop_assert_eq!(Period::monthly(first_day), Ok(read), "{}", json);
                    }
                    Ok(Period::Weekly) => prop_assert_eq!(json.get("kind"), Some(&json!("weekly"))),
                    Err(_) => {}
                }
            }

            #[test]
            fn a_period_starts_on_or_before_the_day_and_on_its_own_first_day(
                date in everyday_date(1890),
                first_day in prop::option::of(1..=28_u8),
            ) {
                let period = first_day.map_or(Ok(Period::Weekly), Period::monthly).map_err(fail)?;

                let start = period.start_of(date);

                prop_assert!(start <= date);
                prop_assert_eq!(period.start_of(start), start);
                match first_day {
                    None => {
                        prop_assert_eq!(start.weekday(), chrono::Weekday::Mon);
                        prop_assert!((date - start).num_days() < 7);
                    }
                    Some(day) => {
                        prop_assert_eq!(start.day(), u32::from(day));
                        prop_assert!((date - start).num_days() < 31);
                    }
                }
            }

            #[test]
            fn an_expense_date_is_accepted_from_1900_to_a_year_after_today(
                (date, today) in prop_oneof![everyday_date(1890), any_date()].prop_flat_map(|today| {
                    let first = NaiveDate::from_ymd_opt(1900, 1, 1).expect("a date");
                    let edge = prop_oneof![Just(first), Just(years_after(today, 1).unwrap_or(today))];
                    let near_an_edge = (edge, -2..=2_i64).prop_map(|(edge, days)| {
                        edge.checked_add_signed(chrono::TimeDelta::days(days)).unwrap_or(edge)
                    });
                    (prop_oneof![near_an_edge, everyday_date(1890), any_date()], Just(today))
                }),
            ) {
                let answer = spent_on(date, today);

                let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).expect("a date");
                let latest = years_after(today, 1).unwrap_or(NaiveDate::MAX);
                let in_range = earliest <= date && date <= latest;
                prop_assert_eq!(answer.is_ok(), in_range, "{} with today {}", date, today);
                if let Ok(accepted) = answer {
                    prop_assert_eq!(accepted, date);
                }
            }
        }
    }
}
