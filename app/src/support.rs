//! The support process manager. When a customer's spending crosses a limit, a ticket
//! opens, the active agent with the fewest open tickets gets it (among equals, the one
//! given a ticket longest ago), and the customer and the agent are told by mail; with no
//! active agent the ticket waits, unassigned, and the admins are told, and the next agent
//! created or reactivated takes what waits. 80% of a limit mails the customer a warning.
//!
//! Exactly once, through crashes and redeliveries: the process manager reads the log after
//! its checkpoint and moves the checkpoint after each step of up to 1,000 events (on a failure,
//! past the events it handled before it). Handling an event
//! again is harmless: the ticket's id derives from the `LimitExceeded` event, opening it
//! (with its first assignee) and the mail it causes are one append, a command's id derives
//! from the event that caused it (a retried append writes nothing), and a warning's mail id
//! derives from the warning event. See ADR 0014.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use domain::ticket::{Actor, Crossing, Ticket, TicketCommand, TicketId, TicketRejection};
use domain::user::{User, UserId};
use domain::wallet::{Category, LimitKey, Period, Wallet, WalletEvent};
use infrastructure::event_codec::decode;
use infrastructure::event_store::{AppendOutcome, OutboxMessage, Position, RecordedEvent};
use projections::Batch;
use projections::runner::keep_up;
use projections::sql::{Value, WriteTx, fetch_all};
use rust_decimal::Decimal;
use serde_json::json;
use tokio::sync::watch;
use uuid::Uuid;

use crate::commands::{CommandContext, CommandError, CommandService};
use crate::crash::CrashPoint;
use crate::directory::profile_of;
use crate::mail::{LIMIT_EXCEEDED, LIMIT_WARNING, TICKET_ASSIGNED, TICKET_WAITING};
use crate::state::AppState;
use crate::wallet_views::{decimal_text, period_of};

/// The process manager's checkpoint name.
pub const NAME: &str = "support";
/// Events read per step.
const BATCH: u32 = 1_000;
/// Who the process manager's commands are recorded as.
const ACTOR: &str = "system:support";

/// Someone mail goes to.
#[derive(Debug, Clone)]
struct Recipient {
    user_id: UserId,
    name: String,
    email: String,
}

/// A limit reached (80%) or crossed (100%), as mail tells of it.
#[derive(Debug, Clone, Copy)]
struct Reached<'a> {
    key: &'a LimitKey,
    limit: Decimal,
    spent: Decimal,
    period_start: NaiveDate,
}

impl<'a> Reached<'a> {
    fn of(crossing: &'a Crossing) -> Self {
        Self {
            key: &crossing.limit,
            limit: crossing.limit_amount,
            spent: crossing.spent,
            period_start: crossing.period_start,
        }
    }
}

/// The process manager; [`Self::process_batch`] is one step, for tests.
#[derive(Debug, Clone)]
pub struct SupportProcess {
    state: AppState,
    /// The last position this process appended.
    written: Arc<AtomicU64>,
    /// How far it has handled the log, and what it last saved of that.
    standing: Arc<std::sync::Mutex<Standing>>,
    base_url: String,
    crash: CrashPoint,
    /// At most how long the checkpoint stays behind events that needed nothing.
    save_every: Duration,
}

/// How long the checkpoint may stay behind the events handled when none of them needed
/// anything: the transaction that moves it would otherwise run every step.
const SAVE_AT_LEAST_EVERY: Duration = Duration::from_secs(1);

/// Where the process stands: the last event handled, and the checkpoint it last saved (and
/// when). Handled events whose position is not saved yet needed nothing, so handling them
/// again after a crash does nothing either.
#[derive(Debug, Default, Clone, Copy)]
struct Standing {
    handled: Position,
    saved: Option<(Position, tokio::time::Instant)>,
}

/// The events the process acts on; the others it only passes.
fn acts_on(event_type: &str) -> bool {
    matches!(
        event_type,
        "LimitExceeded" | "LimitWarningReached" | "UserRegistered" | "UserReactivated"
    )
}

