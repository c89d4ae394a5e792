//! Tickets as agents and customers see them, read from the `tickets` read model: the
//! agents' queue and each customer's list. Names come from the `users` directory, opened
//! with each person's key (they are sealed at rest).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use domain::wallet::{Category, LimitKey};
use infrastructure::database::Database;
use infrastructure::personal_data::PersonalDataVault;
use projections::sql::{Value, fetch_all};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::directory::profile_of;
use crate::wallet_views::{self, amount_text, period_of, stored_day};

/// How many periods of the crossed limit a ticket's detail shows.
pub const LIMIT_HISTORY: usize = 6;

/// A person named on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Person {
    /// Their account.
    pub user_id: Uuid,
    /// Their name; `None` once erased.
    pub name: Option<String>,
}

/// The limit a ticket is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CrossedLimit {
    /// `weekly` or `monthly`.
    pub period: String,
    /// For a monthly limit, the day its month starts.
    pub first_day: Option<u32>,
    /// One category, or `None` for all spending.
    pub category: Option<String>,
    /// The limit.
    pub amount: String,
    /// Spent in the period when it was crossed.
    pub spent: String,
    /// The period's first day.
    pub period_start: NaiveDate,
}

/// A ticket in a queue or a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TicketItem {
    /// The ticket.
    pub ticket_id: Uuid,
    /// `unassigned`, `assigned` or `resolved`.
    pub status: String,
    /// Whose spending it is about.
    pub customer: Person,
    /// Who works it.
    pub agent: Option<Person>,
    /// What was crossed.
    pub limit: CrossedLimit,
    /// When it opened.
    pub opened_at: DateTime<Utc>,
    /// Seconds since it opened.
    pub age_seconds: i64,
    /// Comments on it.
    pub comments: i64,
    /// How it was resolved, once it is.
    pub resolution: Option<String>,
}

/// Tickets, in the order their view gives.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketList {
    /// The tickets.
    pub items: Vec<TicketItem>,
}

/// Whose queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueOf {
    /// An agent: their open tickets and the unassigned ones.
    Agent(Uuid),
    /// An admin: every open ticket.
    Everyone,
}

/// A ticket as [`COLUMNS`] select it.
type Row = (
    String,
    String,
    String,
    Option<String>,
    String,
    Option<i64>,
    Option<String>,
    i64,
    i64,
    String,
    i64,
    i64,
    Option<String>,
    i64,
);

const COLUMNS: &str = "t.ticket_id, t.status, t.customer, t.assignee, t.limit_period, \
     t.limit_first_day, t.limit_category, t.limit_milli, t.spent_milli, t.period_start, \
     t.opened_at_us, t.comments, t.resolution, COALESCE(w.minor_units, 2)";

/// Opens names once per person per request.
struct Names<'a> {
    database: &'a Database,
    vault: &'a PersonalDataVault,
    known: HashMap<String, Option<String>>,
}

impl Names<'_> {
    async fn person(&mut self, user_id: &str) -> anyhow::Result<Person> {
        if !self.known.contains_key(user_id) {
            let name = profile_of(self.database, self.vault, user_id)
                .await?
                .map(|profile| profile.name.to_string());
            self.known.insert(user_id.to_owned(), name);
        }
        Ok(Person {
            user_id: Uuid::parse_str(user_id)?,
            name: self.known.get(user_id).cloned().flatten(),
        })
    }
}

