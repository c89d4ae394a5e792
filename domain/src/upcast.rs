//! Older shapes of shipped events, turned into the current shape when they are read.
//!
//! A stored event is never rewritten: it keeps the schema version it was written with. When
//! an event's shape changes, its [`DomainEvent::schema_version`](crate::DomainEvent) grows
//! and one upcaster here takes a payload from the previous version to the next, so that a
//! payload of any age reaches the current shape by going through the chain in order.
//!
//! The changes so far:
//! - `LimitExceeded` 1 -> 2: `overspent` (how far past the limit) is recorded; version 1
//!   events get it derived from their own `spent` and `limit`.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

/// One step of an event type's shape, from `from` to `from + 1`.
#[derive(Debug)]
pub struct Upcaster {
    /// The stored event type it applies to.
    pub event_type: &'static str,
    /// The schema version it reads.
    pub from: u16,
    /// Reshapes the payload's fields in place.
    pub apply: fn(&mut Map<String, Value>) -> Result<(), UpcastError>,
}

/// Why an old payload could not be brought to the current shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot upcast {event_type} from schema version {from}: {reason}")]
pub struct UpcastError {
    /// The stored event type.
    pub event_type: String,
    /// The version it failed to leave.
    pub from: u16,
    /// What was wrong with the payload.
    pub reason: String,
}

/// Every step, for every event type whose shape changed.
pub const UPCASTERS: &[Upcaster] = &[Upcaster {
    event_type: "LimitExceeded",
    from: 1,
    apply: limit_exceeded_records_how_far_past,
}];

/// Whether a payload stored with this type and version needs reshaping.
#[must_use]
pub fn needs_upcast(event_type: &str, schema_version: u16) -> bool {
    UPCASTERS
        .iter()
        .any(|u| u.event_type == event_type && u.from >= schema_version)
}

/// Brings `payload` from `schema_version` to the current shape; answers the version reached.
///
/// # Errors
/// [`UpcastError`] when the payload is not an object or lacks what a step derives from.
pub fn upcast(
    event_type: &str,
    schema_version: u16,
    payload: &mut Value,
) -> Result<u16, UpcastError> {
    let mut version = schema_version;
    while let Some(step) = UPCASTERS
        .iter()
        .find(|u| u.event_type == event_type && u.from == version)
    {
        let fields = payload.as_object_mut().ok_or_else(|| UpcastError {
            event_type: event_type.to_owned(),
            from: version,
            reason: "the payload is not an object".into(),
        })?;
        (step.apply)(fields).map_err(|mut e| {
            e.event_type = event_type.to_owned();
            e.from = version;
            e
        })?;
        version += 1;
    }
    Ok(version)
}

fn decimal(fields: &Map<String, Value>, name: &str) -> Result<Decimal, UpcastError> {
    let parsed = match fields.get(name) {
        Some(Value::String(text)) => Decimal::from_str(text).ok(),
        Some(Value::Number(number)) => Decimal::from_str(&number.to_string()).ok(),
        _ => None,
    };
    parsed.ok_or_else(|| UpcastError {
        event_type: String::new(),
        from: 0,
        reason: format!("`{name}` is missing or not an amount"),
    })
}

