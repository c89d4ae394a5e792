//! The domain of the expense tracker: aggregates, the commands they decide, the events they
//! emit, and the value types that make bad states unrepresentable.
//!
//! Rules of this crate:
//! - it is pure: no IO, no clock, no randomness, no async, no database or web types. Ids,
//!   instants and anything else from the outside world arrive on the command;
//! - an aggregate is `decide(state, command) -> events | rejection` and
//!   `evolve(state, event) -> state`, both synchronous and deterministic;
//! - events are named in the past tense, keep stable type names and carry a schema version;
//! - rejections are typed and compared in tests, never matched on strings;
//! - tests are given/when/then, beside the code they test.

pub mod aggregate;
#[cfg(test)]
mod fuzz;
pub mod money;
pub mod schedule;
mod text;
pub mod ticket;
pub mod upcast;
pub mod user;
pub mod wallet;

pub use aggregate::{Aggregate, DomainEvent, UniqueValue, UniqueValueChanges};
