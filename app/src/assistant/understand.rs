//! What a message to the assistant asks for. Pure: words in, an [`Intent`] out, so that its
//! understanding is tested on a table of phrasings. No external service: a handful of
//! patterns that cover what users ask most, and suggestions for everything else.

use chrono::{Datelike, Days, NaiveDate, Weekday};

/// A stretch of days a question is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// Today only.
    Today,
    /// Since Monday.
    ThisWeek,
    /// Since the 1st.
    ThisMonth,
    /// The whole month before.
    LastMonth,
}

impl Span {
    /// The first and last day of the span, as seen on `today`.
    #[must_use]
    pub fn days(self, today: NaiveDate) -> (NaiveDate, NaiveDate) {
        let month_start = today.with_day(1).unwrap_or(today);
        match self {
            Self::Today => (today, today),
            Self::ThisWeek => (
                today - Days::new(u64::from(today.weekday().num_days_from_monday())),
                today,
            ),
            Self::ThisMonth => (month_start, today),
            Self::LastMonth => {
                let last_day = month_start - Days::new(1);
                (last_day.with_day(1).unwrap_or(last_day), last_day)
            }
        }
    }

    /// How the answer names it.
    #[must_use]
    pub fn words(self) -> &'static str {
        match self {
            Self::Today => "today",
            Self::ThisWeek => "this week",
            Self::ThisMonth => "this month",
            Self::LastMonth => "last month",
        }
    }
}

/// A page the assistant can explain the way to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// Spending limits.
    Limit,
    /// Adding money.
    TopUp,
    /// Recording an expense.
    Expense,
    /// Savings goals.
    Savings,
    /// Reminders and recurring payments.
    Reminder,
    /// The CSV export.
    Export,
    /// Taking back an expense.
    Void,
}

/// What the user asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// "what's my balance"
    Balance,
    /// "how much did I spend on food this month"
    Spent {
        /// One category, or all spending.
        category: Option<String>,
        /// Over which days.
        span: Span,
    },
    /// "am I over my limit"
    Limits,
    /// "where is my ticket"
    Tickets,
    /// "how do I set a limit"
    HowTo(Topic),
    /// "spent 250 on groceries yesterday": an expense to confirm.
    Record {
        /// As typed, e.g. "250" or "12.50".
        amount: String,
        /// Capitalised, e.g. "Groceries".
        category: String,
        /// The day it was spent.
        spent_on: NaiveDate,
    },
    /// "how many tickets are in my queue" (staff)
    QueueSize,
    /// "which is the oldest ticket" (staff)
    OldestTicket,
    /// "hello", "help"
    Help,
    /// Anything else.
    NotUnderstood,
}

fn normalise(message: &str) -> String {
    message
        .to_lowercase()
        .replace(['’', '‘'], "'")
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '.' || c == '\'' || c == '-' || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .map(|word| word.trim_end_matches('.'))
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// An amount as typed: "250", "12.50", "rs250", "250rs", "inr 250".
fn amount_in(word: &str) -> Option<String> {
    let digits = word
        .trim_start_matches("rs")
        .trim_start_matches("inr")
        .trim_end_matches("rs")
        .trim_end_matches("inr")
        .trim_start_matches(['₹', '$', '€', '£']);
    let valid = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().filter(|c| *c == '.').count() <= 1
        && digits.chars().any(|c| c.is_ascii_digit());
    valid.then(|| digits.to_owned())
}

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("monday", Weekday::Mon),
    ("tuesday", Weekday::Tue),
    ("wednesday", Weekday::Wed),
    ("thursday", Weekday::Thu),
    ("friday", Weekday::Fri),
    ("saturday", Weekday::Sat),
    ("sunday", Weekday::Sun),
];

/// The day words name, if they name one: today, yesterday, a weekday (the latest one
/// before today), or a date `YYYY-MM-DD`.
fn day_in(words: &[&str], today: NaiveDate) -> Option<NaiveDate> {
    words.iter().find_map(|word| match *word {
        "today" => Some(today),
        "yesterday" => today.checked_sub_days(Days::new(1)),
        other => WEEKDAYS
            .iter()
            .find(|(name, _)| *name == other)
            .map(|(_, weekday)| {
                let back = (7 + today.weekday().num_days_from_monday()
                    - weekday.num_days_from_monday()
                    - 1)
                    % 7
                    + 1;
                today - Days::new(u64::from(back))
            })
            .or_else(|| NaiveDate::parse_from_str(other, "%Y-%m-%d").ok()),
    })
}

