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
        first_day: u8,
    },
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
}
