//! Turning domain events into stored events and back.
//!
//! A domain event enum is serialised adjacently tagged (`{"type": ..., "data": ...}`): the
//! tag becomes the stored event type and only `data` is stored as the payload, so the
//! payload is the event's own fields and the type lives in its own column.

use domain::DomainEvent;
use domain::upcast;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::event_store::{NewEvent, RecordedEvent};

/// An event could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Serialising failed or did not give `{"type", "data"}`.
    #[error("cannot encode a {event_type} event: {reason}")]
    Encode {
        /// The event's type.
        event_type: &'static str,
        /// Why.
        reason: String,
    },
    /// A stored event does not fit the type it claims to be.
    #[error("cannot decode the {event_type} event at position {position}: {source}")]
    Decode {
        /// The stored type.
        event_type: String,
        /// Where it is stored.
        position: u64,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A stored event of an older shape could not be brought to the current one.
    #[error("cannot read the event at position {position}: {source}")]
    Upcast {
        /// Where it is stored.
        position: u64,
        /// Why.
        #[source]
        source: upcast::UpcastError,
    },
}

#[derive(serde::Deserialize)]
struct Tagged<'a> {
    #[serde(borrow)]
    data: &'a RawValue,
}

/// Encodes one domain event as a new stored event with the given id.
///
/// # Errors
/// [`CodecError::Encode`] when the event does not serialise to `{"type", "data"}`.
pub fn encode<E: Serialize + DomainEvent>(
    event: &E,
    event_id: Uuid,
) -> Result<NewEvent, CodecError> {
    let event_type = event.event_type();
    let fail = |reason: String| CodecError::Encode { event_type, reason };
    let tagged = serde_json::to_string(event).map_err(|e| fail(e.to_string()))?;
    let Tagged { data } = serde_json::from_str(&tagged).map_err(|e| fail(e.to_string()))?;
    Ok(NewEvent {
        event_id,
        event_type: event_type.to_owned(),
        schema_version: event.schema_version(),
        payload: data.to_owned(),
    })
}

/// Decodes a stored event into the domain event enum.
///
/// # Errors
/// [`CodecError::Decode`] when the payload does not fit the stored type.
pub fn decode<E: DeserializeOwned>(recorded: &RecordedEvent) -> Result<E, CodecError> {
    decode_payload(recorded, &recorded.payload)
}

/// Decodes a stored event with a payload other than the stored one (e.g. with its personal
/// data unsealed).
///
/// # Errors
/// [`CodecError::Decode`] when the payload does not fit the stored type.
pub fn decode_payload<E: DeserializeOwned>(
    recorded: &RecordedEvent,
    payload: &RawValue,
) -> Result<E, CodecError> {
    let decode_error = |source| CodecError::Decode {
        event_type: recorded.event_type.clone(),
        position: recorded.position.0,
        source,
    };
    let type_json = serde_json::Value::String(recorded.event_type.clone());
    if upcast::needs_upcast(&recorded.event_type, recorded.schema_version) {
        // An older shape: reshaped as JSON, then decoded as the current one.
        let mut data: serde_json::Value =
            serde_json::from_str(payload.get()).map_err(decode_error)?;
        upcast::upcast(&recorded.event_type, recorded.schema_version, &mut data).map_err(
            |source| CodecError::Upcast {
                position: recorded.position.0,
                source,
            },
        )?;
        let tagged = serde_json::json!({ "type": type_json, "data": data });
        return serde_json::from_value(tagged).map_err(decode_error);
    }
    let tagged = format!(r#"{{"type":{type_json},"data":{}}}"#, payload.get());
    serde_json::from_str(&tagged).map_err(decode_error)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use domain::user::{UserEvent, UserId};

    use super::*;
    use crate::event_store::{EventMetadata, Position, StreamId};

    fn recorded(event: &NewEvent) -> RecordedEvent {
        RecordedEvent {
            position: Position(7),
            stream: StreamId::parse("user-1").expect("valid"),
            version: 1,
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            payload: event.payload.clone(),
            metadata: EventMetadata {
                command_id: Uuid::nil(),
                correlation_id: Uuid::nil(),
                causation_id: None,
                actor: "test".into(),
                recorded_at: Utc::now(),
                request_id: None,
            },
        }
    }

    #[test]
    fn the_type_goes_to_its_column_and_the_payload_holds_only_the_fields() {
        let admin = UserId(Uuid::from_u128(5));
        let event = UserEvent::UserDeactivated { by: admin };
        let encoded = encode(&event, Uuid::from_u128(1)).expect("encodes");

        assert_eq!(encoded.event_type, "UserDeactivated");
        assert_eq!(encoded.schema_version, 1);
        assert_eq!(encoded.payload.get(), format!(r#"{{"by":"{}"}}"#, admin.0));
        let decoded: UserEvent = decode(&recorded(&encoded)).expect("decodes");
        assert_eq!(decoded, event);
    }

    #[test]
    fn a_version_1_limit_exceeded_decodes_into_the_current_shape() {
        use domain::wallet::WalletEvent;
        let mut stored = NewEvent {
            event_id: Uuid::from_u128(9),
            event_type: "LimitExceeded".into(),
            schema_version: 1,
            payload: RawValue::from_string(
                r#"{"key":{"period":{"kind":"weekly"},"category":null},"limit":"100","period_start":"2026-11-16","spent":"125.5","expense_id":"0190f3c4-0000-7000-8000-000000000001"}"#
                    .into(),
            )
            .expect("json"),
        };
        let decoded: WalletEvent = decode(&recorded(&stored)).expect("upcast and decoded");
        let WalletEvent::LimitExceeded { overspent, .. } = &decoded else {
            panic!("{decoded:?}");
        };
        assert_eq!(overspent.to_string(), "25.5");
        // Written today, it is version 2 and carries the field itself.
        let encoded = encode(&decoded, Uuid::from_u128(10)).expect("encodes");
        assert_eq!(encoded.schema_version, 2);
        assert!(encoded.payload.get().contains(r#""overspent":"25.5""#));
        // A version 1 payload that lacks what the step derives from is an error, not a panic.
        stored.payload = RawValue::from_string(r#"{"limit":"1"}"#.into()).expect("json");
        assert!(matches!(
            decode::<WalletEvent>(&recorded(&stored)),
            Err(CodecError::Upcast { position: 7, .. })
        ));
    }

    #[test]
    fn a_payload_that_does_not_fit_its_type_is_an_error_naming_the_position() {
        let mut encoded = encode(
            &UserEvent::UserDeactivated {
                by: UserId(Uuid::nil()),
            },
            Uuid::nil(),
        )
        .expect("encodes");
        encoded.event_type = "PasswordChanged".into();
        let error = decode::<UserEvent>(&recorded(&encoded)).expect_err("mismatch");
        assert!(matches!(error, CodecError::Decode { position: 7, .. }));
    }
}