async fn items(
    database: &Database,
    vault: &PersonalDataVault,
    sql: &str,
    args: &[Value],
    now: DateTime<Utc>,
) -> anyhow::Result<TicketList> {
    let rows: Vec<Row> = fetch_all(database, sql, args).await?;
    let mut names = Names {
        database,
        vault,
        known: HashMap::new(),
    };
    let mut items = Vec::with_capacity(rows.len());
    for (
        ticket_id,
        status,
        customer,
        assignee,
        period,
        first_day,
        category,
        limit_milli,
        spent_milli,
        period_start,
        opened_us,
        comments,
        resolution,
        units,
    ) in rows
    {
        let minor_units = u32::try_from(units).unwrap_or(2);
        let opened_at = DateTime::from_timestamp_micros(opened_us)
            .ok_or_else(|| anyhow::anyhow!("{opened_us} is not an instant"))?;
        let agent = match assignee {
            Some(agent) => Some(names.person(&agent).await?),
            None => None,
        };
        items.push(TicketItem {
            ticket_id: Uuid::parse_str(&ticket_id)?,
            status,
            customer: names.person(&customer).await?,
            agent,
            limit: CrossedLimit {
                period,
                first_day: first_day.and_then(|d| u32::try_from(d).ok()),
                category,
                amount: amount_text(limit_milli, minor_units),
                spent: amount_text(spent_milli, minor_units),
                period_start: stored_day(&period_start)?,
            },
            opened_at,
            age_seconds: (now - opened_at).num_seconds().max(0),
            comments,
            resolution,
        });
    }
    Ok(TicketList { items })
}

/// The open tickets `of` works from: unassigned ones first, then oldest first.
///
/// # Errors
/// When the database fails or a sealed name is damaged.
pub async fn queue(
    database: &Database,
    vault: &PersonalDataVault,
    of: QueueOf,
    now: DateTime<Utc>,
) -> anyhow::Result<TicketList> {
    let (mine, args) = match of {
        QueueOf::Agent(agent) => (
            " AND (t.assignee IS NULL OR t.assignee = $1)",
            vec![Value::Text(agent.to_string())],
        ),
        QueueOf::Everyone => ("", Vec::new()),
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM rm_tickets t LEFT JOIN rm_wallets w ON w.owner = t.customer \
         WHERE t.status <> 'resolved'{mine} \
         ORDER BY CASE WHEN t.assignee IS NULL THEN 0 ELSE 1 END, t.opened_at"
    );
    items(database, vault, &sql, &args, now).await
}

/// Every ticket of `customer`, newest first.
///
/// # Errors
/// When the database fails or a sealed name is damaged.
pub async fn of_customer(
    database: &Database,
    vault: &PersonalDataVault,
    customer: Uuid,
    now: DateTime<Utc>,
) -> anyhow::Result<TicketList> {
    let sql = format!(
        "SELECT {COLUMNS} FROM rm_tickets t LEFT JOIN rm_wallets w ON w.owner = t.customer \
         WHERE t.customer = $1 ORDER BY t.opened_at DESC"
    );
    items(
        database,
        vault,
        &sql,
        &[Value::Text(customer.to_string())],
        now,
    )
    .await
}

/// Who wrote a comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Author {
    /// `customer`, `agent`, `admin` or `system`.
    pub kind: String,
    /// The person, unless the system wrote it.
    pub person: Option<Person>,
}

/// A comment on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Comment {
    /// Who.
    pub author: Author,
    /// What.
    pub text: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A ticket with what an agent needs to work it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketDetail {
    /// The ticket.
    pub ticket: TicketItem,
    /// Its comments, in order.
    pub comments: Vec<Comment>,
    /// The customer's latest expenses.
    pub recent_expenses: Vec<wallet_views::ExpenseItem>,
    /// The customer's limits now, with this period's spending.
    pub limits: Vec<wallet_views::LimitStatus>,
    /// The crossed limit's last periods up to the current one, oldest first: what was
    /// spent against it in each.
    pub limit_history: Vec<wallet_views::PeriodSpending>,
    /// The customer's other tickets (their earlier crossings), newest first.
    pub other_tickets: Vec<TicketItem>,
}

