//! Tickets on the pages: the customer's list, the staff's queue, and one ticket with what
//! working it needs (comments, the customer's recent spending and limit history) and its
//! actions: comment, take, reassign, resolve, reopen.

use axum::Form;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use domain::user::Role;

use super::forms::{Values, path_id, submit};
use super::page::{Page, Refused};
use crate::http::admin;
use crate::http::error::ApiError;
use crate::http::extract::{
    Admins, ApiPath, ApiQuery, Authorized, Customers, Staff, TicketParties,
};
use crate::http::tickets;
use crate::state::AppState;

/// `GET /tickets`: the customer's tickets.
pub async fn mine(State(state): State<AppState>, page: Page<Customers>) -> Response {
    match tickets::mine(State(state), page.user.clone()).await {
        Ok(Json(list)) => {
            let mut context = page.context("Your tickets");
            context.insert("tickets", &list.items);
            page.render("tickets.html", &context)
        }
        Err(error) => page.failed(error),
    }
}

/// `GET /agent/queue`: an agent's open tickets and the unassigned ones (an admin's: all
/// open ones), unassigned first, then oldest.
pub async fn queue(State(state): State<AppState>, page: Page<Staff>) -> Response {
    match tickets::queue(State(state), page.user.clone()).await {
        Ok(Json(list)) => {
            let mut context = page.context("Queue");
            context.insert("tickets", &list.items);
            context.insert("me", &page.user_id().0);
            page.render("queue.html", &context)
        }
        Err(error) => page.failed(error),
    }
}

async fn detail_page(
    state: &AppState,
    page: &Page<TicketParties>,
    ticket: &str,
    refused: Option<Refused>,
) -> Response {
    let ticket = match path_id(ticket) {
        Ok(ticket) => ticket,
        Err(error) => return page.failed(error),
    };
    let detail =
        match tickets::detail(State(state.clone()), page.user.clone(), ApiPath(ticket)).await {
            Ok(Json(detail)) => detail,
            Err(error) => return page.failed(error),
        };
    let mut context = page.context("Ticket");
    // An admin may give the ticket to any active agent.
    if let Ok(admin) = Authorized::<Admins>::admit(page.user.user.clone()) {
        let query = admin::DirectoryQuery {
            role: Some("agent".into()),
            status: Some("active".into()),
            q: None,
            limit: Some("200".into()),
            cursor: None,
        };
        match admin::directory(State(state.clone()), admin, ApiQuery(query)).await {
            Ok(Json(agents)) => context.insert("agents", &agents),
            Err(error) => return page.failed(error),
        }
    }
    context.insert("detail", &detail);
    context.insert("me", &page.user_id().0);
    context.insert("staff", &matches!(page.role(), Role::Agent | Role::Admin));
    page.render_with("ticket.html", context, refused)
}

/// `GET /tickets/{id}`: for its customer, agents and admins.
pub async fn detail(
    State(state): State<AppState>,
    page: Page<TicketParties>,
    Path(ticket): Path<String>,
) -> Response {
    detail_page(&state, &page, &ticket, None).await
}

/// `POST /tickets/{id}/{action}`: comment and reopen for every party, resolve and assign
/// (take, reassign) for staff.
pub async fn act(
    State(state): State<AppState>,
    page: Page<TicketParties>,
    Path((ticket, action)): Path<(String, String)>,
    Form(values): Form<Values>,
) -> Response {
    // Each action is its form's name on the page, and says what it did.
    let (form, notice) = match action.as_str() {
        "comment" => ("comment", "Comment added."),
        "reopen" => ("reopen", "Ticket reopened."),
        "resolve" => ("resolve", "Ticket resolved."),
        "assign" => ("assign", "Ticket assigned."),
        _ => return page.failed(ApiError::NotFound),
    };
    let result = async {
        let id = ApiPath(path_id(&ticket)?);
        let state = State(state.clone());
        let staff = || Authorized::<Staff>::admit(page.user.user.clone());
        match form {
            "comment" => {
                submit(&values, &[], |body| {
                    tickets::comment(state, page.user.clone(), id, body)
                })
                .await
            }
            "reopen" => {
                submit(&values, &[], |body| {
                    tickets::reopen(state, page.user.clone(), id, body)
                })
                .await
            }
            "resolve" => {
                let staff = staff()?;
                submit(&values, &[], |body| {
                    tickets::resolve(state, staff, id, body)
                })
                .await
            }
            _ => {
                let staff = staff()?;
                submit(&values, &[], |body| tickets::assign(state, staff, id, body)).await
            }
        }
    }
    .await;
    let here = format!("/tickets/{ticket}");
    page.settle(result, form, values, (&here, notice), |refused| {
        detail_page(&state, &page, &ticket, Some(refused))
    })
    .await
}
