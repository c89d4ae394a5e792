//! The read side of the expense tracker: read models kept in SQL tables, fed from the
//! event store's global log.
//!
//! Rules of this crate:
//! - a projection consumes the log strictly in position order from its checkpoint and
//!   stores the checkpoint in the same transaction as its writes, so a crash never applies
//!   an event twice or skips one (the store guarantees that positions are never skipped,
//!   see ADR 0003);
//! - a projection never decides anything: it only records what the events say;
//! - every read model can be rebuilt from position 0.

pub mod facts;
pub mod projection;
pub mod rebuild;
pub mod runner;
pub mod schedules;
pub mod sql;
pub mod tickets;
pub mod users;
pub mod wallets;

use std::sync::Arc;

pub use projection::{ApplyError, Projection};
pub use runner::{Batch, ProjectionRunner, ProjectionStatus};

/// Every projection of the product.
#[must_use]
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(schedules::SchedulesProjection::default()),
        Arc::new(tickets::TicketsProjection::default()),
        Arc::new(users::UsersProjection::default()),
        Arc::new(wallets::WalletsProjection::default()),
    ]
}
