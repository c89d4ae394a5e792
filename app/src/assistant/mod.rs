//! The assistant: a small helper on every signed-in page (and `POST /api/v1/assistant`)
//! that answers from the user's own read models and shows the way to the right page. Quick
//! entries such as "spent 250 on groceries yesterday" become an expense the user confirms;
//! nothing is recorded without that confirmation.

mod understand;

use std::str::FromStr;

use chrono::NaiveDate;
use domain::user::Role;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::state::AppState;
use crate::ticket_views::{self, QueueOf};
use crate::wallet_views::{self, Cursor, ExpenseFilter, MAX_PAGE, VoidedFilter};
pub use understand::{Intent, Span, Topic, understand};

/// A page the answer points to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Link {
    /// What it is.
    pub label: String,
    /// Where it is.
    pub href: String,
}

/// An expense the assistant proposes; the API client records it with
/// `POST /api/v1/expenses`, the page with one click.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ProposedExpense {
    /// In the wallet's currency.
    pub amount: String,
    /// Capitalised.
    pub category: String,
    /// As typed.
    pub description: String,
    /// `YYYY-MM-DD`.
    pub spent_on: NaiveDate,
}

/// The assistant's answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Reply {
    /// What it says.
    pub text: String,
    /// Pages that help further.
    pub links: Vec<Link>,
    /// Questions it understands, when it did not understand this one.
    pub suggestions: Vec<String>,
    /// An expense to confirm, for a quick entry.
    pub proposed_expense: Option<ProposedExpense>,
}

fn link(label: &str, href: &str) -> Link {
    Link {
        label: label.to_owned(),
        href: href.to_owned(),
    }
}

fn said(text: impl Into<String>, links: Vec<Link>) -> Reply {
    Reply {
        text: text.into(),
        links,
        suggestions: Vec::new(),
        proposed_expense: None,
    }
}

/// What each role can ask.
fn suggestions(role: Role) -> Vec<String> {
    let examples: &[&str] = match role {
        Role::Customer => &[
            "what's my balance",
            "how much did I spend on food this month",
            "am I over my limit",
            "where is my ticket",
            "how do I set a limit",
            "spent 250 on groceries yesterday",
        ],
        Role::Agent | Role::Admin => &[
            "how many tickets are in my queue",
            "which is the oldest ticket",
        ],
        Role::Auditor => &["help"],
    };
    examples.iter().map(|s| (*s).to_owned()).collect()
}

fn not_understood(role: Role) -> Reply {
    Reply {
        text: "I did not understand that. Here is what I can answer:".into(),
        links: Vec::new(),
        suggestions: suggestions(role),
        proposed_expense: None,
    }
}

fn how_to(topic: Topic) -> Reply {
    let (text, label, href) = match topic {
        Topic::Limit => (
            "Open Limits, choose weekly or monthly, leave the category empty for all spending (or name one), enter the amount and press Set limit. You get a mail at 80% and a ticket past 100%.",
            "Limits",
            "/limits",
        ),
        Topic::TopUp => (
            "Open Top up, enter the amount and press Add money.",
            "Top up",
            "/top-up",
        ),
        Topic::Expense => (
            "Open Expenses and fill in Record an expense: amount, category, date, and a receipt photo or PDF if you have one. Or tell me, e.g. \"spent 250 on groceries yesterday\".",
            "Expenses",
            "/expenses",
        ),
        Topic::Savings => (
            "Open Savings, give the goal a name and a target, then put money in from your balance whenever you like.",
            "Savings",
            "/savings",
        ),
        Topic::Reminder => (
            "Open Reminders: set a reminder for a date (once or repeating), or schedule a recurring payment that is recorded for you on each date.",
            "Reminders",
            "/reminders",
        ),
        Topic::Export => (
            "Open Expenses, filter if you like, then press Export CSV.",
            "Expenses",
            "/expenses",
        ),
        Topic::Void => (
            "Open Expenses, give a reason beside the expense and press Void: the amount goes back to your balance.",
            "Expenses",
            "/expenses",
        ),
    };
    said(text, vec![link(label, href)])
}

