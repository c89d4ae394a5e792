//! Events as the projections read them: decoded once per batch, whatever number of
//! projections reads them.

use chrono::{DateTime, Utc};
use domain::Aggregate;
use domain::schedule::{Schedule, ScheduleEvent};
use domain::ticket::{Ticket, TicketEvent};
use domain::user::User;
use domain::wallet::{Wallet, WalletEvent};
use infrastructure::event_codec::decode_payload;
use infrastructure::event_store::{Position, RecordedEvent};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::projection::ApplyError;

/// One event of the log, decoded.
#[derive(Debug, Clone)]
pub struct Fact {
    /// Its place in the global log.
    pub position: Position,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// The id of the aggregate whose stream holds it (the customer, for a wallet).
    pub subject: Uuid,
    /// What happened.
    pub what: What,
}

/// The decoded payload.
#[derive(Debug, Clone)]
pub enum What {
    /// Something that happened to a wallet.
    Wallet(WalletEvent),
    /// Something that happened to a ticket.
    Ticket(TicketEvent),
    /// Something that happened to a customer's reminders and recurring payments.
    Schedule(ScheduleEvent),
    /// Something that happened to an account, as stored: its personal data is sealed, and
    /// only the projection that needs it opens it (see `users`).
    User(Box<RecordedEvent>),
    /// An event of a kind no projection reads yet.
    Other,
    /// A wallet, ticket or schedule event that does not decode: the projections that read
    /// events of its stream category stop on it.
    Undecodable {
        /// The stream category.
        category: &'static str,
        /// Why it does not decode.
        reason: String,
    },
}

fn split_stream(stream: &str) -> Option<(&str, Uuid)> {
    let (category, id) = stream.split_once('-')?;
    Some((category, Uuid::parse_str(id).ok()?))
}

/// `event` decoded as an event of `category` and wrapped by `known`, or undecodable.
fn decoded<E: DeserializeOwned>(
    event: &RecordedEvent,
    category: &'static str,
    known: fn(E) -> What,
) -> What {
    match decode_payload::<E>(event, &event.payload) {
        Ok(decoded) => known(decoded),
        Err(error) => What::Undecodable {
            category,
            reason: error.to_string(),
        },
    }
}

impl Fact {
    /// True for an event of the stream category `category`, decoded or not.
    #[must_use]
    pub fn is_of(&self, category: &str) -> bool {
        match &self.what {
            What::Wallet(_) => category == Wallet::CATEGORY,
            What::Ticket(_) => category == Ticket::CATEGORY,
            What::Schedule(_) => category == Schedule::CATEGORY,
            What::User(_) => category == User::CATEGORY,
            What::Undecodable { category: of, .. } => *of == category,
            What::Other => false,
        }
    }

    /// An error when this is an event of `category` that does not decode: a projection
    /// that reads that category stops on it rather than skip it.
    ///
    /// # Errors
    /// [`ApplyError::Event`] at this fact's position.
    pub fn readable_in(&self, category: &str) -> Result<(), ApplyError> {
        match &self.what {
            What::Undecodable {
                category: of,
                reason,
            } if *of == category => Err(ApplyError::Event {
                position: self.position,
                reason: reason.clone(),
            }),
            _ => Ok(()),
        }
    }
}

/// Decodes one recorded event.
#[must_use]
pub fn decode(event: &RecordedEvent) -> Fact {
    let (category, subject) = split_stream(event.stream.as_str()).unwrap_or(("", Uuid::nil()));
    let what = if category == Wallet::CATEGORY {
        decoded(event, Wallet::CATEGORY, What::Wallet)
    } else if category == Ticket::CATEGORY {
        decoded(event, Ticket::CATEGORY, What::Ticket)
    } else if category == Schedule::CATEGORY {
        decoded(event, Schedule::CATEGORY, What::Schedule)
    } else if category == User::CATEGORY {
        What::User(Box::new(event.clone()))
    } else {
        What::Other
    };
    Fact {
        position: event.position,
        recorded_at: event.metadata.recorded_at,
        subject,
        what,
    }
}
