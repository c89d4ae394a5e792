//! What auditors need: a customer's state as of any instant, the event browser with the
//! causes of each event, exports of the log, proof that the log is untampered (through
//! [`infrastructure::tamper_evidence`]), and a record of every read they make.

pub mod as_of;
pub mod browser;
pub mod cli;
pub mod export;
pub mod sealer;

use infrastructure::database::Database;
use projections::sql::{Value, fetch_all};
use uuid::Uuid;

use crate::commands::CommandService;
use domain::schedule::Schedule;
use domain::user::User;
use domain::wallet::Wallet;

/// Every stream that holds a customer's history: their account, wallet and schedule, and
/// each ticket opened about their spending (found through the `tickets` read model).
///
/// # Errors
/// When the read model cannot be read.
pub async fn streams_of_customer(
    database: &Database,
    customer: Uuid,
) -> anyhow::Result<Vec<String>> {
    let mut streams = vec![
        CommandService::stream_of::<User>(customer).to_string(),
        CommandService::stream_of::<Wallet>(customer).to_string(),
        CommandService::stream_of::<Schedule>(customer).to_string(),
    ];
    streams.extend(ticket_streams(database, customer).await?);
    Ok(streams)
}

/// The streams of the tickets opened about a customer's spending.
///
/// # Errors
/// When the read model cannot be read.
pub async fn ticket_streams(database: &Database, customer: Uuid) -> anyhow::Result<Vec<String>> {
    let rows: Vec<(String,)> = fetch_all(
        database,
        "SELECT ticket_id FROM rm_tickets WHERE customer = $1 ORDER BY opened_at",
        &[Value::from(customer.to_string())],
    )
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id,)| Uuid::parse_str(&id).ok())
        .map(|id| CommandService::stream_of::<domain::ticket::Ticket>(id).to_string())
        .collect())
}