/// The assistant's answer to `message` from `user` (of `role`).
///
/// # Errors
/// When a read model cannot be read.
pub async fn reply(
    state: &AppState,
    user: Uuid,
    role: Role,
    message: &str,
) -> anyhow::Result<Reply> {
    // It answers from the read models: after every write the asker was told is done.
    state.read_models.show_acknowledged_writes().await;
    let today = state.now().date_naive();
    let intent = understand(message, today);
    let staff = matches!(role, Role::Agent | Role::Admin);
    Ok(match (intent, role) {
        (Intent::Help, _) => Reply {
            text: "Ask me about your own figures, or how to do something. For example:".into(),
            links: Vec::new(),
            suggestions: suggestions(role),
            proposed_expense: None,
        },
        (Intent::HowTo(topic), Role::Customer) => how_to(topic),
        (Intent::Balance, Role::Customer) => {
            match wallet_views::dashboard(&state.database, user, today).await? {
                Some(board) => said(
                    format!(
                        "Your balance is {} {}; you have spent {} {} this month.",
                        board.balance, board.currency, board.spent_this_month, board.currency
                    ),
                    vec![link("Dashboard", "/dashboard"), link("Top up", "/top-up")],
                ),
                None => said(
                    "Your wallet opens with your first top-up.",
                    vec![link("Top up", "/top-up")],
                ),
            }
        }
        (Intent::Spent { category, span }, Role::Customer) => {
            spent(state, user, category, span, today).await?
        }
        (Intent::Limits, Role::Customer) => limits(state, user, today).await?,
        (Intent::Tickets, Role::Customer) => {
            let list =
                ticket_views::of_customer(&state.database, &state.vault, user, state.now()).await?;
            match list
                .items
                .iter()
                .find(|t| t.status != "resolved")
                .or(list.items.first())
            {
                None => said(
                    "You have no tickets. One opens by itself when spending passes a limit.",
                    vec![link("Limits", "/limits")],
                ),
                Some(ticket) => {
                    let agent = ticket.agent.as_ref().and_then(|a| a.name.clone());
                    let text = match (ticket.status.as_str(), agent) {
                        ("resolved", _) => format!(
                            "Your latest ticket is resolved: {}",
                            ticket.resolution.clone().unwrap_or_default()
                        ),
                        (_, Some(agent)) => format!(
                            "Your ticket is {} and {agent} is working on it.",
                            ticket.status
                        ),
                        (_, None) => "Your ticket is waiting for the next free agent.".to_owned(),
                    };
                    said(
                        text,
                        vec![link(
                            "Open the ticket",
                            &format!("/tickets/{}", ticket.ticket_id),
                        )],
                    )
                }
            }
        }
        (
            Intent::Record {
                amount,
                category,
                spent_on,
            },
            Role::Customer,
        ) => Reply {
            text: format!("Record {amount} for {category} on {spent_on}?"),
            links: Vec::new(),
            suggestions: Vec::new(),
            proposed_expense: Some(ProposedExpense {
                amount,
                category,
                description: message.trim().chars().take(200).collect(),
                spent_on,
            }),
        },
        (Intent::QueueSize | Intent::Tickets, _) if staff => {
            let of = if role == Role::Admin {
                QueueOf::Everyone
            } else {
                QueueOf::Agent(user)
            };
            let queue = ticket_views::queue(&state.database, &state.vault, of, state.now()).await?;
            let waiting = queue.items.iter().filter(|t| t.agent.is_none()).count();
            said(
                format!(
                    "{} open ticket(s) in your queue, {waiting} of them unassigned.",
                    queue.items.len()
                ),
                vec![link("Queue", "/agent/queue")],
            )
        }
        (Intent::OldestTicket, _) if staff => {
            let of = if role == Role::Admin {
                QueueOf::Everyone
            } else {
                QueueOf::Agent(user)
            };
            let queue = ticket_views::queue(&state.database, &state.vault, of, state.now()).await?;
            match queue.items.iter().max_by_key(|t| t.age_seconds) {
                None => said("Your queue is empty.", vec![link("Queue", "/agent/queue")]),
                Some(oldest) => said(
                    format!(
                        "The oldest is {}'s, open for {} hour(s){}.",
                        oldest
                            .customer
                            .name
                            .clone()
                            .unwrap_or_else(|| "an erased customer".into()),
                        oldest.age_seconds / 3600,
                        if oldest.agent.is_none() {
                            ", not yet assigned"
                        } else {
                            ""
                        }
                    ),
                    vec![link("Open it", &format!("/tickets/{}", oldest.ticket_id))],
                ),
            }
        }
        _ => not_understood(role),
    })
}

