//! The `tickets` projection: every ticket with where it stands (`rm_tickets`) and what was
//! said on it (`rm_ticket_comments`). The agents' queue, each customer's ticket list and
//! the ticket detail are read from them.

use std::sync::Arc;

use domain::Aggregate;
use domain::ticket::{Actor, Ticket, TicketEvent};
use domain::wallet::Period;

use crate::facts::{Fact, What};
use crate::projection::{
    ApplyError, Projection, TableRows, TableShape, suffixed_tables, table_rows,
};
use crate::sql::WriteTx;
use crate::wallets::to_milli;

/// The read model's tables.
pub const TABLES: [&str; 2] = ["rm_tickets", "rm_ticket_comments"];

const ROWS: [TableShape; 2] = [
    &[
        "ticket_id",
        "customer",
        "status",
        "assignee",
        "limit_period",
        "limit_first_day",
        "limit_category",
        "limit_milli",
        "spent_milli",
        "period_start",
        "expense_id",
        "cause",
        "opened_at_us",
        "opened_at",
        "assigned_at_us",
        "updated_at_us",
        "resolution",
        "comments",
    ],
    &[
        "ticket_id",
        "position",
        "author_kind",
        "author_id",
        "body",
        "at_us",
    ],
];

/// How an actor is stored: its kind and, for a person, their id.
fn actor_parts(actor: Actor) -> (&'static str, Option<String>) {
    match actor {
        Actor::System => ("system", None),
        Actor::Agent(id) => ("agent", Some(id.to_string())),
        Actor::Admin(id) => ("admin", Some(id.to_string())),
        Actor::Customer(id) => ("customer", Some(id.to_string())),
    }
}

/// The statements, for one set of tables (the live ones, or a rebuild's).
#[derive(Debug, Clone)]
struct Sql {
    open: String,
    assign: String,
    comment: String,
    count_comment: String,
    resolve: String,
    reopen: String,
}

impl Sql {
    fn for_suffix(suffix: &str) -> Self {
        let tickets = format!("{}{suffix}", TABLES[0]);
        let comments = format!("{}{suffix}", TABLES[1]);
        Self {
            open: format!(
                "INSERT INTO {tickets} (ticket_id, customer, status, assignee, limit_period, \
                 limit_first_day, limit_category, limit_milli, spent_milli, period_start, \
                 expense_id, cause, opened_at_us, opened_at, assigned_at_us, updated_at_us, \
                 resolution, comments) \
                 VALUES ($1, $2, 'unassigned', NULL, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                 NULL, $11, NULL, 0)"
            ),
            assign: format!(
                "UPDATE {tickets} SET assignee = $2, status = 'assigned', assigned_at_us = $3, \
                 updated_at_us = $3 WHERE ticket_id = $1"
            ),
            comment: format!(
                "INSERT INTO {comments} (ticket_id, position, author_kind, author_id, body, at_us) \
                 VALUES ($1, $2, $3, $4, $5, $6)"
            ),
            count_comment: format!(
                "UPDATE {tickets} SET comments = comments + 1, updated_at_us = $2 WHERE ticket_id = $1"
            ),
            resolve: format!(
                "UPDATE {tickets} SET status = 'resolved', resolution = $2, updated_at_us = $3 \
                 WHERE ticket_id = $1"
            ),
            reopen: format!(
                "UPDATE {tickets} SET status = CASE WHEN assignee IS NULL THEN 'unassigned' \
                 ELSE 'assigned' END, resolution = NULL, updated_at_us = $2 WHERE ticket_id = $1"
            ),
        }
    }
}

/// The projection, writing to the live tables or (for a rebuild) to suffixed twins.
#[derive(Debug, Clone)]
pub struct TicketsProjection {
    name: String,
    suffix: String,
    sql: Sql,
}

impl Default for TicketsProjection {
    fn default() -> Self {
        Self::with_suffix("")
    }
}

impl TicketsProjection {
    fn with_suffix(suffix: &str) -> Self {
        Self {
            name: format!("tickets{suffix}"),
            suffix: suffix.to_owned(),
            sql: Sql::for_suffix(suffix),
        }
    }

    async fn apply_one(
        &self,
        tx: &mut WriteTx,
        fact: &Fact,
        event: &TicketEvent,
    ) -> Result<(), ApplyError> {
        let ticket = fact.subject.to_string();
        let micros = fact.recorded_at.timestamp_micros();
        let bad = |reason: String| ApplyError::Event {
            position: fact.position,
            reason,
        };
        let position = i64::try_from(fact.position.0).unwrap_or(i64::MAX);
        match event {
            TicketEvent::TicketOpened { customer, crossing } => {
                let (period, first_day) = match crossing.limit.period {
                    Period::Weekly => ("weekly", None),
                    Period::Monthly { first_day } => ("monthly", Some(i64::from(first_day))),
                };
                tx.execute(
                    &self.sql.open,
                    &[
                        ticket.into(),
                        customer.to_string().into(),
                        period.into(),
                        first_day.into(),
                        crossing
                            .limit
                            .category
                            .as_ref()
                            .map(|c| c.as_str().to_owned())
                            .into(),
                        to_milli(crossing.limit_amount).map_err(bad)?.into(),
                        to_milli(crossing.spent).map_err(bad)?.into(),
                        crossing.period_start.into(),
                        crossing.expense_id.to_string().into(),
                        crossing.cause.to_string().into(),
                        micros.into(),
                        position.into(),
                    ],
                )
                .await?;
            }
            TicketEvent::TicketAssigned { assignee, .. } => {
                tx.execute(
                    &self.sql.assign,
                    &[ticket.into(), assignee.to_string().into(), micros.into()],
                )
                .await?;
            }
            TicketEvent::TicketCommented { author, text } => {
                let (kind, id) = actor_parts(*author);
                tx.execute(
                    &self.sql.comment,
                    &[
                        ticket.clone().into(),
                        position.into(),
                        kind.into(),
                        id.into(),
                        text.as_str().into(),
                        micros.into(),
                    ],
                )
                .await?;
                tx.execute(&self.sql.count_comment, &[ticket.into(), micros.into()])
                    .await?;
            }
            TicketEvent::TicketResolved { resolution, .. } => {
                tx.execute(
                    &self.sql.resolve,
                    &[ticket.into(), resolution.as_str().into(), micros.into()],
                )
                .await?;
            }
            TicketEvent::TicketReopened { .. } => {
                tx.execute(&self.sql.reopen, &[ticket.into(), micros.into()])
                    .await?;
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Projection for TicketsProjection {
    fn name(&self) -> &str {
        &self.name
    }

    fn tables(&self) -> Vec<String> {
        suffixed_tables(&TABLES, &self.suffix)
    }

    fn rows(&self) -> Vec<TableRows> {
        table_rows(self.tables(), &ROWS)
    }

    fn twin(&self, suffix: &str) -> Arc<dyn Projection> {
        Arc::new(Self::with_suffix(suffix))
    }

    fn reads(&self, fact: &Fact) -> bool {
        fact.is_of(Ticket::CATEGORY)
    }

    fn version(&self) -> i64 {
        1
    }

    async fn apply(&self, tx: &mut WriteTx, facts: &[&Fact]) -> Result<(), ApplyError> {
        for fact in facts {
            fact.readable_in(Ticket::CATEGORY)?;
            if let What::Ticket(event) = &fact.what {
                self.apply_one(tx, fact, event).await?;
            }
        }
        Ok(())
    }
}
