//! A customer's state as of any instant: their wallet and tickets rebuilt from their own
//! events up to that instant, with the same domain code (`evolve`) the commands use.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use domain::Aggregate;
use domain::ticket::{Status, Ticket};
use domain::user::User;
use domain::wallet::{Period, Wallet, WalletEvent};
use infrastructure::event_codec::decode_payload;
use infrastructure::event_store::{RecordedEvent, StreamId};
use rust_decimal::Decimal;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::CommandService;
use crate::state::AppState;

/// A customer as their history stood at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CustomerState {
    /// Whose.
    pub customer_id: Uuid,
    /// The instant asked for.
    pub as_of: DateTime<Utc>,
    /// The newest log position taken into account (0: none).
    pub position: u64,
    /// Events of the customer replayed.
    pub events: u64,
    /// The wallet; `None` when it did not exist yet.
    pub wallet: Option<WalletAt>,
    /// Tickets opened about their spending by then.
    pub tickets: Vec<TicketAt>,
}

/// A wallet at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WalletAt {
    /// Its currency.
    pub currency: String,
    /// Top-ups minus live expenses minus net savings.
    #[schema(value_type = String, example = "1250.00")]
    pub balance: Decimal,
    /// Its limits, in the order they were first set.
    pub limits: Vec<LimitAt>,
    /// Every expense, voided ones included, by date then id.
    pub expenses: Vec<ExpenseAt>,
    /// Savings goals, by name.
    pub savings: Vec<GoalAt>,
}

/// A limit at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LimitAt {
    /// `weekly` or `monthly`.
    pub period: String,
    /// For a monthly limit, the day its month starts.
    pub first_day: Option<u8>,
    /// One category, or `None` for all spending.
    pub category: Option<String>,
    /// The most per period.
    #[schema(value_type = String)]
    pub amount: Decimal,
}

/// An expense at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ExpenseAt {
    /// Its id.
    pub expense_id: Uuid,
    /// How much.
    #[schema(value_type = String)]
    pub amount: Decimal,
    /// On what.
    pub category: String,
    /// Details.
    pub description: String,
    /// When.
    pub spent_on: NaiveDate,
    /// Taken back by then.
    pub voided: bool,
    /// Why, once it was.
    pub void_reason: Option<String>,
    /// A stored receipt.
    pub receipt_id: Option<Uuid>,
}

/// A savings goal at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct GoalAt {
    /// Its id.
    pub goal_id: Uuid,
    /// What for.
    pub name: String,
    /// How much to save.
    #[schema(value_type = String)]
    pub target: Decimal,
    /// Saved by then.
    #[schema(value_type = String)]
    pub saved: Decimal,
    /// By when.
    pub due: Option<NaiveDate>,
    /// The target was reached by then.
    pub reached: bool,
}

/// A ticket at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TicketAt {
    /// Its id.
    pub ticket_id: Uuid,
    /// `unassigned`, `assigned` or `resolved`.
    #[schema(value_type = String, example = "assigned")]
    pub status: Status,
    /// Who worked it then.
    pub assignee: Option<Uuid>,
}

/// Folds a stream's events recorded at or before `as_of` (the prefix of its history up to
/// then) into the aggregate's state, showing each to `observe` too (for what the state
/// does not keep); answers the state, the newest position and the count.
async fn replay<A>(
    state: &AppState,
    stream: &StreamId,
    as_of: DateTime<Utc>,
    mut observe: impl FnMut(&A::Event),
) -> anyhow::Result<(A, u64, u64)>
where
    A: Aggregate,
    A::Event: DeserializeOwned,
{
    let recorded: Vec<RecordedEvent> = state.events.read_stream(stream, 1).await?;
    let mut aggregate = A::default();
    let (mut position, mut count) = (0, 0);
    for event in recorded
        .iter()
        .take_while(|e| e.metadata.recorded_at <= as_of)
    {
        let payload = state.vault.unseal(&event.payload).await?;
        let event_data = decode_payload::<A::Event>(event, &payload)?;
        observe(&event_data);
        aggregate = aggregate.evolve(&event_data);
        position = event.position.0;
        count += 1;
    }
    Ok((aggregate, position, count))
}