fn limit_exceeded_records_how_far_past(fields: &mut Map<String, Value>) -> Result<(), UpcastError> {
    // Checked: amounts near `Decimal::MAX` of opposite signs overflow, and a stored event
    // must give an error, not a panic.
    let overspent = decimal(fields, "spent")?
        .checked_sub(decimal(fields, "limit")?)
        .ok_or_else(|| UpcastError {
            event_type: String::new(),
            from: 0,
            reason: "`spent` - `limit` is out of range".into(),
        })?;
    fields.insert("overspent".into(), Value::String(overspent.to_string()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_version_1_limit_exceeded_gets_how_far_past_from_its_own_amounts() {
        let mut payload = json!({"limit": "1000", "spent": "1234.50", "expense_id": "x"});
        assert!(needs_upcast("LimitExceeded", 1));

        let reached = upcast("LimitExceeded", 1, &mut payload).expect("upcasts");

        assert_eq!(reached, 2);
        assert_eq!(payload["overspent"], json!("234.50"));
        assert_eq!(payload["spent"], json!("1234.50"));
    }

    #[test]
    fn current_shapes_and_other_types_are_left_alone() {
        assert!(!needs_upcast("LimitExceeded", 2));
        assert!(!needs_upcast("ExpenseRecorded", 1));
        let mut payload = json!({"spent": "1", "limit": "1", "overspent": "0"});
        let before = payload.clone();
        assert_eq!(upcast("LimitExceeded", 2, &mut payload), Ok(2));
        assert_eq!(payload, before);
    }

    #[test]
    fn a_payload_without_the_amounts_is_an_error_naming_the_step() {
        let mut payload = json!({"limit": "10"});
        let error = upcast("LimitExceeded", 1, &mut payload).expect_err("no spent");
        assert_eq!(
            (error.event_type.as_str(), error.from),
            ("LimitExceeded", 1)
        );
        assert!(error.reason.contains("spent"));
        assert!(upcast("LimitExceeded", 1, &mut json!([1])).is_err());
    }

    #[test]
    fn amounts_whose_difference_overflows_are_an_error_not_a_panic() {
        let max = Decimal::MAX.to_string();
        let mut payload = json!({"spent": max, "limit": format!("-{max}")});

        let error = upcast("LimitExceeded", 1, &mut payload).expect_err("out of range");

        assert_eq!(
            (error.event_type.as_str(), error.from),
            ("LimitExceeded", 1)
        );
    }

    mod fuzz {
        use proptest::prelude::*;
        use serde_json::{Value, json};

        use super::super::*;
        use crate::fuzz::{any_json, config};

        /// Any decimal a payload may hold, from the smallest to `Decimal::MAX`, of any scale.
        fn any_decimal() -> impl Strategy<Value = Decimal> {
            prop_oneof![
                (
                    any::<u32>(),
                    any::<u32>(),
                    any::<u32>(),
                    any::<bool>(),
                    0..=28_u32
                )
                    .prop_map(
                        |(lo, mid, hi, negative, scale)| Decimal::from_parts(
                            lo, mid, hi, negative, scale
                        )
                    ),
                Just(Decimal::MAX),
                Just(Decimal::MIN),
                (-10_000_i64..10_000).prop_map(|n| Decimal::new(n, 2)),
            ]
        }

        /// An amount as a payload may hold it: a string, a JSON number, or something else.
        fn amount_json() -> impl Strategy<Value = Value> {
            prop_oneof![
                4 => any_decimal().prop_map(|d| Value::String(d.to_string())),
                1 => any::<i64>().prop_map(Value::from),
                1 => any::<f64>().prop_map(Value::from),
                1 => any_json(&["spent", "limit"]),
            ]
        }

        /// The type names of events that have an upcaster, beside others and odd ones.
        fn event_type() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("LimitExceeded".to_owned()),
                Just("ExpenseRecorded".to_owned()),
                "[A-Za-z]{0,16}",
                any::<String>(),
            ]
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_payload_of_any_type_and_version_is_upcast_or_refused_never_panics(
                event_type in event_type(),
                version in prop_oneof![0..=3_u16, any::<u16>()],
                mut payload in prop_oneof![
                    any_json(&["spent", "limit", "overspent"]),
                    (amount_json(), amount_json())
                        .prop_map(|(spent, limit)| json!({"spent": spent, "limit": limit})),
                ],
            ) {
                let before = payload.clone();

                let answer = upcast(&event_type, version, &mut payload);

                match answer {
                    Ok(reached) => {
                        prop_assert!(reached >= version);
                        if reached == version {
                            prop_assert_eq!(&payload, &before, "left alone when no step applies");
                        }
                    }
                    Err(error) => {
                        prop_assert!(needs_upcast(&event_type, version), "failed a step it did not need");
                        prop_assert_eq!(error.event_type, event_type);
                    }
                }
            }

            #[test]
            fn a_version_1_limit_exceeded_gets_exactly_spent_minus_limit_or_an_error(
                spent in any_decimal(),
                limit in any_decimal(),
                as_numbers in any::<bool>(),
            ) {
                let amount = |d: Decimal| if as_numbers {
                    serde_json::from_str::<Value>(&d.to_string()).expect("a decimal is a JSON number")
                } else {
                    Value::String(d.to_string())
                };
                let mut payload = json!({"spent": amount(spent), "limit": amount(limit)});

                let answer = upcast("LimitExceeded", 1, &mut payload);

                match spent.checked_sub(limit) {
                    Some(overspent) if !as_numbers => {
                        prop_assert_eq!(answer, Ok(2));
                        let written = payload["overspent"].as_str().unwrap_or_default();
                        prop_assert_eq!(Decimal::from_str(written).ok(), Some(overspent));
                    }
                    // A JSON number may lose digits on its way through serde_json (or turn
                    // into an exponent, which is refused); what is written is an amount.
                    Some(_) => {
                        if answer.is_ok() {
                            let written = payload["overspent"].as_str().unwrap_or_default();
                            prop_assert!(Decimal::from_str(written).is_ok(), "{payload}");
                        }
                    }
                    None => prop_assert!(answer.is_err(), "{spent} - {limit} overflows yet gave {payload}"),
                }
            }
        }
    }
}