/// The ticket `ticket`, or `None` when there is none.
///
/// # Errors
/// When the database fails or a sealed name is damaged.
pub async fn detail(
    database: &Database,
    vault: &PersonalDataVault,
    ticket: Uuid,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<TicketDetail>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM rm_tickets t LEFT JOIN rm_wallets w ON w.owner = t.customer \
         WHERE t.ticket_id = $1"
    );
    let Some(item) = items(database, vault, &sql, &[ticket.to_string().into()], now)
        .await?
        .items
        .pop()
    else {
        return Ok(None);
    };
    let rows: Vec<(String, Option<String>, String, i64)> = fetch_all(
        database,
        "SELECT author_kind, author_id, body, at_us FROM rm_ticket_comments \
         WHERE ticket_id = $1 ORDER BY position",
        &[ticket.to_string().into()],
    )
    .await?;
    let mut names = Names {
        database,
        vault,
        known: HashMap::new(),
    };
    let mut comments = Vec::with_capacity(rows.len());
    for (kind, author, text, at) in rows {
        let person = match author {
            Some(author) => Some(names.person(&author).await?),
            None => None,
        };
        comments.push(Comment {
            author: Author { kind, person },
            text,
            at: DateTime::from_timestamp_micros(at)
                .ok_or_else(|| anyhow::anyhow!("{at} is not an instant"))?,
        });
    }
    let customer = item.customer.user_id;
    let crossed: Vec<(String, Option<i64>, Option<String>, i64)> = fetch_all(
        database,
        "SELECT limit_period, limit_first_day, limit_category, limit_milli FROM rm_tickets \
         WHERE ticket_id = $1",
        &[ticket.to_string().into()],
    )
    .await?;
    let (recent_expenses, limits, limit_history) = match (
        wallet_views::wallet(database, customer).await?,
        crossed.first(),
    ) {
        (Some(wallet), Some((period, first_day, category, limit_milli))) => {
            let units = wallet.minor_units;
            let today = now.date_naive();
            (
                wallet_views::recent_expenses(database, customer, units).await?,
                wallet_views::limit_statuses(database, customer, units, today).await?,
                wallet_views::limit_history(
                    database,
                    customer,
                    units,
                    &LimitKey {
                        period: period_of(period, *first_day),
                        category: category.as_deref().map(Category::parse).transpose()?,
                    },
                    *limit_milli,
                    today.max(item.limit.period_start),
                    LIMIT_HISTORY,
                )
                .await?,
            )
        }
        _ => (Vec::new(), Vec::new(), Vec::new()),
    };
    let other_tickets = of_customer(database, vault, customer, now)
        .await?
        .items
        .into_iter()
        .filter(|other| other.ticket_id != ticket)
        .collect();
    Ok(Some(TicketDetail {
        ticket: item,
        comments,
        recent_expenses,
        limits,
        limit_history,
        other_tickets,
    }))
}

