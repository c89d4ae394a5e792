//! Strategies shared by the property tests of the value types: text made of the characters
//! parsers get wrong, lengths that sit on a limit, and arbitrary JSON for what serde lets in.
//! Test-only.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::user::InvalidValue;

/// Cases per property: enough to reach the edges, few enough for a 2-core machine.
pub(crate) const CASES: u32 = 384;

/// The configuration of every fuzz property in this crate.
pub(crate) fn config() -> ProptestConfig {
    ProptestConfig::with_cases(CASES)
}

/// Mostly plain letters, often whitespace, control characters, invisible or combining
/// characters, astral characters and anything else Unicode has.
pub(crate) fn awkward_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => prop::char::range('a', 'z'),
        2 => prop::sample::select(vec![
            ' ', '\t', '\n', '\r', '\u{0}', '\u{7}', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}',
            '\u{a0}', '\u{200b}', '\u{200d}', '\u{2028}', '\u{3000}', '\u{feff}', '\u{fffd}',
            '\u{301}', '@', '.', '+', '-', '_', '0', '9', 'A', 'Z', 'é', 'İ', 'ß', '漢', '😀',
        ]),
        1 => any::<char>(),
    ]
}

/// Text of awkward characters, short or within a few characters of `limit`, so that both
/// sides of a length limit are tried.
pub(crate) fn text_around(limit: usize) -> impl Strategy<Value = String> {
    let length = prop_oneof![
        0..=6_usize,
        limit.saturating_sub(3)..=limit + 3,
        0..=limit + 8,
    ];
    length
        .prop_flat_map(|n| prop::collection::vec(awkward_char(), n))
        .prop_map(String::from_iter)
}

/// Any JSON value: scalars of every kind (numbers at their extremes, decimal-looking text,
/// awkward text) and small arrays and objects of them. `keys` are used as object keys
/// beside random ones, so that objects sometimes look like the type under test.
pub(crate) fn any_json(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Non-finite floats become null.
        any::<f64>().prop_map(Value::from),
        (-40_i64..=40).prop_map(Value::from),
        "[+-]?[0-9]{1,32}(\\.[0-9]{1,32})?".prop_map(Value::String),
        prop::collection::vec(awkward_char(), 0..12)
            .prop_map(|c| Value::String(c.into_iter().collect())),
    ];
    let key = prop_oneof![
        prop::sample::select(keys.to_vec()).prop_map(str::to_owned),
        "[a-z_]{1,10}",
    ];
    leaf.prop_recursive(3, 32, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..5)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Checks `answer`, what a parser said about `raw`, against the rules of trimmed text of
/// `min..=max` characters holding no control characters but `allowed_controls`: accepted
/// exactly when the rules hold, and refused with the error of a rule that is broken.
pub(crate) fn check_text_rules(
    raw: &str,
    (min, max): (usize, usize),
    allowed_controls: &[char],
    answer: Result<&str, &InvalidValue>,
) -> Result<(), TestCaseError> {
    let trimmed = raw.trim();
    let length = trimmed.chars().count();
    let stray_control = trimmed
        .chars()
        .any(|c| c.is_control() && !allowed_controls.contains(&c));
    match answer {
        Ok(value) => {
            prop_assert_eq!(value, trimmed);
            prop_assert!(
                (min..=max).contains(&length) && !stray_control,
                "{raw:?} was accepted"
            );
        }
        Err(InvalidValue::Empty) => prop_assert!(length == 0 && min > 0, "{raw:?} is not empty"),
        Err(InvalidValue::TooShort { min: said }) => {
            prop_assert!(
                *said == min && length > 0 && length < min,
                "{raw:?} is not too short"
            );
        }
        Err(InvalidValue::TooLong { max: said }) => {
            prop_assert!(*said == max && length > max, "{raw:?} is not too long");
        }
        Err(InvalidValue::Malformed(_)) => prop_assert!(stray_control, "{raw:?} is not malformed"),
    }
    Ok(())
}

/// Checks that an accepted text value reads back as itself: from its `Display` through
/// `parse`, and from its JSON (a plain string) through serde.
pub(crate) fn check_reads_back<T>(
    value: &T,
    parse: fn(&str) -> Result<T, InvalidValue>,
) -> Result<(), TestCaseError>
where
    T: fmt::Display + fmt::Debug + PartialEq + Serialize + DeserializeOwned,
{
    let shown = value.to_string();
    let reparsed = parse(&shown);
    prop_assert_eq!(reparsed.as_ref(), Ok(value));
    prop_assert_eq!(reparsed.map(|v| v.to_string()), Ok(shown.clone()));
    let json = serde_json::to_value(value).map_err(fail)?;
    prop_assert_eq!(
        json.as_str(),
        Some(shown.as_str()),
        "serialises as its text"
    );
    let back: T = serde_json::from_value(json).map_err(fail)?;
    prop_assert_eq!(&back, value);
    prop_assert_eq!(back.to_string(), shown);
    Ok(())
}

/// Checks that serde reads a text value only through its `parse`: JSON text gives what
/// `parse` gives, anything else is refused, and nothing panics.
pub(crate) fn check_json_goes_through_parse<T>(
    json: &Value,
    parse: fn(&str) -> Result<T, InvalidValue>,
) -> Result<(), TestCaseError>
where
    T: fmt::Debug + PartialEq + DeserializeOwned,
{
    let decoded = serde_json::from_value::<T>(json.clone());
    match (json, decoded) {
        (Value::String(text), Ok(value)) => prop_assert_eq!(parse(text), Ok(value)),
        (Value::String(text), Err(_)) => {
            prop_assert!(
                parse(text).is_err(),
                "serde refused {text:?}, parse did not"
            );
        }
        (_, Ok(value)) => prop_assert!(false, "{json} is not text but gave {value:?}"),
        (_, Err(_)) => {}
    }
    Ok(())
}

/// A serde or other error as a failed case.
pub(crate) fn fail(error: impl fmt::Display) -> TestCaseError {
    TestCaseError::fail(error.to_string())
}

/// Any date chrono can hold.
pub(crate) fn any_date() -> impl Strategy<Value = NaiveDate> {
    (NaiveDate::MIN.num_days_from_ce()..=NaiveDate::MAX.num_days_from_ce())
        .prop_map(|days| NaiveDate::from_num_days_from_ce_opt(days).expect("in range"))
}

/// A date from `first_year` to 2200, with month ends and leap days often.
pub(crate) fn everyday_date(first_year: i32) -> impl Strategy<Value = NaiveDate> {
    (
        first_year..=2200_i32,
        1..=12_u32,
        prop_oneof![1..=31_u32, 28..=31_u32],
    )
        .prop_map(|(y, m, d)| {
            (0..4)
                .find_map(|back| NaiveDate::from_ymd_opt(y, m, d - back))
                .expect("every month has day 28")
        })
}

/// `date` `years` later, worked out without `checked_add_months`: 29 February becomes
/// 28 February.
pub(crate) fn years_after(date: NaiveDate, years: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(date.year() + years, date.month(), date.day())
        .or_else(|| NaiveDate::from_ymd_opt(date.year() + years, date.month(), date.day() - 1))
}
