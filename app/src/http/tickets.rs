//! Tickets: the agents' queue and each customer's list, read from the `tickets` read model.

use axum::Json;
use axum::extract::State;
use domain::user::Role;

use super::error::{ApiError, Problem};
use super::extract::{Authorized, Customers, Staff};
use crate::state::AppState;
use crate::ticket_views::{self, QueueOf, TicketList};

/// `GET /api/v1/agent/queue`: the open tickets an agent works from, the unassigned ones
/// first, then the oldest first; an agent sees their own and the unassigned ones, an admin
/// every open one.
///
/// # Errors
/// 401/403 for anyone but agents and admins; 500.
#[utoipa::path(get, path = "/agent/queue", tag = "agent", security(("bearer" = [])),
    responses(
        (status = 200, description = "Open tickets, unassigned first, then oldest first.", body = TicketList),
    ))]
pub async fn queue(
    State(state): State<AppState>,
    staff: Authorized<Staff>,
) -> Result<Json<TicketList>, ApiError> {
    let of = if staff.user.role == Role::Admin {
        QueueOf::Everyone
    } else {
        QueueOf::Agent(staff.user.user_id.0)
    };
    let list = ticket_views::queue(&state.database, &state.vault, of, state.now()).await?;
    Ok(Json(list))
}

/// `GET /api/v1/tickets`: the customer's tickets, newest first, with where each stands
/// and who works it.
///
/// # Errors
/// 401/403 for anyone but customers; 500.
#[utoipa::path(get, path = "/tickets", tag = "tickets", security(("bearer" = [])),
    responses(
        (status = 200, description = "The customer's tickets, newest first.", body = TicketList),
        (status = 403, description = "Only customers.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn mine(
    State(state): State<AppState>,
    customer: Authorized<Customers>,
) -> Result<Json<TicketList>, ApiError> {
    let list = ticket_views::of_customer(
        &state.database,
        &state.vault,
        customer.user.user_id.0,
        state.now(),
    )
    .await?;
    Ok(Json(list))
}
