//! A ticket: what opens when a customer's spending crosses a limit, so that an agent looks
//! into it with them. One stream per ticket (`ticket-<id>`). The ticket's id is derived from
//! the `LimitExceeded` event that caused it ([`TicketId::for_cause`]), so that the same
//! crossing can never open two tickets, however often it is delivered.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::{Aggregate, DomainEvent};
use crate::user::{InvalidValue, UserId};
use crate::wallet::LimitKey;

#[cfg(test)]
mod tests;

/// Identifies a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TicketId(pub Uuid);

impl TicketId {
    /// The ticket a crossing opens: the same `LimitExceeded` event always gives the same id.
    #[must_use]
    pub fn for_cause(limit_exceeded_event: Uuid) -> Self {
        /// The namespace of ticket ids derived from their cause (a fixed, random UUID).
        const NAMESPACE: Uuid = Uuid::from_u128(0x6c1b_3f7e_2d4a_4f1e_9a8b_5c6d_7e8f_9012);
        Self(Uuid::new_v5(&NAMESPACE, limit_exceeded_event.as_bytes()))
    }
}

impl std::fmt::Display for TicketId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What a comment or a resolution says: 1 to 2,000 characters; line breaks allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TicketText(String);

impl TicketText {
    /// # Errors
    /// [`InvalidValue`] when empty, longer than 2,000 characters, or holding control
    /// characters other than line breaks and tabs.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        match crate::text::free_text(raw, 2_000)? {
            "" => Err(InvalidValue::Empty),
            value => Ok(Self(value.to_owned())),
        }
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

crate::text::string_conversions!(TicketText);

/// Who moved a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "user_id")]
pub enum Actor {
    /// The process manager that reacts to crossed limits.
    System,
    /// An agent.
    Agent(UserId),
    /// An admin.
    Admin(UserId),
    /// The ticket's customer.
    Customer(UserId),
}

/// Why a ticket was opened: a limit crossed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crossing {
    /// The limit.
    pub limit: LimitKey,
    /// Its amount.
    pub limit_amount: Decimal,
    /// The first day of the period it was crossed in.
    pub period_start: NaiveDate,
    /// Spent in that period, the crossing expense included.
    pub spent: Decimal,
    /// The expense that crossed it.
    pub expense_id: Uuid,
    /// The `LimitExceeded` event.
    pub cause: Uuid,
}

/// What can be asked of a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketCommand {
    /// Open it for the customer whose spending crossed a limit, given at once to
    /// `assignee` when someone can take it: one decision, so that the ticket, its first
    /// assignment and the mail telling both parties are written together or not at all.
    Open {
        /// The customer.
        customer: UserId,
        /// What was crossed.
        crossing: Crossing,
        /// Who works it from the start, if anyone is free.
        assignee: Option<UserId>,
    },
    /// Give it to an agent or an admin (again, to reassign).
    Assign {
        /// Who will work it.
        assignee: UserId,
        /// Who decided.
        by: Actor,
    },
    /// Add a comment.
    Comment {
        /// Who writes it: staff, or the ticket's customer.
        author: Actor,
        /// What it says.
        text: TicketText,
    },
    /// Close it, saying how.
    Resolve {
        /// Who closes it.
        by: Actor,
        /// How it was resolved.
        resolution: TicketText,
    },
    /// Open it again after it was resolved.
    Reopen {
        /// Who reopens it.
        by: Actor,
        /// Why.
        reason: TicketText,
    },
}

/// What happened to a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum TicketEvent {
    /// A crossed limit opened it.
    TicketOpened {
        /// The customer.
        customer: UserId,
        /// What was crossed.
        crossing: Crossing,
    },
    /// Someone was given the ticket.
    TicketAssigned {
        /// Who works it now.
        assignee: UserId,
        /// Who worked it before, when it was reassigned.
        previous: Option<UserId>,
        /// Who decided.
        by: Actor,
    },
    /// A comment was added.
    TicketCommented {
        /// Who wrote it.
        author: Actor,
        /// What it says.
        text: TicketText,
    },
    /// It was closed.
    TicketResolved {
        /// Who closed it.
        by: Actor,
        /// How.
        resolution: TicketText,
    },
    /// It was opened again.
    TicketReopened {
        /// Who reopened it.
        by: Actor,
        /// Why.
        reason: TicketText,
    },
}

impl DomainEvent for TicketEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::TicketOpened { .. } => "TicketOpened",
            Self::TicketAssigned { .. } => "TicketAssigned",
            Self::TicketCommented { .. } => "TicketCommented",
            Self::TicketResolved { .. } => "TicketResolved",
            Self::TicketReopened { .. } => "TicketReopened",
        }
    }
}

