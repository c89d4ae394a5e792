//! Tickets: the agents' queue and each customer's list, read from the `tickets` read model,
//! and what the parties do with a ticket: comment, resolve, reopen, (re)assign.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::ticket::{Actor, Ticket, TicketCommand, TicketRejection, TicketText};
use domain::user::{Role, UserId};
use projections::sql::fetch_all;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::command_error;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, ApiPath, Authorized, Customers, Staff, TicketParties};
use super::fields::Fields;
use crate::commands::{CommandContext, CommandError};
use crate::state::AppState;
use crate::ticket_views::{self, QueueOf, TicketDetail, TicketList};

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

/// `GET /api/v1/tickets/{id}`: a ticket with its comments, the customer's latest
/// expenses, their limits now and their other tickets; for the ticket's customer and for
/// staff. 404 for a ticket that does not exist or is another customer's.
///
/// # Errors
/// As above; 401/403 for auditors and strangers.
#[utoipa::path(get, path = "/tickets/{ticket_id}", tag = "tickets",
    security(("bearer" = [])),
    params(("ticket_id" = Uuid, Path, description = "The ticket.")),
    responses(
        (status = 200, description = "The ticket and what working it needs.", body = TicketDetail),
        (status = 403, description = "Only the ticket's customer, agents and admins.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket of yours.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn detail(
    State(state): State<AppState>,
    party: Authorized<TicketParties>,
    ApiPath(ticket): ApiPath<Uuid>,
) -> Result<Json<TicketDetail>, ApiError> {
    let detail = ticket_views::detail(&state.database, &state.vault, ticket, state.now())
        .await?
        .filter(|d| {
            party.user.role != Role::Customer || d.ticket.customer.user_id == party.user.user_id.0
        })
        .ok_or(ApiError::NotFound)?;
    Ok(Json(detail))
}

fn actor(user: &super::extract::CurrentUser) -> Actor {
    match user.role {
        Role::Customer => Actor::Customer(user.user_id),
        Role::Admin => Actor::Admin(user.user_id),
        // Auditors are admitted to no ticket route.
        Role::Agent | Role::Auditor => Actor::Agent(user.user_id),
    }
}

/// Runs `command` on the ticket for `user`.
/// A ticket that does not exist, or is another customer's, is a 404 alike.
async fn run(
    state: &AppState,
    user: &super::extract::CurrentUser,
    ticket: Uuid,
    command: TicketCommand,
) -> Result<StatusCode, ApiError> {
    let context = CommandContext::new(format!("user:{}", user.user_id), state.now());
    match state
        .commands
        .execute::<Ticket>(ticket, &command, &context)
        .await
    {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(CommandError::Rejected(TicketRejection::NotOpened)) => Err(ApiError::NotFound),
        Err(CommandError::Rejected(TicketRejection::NotAllowed)) if user.role == Role::Customer => {
            Err(ApiError::NotFound)
        }
        Err(CommandError::Rejected(TicketRejection::NotAllowed)) => Err(ApiError::Forbidden),
        // Resolved, not resolved, assigned already: the ticket's state is in the way.
        Err(CommandError::Rejected(rejection)) => Err(ApiError::Conflict(rejection.to_string())),
        Err(other) => Err(command_error(other)),
    }
}

fn text(field: &str, raw: &str) -> Result<TicketText, ApiError> {
    let mut fields = Fields::default();
    let parsed = fields.check(field, TicketText::parse(raw));
    fields.finish(parsed)
}

/// A comment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    /// 1 to 2,000 characters; line breaks allowed.
    pub(crate) text: String,
}

/// `POST /api/v1/tickets/{id}/comments`: the ticket's customer or staff add a comment.
/// 204; 404 for a ticket that does not exist or is another customer's.
///
/// # Errors
/// As above; 422 for a bad text; 401/403 for auditors and strangers.
#[utoipa::path(post, path = "/tickets/{ticket_id}/comments", tag = "tickets",
    security(("bearer" = [])), request_body = CommentBody,
    params(("ticket_id" = Uuid, Path, description = "The ticket.")),
    responses(
        (status = 204, description = "Added."),
        (status = 403, description = "Only the ticket's customer, agents and admins.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket of yours.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The text breaks the rules.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn comment(
    State(state): State<AppState>,
    party: Authorized<TicketParties>,
    ApiPath(ticket): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CommentBody>,
) -> Result<StatusCode, ApiError> {
    let command = TicketCommand::Comment {
        author: actor(&party.user),
        text: text("text", &body.text)?,
    };
    run(&state, &party.user, ticket, command).await
}

/// How a ticket was resolved.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// 1 to 2,000 characters.
    pub(crate) resolution: String,
}

