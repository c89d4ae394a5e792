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