/// Why a ticket refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketRejection {
    /// There is no such ticket.
    #[error("there is no such ticket")]
    NotOpened,
    /// The crossing already opened this ticket.
    #[error("the ticket is open already")]
    AlreadyOpened,
    /// The ticket is resolved; reopen it first.
    #[error("the ticket is resolved")]
    Resolved,
    /// Only a resolved ticket can be reopened.
    #[error("the ticket is not resolved")]
    NotResolved,
    /// The ticket already has that assignee.
    #[error("the ticket is assigned to them already")]
    AlreadyAssigned,
    /// A customer may only act on their own tickets; only staff assign.
    #[error("only staff or the ticket's customer may do that")]
    NotAllowed,
}

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Open, nobody working it yet.
    Unassigned,
    /// Open, someone working it.
    Assigned,
    /// Closed.
    Resolved,
}

/// An open(ed) ticket's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenTicket {
    /// The customer.
    pub customer: UserId,
    /// Who works it, if anyone.
    pub assignee: Option<UserId>,
    /// Whether it is resolved.
    pub resolved: bool,
}

impl OpenTicket {
    /// Where it stands.
    #[must_use]
    pub fn status(&self) -> Status {
        match (self.resolved, self.assignee) {
            (true, _) => Status::Resolved,
            (false, Some(_)) => Status::Assigned,
            (false, None) => Status::Unassigned,
        }
    }

    /// A customer acts only on their own ticket; staff on any.
    fn may_act(&self, actor: Actor) -> bool {
        match actor {
            Actor::Customer(customer) => customer == self.customer,
            Actor::System | Actor::Agent(_) | Actor::Admin(_) => true,
        }
    }
}

/// A ticket: nothing until opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Ticket {
    /// Not opened.
    #[default]
    Unopened,
    /// Opened.
    Open(OpenTicket),
}

impl Aggregate for Ticket {
    type Command = TicketCommand;
    type Event = TicketEvent;
    type Rejection = TicketRejection;
    const CATEGORY: &'static str = "ticket";

    fn decide(&self, command: &TicketCommand) -> Result<Vec<TicketEvent>, TicketRejection> {
        let ticket = match (self, command) {
            (
                Self::Unopened,
                TicketCommand::Open {
                    customer,
                    crossing,
                    assignee,
                },
            ) => {
                let opened = TicketEvent::TicketOpened {
                    customer: *customer,
                    crossing: crossing.clone(),
                };
                let assigned = assignee.map(|assignee| TicketEvent::TicketAssigned {
                    assignee,
                    previous: None,
                    by: Actor::System,
                });
                return Ok(std::iter::once(opened).chain(assigned).collect());
            }
            (Self::Open(_), TicketCommand::Open { .. }) => {
                return Err(TicketRejection::AlreadyOpened);
            }
            (Self::Unopened, _) => return Err(TicketRejection::NotOpened),
            (Self::Open(ticket), _) => ticket,
        };
        match command {
            TicketCommand::Open { .. } => Err(TicketRejection::AlreadyOpened),
            TicketCommand::Assign { assignee, by } => {
                if matches!(by, Actor::Customer(_)) {
                    return Err(TicketRejection::NotAllowed);
                }
                if ticket.resolved {
                    return Err(TicketRejection::Resolved);
                }
                if ticket.assignee == Some(*assignee) {
                    return Err(TicketRejection::AlreadyAssigned);
                }
                Ok(vec![TicketEvent::TicketAssigned {
                    assignee: *assignee,
                    previous: ticket.assignee,
                    by: *by,
                }])
            }
            TicketCommand::Comment { author, text } => {
                if !ticket.may_act(*author) {
                    return Err(TicketRejection::NotAllowed);
                }
                Ok(vec![TicketEvent::TicketCommented {
                    author: *author,
                    text: text.clone(),
                }])
            }
            TicketCommand::Resolve { by, resolution } => {
                if !ticket.may_act(*by) {
                    return Err(TicketRejection::NotAllowed);
                }
                if ticket.resolved {
                    return Err(TicketRejection::Resolved);
                }
                Ok(vec![TicketEvent::TicketResolved {
                    by: *by,
                    resolution: resolution.clone(),
                }])
            }
            TicketCommand::Reopen { by, reason } => {
                if !ticket.may_act(*by) {
                    return Err(TicketRejection::NotAllowed);
                }
                if !ticket.resolved {
                    return Err(TicketRejection::NotResolved);
                }
                Ok(vec![TicketEvent::TicketReopened {
                    by: *by,
                    reason: reason.clone(),
                }])
            }
        }
    }

    fn evolve(self, event: &TicketEvent) -> Self {
        match (self, event) {
            (Self::Unopened, TicketEvent::TicketOpened { customer, .. }) => {
                Self::Open(OpenTicket {
                    customer: *customer,
                    assignee: None,
                    resolved: false,
                })
            }
            (Self::Open(mut ticket), event) => {
                match event {
                    TicketEvent::TicketAssigned { assignee, .. } => {
                        ticket.assignee = Some(*assignee);
                    }
                    TicketEvent::TicketResolved { .. } => ticket.resolved = true,
                    TicketEvent::TicketReopened { .. } => ticket.resolved = false,
                    TicketEvent::TicketOpened { .. } | TicketEvent::TicketCommented { .. } => {}
                }
                Self::Open(ticket)
            }
            // A history that does not start with its opening is not one this code wrote.
            (state @ Self::Unopened, _) => state,
        }
    }
}