fn limit_label(key: &LimitKey) -> String {
    let period = match key.period {
        Period::Weekly => "weekly".to_owned(),
        Period::Monthly { first_day: 1 } => "monthly".to_owned(),
        Period::Monthly { first_day } => format!("monthly (from day {first_day})"),
    };
    match &key.category {
        Some(category) => format!("{period} {category}"),
        None => period,
    }
}

impl SupportProcess {
    /// The process manager of `state`; links in mail start with its base URL.
    #[must_use]
    pub fn new(state: AppState) -> Self {
        let base_url = state.base_url.clone();
        Self {
            state,
            base_url,
            written: Arc::default(),
            standing: Arc::default(),
            crash: CrashPoint::default(),
            save_every: SAVE_AT_LEAST_EVERY,
        }
    }

    fn standing(&self) -> std::sync::MutexGuard<'_, Standing> {
        self.standing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Where to go on from: the events handled after the checkpoint this process saved,
    /// unless the stored checkpoint is no longer that one (another instance moved it, or it
    /// was set back to handle the log again): then from the stored one.
    async fn resume_after(&self) -> anyhow::Result<Position> {
        let stored = self.position().await?;
        let mut standing = self.standing();
        if standing.saved.map(|(saved, _)| saved) != Some(stored) {
            *standing = Standing {
                handled: stored,
                saved: Some((stored, tokio::time::Instant::now())),
            };
        }
        Ok(standing.handled)
    }

    /// Saves `position` as the checkpoint, and remembers that it did.
    async fn save_standing(&self, position: Position) -> anyhow::Result<()> {
        self.save(position).await?;
        *self.standing() = Standing {
            handled: position,
            saved: Some((position, tokio::time::Instant::now())),
        };
        Ok(())
    }

    /// The same process, stopping with an error right after `step` (`ticket opened`,
    /// `ticket given`, `event handled`, `checkpoint saved`), as a crash there would.
    #[must_use]
    pub fn crashing_after(mut self, step: &'static str) -> Self {
        self.crash = CrashPoint::after(step);
        self
    }