/// The customer's state as of `as_of`; `None` when no account had this id by then.
///
/// # Errors
/// When the log cannot be read or an event cannot be decoded.
pub async fn customer_state(
    state: &AppState,
    customer: Uuid,
    as_of: DateTime<Utc>,
) -> anyhow::Result<Option<CustomerState>> {
    let (user, mut position, mut events) = replay::<User>(
        state,
        &CommandService::stream_of::<User>(customer),
        as_of,
        |_| {},
    )
    .await?;
    if matches!(user, User::Unregistered) {
        return Ok(None);
    }
    // The wallet's state keeps only what its rules need of each expense; the details shown
    // here come from the events themselves.
    let mut expenses = BTreeMap::new();
    let (wallet, at, count) = replay::<Wallet>(
        state,
        &CommandService::stream_of::<Wallet>(customer),
        as_of,
        |event| expense_details(&mut expenses, event),
    )
    .await?;
    position = position.max(at);
    events += count;
    let mut tickets = Vec::new();
    for stream in super::ticket_streams(&state.database, customer).await? {
        let stream = StreamId::parse(stream)?;
        let (ticket, at, count) = replay::<Ticket>(state, &stream, as_of, |_| {}).await?;
        if let (Ticket::Open(open), Some(ticket_id)) =
            (ticket, CommandService::id_in::<Ticket>(&stream))
        {
            tickets.push(TicketAt {
                ticket_id,
                status: open.status(),
                assignee: open.assignee.map(|a| a.0),
            });
            position = position.max(at);
            events += count;
        }
    }
    Ok(Some(CustomerState {
        customer_id: customer,
        as_of,
        position,
        events,
        wallet: wallet_at(&wallet, expenses.into_values().collect()),
        tickets,
    }))
}

/// Keeps each expense as its events describe it, the way `evolve` does: a void counts once.
fn expense_details(expenses: &mut BTreeMap<Uuid, ExpenseAt>, event: &WalletEvent) {
    match event {
        WalletEvent::ExpenseRecorded {
            expense_id,
            amount,
            category,
            description,
            spent_on,
            receipt_id,
        } => {
            expenses.insert(
                *expense_id,
                ExpenseAt {
                    expense_id: *expense_id,
                    amount: *amount,
                    category: category.as_str().to_owned(),
                    description: description.as_str().to_owned(),
                    spent_on: *spent_on,
                    voided: false,
                    void_reason: None,
                    receipt_id: *receipt_id,
                },
            );
        }
        WalletEvent::ExpenseVoided { expense_id, reason } => {
            if let Some(expense) = expenses.get_mut(expense_id).filter(|e| !e.voided) {
                expense.voided = true;
                expense.void_reason = Some(reason.as_str().to_owned());
            }
        }
        _ => {}
    }
}

fn wallet_at(wallet: &Wallet, mut expenses: Vec<ExpenseAt>) -> Option<WalletAt> {
    let Wallet::Open(open) = wallet else {
        return None;
    };
    expenses.sort_by_key(|e| (e.spent_on, e.expense_id));
    let mut savings: Vec<GoalAt> = open
        .goals
        .iter()
        .map(|(id, g)| GoalAt {
            goal_id: *id,
            name: g.name.as_str().to_owned(),
            target: g.target,
            saved: g.saved,
            due: g.due,
            reached: g.reached,
        })
        .collect();
    savings.sort_by(|a, b| (&a.name, a.goal_id).cmp(&(&b.name, b.goal_id)));
    Some(WalletAt {
        currency: open.currency.to_string(),
        balance: open.balance,
        limits: open
            .limits
            .iter()
            .map(|(key, amount)| LimitAt {
                period: match key.period {
                    Period::Weekly => "weekly".into(),
                    Period::Monthly { .. } => "monthly".into(),
                },
                first_day: match key.period {
                    Period::Weekly => None,
                    Period::Monthly { first_day } => Some(first_day),
                },
                category: key.category.as_ref().map(|c| c.as_str().to_owned()),
                amount: *amount,
            })
            .collect(),
        expenses,
        savings,
    })
}