/// Words that end a category in "spent 250 on groceries yesterday".
const NOT_CATEGORY: [&str; 16] = [
    "today",
    "yesterday",
    "on",
    "this",
    "last",
    "at",
    "in",
    "for",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "ago",
];

fn category_after(words: &[&str], markers: &[&str]) -> Option<String> {
    let at = words.iter().position(|w| markers.contains(w))?;
    let category: Vec<&str> = words[at + 1..]
        .iter()
        .copied()
        .skip_while(|w| ["my", "the", "some"].contains(w))
        .take_while(|w| {
            !NOT_CATEGORY.contains(w) && NaiveDate::parse_from_str(w, "%Y-%m-%d").is_err()
        })
        .take(3)
        .collect();
    if category.is_empty() {
        return None;
    }
    let joined = category.join(" ");
    let mut letters = joined.chars();
    letters
        .next()
        .map(|first| first.to_uppercase().collect::<String>() + letters.as_str())
}

fn span_in(text: &str) -> Span {
    if text.contains("today") {
        Span::Today
    } else if text.contains("this week") || text.contains("week") {
        Span::ThisWeek
    } else if text.contains("last month") {
        Span::LastMonth
    } else {
        Span::ThisMonth
    }
}

fn has(text: &str, any: &[&str]) -> bool {
    any.iter().any(|needle| text.contains(needle))
}