async fn spent(
    state: &AppState,
    owner: Uuid,
    category: Option<String>,
    span: Span,
    today: NaiveDate,
) -> anyhow::Result<Reply> {
    let Some(wallet) = wallet_views::wallet(&state.database, owner).await? else {
        return Ok(said(
            "You have not spent anything yet.",
            vec![link("Expenses", "/expenses")],
        ));
    };
    let (from, to) = span.days(today);
    let filter = ExpenseFilter {
        from: Some(from),
        to: Some(to),
        category: category
            .as_deref()
            .and_then(|c| domain::wallet::Category::parse(c).ok()),
        voided: VoidedFilter::Live,
    };
    let mut total = Decimal::ZERO;
    let mut count = 0_usize;
    let mut cursor = None;
    loop {
        let page = wallet_views::expense_page(
            &state.database,
            owner,
            wallet.minor_units,
            &filter,
            cursor,
            MAX_PAGE,
        )
        .await?;
        for item in &page.items {
            total += Decimal::from_str(&item.amount)?;
            count += 1;
        }
        match page.next_cursor {
            Some(next) => cursor = Some(Cursor::parse(&next).map_err(|e| anyhow::anyhow!(e))?),
            None => break,
        }
    }
    total.rescale(wallet.minor_units);
    let on = category.map_or_else(String::new, |c| format!(" on {c}"));
    let mut query = vec![("from", from.to_string()), ("to", to.to_string())];
    if let Some(category) = &filter.category {
        query.push(("category", category.to_string()));
    }
    let href = format!(
        "/expenses?{}",
        serde_urlencoded::to_string(query).unwrap_or_default()
    );
    Ok(said(
        format!(
            "You spent {total} {}{on} {} ({count} expense(s)).",
            wallet.currency,
            span.words()
        ),
        vec![link("See them", &href)],
    ))
}

async fn limits(state: &AppState, owner: Uuid, today: NaiveDate) -> anyhow::Result<Reply> {
    let limits = match wallet_views::wallet(&state.database, owner).await? {
        Some(wallet) => {
            wallet_views::limit_statuses(&state.database, owner, wallet.minor_units, today).await?
        }
        None => Vec::new(),
    };
    if limits.is_empty() {
        return Ok(said(
            "You have no limits yet.",
            vec![link("Set one", "/limits")],
        ));
    }
    let lines: Vec<String> = limits
        .iter()
        .map(|l| {
            let what = l.category.clone().unwrap_or_else(|| "all spending".into());
            let standing = if l.over {
                "over"
            } else if l.percent >= 80 {
                "close to"
            } else {
                "within"
            };
            format!(
                "{standing} your {what} limit ({} of {}, {}%)",
                l.spent, l.amount, l.percent
            )
        })
        .collect();
    let over = limits.iter().any(|l| l.over);
    let text = format!(
        "{} You are {}.",
        if over { "Yes." } else { "No." },
        lines.join("; ")
    );
    Ok(said(text, vec![link("Limits", "/limits")]))
}