    /// The last event handled.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn position(&self) -> anyhow::Result<Position> {
        let rows: Vec<(i64,)> = fetch_all(
            &self.state.database,
            "SELECT position FROM process_checkpoints WHERE name = $1",
            &[NAME.into()],
        )
        .await?;
        Ok(Position(
            rows.first()
                .and_then(|(at,)| u64::try_from(*at).ok())
                .unwrap_or(0),
        ))
    }

    async fn save(&self, position: Position) -> anyhow::Result<()> {
        let mut tx = WriteTx::begin_beside_the_log(&self.state.database).await?;
        tx.execute(
            "INSERT INTO process_checkpoints (name, position, updated_at_us) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position, \
             updated_at_us = excluded.updated_at_us",
            &[
                NAME.into(),
                Value::Int(i64::try_from(position.0).unwrap_or(i64::MAX)),
                self.state.now().timestamp_micros().into(),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Handles the next events after the checkpoint, moving it after each.
    ///
    /// # Errors
    /// When the store, the database or a command fails; the event is handled again on the
    /// next step.
    pub async fn process_batch(&self) -> anyhow::Result<Batch> {
        let after = self.resume_after().await?;
        let events = self.state.events.read_all(after, BATCH).await?;
        let Some(last) = events.last().map(|event| event.position) else {
            if self.standing().saved.map(|(saved, _)| saved) != Some(after) {
                // Caught up: what was handled without a save is saved now.
                self.save_standing(after).await?;
            }
            return Ok(Batch::CaughtUp);
        };
        // The checkpoint moves once per step at most, not per event: most events need
        // nothing, and handling one again is harmless. After a failure it keeps what was
        // handled.
        let mut handled = after;
        let mut acted = false;
        for event in &events {
            if let Err(error) = self.handle(event).await {
                if handled > after {
                    self.save_standing(handled).await?;
                }
                return Err(error);
            }
            acted |= acts_on(&event.event_type);
            handled = event.position;
            self.crash.passed("event handled")?;
        }
        let due = self
            .standing()
            .saved
            .is_none_or(|(_, at)| at.elapsed() >= self.save_every);
        if acted || due {
            self.save_standing(last).await?;
            self.crash.passed("checkpoint saved")?;
        } else {
            self.standing().handled = last;
        }
        Ok(Batch::Processed(events.len()))
    }

    /// Steps until caught up with the log.
    ///
    /// # Errors
    /// As [`Self::process_batch`].
    pub async fn catch_up(&self) -> anyhow::Result<u64> {
        let mut handled = 0;
        while let Batch::Processed(n) = self.process_batch().await? {
            handled += n as u64;
        }
        Ok(handled)
    }

    /// Handles events as they come until `stop` turns true, in steps gathered as the
    /// projections' are (see [`keep_up`]), so that its checkpoint (a transaction) is written
    /// once for many events.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let head = self.state.events.watch_head();
        keep_up(head, stop, BATCH as usize, "the support process", || {
            self.process_batch()
        })
        .await;
    }

    async fn handle(&self, event: &RecordedEvent) -> anyhow::Result<()> {
        if !acts_on(&event.event_type) {
            return Ok(());
        }
        match event.event_type.as_str() {
            "LimitExceeded" | "LimitWarningReached" => {
                let Some(customer) = CommandService::id_in::<Wallet>(&event.stream) else {
                    return Ok(());
                };
                match decode::<WalletEvent>(event)? {
                    WalletEvent::LimitExceeded {
                        key,
                        limit,
                        period_start,
                        spent,
                        expense_id,
                        overspent: _,
                    } => {
                        let crossing = Crossing {
                            limit: key,
                            limit_amount: limit,
                            period_start,
                            spent,
                            expense_id,
                            cause: event.event_id,
                        };
                        self.limit_exceeded(event, UserId(customer), crossing).await
                    }
                    WalletEvent::LimitWarningReached {
                        key,
                        limit,
                        period_start,
                        spent,
                        ..
                    } => {
                        let reached = Reached {
                            key: &key,
                            limit,
                            spent,
                            period_start,
                        };
                        self.limit_warning(event, UserId(customer), reached).await
                    }
                    _ => Ok(()),
                }
            }
            "UserRegistered" | "UserReactivated" => {
                let Some(user) = CommandService::id_in::<User>(&event.stream) else {
                    return Ok(());
                };
                self.wait_for_read_models(event.position).await;
                if self.is_active_agent(user).await? {
                    self.give_waiting_tickets(event).await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Waits until the read models the choices are made from show `position` (the event
    /// being handled) and everything this process wrote itself, so that its own earlier
    /// assignments count. Not the head: while a large log is caught up, waiting for the
    /// head would stall every event.
    async fn wait_for_read_models(&self, position: Position) {
        let own = Position(self.written.load(Ordering::Acquire));
        self.state.read_models.wait_for("users", position).await;
        self.state
            .read_models
            .wait_for("tickets", position.max(own))
            .await;
    }

    /// Remembers what this process wrote, for [`Self::wait_for_read_models`].
    fn wrote(&self, outcome: Option<&AppendOutcome>) {
        if let Some(outcome) = outcome {
            self.written
                .fetch_max(outcome.last_position.0, Ordering::AcqRel);
        }
        self.state.mail_wake.notify_one();
    }

    fn context(&self, cause: &RecordedEvent, step: &str) -> CommandContext {
        CommandContext {
            command_id: Uuid::new_v5(&cause.event_id, step.as_bytes()),
            correlation_id: cause.metadata.correlation_id,
            causation_id: Some(cause.event_id),
            actor: ACTOR.to_owned(),
            now: self.state.now(),
            // The request that crossed the limit: its id follows the ticket's events too.
            request_id: cause.metadata.request_id.clone(),
        }
    }

    fn ticket_link(&self, ticket: TicketId) -> String {
        format!("{}/tickets/{ticket}", self.base_url.trim_end_matches('/'))
    }

    /// The customer's currency and how many decimals it shows.
    async fn currency_of(&self, customer: UserId) -> anyhow::Result<(String, u32)> {
        let rows: Vec<(String, i64)> = fetch_all(
            &self.state.database,
            "SELECT currency, minor_units FROM rm_wallets WHERE owner = $1",
            &[customer.to_string().into()],
        )
        .await?;
        Ok(rows
            .into_iter()
            .next()
            .map_or((String::new(), 2), |(code, units)| {
                (code, u32::try_from(units).unwrap_or(2))
            }))
    }

    /// What every mail about a limit says: the limit, its amount, the spending, the period,
    /// in the customer's currency, and the ticket's link when there is a ticket.
    async fn limit_facts(
        &self,
        customer: UserId,
        reached: Reached<'_>,
        ticket: Option<TicketId>,
    ) -> anyhow::Result<serde_json::Value> {
        let (currency, units) = self.currency_of(customer).await?;
        Ok(json!({
            "limit": limit_label(reached.key),
            "limit_amount": decimal_text(reached.limit, units),
            "spent": decimal_text(reached.spent, units),
            "currency": currency,
            "period_start": reached.period_start.to_string(),
            "ticket_link": ticket.map(|ticket| self.ticket_link(ticket)),
        }))
    }

    /// Someone to mail, from the directory: `None` when there is no such account or its
    /// person was erased.
    async fn person(&self, user_id: UserId) -> anyhow::Result<Option<Recipient>> {
        let profile = profile_of(
            &self.state.database,
            &self.state.vault,
            &user_id.to_string(),
        )
        .await?;
        Ok(profile.map(|profile| Recipient {
            user_id,
            name: profile.name.to_string(),
            email: profile.email.to_string(),
        }))
    }

    async fn is_active_agent(&self, user_id: Uuid) -> anyhow::Result<bool> {
        let rows: Vec<(i64,)> = fetch_all(
            &self.state.database,
            "SELECT COUNT(*) FROM rm_users WHERE user_id = $1 AND role = 'agent' AND active = 1 \
             AND erased = 0",
            &[user_id.to_string().into()],
        )
        .await?;
        Ok(rows.first().is_some_and(|(n,)| *n > 0))
    }

    /// The active agent with the fewest open tickets; among equals, the one given a ticket
    /// longest ago (never is longest), then the one registered first.
    async fn least_loaded_agent(&self) -> anyhow::Result<Option<Recipient>> {
        let agents = self
            .staff(
                "SELECT u.user_id FROM rm_users u \
                 WHERE u.role = 'agent' AND u.active = 1 AND u.erased = 0 \
                 ORDER BY (SELECT COUNT(*) FROM rm_tickets t \
                           WHERE t.assignee = u.user_id AND t.status <> 'resolved'), \
                          COALESCE((SELECT MAX(t.assigned_at_us) FROM rm_tickets t \
                                    WHERE t.assignee = u.user_id), 0), \
                          u.registered_at LIMIT 1",
            )
            .await?;
        Ok(agents.into_iter().next())
    }

    async fn admins(&self) -> anyhow::Result<Vec<Recipient>> {
        self.staff(
            "SELECT user_id FROM rm_users WHERE role = 'admin' AND active = 1 AND erased = 0 \
             ORDER BY registered_at",
        )
        .await
    }

    /// The people `sql` (selecting `user_id` from the directory) lists, in its order.
    async fn staff(&self, sql: &str) -> anyhow::Result<Vec<Recipient>> {
        let ids: Vec<(String,)> = fetch_all(&self.state.database, sql, &[]).await?;
        let mut people = Vec::with_capacity(ids.len());
        for (id,) in ids {
            people.extend(self.person(UserId(Uuid::parse_str(&id)?)).await?);
        }
        Ok(people)
    }

    /// A mail about `ticket` (or none), its id derived from its cause, kind, ticket and
    /// recipient: the same mail is never queued twice.
    fn mail(
        cause: &RecordedEvent,
        ticket: Option<TicketId>,
        kind: &str,
        to: &Recipient,
        payload: serde_json::Value,
    ) -> OutboxMessage {
        let mut payload = payload;
        payload["to"] = json!(to.email);
        payload["name"] = json!(to.name);
        let about = ticket.map(|t| t.to_string()).unwrap_or_default();
        OutboxMessage {
            message_id: Uuid::new_v5(
                &cause.event_id,
                format!("{kind}:{about}:{}", to.user_id).as_bytes(),
            ),
            kind: kind.to_owned(),
            payload,
        }
    }

    async fn limit_exceeded(
        &self,
        event: &RecordedEvent,
        customer: UserId,
        crossing: Crossing,
    ) -> anyhow::Result<()> {
        let ticket = TicketId::for_cause(event.event_id);
        let (state, _) = self.state.commands.load::<Ticket>(ticket.0).await?;
        if !matches!(state, Ticket::Unopened) {
            // Opened, assigned and announced before a crash, or by another instance.
            return Ok(());
        }
        self.wait_for_read_models(event.position).await;
        let Some(person) = self.person(customer).await? else {
            tracing::warn!(%customer, "a limit was crossed by someone erased; no ticket opens");
            return Ok(());
        };
        let agent = self.least_loaded_agent().await?;
        let facts = self
            .limit_facts(customer, Reached::of(&crossing), Some(ticket))
            .await?;
        let with = |extra: serde_json::Value| {
            let mut payload = facts.clone();
            if let (Some(payload), Some(extra)) = (payload.as_object_mut(), extra.as_object()) {
                payload.extend(extra.clone());
            }
            payload
        };
        let mut mail = vec![Self::mail(
            event,
            Some(ticket),
            LIMIT_EXCEEDED,
            &person,
            with(json!({ "agent_name": agent.as_ref().map(|a| a.name.clone()) })),
        )];
        match &agent {
            Some(agent) => mail.push(Self::mail(
                event,
                Some(ticket),
                TICKET_ASSIGNED,
                agent,
                with(json!({ "customer_name": person.name })),
            )),
            None => {
                for admin in self.admins().await? {
                    mail.push(Self::mail(
                        event,
                        Some(ticket),
                        TICKET_WAITING,
                        &admin,
                        with(json!({ "customer_name": person.name })),
                    ));
                }
            }
        }
        let command = TicketCommand::Open {
            customer,
            crossing,
            assignee: agent.map(|a| a.user_id),
        };
        match self
            .state
            .commands
            .execute_with_outbox::<Ticket>(ticket.0, &command, &self.context(event, "open"), mail)
            .await
        {
            Ok(done) => {
                self.wrote(done.outcome.as_ref());
                self.crash.passed("ticket opened")
            }
            Err(CommandError::Rejected(TicketRejection::AlreadyOpened)) => Ok(()),
            Err(error) => Err(anyhow::anyhow!("opening ticket {ticket}: {error}")),
        }
    }

    async fn limit_warning(
        &self,
        event: &RecordedEvent,
        customer: UserId,
        reached: Reached<'_>,
    ) -> anyhow::Result<()> {
        self.wait_for_read_models(event.position).await;
        let Some(person) = self.person(customer).await? else {
            return Ok(());
        };
        let facts = self.limit_facts(customer, reached, None).await?;
        let message = Self::mail(event, None, LIMIT_WARNING, &person, facts);
        if self
            .state
            .outbox
            .enqueue_once(&message, self.state.now())
            .await?
        {
            self.state.mail_wake.notify_one();
        }
        Ok(())
    }

    /// Gives every ticket that waits for an agent to the least loaded one, oldest first.
    async fn give_waiting_tickets(&self, cause: &RecordedEvent) -> anyhow::Result<()> {
        type Waiting = (
            String,
            String,
            String,
            Option<i64>,
            Option<String>,
            i64,
            i64,
            String,
        );
        let waiting: Vec<Waiting> = fetch_all(
            &self.state.database,
            "SELECT ticket_id, customer, limit_period, limit_first_day, limit_category, \
             limit_milli, spent_milli, period_start FROM rm_tickets \
             WHERE status = 'unassigned' ORDER BY opened_at",
            &[],
        )
        .await?;
        for (ticket, customer, period, first_day, category, limit, spent, period_start) in waiting {
            let ticket = TicketId(Uuid::parse_str(&ticket)?);
            // The read model may lag the ticket: the ticket decides whether it still waits
            // (handled again after a crash, it does not, and nobody takes it from its agent).
            let (state, _) = self.state.commands.load::<Ticket>(ticket.0).await?;
            if !matches!(&state, Ticket::Open(open) if open.assignee.is_none() && !open.resolved) {
                continue;
            }
            let Some(agent) = self.least_loaded_agent().await? else {
                return Ok(());
            };
            let customer = UserId(Uuid::parse_str(&customer)?);
            let key = LimitKey {
                period: period_of(&period, first_day),
                category: category.as_deref().map(Category::parse).transpose()?,
            };
            let reached = Reached {
                key: &key,
                limit: Decimal::new(limit, 3),
                spent: Decimal::new(spent, 3),
                period_start: period_start.parse()?,
            };
            let mut facts = self.limit_facts(customer, reached, Some(ticket)).await?;
            facts["customer_name"] = json!(self.person(customer).await?.map(|p| p.name));
            let mail = vec![Self::mail(
                cause,
                Some(ticket),
                TICKET_ASSIGNED,
                &agent,
                facts,
            )];
            let command = TicketCommand::Assign {
                assignee: agent.user_id,
                by: Actor::System,
            };
            let context = self.context(cause, &format!("assign:{ticket}"));
            match self
                .state
                .commands
                .execute_with_outbox::<Ticket>(ticket.0, &command, &context, mail)
                .await
            {
                Ok(done) => {
                    self.wrote(done.outcome.as_ref());
                    self.crash.passed("ticket given")?;
                    self.wait_for_read_models(cause.position).await;
                }
                // Given to someone between the load and the command.
                Err(CommandError::Rejected(
                    TicketRejection::AlreadyAssigned | TicketRejection::Resolved,
                )) => {}
                Err(error) => return Err(anyhow::anyhow!("assigning ticket {ticket}: {error}")),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use domain::ticket::{Ticket, TicketId};
    use domain::user::Role;
    use domain::wallet::Wallet;
    use projections::sql::WriteTx;

    use super::*;
    use crate::test_support::{cross_a_limit, fresh, outbox_kinds, person, stream_types};

    /// The ticket of the customer's one `LimitExceeded`.
    async fn ticket_of(state: &AppState, customer: UserId) -> TicketId {
        let stream = CommandService::stream_of::<Wallet>(customer.0);
        let events = state.events.read_stream(&stream, 1).await.expect("wallet");
        let cause = events
            .iter()
            .find(|event| event.event_type == "LimitExceeded")
            .expect("a crossing");
        TicketId::for_cause(cause.event_id)
    }

    /// Plays a restart: a new process on the same database catches up, then the whole log
    /// is delivered to it once more (a checkpoint lost with the crash).
    async fn restart(state: &AppState) {
        SupportProcess::new(state.clone())
            .catch_up()
            .await
            .expect("the restarted process catches up");
        let mut tx = WriteTx::begin_beside_the_log(&state.database)
            .await
            .expect("tx");
        tx.execute(
            "UPDATE process_checkpoints SET position = 0 WHERE name = $1",
            &[NAME.into()],
        )
        .await
        .expect("rewound");
        tx.commit().await.expect("commit");
        SupportProcess::new(state.clone())
            .catch_up()
            .await
            .expect("the log handled again");
    }

    fn kinds(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
        pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
    }

    #[tokio::test]
    async fn a_crash_after_any_step_then_a_restart_gives_one_ticket_one_assignment_one_mail_each() {
        for step in ["ticket opened", "event handled", "checkpoint saved"] {
            let data = tempfile::tempdir().expect("a data directory");
            let (state, runner) = fresh(&data, |_| {}).await;
            let asha = person(&state, Role::Customer, "Asha Rao").await;
            person(&state, Role::Agent, "Ravi Kumar").await;
            cross_a_limit(&state, asha).await;
            runner.catch_up().await.expect("projected");

            let crashed = SupportProcess::new(state.clone())
                .crashing_after(step)
                .catch_up()
                .await
                .expect_err("the process dies");
            assert!(crashed.to_string().contains(step), "{crashed}");
            runner.catch_up().await.expect("projected");
            restart(&state).await;

            let ticket = ticket_of(&state, asha).await;
            assert_eq!(
                stream_types(&state, &format!("ticket-{ticket}")).await,
                ["TicketOpened", "TicketAssigned"],
                "crash after {step}"
            );
            assert_eq!(
                outbox_kinds(&state).await,
                kinds(&[(LIMIT_EXCEEDED, 1), (TICKET_ASSIGNED, 1)]),
                "crash after {step}"
            );
        }
    }

    #[tokio::test]
    async fn a_crash_after_giving_a_waiting_ticket_then_a_restart_gives_it_once() {
        let data = tempfile::tempdir().expect("a data directory");
        let (state, runner) = fresh(&data, |_| {}).await;
        let asha = person(&state, Role::Customer, "Asha Rao").await;
        cross_a_limit(&state, asha).await;
        runner.catch_up().await.expect("projected");
        SupportProcess::new(state.clone())
            .catch_up()
            .await
            .expect("opened, waiting");
        runner.catch_up().await.expect("projected");
        let ticket = ticket_of(&state, asha).await;
        assert_eq!(
            stream_types(&state, &format!("ticket-{ticket}")).await,
            ["TicketOpened"]
        );

        person(&state, Role::Agent, "Ravi Kumar").await;
        runner.catch_up().await.expect("projected");
        let crashed = SupportProcess::new(state.clone())
            .crashing_after("ticket given")
            .catch_up()
            .await
            .expect_err("the process dies");
        assert!(crashed.to_string().contains("ticket given"), "{crashed}");
        runner.catch_up().await.expect("projected");
        restart(&state).await;

        assert_eq!(
            stream_types(&state, &format!("ticket-{ticket}")).await,
            ["TicketOpened", "TicketAssigned"]
        );
        let (Ticket::Open(open), _) = state
            .commands
            .load::<Ticket>(ticket.0)
            .await
            .expect("ticket")
        else {
            panic!("the ticket is open");
        };
        assert!(open.assignee.is_some());
        assert_eq!(
            outbox_kinds(&state).await,
            kinds(&[(LIMIT_EXCEEDED, 1), (TICKET_ASSIGNED, 1)])
        );
    }

    #[tokio::test]
    async fn events_that_need_nothing_move_the_checkpoint_later_and_when_caught_up() {
        let data = tempfile::tempdir().expect("a data directory");
        let (state, _) = fresh(&data, |_| {}).await;
        let asha = person(&state, Role::Customer, "Asha Rao").await;
        let mut process = SupportProcess::new(state.clone());
        // However slow the machine, the steps below come well within this.
        process.save_every = Duration::from_secs(3600);
        process.catch_up().await.expect("the registration handled");
        let registered = process.position().await.expect("position");
        let inr = domain::money::Currency::parse("INR").expect("INR");
        crate::test_support::on_wallet(
            &state,
            asha,
            vec![domain::wallet::WalletCommand::Open {
                owner: asha,
                currency: inr,
            }],
        )
        .await;
        let head = state.events.head().await.expect("head");
        assert!(head > registered);

        assert_eq!(
            process.process_batch().await.expect("a step"),
            Batch::Processed(1)
        );
        assert_eq!(
            process.position().await.expect("position"),
            registered,
            "a wallet opening needs nothing: no transaction just to say so"
        );
        assert_eq!(
            process.process_batch().await.expect("a step"),
            Batch::CaughtUp
        );
        assert_eq!(
            process.position().await.expect("position"),
            head,
            "caught up, it saves where it stands"
        );
    }
}