/// `POST /api/v1/tickets/{id}/resolve`: staff close a ticket, saying how. 204; 409 when
/// it is resolved already.
///
/// # Errors
/// As above; 404, 422; 401/403 for anyone but agents and admins.
#[utoipa::path(post, path = "/tickets/{ticket_id}/resolve", tag = "agent",
    security(("bearer" = [])), request_body = ResolveBody,
    params(("ticket_id" = Uuid, Path, description = "The ticket.")),
    responses(
        (status = 204, description = "Resolved."),
        (status = 404, description = "No such ticket.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Resolved already.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The resolution breaks the rules.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn resolve(
    State(state): State<AppState>,
    staff: Authorized<Staff>,
    ApiPath(ticket): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ResolveBody>,
) -> Result<StatusCode, ApiError> {
    let command = TicketCommand::Resolve {
        by: actor(&staff.user),
        resolution: text("resolution", &body.resolution)?,
    };
    run(&state, &staff.user, ticket, command).await
}

/// Why a ticket is opened again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopenBody {
    /// 1 to 2,000 characters.
    pub(crate) reason: String,
}

/// `POST /api/v1/tickets/{id}/reopen`: the ticket's customer or staff open a resolved
/// ticket again. 204; 409 when it is not resolved.
///
/// # Errors
/// As above; 404, 422; 401/403 for auditors and strangers.
#[utoipa::path(post, path = "/tickets/{ticket_id}/reopen", tag = "tickets",
    security(("bearer" = [])), request_body = ReopenBody,
    params(("ticket_id" = Uuid, Path, description = "The ticket.")),
    responses(
        (status = 204, description = "Open again."),
        (status = 403, description = "Only the ticket's customer, agents and admins.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ticket of yours.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It is not resolved.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The reason breaks the rules.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reopen(
    State(state): State<AppState>,
    party: Authorized<TicketParties>,
    ApiPath(ticket): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ReopenBody>,
) -> Result<StatusCode, ApiError> {
    let command = TicketCommand::Reopen {
        by: actor(&party.user),
        reason: text("reason", &body.reason)?,
    };
    run(&state, &party.user, ticket, command).await
}

/// Who is to work a ticket.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// An active agent or admin; an agent may only name themselves.
    pub(crate) assignee: Uuid,
}

/// `POST /api/v1/tickets/{id}/assign`: an admin gives a ticket to an active agent or
/// admin (reassigning is recorded); an agent takes one for themselves. 204; 409 when it is
/// resolved or theirs already.
///
/// # Errors
/// As above; 404; 422 when the assignee is not active staff; 403 when an agent names
/// someone else; 401/403 for anyone but agents and admins.
#[utoipa::path(post, path = "/tickets/{ticket_id}/assign", tag = "agent",
    security(("bearer" = [])), request_body = AssignBody,
    params(("ticket_id" = Uuid, Path, description = "The ticket.")),
    responses(
        (status = 204, description = "Assigned."),
        (status = 404, description = "No such ticket.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Resolved, or theirs already.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The assignee is not active staff.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn assign(
    State(state): State<AppState>,
    staff: Authorized<Staff>,
    ApiPath(ticket): ApiPath<Uuid>,
    ApiJson(body): ApiJson<AssignBody>,
) -> Result<StatusCode, ApiError> {
    if staff.user.role == Role::Agent && body.assignee != staff.user.user_id.0 {
        return Err(ApiError::Forbidden);
    }
    // The assignee may have been created or deactivated a moment ago.
    state.read_models.show_acknowledged_writes().await;
    let active: Vec<(i64,)> = fetch_all(
        &state.database,
        "SELECT COUNT(*) FROM rm_users WHERE user_id = $1 AND role IN ('agent', 'admin') \
         AND active = 1 AND erased = 0",
        &[body.assignee.to_string().into()],
    )
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    let mut fields = Fields::default();
    let assignee = fields.check(
        "assignee",
        if active.first().is_some_and(|(n,)| *n > 0) {
            Ok(UserId(body.assignee))
        } else {
            Err("must be an active agent or admin")
        },
    );
    let command = TicketCommand::Assign {
        assignee: fields.finish(assignee)?,
        by: actor(&staff.user),
    };
    run(&state, &staff.user, ticket, command).await
}
