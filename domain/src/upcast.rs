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
    let overspent = decimal(fields, "spent")? - decimal(fields, "limit")?;
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
}
