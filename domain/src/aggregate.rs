//! The shape every aggregate has: a pure `decide` and a pure `evolve`.

/// An event of some aggregate: a fact, named in the past tense, with a type name that never
/// changes once shipped and a schema version that grows when its shape does.
pub trait DomainEvent {
    /// The stable name stored with the event, e.g. `"UserRegistered"`.
    fn event_type(&self) -> &'static str;
    /// The version of this event type's shape.
    fn schema_version(&self) -> u16 {
        1
    }

    /// Whose personal data this event carries, and in which of its fields: those fields are
    /// stored sealed with that person's key, and read back as absent once the person is
    /// erased. Most events carry none.
    fn personal_data(&self) -> Option<(uuid::Uuid, &'static [&'static str])> {
        None
    }
}

/// A value that must belong to one aggregate only across all aggregates of its kind, such
/// as an account's email address. The aggregate names it; the store enforces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueValue {
    /// What kind of value, e.g. `"email"`.
    pub scope: &'static str,
    /// The value in the form that decides equality (e.g. lower-cased).
    pub value: String,
}

/// The unique values a decision takes and gives up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UniqueValueChanges {
    /// Taken; the decision fails if another aggregate holds one of them.
    pub claimed: Vec<UniqueValue>,
    /// Given up.
    pub released: Vec<UniqueValue>,
}

/// A consistency boundary. Purposefully synchronous and free of IO: everything it needs
/// arrives in the command, so the same inputs always give the same events.
pub trait Aggregate: Default {
    /// What can be asked of it.
    type Command: std::fmt::Debug;
    /// What it records.
    type Event: DomainEvent;
    /// Why it can refuse.
    type Rejection: std::error::Error + PartialEq;

    /// The name of its stream category, e.g. `"user"`.
    const CATEGORY: &'static str;

    /// Decides what happens, without changing anything.
    ///
    /// # Errors
    /// The rejection, when the command breaks a rule.
    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Rejection>;

    /// The unique values that `events`, decided on this state, take or give up. Most
    /// aggregates have none.
    fn unique_values(&self, _events: &[Self::Event]) -> UniqueValueChanges {
        UniqueValueChanges::default()
    }

    /// Applies one event that has happened.
    #[must_use]
    fn evolve(self, event: &Self::Event) -> Self;

    /// Folds a history into the state it leads to.
    #[must_use]
    fn replay<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        events.into_iter().fold(Self::default(), Self::evolve)
    }
}

/// Given/when/then for aggregates: `given(history).when(command)` then an assertion on the
/// events or the rejection.
#[cfg(test)]
pub(crate) mod given_when_then {
    use std::fmt::Debug;

    use super::Aggregate;

    pub(crate) struct Given<A: Aggregate> {
        state: A,
    }

    pub(crate) fn given<A: Aggregate>(history: impl IntoIterator<Item = A::Event>) -> Given<A> {
        let history: Vec<A::Event> = history.into_iter().collect();
        Given {
            state: A::replay(&history),
        }
    }

    pub(crate) struct Outcome<A: Aggregate>(Result<Vec<A::Event>, A::Rejection>);

    impl<A: Aggregate> Given<A> {
        pub(crate) fn when(self, command: A::Command) -> Outcome<A> {
            Outcome(self.state.decide(&command))
        }
    }

    impl<A: Aggregate> Outcome<A>
    where
        A::Event: PartialEq + Debug,
        A::Rejection: Debug,
    {
        #[track_caller]
        pub(crate) fn then(self, expected: impl IntoIterator<Item = A::Event>) {
            let expected: Vec<A::Event> = expected.into_iter().collect();
            match self.0 {
                Ok(events) => assert_eq!(events, expected),
                Err(rejection) => panic!("expected {expected:?}, got the rejection {rejection:?}"),
            }
        }

        #[track_caller]
        pub(crate) fn then_rejected(self, expected: A::Rejection) {
            match self.0 {
                Ok(events) => panic!("expected the rejection {expected:?}, got {events:?}"),
                Err(rejection) => assert_eq!(rejection, expected),
            }
        }
    }
}
