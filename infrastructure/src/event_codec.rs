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

    /// Property tests: every event of every aggregate reads back as itself, and no stored
    /// type, version or payload, however broken, makes decoding panic.
    mod fuzz {
        use std::fmt::Debug;

        use chrono::{Datelike, NaiveDate};
        use domain::money::Currency;
        use domain::schedule::{Cadence, RemindBefore, ReminderTitle, ScheduleEvent, Settlement};
        use domain::ticket::{Actor, Crossing, TicketEvent, TicketText};
        use domain::user::{
            Email, Gender, InvalidValue, Mobile, PasswordChangeCause, PasswordHash, PersonName,
            Profile, Registrar, Role, UserEvent, Username,
        };
        use domain::wallet::{Category, Description, GoalName, LimitKey, Period, WalletEvent};
        use proptest::prelude::*;
        use proptest::test_runner::TestCaseError;
        use serde_json::{Map, Value};

        use super::*;

        /// Cases per property: enough to reach every variant many times, few enough for a
        /// 2-core machine.
        const CASES: u32 = 256;

        /// Every stored event type of every aggregate.
        const EVENT_TYPES: &[&str] = &[
            "UserRegistered",
            "PasswordChanged",
            "PasswordResetRequested",
            "UserDeactivated",
            "UserReactivated",
            "PersonalDataErased",
            "WalletOpened",
            "WalletToppedUp",
            "ExpenseRecorded",
            "ExpenseVoided",
            "LimitSet",
            "LimitRemoved",
            "LimitWarningReached",
            "LimitExceeded",
            "SavingsGoalCreated",
            "SavingsContributed",
            "SavingsWithdrawn",
            "SavingsGoalReached",
            "ReminderSet",
            "ReminderCancelled",
            "ReminderSent",
            "RecurringPaymentScheduled",
            "RecurringPaymentCancelled",
            "PaymentReminderSent",
            "RecurringPaymentSettled",
            "TicketOpened",
            "TicketAssigned",
            "TicketCommented",
            "TicketResolved",
            "TicketReopened",
        ];

        /// Field names of the payloads, so that random objects sometimes look like events.
        const FIELDS: &[&str] = &[
            "user_id",
            "role",
            "profile",
            "password_hash",
            "registered_by",
            "cause",
            "by",
            "owner",
            "currency",
            "amount",
            "note",
            "expense_id",
            "category",
            "description",
            "spent_on",
            "receipt_id",
            "reason",
            "key",
            "period",
            "kind",
            "first_day",
            "limit",
            "period_start",
            "spent",
            "overspent",
            "goal_id",
            "name",
            "target",
            "due",
            "reminder_id",
            "title",
            "repeat",
            "occurrence",
            "skipped",
            "next_due",
            "payment_id",
            "cadence",
            "first_due",
            "remind_before",
            "outcome",
            "customer",
            "crossing",
            "limit_amount",
            "assignee",
            "previous",
            "author",
            "text",
            "resolution",
            "email",
            "mobile",
            "gender",
            "username",
        ];

        fn config() -> ProptestConfig {
            ProptestConfig::with_cases(CASES)
        }

        fn fail(error: impl std::fmt::Display) -> TestCaseError {
            TestCaseError::fail(error.to_string())
        }

        fn uuid() -> impl Strategy<Value = Uuid> {
            prop_oneof![
                Just(Uuid::nil()),
                Just(Uuid::max()),
                any::<u128>().prop_map(Uuid::from_u128)
            ]
        }

        fn user_id() -> impl Strategy<Value = UserId> {
            uuid().prop_map(UserId)
        }

        fn date() -> impl Strategy<Value = NaiveDate> {
            prop_oneof![
                Just(NaiveDate::MIN),
                Just(NaiveDate::MAX),
                (NaiveDate::MIN.num_days_from_ce()..=NaiveDate::MAX.num_days_from_ce())
                    .prop_map(|days| NaiveDate::from_num_days_from_ce_opt(days).expect("in range")),
            ]
        }

        /// Any decimal an event may hold, as text: either sign, up to 28 digits, any scale.
        fn decimal_text() -> impl Strategy<Value = String> {
            prop_oneof![
                ("-?", "[0-9]{1,14}", "[0-9]{0,14}").prop_map(|(sign, whole, decimals)| {
                    if decimals.is_empty() {
                        format!("{sign}{whole}")
                    } else {
                        format!("{sign}{whole}.{decimals}")
                    }
                }),
                Just("79228162514264337593543950335".to_owned()),
                Just("-79228162514264337593543950335".to_owned()),
                Just("0.0000000000000000000000000001".to_owned()),
                Just("-0".to_owned()),
            ]
        }

        /// A value of a field whose type this crate does not name (the decimals): read
        /// from its JSON.
        fn from_json<T: DeserializeOwned>(json: Value) -> T {
            serde_json::from_value(json).expect("valid by construction")
        }

        fn decimal<T: DeserializeOwned>(text: &str) -> T {
            from_json(Value::String(text.to_owned()))
        }

        /// Text of every kind: plain, any printable Unicode, with line breaks and tabs.
        fn any_text() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-zA-Z0-9][a-zA-Z0-9 .,'-]{0,30}",
                "\\PC{1,40}",
                "[a-z]{1,4}[\n\t\r][a-z ]{0,6}",
                any::<String>(),
            ]
        }

        /// Values of a text type: whatever of `raw` its `parse` accepts.
        fn parsed<T: Debug>(
            raw: impl Strategy<Value = String>,
            parse: fn(&str) -> Result<T, InvalidValue>,
        ) -> impl Strategy<Value = T> {
            raw.prop_filter_map("refused by parse", move |raw| parse(&raw).ok())
        }

        fn currency() -> impl Strategy<Value = Currency> {
            prop::sample::select(vec!["INR", "JPY", "KWD", "EUR", "usd", "CLP", "BHD"])
                .prop_map(|code| Currency::parse(code).expect("listed"))
        }

        fn period() -> impl Strategy<Value = Period> {
            prop_oneof![
                Just(Period::Weekly),
                (1..=28_u8).prop_map(|day| Period::monthly(day).expect("1 to 28")),
            ]
        }

        fn limit_key() -> impl Strategy<Value = LimitKey> {
            (
                period(),
                prop::option::of(parsed(any_text(), Category::parse)),
            )
                .prop_map(|(period, category)| LimitKey { period, category })
        }

        fn profile() -> impl Strategy<Value = Profile> {
            (
                parsed(any_text(), PersonName::parse),
                parsed(
                    "[a-zA-Z0-9._%+-]{1,20}@[a-z0-9-]{1,10}\\.[a-z]{2,6}",
                    Email::parse,
                ),
                prop::option::of(parsed("\\+?[0-9][0-9 ()-]{6,20}", Mobile::parse)),
                prop::option::of(prop::sample::select(vec![
                    Gender::Female,
                    Gender::Male,
                    Gender::NonBinary,
                    Gender::Other,
                    Gender::PreferNotToSay,
                ])),
                prop::option::of(parsed("[a-zA-Z0-9._-]{3,32}", Username::parse)),
            )
                .prop_map(|(name, email, mobile, gender, username)| Profile {
                    name,
                    email,
                    mobile,
                    gender,
                    username,
                })
        }

        fn user_event() -> BoxedStrategy<UserEvent> {
            let hash = any::<String>().prop_map(PasswordHash::from_phc);
            let role = prop::sample::select(vec![
                Role::Customer,
                Role::Agent,
                Role::Admin,
                Role::Auditor,
            ]);
            let registrar = prop_oneof![
                Just(Registrar::SelfSignUp),
                Just(Registrar::Operator),
                user_id().prop_map(Registrar::Admin),
            ];
            let cause = prop::sample::select(vec![
                PasswordChangeCause::Reset,
                PasswordChangeCause::ChangedByUser,
            ]);
            prop_oneof![
                (
                    user_id(),
                    role,
                    prop::option::of(profile()),
                    hash.clone(),
                    registrar
                )
                    .prop_map(
                        |(user_id, role, profile, password_hash, registered_by)| {
                            UserEvent::UserRegistered {
                                user_id,
                                role,
                                profile,
                                password_hash,
                                registered_by,
                            }
                        }
                    ),
                (hash, cause).prop_map(|(password_hash, cause)| UserEvent::PasswordChanged {
                    password_hash,
                    cause
                }),
                Just(UserEvent::PasswordResetRequested {}),
                user_id().prop_map(|by| UserEvent::UserDeactivated { by }),
                user_id().prop_map(|by| UserEvent::UserReactivated { by }),
                prop::option::of(user_id()).prop_map(|by| UserEvent::PersonalDataErased { by }),
            ]
            .boxed()
        }

        fn wallet_event() -> BoxedStrategy<WalletEvent> {
            let description = || parsed(any_text(), Description::parse);
            prop_oneof![
                (user_id(), currency())
                    .prop_map(|(owner, currency)| WalletEvent::WalletOpened { owner, currency }),
                (decimal_text(), description()).prop_map(|(amount, note)| {
                    WalletEvent::WalletToppedUp {
                        amount: decimal(&amount),
                        note,
                    }
                }),
                (
                    uuid(),
                    decimal_text(),
                    parsed(any_text(), Category::parse),
                    description(),
                    date(),
                    prop::option::of(uuid()),
                )
                    .prop_map(
                        |(expense_id, amount, category, description, spent_on, receipt_id)| {
                            WalletEvent::ExpenseRecorded {
                                expense_id,
                                amount: decimal(&amount),
                                category,
                                description,
                                spent_on,
                                receipt_id,
                            }
                        }
                    ),
                (uuid(), description()).prop_map(|(expense_id, reason)| {
                    WalletEvent::ExpenseVoided { expense_id, reason }
                }),
                (limit_key(), decimal_text()).prop_map(|(key, amount)| WalletEvent::LimitSet {
                    key,
                    amount: decimal(&amount),
                }),
                limit_key().prop_map(|key| WalletEvent::LimitRemoved { key }),
                (limit_key(), decimal_text(), date(), decimal_text(), uuid()).prop_map(
                    |(key, limit, period_start, spent, expense_id)| {
                        WalletEvent::LimitWarningReached {
                            key,
                            limit: decimal(&limit),
                            period_start,
                            spent: decimal(&spent),
                            expense_id,
                        }
                    }
                ),
                (
                    limit_key(),
                    decimal_text(),
                    date(),
                    decimal_text(),
                    decimal_text(),
                    uuid()
                )
                    .prop_map(
                        |(key, limit, period_start, spent, overspent, expense_id)| {
                            WalletEvent::LimitExceeded {
                                key,
                                limit: decimal(&limit),
                                period_start,
                                spent: decimal(&spent),
                                overspent: decimal(&overspent),
                                expense_id,
                            }
                        }
                    ),
                (
                    uuid(),
                    parsed(any_text(), GoalName::parse),
                    decimal_text(),
                    prop::option::of(date())
                )
                    .prop_map(|(goal_id, name, target, due)| {
                        WalletEvent::SavingsGoalCreated {
                            goal_id,
                            name,
                            target: decimal(&target),
                            due,
                        }
                    }),
                (uuid(), decimal_text()).prop_map(|(goal_id, amount)| {
                    WalletEvent::SavingsContributed {
                        goal_id,
                        amount: decimal(&amount),
                    }
                }),
                (uuid(), decimal_text()).prop_map(|(goal_id, amount)| {
                    WalletEvent::SavingsWithdrawn {
                        goal_id,
                        amount: decimal(&amount),
                    }
                }),
                uuid().prop_map(|goal_id| WalletEvent::SavingsGoalReached { goal_id }),
            ]
            .boxed()
        }

        fn schedule_event() -> BoxedStrategy<ScheduleEvent> {
            let cadence =
                || prop::sample::select(vec![Cadence::Weekly, Cadence::Monthly, Cadence::Yearly]);
            let settlement = prop_oneof![
                uuid().prop_map(|expense_id| Settlement::Recorded { expense_id }),
                any::<String>().prop_map(|reason| Settlement::Refused { reason }),
            ];
            prop_oneof![
                (
                    uuid(),
                    parsed(any_text(), ReminderTitle::parse),
                    date(),
                    prop::option::of(cadence())
                )
                    .prop_map(|(reminder_id, title, due, repeat)| {
                        ScheduleEvent::ReminderSet {
                            reminder_id,
                            title,
                            due,
                            repeat,
                        }
                    }),
                uuid().prop_map(|reminder_id| ScheduleEvent::ReminderCancelled { reminder_id }),
                (
                    uuid(),
                    any::<u32>(),
                    date(),
                    any::<u32>(),
                    prop::option::of(date())
                )
                    .prop_map(
                        |(reminder_id, occurrence, due, skipped, next_due)| {
                            ScheduleEvent::ReminderSent {
                                reminder_id,
                                occurrence,
                                due,
                                skipped,
                                next_due,
                            }
                        }
                    ),
                (
                    uuid(),
                    decimal_text(),
                    currency(),
                    parsed(any_text(), Category::parse),
                    parsed(any_text(), Description::parse),
                    cadence(),
                    date(),
                    (0..=RemindBefore::MAX)
                        .prop_map(|days| RemindBefore::new(days).expect("0 to 30")),
                )
                    .prop_map(
                        |(
                            payment_id,
                            amount,
                            currency,
                            category,
                            description,
                            cadence,
                            first_due,
                            remind_before,
                        )| {
                            ScheduleEvent::RecurringPaymentScheduled {
                                payment_id,
                                amount: decimal(&amount),
                                currency,
                                category,
                                description,
                                cadence,
                                first_due,
                                remind_before,
                            }
                        }
                    ),
                uuid()
                    .prop_map(|payment_id| ScheduleEvent::RecurringPaymentCancelled { payment_id }),
                (uuid(), any::<u32>(), date()).prop_map(|(payment_id, occurrence, due)| {
                    ScheduleEvent::PaymentReminderSent {
                        payment_id,
                        occurrence,
                        due,
                    }
                }),
                (
                    uuid(),
                    any::<u32>(),
                    date(),
                    settlement,
                    prop::option::of(date())
                )
                    .prop_map(
                        |(payment_id, occurrence, due, outcome, next_due)| {
                            ScheduleEvent::RecurringPaymentSettled {
                                payment_id,
                                occurrence,
                                due,
                                outcome,
                                next_due,
                            }
                        }
                    ),
            ]
            .boxed()
        }

        fn ticket_event() -> BoxedStrategy<TicketEvent> {
            let actor = || {
                prop_oneof![
                    Just(Actor::System),
                    user_id().prop_map(Actor::Agent),
                    user_id().prop_map(Actor::Admin),
                    user_id().prop_map(Actor::Customer),
                ]
            };
            let text = || parsed(any_text(), TicketText::parse);
            let crossing = (
                limit_key(),
                decimal_text(),
                date(),
                decimal_text(),
                uuid(),
                uuid(),
            )
                .prop_map(
                    |(limit, limit_amount, period_start, spent, expense_id, cause)| Crossing {
                        limit,
                        limit_amount: decimal(&limit_amount),
                        period_start,
                        spent: decimal(&spent),
                        expense_id,
                        cause,
                    },
                );
            prop_oneof![
                (user_id(), crossing).prop_map(|(customer, crossing)| TicketEvent::TicketOpened {
                    customer,
                    crossing
                }),
                (user_id(), prop::option::of(user_id()), actor()).prop_map(
                    |(assignee, previous, by)| {
                        TicketEvent::TicketAssigned {
                            assignee,
                            previous,
                            by,
                        }
                    }
                ),
                (actor(), text())
                    .prop_map(|(author, text)| TicketEvent::TicketCommented { author, text }),
                (actor(), text())
                    .prop_map(|(by, resolution)| TicketEvent::TicketResolved { by, resolution }),
                (actor(), text())
                    .prop_map(|(by, reason)| TicketEvent::TicketReopened { by, reason }),
            ]
            .boxed()
        }

        /// An event of any aggregate, decoded as its aggregate's event type.
        #[derive(Debug, Clone)]
        enum AnyEvent {
            User(UserEvent),
            Wallet(WalletEvent),
            Schedule(ScheduleEvent),
            Ticket(TicketEvent),
        }

        impl AnyEvent {
            fn encode(&self) -> Result<NewEvent, CodecError> {
                let id = Uuid::from_u128(42);
                match self {
                    Self::User(event) => encode(event, id),
                    Self::Wallet(event) => encode(event, id),
                    Self::Schedule(event) => encode(event, id),
                    Self::Ticket(event) => encode(event, id),
                }
            }

            /// Decodes `stored` as this event's aggregate's events, checking the answer.
            fn check_decoding(&self, stored: &RecordedEvent) -> Result<(), TestCaseError> {
                match self {
                    Self::User(_) => check_decoding::<UserEvent>(stored),
                    Self::Wallet(_) => check_decoding::<WalletEvent>(stored),
                    Self::Schedule(_) => check_decoding::<ScheduleEvent>(stored),
                    Self::Ticket(_) => check_decoding::<TicketEvent>(stored),
                }
            }
        }

        fn any_event() -> BoxedStrategy<AnyEvent> {
            prop_oneof![
                user_event().prop_map(AnyEvent::User),
                wallet_event().prop_map(AnyEvent::Wallet),
                schedule_event().prop_map(AnyEvent::Schedule),
                ticket_event().prop_map(AnyEvent::Ticket),
            ]
            .boxed()
        }

        /// Any JSON value; objects often use the payloads' field names.
        fn any_json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                decimal_text().prop_map(Value::String),
                decimal_text().prop_map(|text| serde_json::from_str(&text).unwrap_or(Value::Null)),
                "[0-9]{1,40}[eE]-?[0-9]{1,4}".prop_map(Value::String),
                uuid().prop_map(|id| Value::String(id.to_string())),
                prop::sample::select(EVENT_TYPES).prop_map(|name| Value::String(name.to_owned())),
                prop::sample::select(vec![
                    "weekly",
                    "monthly",
                    "system",
                    "agent",
                    "customer",
                    "INR",
                    "2026-11-21",
                    "+919876543210"
                ])
                .prop_map(|text| Value::String(text.to_owned())),
                any::<String>().prop_map(Value::String),
            ];
            let key = prop_oneof![
                prop::sample::select(FIELDS).prop_map(str::to_owned),
                "[a-z_]{1,10}"
            ];
            leaf.prop_recursive(3, 32, 6, move |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                    prop::collection::vec((key.clone(), inner), 0..7)
                        .prop_map(|fields| Value::Object(fields.into_iter().collect())),
                ]
            })
        }

        /// One change to a stored payload.
        #[derive(Debug, Clone)]
        enum Mutation {
            /// Drop a field (the index picks which, modulo the number of fields).
            Drop(usize),
            /// Give a field another value.
            Replace(usize, Value),
            /// Give a field's value another JSON type: text to number, number to text...
            Retype(usize),
            /// Cut a field's text (or a number's digits) short, at a character count.
            Truncate(usize, usize),
            /// Add a field the event does not have.
            Add(String, Value),
            /// Apply a change inside a field that holds an object.
            Inside(usize, Box<Mutation>),
        }

        fn mutation() -> impl Strategy<Value = Mutation> {
            let flat = prop_oneof![
                any::<usize>().prop_map(Mutation::Drop),
                (any::<usize>(), any_json()).prop_map(|(n, value)| Mutation::Replace(n, value)),
                any::<usize>().prop_map(Mutation::Retype),
                (any::<usize>(), 0..40_usize).prop_map(|(n, at)| Mutation::Truncate(n, at)),
                ("[a-z_]{1,10}", any_json()).prop_map(|(name, value)| Mutation::Add(name, value)),
            ];
            flat.prop_recursive(2, 3, 1, |inner| {
                (any::<usize>(), inner).prop_map(|(n, m)| Mutation::Inside(n, Box::new(m)))
            })
        }

        fn field_name(fields: &Map<String, Value>, n: usize) -> Option<String> {
            (!fields.is_empty())
                .then(|| fields.keys().nth(n % fields.len()))
                .flatten()
                .cloned()
        }

        fn retyped(value: &Value) -> Value {
            match value {
                Value::String(text) => serde_json::from_str::<Value>(text)
                    .ok()
                    .filter(|v| !v.is_string())
                    .unwrap_or(Value::Number(0.into())),
                Value::Number(number) => Value::String(number.to_string()),
                Value::Bool(flag) => Value::String(flag.to_string()),
                Value::Null => Value::String(String::new()),
                Value::Array(items) => Value::Object(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (i.to_string(), v.clone()))
                        .collect(),
                ),
                Value::Object(fields) => Value::Array(fields.values().cloned().collect()),
            }
        }

        fn truncated(value: &Value, at: usize) -> Value {
            match value {
                Value::String(text) => Value::String(text.chars().take(at).collect()),
                Value::Number(number) => {
                    let digits: String = number.to_string().chars().take(at).collect();
                    serde_json::from_str(&digits).unwrap_or(Value::String(digits))
                }
                other => other.clone(),
            }
        }

        fn apply(mutation: &Mutation, payload: &mut Value) {
            let Value::Object(fields) = payload else {
                return;
            };
            match mutation {
                Mutation::Add(name, value) => {
                    fields.insert(name.clone(), value.clone());
                }
                Mutation::Drop(n) => {
                    if let Some(name) = field_name(fields, *n) {
                        fields.remove(&name);
                    }
                }
                Mutation::Replace(n, value) => {
                    if let Some(name) = field_name(fields, *n) {
                        fields.insert(name, value.clone());
                    }
                }
                Mutation::Retype(n) => {
                    if let Some(name) = field_name(fields, *n) {
                        let value = retyped(&fields[&name]);
                        fields.insert(name, value);
                    }
                }
                Mutation::Truncate(n, at) => {
                    if let Some(name) = field_name(fields, *n) {
                        let value = truncated(&fields[&name], *at);
                        fields.insert(name, value);
                    }
                }
                Mutation::Inside(n, inner) => {
                    if let Some(name) = field_name(fields, *n)
                        && let Some(value) = fields.get_mut(&name)
                    {
                        apply(inner, value);
                    }
                }
            }
        }

        /// A stored event with this type, version and payload text, when the text is JSON
        /// (the store keeps nothing else).
        fn stored(event_type: &str, schema_version: u16, payload: String) -> Option<RecordedEvent> {
            let payload = RawValue::from_string(payload).ok()?;
            Some(recorded(&NewEvent {
                event_id: Uuid::from_u128(42),
                event_type: event_type.to_owned(),
                schema_version,
                payload,
            }))
        }

        /// Decodes `stored` as `E`: an event of the stored type that encodes and decodes
        /// again to itself, or a decode or upcast error naming the stored event.
        fn check_decoding<E>(stored: &RecordedEvent) -> Result<(), TestCaseError>
        where
            E: Serialize + DeserializeOwned + DomainEvent + PartialEq + Debug,
        {
            match decode::<E>(stored) {
                Ok(event) => {
                    prop_assert_eq!(event.event_type(), stored.event_type.as_str());
                    let again = encode(&event, stored.event_id).map_err(fail)?;
                    let back: E = decode(&recorded(&again)).map_err(fail)?;
                    prop_assert_eq!(back, event);
                }
                Err(CodecError::Decode {
                    event_type,
                    position,
                    ..
                }) => {
                    prop_assert_eq!(
                        (event_type.as_str(), position),
                        (stored.event_type.as_str(), 7)
                    );
                }
                Err(CodecError::Upcast { position, source }) => {
                    prop_assert_eq!(position, 7);
                    prop_assert!(
                        upcast::needs_upcast(&stored.event_type, stored.schema_version),
                        "{source}"
                    );
                }
                Err(error @ CodecError::Encode { .. }) => {
                    prop_assert!(false, "decoding gave {error}")
                }
            }
            Ok(())
        }

        /// Encodes `event` and checks what is stored and that it reads back as itself,
        /// byte for byte when encoded again.
        fn check_round_trip<E>(event: &E) -> Result<(), TestCaseError>
        where
            E: Serialize + DeserializeOwned + DomainEvent + PartialEq + Debug,
        {
            let encoded = encode(event, Uuid::from_u128(42)).map_err(fail)?;
            prop_assert_eq!(encoded.event_type.as_str(), event.event_type());
            prop_assert_eq!(encoded.schema_version, event.schema_version());
            let payload: Value = serde_json::from_str(encoded.payload.get()).map_err(fail)?;
            prop_assert!(
                payload.is_object(),
                "the payload is the event's fields: {payload}"
            );

            let decoded: E = decode(&recorded(&encoded)).map_err(fail)?;

            prop_assert_eq!(&decoded, event);
            let again = encode(&decoded, Uuid::from_u128(42)).map_err(fail)?;
            prop_assert_eq!(again.payload.get(), encoded.payload.get());
            Ok(())
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn every_user_event_reads_back_as_itself(event in user_event()) {
                check_round_trip(&event)?;
            }

            #[test]
            fn every_wallet_event_reads_back_as_itself(event in wallet_event()) {
                check_round_trip(&event)?;
            }

            #[test]
            fn every_schedule_event_reads_back_as_itself(event in schedule_event()) {
                check_round_trip(&event)?;
            }

            #[test]
            fn every_ticket_event_reads_back_as_itself(event in ticket_event()) {
                check_round_trip(&event)?;
            }

            #[test]
            fn any_type_version_and_payload_decodes_or_is_a_codec_error(
                event_type in prop_oneof![
                    prop::sample::select(EVENT_TYPES).prop_map(str::to_owned),
                    "[A-Za-z]{0,20}",
                    any::<String>(),
                ],
                schema_version in prop_oneof![0..=3_u16, any::<u16>()],
                payload in any_json(),
            ) {
                let stored = stored(&event_type, schema_version, payload.to_string())
                    .ok_or_else(|| fail("JSON"))?;

                check_decoding::<UserEvent>(&stored)?;
                check_decoding::<WalletEvent>(&stored)?;
                check_decoding::<ScheduleEvent>(&stored)?;
                check_decoding::<TicketEvent>(&stored)?;
            }

            /// Valid events, broken a little: fields dropped, replaced, retyped, cut short or
            /// added, at the top or inside, stored under their own or another type and
            /// version.
            #[test]
            fn a_mutated_event_decodes_or_is_a_codec_error(
                event in any_event(),
                mutations in prop::collection::vec(mutation(), 1..4),
                other_type in prop::option::weighted(0.2, prop::sample::select(EVENT_TYPES)),
                other_version in prop::option::weighted(0.3, prop_oneof![0..=3_u16, any::<u16>()]),
            ) {
                let encoded = event.encode().map_err(fail)?;
                let mut payload: Value = serde_json::from_str(encoded.payload.get()).map_err(fail)?;
                for mutation in &mutations {
                    apply(mutation, &mut payload);
                }
                let event_type = other_type.unwrap_or(&encoded.event_type);
                let schema_version = other_version.unwrap_or(encoded.schema_version);
                let stored = stored(event_type, schema_version, payload.to_string())
                    .ok_or_else(|| fail("JSON"))?;

                event.check_decoding(&stored)?;
            }

            /// Version 1 of `LimitExceeded` had no `overspent`: it is derived on read from
            /// amounts of any size, or the event is an upcast error, never a panic.
            #[test]
            fn a_version_1_limit_exceeded_gets_spent_minus_limit_or_is_an_upcast_error(
                event in (limit_key(), decimal_text(), date(), decimal_text(), uuid()).prop_map(
                    |(key, limit, period_start, spent, expense_id)| WalletEvent::LimitExceeded {
                        key,
                        limit: decimal(&limit),
                        period_start,
                        spent: decimal(&spent),
                        overspent: decimal("0"),
                        expense_id,
                    }
                ),
            ) {
                let encoded = encode(&event, Uuid::from_u128(42)).map_err(fail)?;
                let mut payload: Value = serde_json::from_str(encoded.payload.get()).map_err(fail)?;
                payload.as_object_mut().ok_or_else(|| fail("an object"))?.remove("overspent");
                let stored = stored("LimitExceeded", 1, payload.to_string()).ok_or_else(|| fail("JSON"))?;
                let WalletEvent::LimitExceeded { spent, limit, .. } = event else {
                    return Err(fail("made as LimitExceeded"));
                };

                let decoded = decode::<WalletEvent>(&stored);

                match (spent.checked_sub(limit), decoded) {
                    (Some(difference), Ok(WalletEvent::LimitExceeded { overspent, .. })) => {
                        prop_assert_eq!(overspent, difference);
                    }
                    (None, Err(CodecError::Upcast { position: 7, .. })) => {}
                    (expected, decoded) => {
                        prop_assert!(false, "{spent} - {limit}: expected {expected:?}, got {decoded:?}");
                    }
                }
            }

            /// The payload's text itself cut short or with a character changed: what is
            /// still JSON decodes or is a codec error.
            #[test]
            fn a_payload_cut_short_or_with_a_changed_character_decodes_or_is_a_codec_error(
                event in any_event(),
                at in any::<usize>(),
                replacement in prop::option::of(prop::sample::select(vec![
                    '"', '{', '}', ',', ':', '0', '-', 'e', '.', 'x', '\\', ' ',
                ])),
            ) {
                let encoded = event.encode().map_err(fail)?;
                let text = encoded.payload.get();
                let boundaries: Vec<usize> =
                    text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
                let cut = boundaries[at % boundaries.len()];
                let changed = match replacement {
                    // Truncated at `cut`.
                    None => text[..cut].to_owned(),
                    // One character replaced at `cut`.
                    Some(c) => {
                        let rest: String = text[cut..].chars().skip(1).collect();
                        format!("{}{c}{rest}", &text[..cut])
                    }
                };

                if let Some(stored) = stored(&encoded.event_type, encoded.schema_version, changed) {
                    event.check_decoding(&stored)?;
                }
            }
        }
    }
}
