//! The event browser: the log filtered by customer, stream, type and time, page by page,
//! each event with its metadata; and, for one event, why it happened, following its causes
//! back to the request that set it in motion.

use chrono::{DateTime, Utc};
use infrastructure::event_store::search::{self, EventQuery};
use infrastructure::event_store::{Position, RecordedEvent};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::CommandService;
use crate::state::AppState;
use domain::schedule::Schedule;
use domain::ticket::Ticket;
use domain::user::User;
use domain::wallet::Wallet;

/// The most events one page holds.
pub const MAX_PAGE: u32 = 500;

/// How far back causes are followed; a cycle in stored metadata cannot loop forever.
const MAX_CAUSES: usize = 32;

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this customer's streams (account, wallet, schedule, tickets).
    pub customer: Option<Uuid>,
    /// Only this stream.
    pub stream: Option<String>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Recorded at or after.
    pub from: Option<DateTime<Utc>>,
    /// Recorded before.
    pub to: Option<DateTime<Utc>>,
    /// Only after this position (the previous page's `next_after`).
    pub after: u64,
    /// At most this many (capped at [`MAX_PAGE`]).
    pub limit: u32,
}

/// One event as auditors see it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EventView {
    /// Its place in the global log.
    pub position: u64,
    /// Its stream.
    pub stream: String,
    /// Its place in the stream.
    pub version: u64,
    /// Its id.
    pub event_id: Uuid,
    /// Its type.
    pub event_type: String,
    /// The shape it was stored with.
    pub schema_version: u16,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// The command that wrote it.
    pub command_id: Uuid,
    /// Shared by everything one outside request set in motion.
    pub correlation_id: Uuid,
    /// The event (or command) that caused it, if any.
    pub causation_id: Option<Uuid>,
    /// Who: `user:<id>`, `system:<process>`, `operator`, ...
    pub actor: String,
    /// Its fields as stored, personal data opened (absent once erased).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

/// A page of events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct EventPage {
    /// Oldest first.
    pub events: Vec<EventView>,
    /// Pass as `after` for the next page; `None` on the last one.
    pub next_after: Option<u64>,
}

/// Why an event happened.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Why {
    /// The event asked about.
    pub event: EventView,
    /// Its cause, the cause's cause, and so on.
    pub because: Vec<EventView>,
    /// The request at the root of it all.
    pub request: Request,
}

/// The request (command) at the root of a chain of causes.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Request {
    /// The command.
    pub command_id: Uuid,
    /// Who asked.
    pub actor: String,
    /// When.
    pub recorded_at: DateTime<Utc>,
    /// Everything it wrote.
    pub events: Vec<EventView>,
}

/// Opens an event for auditors: the personal data in it unsealed (absent once erased).
///
/// # Errors
/// When the vault fails or the payload is unreadable.
pub async fn view(state: &AppState, event: &RecordedEvent) -> anyhow::Result<EventView> {
    let payload = state.vault.unseal(&event.payload).await?;
    Ok(EventView {
        position: event.position.0,
        stream: event.stream.to_string(),
        version: event.version,
        event_id: event.event_id,
        event_type: event.event_type.clone(),
        schema_version: event.schema_version,
        recorded_at: event.metadata.recorded_at,
        command_id: event.metadata.command_id,
        correlation_id: event.metadata.correlation_id,
        causation_id: event.metadata.causation_id,
        actor: event.metadata.actor.clone(),
        payload: serde_json::from_str(payload.get())?,
    })
}

async fn views(state: &AppState, events: &[RecordedEvent]) -> anyhow::Result<Vec<EventView>> {
    let mut views = Vec::with_capacity(events.len());
    for event in events {
        views.push(view(state, event).await?);
    }
    Ok(views)
}

/// A page of the events the filter selects.
///
/// # Errors
/// When the log or the tickets read model cannot be read.
pub async fn browse(state: &AppState, filter: &EventFilter) -> anyhow::Result<EventPage> {
    let limit = filter.limit.clamp(1, MAX_PAGE);
    let mut streams = match filter.customer {
        Some(customer) => Some(super::streams_of_customer(&state.database, customer).await?),
        None => None,
    };
    if let Some(stream) = &filter.stream {
        streams = Some(match streams {
            Some(of_customer) => of_customer.into_iter().filter(|s| s == stream).collect(),
            None => vec![stream.clone()],
        });
    }
    let events = search::search(
        &state.database,
        &EventQuery {
            streams,
            event_type: filter.event_type.clone(),
            from: filter.from,
            to: filter.to,
            until: None,
            after: Position(filter.after),
            limit,
        },
    )
    .await?;
    let next_after = (events.len() == limit as usize)
        .then(|| events.last().map(|e| e.position.0))
        .flatten();
    Ok(EventPage {
        events: views(state, &events).await?,
        next_after,
    })
}

/// Why the event happened; `None` when no event has this id.
///
/// # Errors
/// When the log cannot be read.
pub async fn why(state: &AppState, event_id: Uuid) -> anyhow::Result<Option<Why>> {
    let Some(event) = search::event_by_id(&state.database, event_id).await? else {
        return Ok(None);
    };
    let mut because = Vec::new();
    let mut root = event.clone();
    while let Some(cause_id) = root.metadata.causation_id {
        if because.len() >= MAX_CAUSES {
            break;
        }
        match search::event_by_id(&state.database, cause_id).await? {
            Some(cause) => {
                because.push(view(state, &cause).await?);
                root = cause;
            }
            // A cause that is not a stored event (none is, today): the chain ends here.
            None => break,
        }
    }
    // The request at the root is the command that wrote the oldest cause.
    let written = search::events_of_command(&state.database, root.metadata.command_id).await?;
    let first = written.first().unwrap_or(&root);
    let request = Request {
        command_id: first.metadata.command_id,
        actor: first.metadata.actor.clone(),
        recorded_at: first.metadata.recorded_at,
        events: views(state, &written).await?,
    };
    Ok(Some(Why {
        event: view(state, &event).await?,
        because,
        request,
    }))
}

/// The customer a stream belongs to, when it is one of a customer's streams.
///
/// # Errors
/// When the tickets read model cannot be read.
pub async fn customer_of_stream(state: &AppState, stream: &str) -> anyhow::Result<Option<Uuid>> {
    let Ok(stream) = infrastructure::event_store::StreamId::parse(stream) else {
        return Ok(None);
    };
    if let Some(id) = CommandService::id_in::<Wallet>(&stream)
        .or_else(|| CommandService::id_in::<User>(&stream))
        .or_else(|| CommandService::id_in::<Schedule>(&stream))
    {
        return Ok(Some(id));
    }
    let Some(ticket) = CommandService::id_in::<Ticket>(&stream) else {
        return Ok(None);
    };
    let rows: Vec<(String,)> = projections::sql::fetch_all(
        &state.database,
        "SELECT customer FROM rm_tickets WHERE ticket_id = $1",
        &[projections::sql::Value::from(ticket.to_string())],
    )
    .await?;
    Ok(rows.first().and_then(|(c,)| Uuid::parse_str(c).ok()))
}