/// Whether `staff` works (or worked) one of `customer`'s tickets: such an agent may see the
/// customer's receipts.
///
/// # Errors
/// When the database fails.
pub async fn works_for(database: &Database, staff: Uuid, customer: Uuid) -> anyhow::Result<bool> {
    let rows: Vec<(String,)> = fetch_all(
        database,
        "SELECT ticket_id FROM rm_tickets WHERE customer = $1 AND assignee = $2 LIMIT 1",
        &[
            Value::from(customer.to_string()),
            Value::from(staff.to_string()),
        ],
    )
    .await?;
    Ok(!rows.is_empty())
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use domain::ticket::{Actor, Crossing, Ticket, TicketCommand, TicketId};
    use domain::user::{Role, UserId};
    use domain::wallet::{Category, LimitKey, Period};

    use super::*;
    use crate::commands::CommandContext;
    use crate::config::Config;
    use crate::startup::build_parts;
    use crate::state::AppState;
    use crate::test_support::person;

    async fn ticket(state: &AppState, customer: UserId, commands: Vec<TicketCommand>) -> Uuid {
        let cause = Uuid::now_v7();
        let id = TicketId::for_cause(cause).0;
        let open = TicketCommand::Open {
            customer,
            crossing: Crossing {
                limit: LimitKey {
                    period: Period::Weekly,
                    category: Some(Category::parse("Fun").expect("category")),
                },
                limit_amount: "100".parse().expect("decimal"),
                period_start: NaiveDate::from_ymd_opt(2026, 11, 16).expect("day"),
                spent: "120.5".parse().expect("decimal"),
                expense_id: Uuid::now_v7(),
                cause,
            },
            assignee: None,
        };
        for command in std::iter::once(open).chain(commands) {
            state
                .commands
                .execute::<Ticket>(id, &command, &CommandContext::new("test", state.now()))
                .await
                .expect("decided");
        }
        id
    }

    #[tokio::test]
    async fn agents_see_theirs_and_the_unassigned_first_and_customers_see_their_own() {
        let data = tempfile::tempdir().expect("a data directory");
        let config = Config::for_tests(data.path().to_path_buf(), None);
        let (state, runner) = build_parts(&config).await.expect("state");
        let asha = person(&state, Role::Customer, "Asha Rao").await;
        let ravi = person(&state, Role::Agent, "Ravi Kumar").await;
        let meera = person(&state, Role::Agent, "Meera Shah").await;
        let assign = |agent: UserId| TicketCommand::Assign {
            assignee: agent,
            by: Actor::System,
        };
        let ravis = ticket(&state, asha, vec![assign(ravi)]).await;
        let meeras = ticket(&state, asha, vec![assign(meera)]).await;
        let waiting = ticket(&state, asha, vec![]).await;
        let done = ticket(
            &state,
            asha,
            vec![
                assign(ravi),
                TicketCommand::Resolve {
                    by: Actor::Agent(ravi),
                    resolution: domain::ticket::TicketText::parse("Sorted").expect("text"),
                },
            ],
        )
        .await;
        runner.catch_up().await.expect("projected");
        let later = state.now() + Duration::minutes(5);

        let ravis_queue = queue(&state.database, &state.vault, QueueOf::Agent(ravi.0), later)
            .await
            .expect("queue");
        let ids: Vec<Uuid> = ravis_queue.items.iter().map(|t| t.ticket_id).collect();
        assert_eq!(
            ids,
            [waiting, ravis],
            "unassigned first, then Ravi's; not Meera's"
        );
        let first = &ravis_queue.items[0];
        assert_eq!(first.status, "unassigned");
        assert_eq!(first.customer.name.as_deref(), Some("Asha Rao"));
        assert_eq!(first.agent, None);
        assert_eq!(
            first.limit.spent, "120.50",
            "in the customer's currency's decimals"
        );
        assert!(first.age_seconds >= 299, "{}", first.age_seconds);
        assert_eq!(
            ravis_queue.items[1]
                .agent
                .as_ref()
                .and_then(|a| a.name.as_deref()),
            Some("Ravi Kumar")
        );

        let everyone = queue(&state.database, &state.vault, QueueOf::Everyone, later)
            .await
            .expect("queue");
        let ids: Vec<Uuid> = everyone.items.iter().map(|t| t.ticket_id).collect();
        assert_eq!(
            ids,
            [waiting, ravis, meeras],
            "every open ticket, oldest first"
        );

        let mine = of_customer(&state.database, &state.vault, asha.0, later)
            .await
            .expect("list");
        let listed: Vec<(Uuid, &str)> = mine
            .items
            .iter()
            .map(|t| (t.ticket_id, t.status.as_str()))
            .collect();
        assert_eq!(
            listed,
            [
                (done, "resolved"),
                (waiting, "unassigned"),
                (meeras, "assigned"),
                (ravis, "assigned")
            ],
            "newest first"
        );
        assert_eq!(mine.items[0].resolution.as_deref(), Some("Sorted"));

        // The dashboard's open tickets: the unresolved ones, oldest first.
        let open: Vec<Uuid> = crate::wallet_views::open_tickets(&state.database, asha.0, 2)
            .await
            .expect("open tickets")
            .iter()
            .map(|t| t.ticket_id)
            .collect();
        assert_eq!(open, [ravis, meeras, waiting]);
    }
}