/// What `message` asks for, as seen on `today`.
#[must_use]
pub fn understand(message: &str, today: NaiveDate) -> Intent {
    let text = normalise(message);
    let words: Vec<&str> = text.split(' ').collect();
    let asks = has(
        &text,
        &["how much", "what did", "what have", "total", "how many"],
    );

    // Quick entry: a verb of spending and an amount, e.g. "spent 250 on groceries yesterday".
    let spending_verb = words.first().is_some_and(|first| {
        [
            "spent", "spend", "paid", "pay", "add", "record", "bought", "i",
        ]
        .contains(first)
    });
    if spending_verb && !asks && !text.contains('?') {
        let amount = words.iter().find_map(|w| amount_in(w));
        let category = category_after(&words, &["on", "for"]);
        if let (Some(amount), Some(category)) = (amount, category) {
            return Intent::Record {
                amount,
                category,
                spent_on: day_in(&words, today).unwrap_or(today),
            };
        }
    }
    if text.starts_with("how do")
        || text.starts_with("how can")
        || text.starts_with("how to")
        || text.starts_with("where can")
        || text.starts_with("where do")
    {
        let topic = if has(&text, &["limit", "budget"]) {
            Some(Topic::Limit)
        } else if has(
            &text,
            &["top up", "top-up", "topup", "add money", "deposit"],
        ) {
            Some(Topic::TopUp)
        } else if has(&text, &["export", "csv", "download"]) {
            Some(Topic::Export)
        } else if has(
            &text,
            &["void", "undo", "delete", "cancel an expense", "take back"],
        ) {
            Some(Topic::Void)
        } else if has(&text, &["saving", "goal", "save"]) {
            Some(Topic::Savings)
        } else if has(&text, &["remind", "recurring", "subscription", "bill"]) {
            Some(Topic::Reminder)
        } else if has(&text, &["expense", "record", "receipt", "spending"]) {
            Some(Topic::Expense)
        } else {
            None
        };
        if let Some(topic) = topic {
            return Intent::HowTo(topic);
        }
    }
    if has(&text, &["oldest"]) && has(&text, &["ticket", "queue", "case"]) {
        return Intent::OldestTicket;
    }
    if has(&text, &["queue"]) || (has(&text, &["how many"]) && has(&text, &["ticket"])) {
        return Intent::QueueSize;
    }
    if has(&text, &["ticket", "complaint", "case", "agent"]) {
        return Intent::Tickets;
    }
    if has(&text, &["limit", "budget"]) {
        return Intent::Limits;
    }
    if has(&text, &["spend", "spent", "spending", "expenses"]) {
        return Intent::Spent {
            category: category_after(&words, &["on", "for"]),
            span: span_in(&text),
        };
    }
    if has(
        &text,
        &[
            "balance",
            "how much money",
            "how much do i have",
            "left in my wallet",
            "in my wallet",
        ],
    ) {
        return Intent::Balance;
    }
    if words.len() <= 3 && has(&text, &["help", "hello", "hi", "hey", "what can you do"]) {
        return Intent::Help;
    }
    Intent::NotUnderstood
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
    }

    /// Saturday 21 November 2026.
    fn today() -> NaiveDate {
        day("2026-11-21")
    }

    fn record(amount: &str, category: &str, spent_on: &str) -> Intent {
        Intent::Record {
            amount: amount.into(),
            category: category.into(),
            spent_on: day(spent_on),
        }
    }

    #[test]
    fn phrasings_are_understood() {
        let table: Vec<(&str, Intent)> = vec![
            ("what's my balance", Intent::Balance),
            ("What’s my balance?", Intent::Balance),
            ("how much money do I have", Intent::Balance),
            ("balance", Intent::Balance),
            (
                "how much did I spend on food this month",
                Intent::Spent {
                    category: Some("Food".into()),
                    span: Span::ThisMonth,
                },
            ),
            (
                "How much have I spent this week?",
                Intent::Spent {
                    category: None,
                    span: Span::ThisWeek,
                },
            ),
            (
                "what did i spend on groceries last month",
                Intent::Spent {
                    category: Some("Groceries".into()),
                    span: Span::LastMonth,
                },
            ),
            (
                "total spending today",
                Intent::Spent {
                    category: None,
                    span: Span::Today,
                },
            ),
            ("am I over my limit", Intent::Limits),
            ("how close am i to my budget?", Intent::Limits),
            ("where is my ticket", Intent::Tickets),
            ("has an agent looked at my case", Intent::Tickets),
            ("how do I set a limit", Intent::HowTo(Topic::Limit)),
            ("How can I add money?", Intent::HowTo(Topic::TopUp)),
            (
                "how do i export my expenses to csv",
                Intent::HowTo(Topic::Export),
            ),
            ("how do I undo an expense", Intent::HowTo(Topic::Void)),
            ("how to start a savings goal", Intent::HowTo(Topic::Savings)),
            (
                "how do I get reminded of my rent bill",
                Intent::HowTo(Topic::Reminder),
            ),
            ("how do i attach a receipt", Intent::HowTo(Topic::Expense)),
            (
                "spent 250 on groceries yesterday",
                record("250", "Groceries", "2026-11-20"),
            ),
            (
                "Spent ₹250 on groceries yesterday",
                record("250", "Groceries", "2026-11-20"),
            ),
            (
                "paid 12.50 for coffee",
                record("12.50", "Coffee", "2026-11-21"),
            ),
            (
                "spent rs80 on auto rickshaw on monday",
                record("80", "Auto rickshaw", "2026-11-16"),
            ),
            (
                "I spent 40 on lunch today",
                record("40", "Lunch", "2026-11-21"),
            ),
            (
                "add 1200 for rent on 2026-11-01",
                record("1200", "Rent", "2026-11-01"),
            ),
            (
                "spent 30 on snacks saturday",
                record("30", "Snacks", "2026-11-14"),
            ),
            ("how many tickets are in my queue", Intent::QueueSize),
            ("queue size", Intent::QueueSize),
            ("which is the oldest ticket?", Intent::OldestTicket),
            ("help", Intent::Help),
            ("hello", Intent::Help),
            ("tell me a joke", Intent::NotUnderstood),
            (
                "spent on groceries",
                Intent::Spent {
                    category: Some("Groceries".into()),
                    span: Span::ThisMonth,
                },
            ),
            ("", Intent::NotUnderstood),
        ];
        for (message, expected) in table {
            assert_eq!(understand(message, today()), expected, "{message:?}");
        }
    }

    #[test]
    fn spans_cover_their_days() {
        assert_eq!(
            Span::ThisWeek.days(today()),
            (day("2026-11-16"), day("2026-11-21"))
        );
        assert_eq!(
            Span::ThisMonth.days(today()),
            (day("2026-11-01"), day("2026-11-21"))
        );
        assert_eq!(
            Span::LastMonth.days(day("2026-03-15")),
            (day("2026-02-01"), day("2026-02-28"))
        );
        assert_eq!(Span::Today.days(today()), (today(), today()));
    }
}
