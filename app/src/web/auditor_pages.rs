//! The auditor's pages: verify the log, a customer's state as of an instant, the event
//! browser with each event's causes, and exports. Each goes through the audit API's own
//! handler, so every read is recorded exactly as over the API.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::{NaiveDateTime, SecondsFormat};

use super::forms::{Values, given, path_id};
use super::page::Page;
use crate::http::audit::{self, AsOfQuery, EventsQuery, ExportQuery};
use crate::http::error::{ApiError, FieldError};
use crate::http::extract::{ApiPath, ApiQuery, Auditors};
use crate::state::AppState;

type Auditor = Page<Auditors>;

/// An instant as typed: RFC 3339 as it is, or a browser's `datetime-local`
/// (`2026-11-22T10:30`) read as UTC.
fn instant(raw: Option<&String>) -> Option<String> {
    let raw = given(raw)?;
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(&raw, format).ok())
        .map(|local| local.and_utc().to_rfc3339_opts(SecondsFormat::Secs, true))
        .or(Some(raw))
}

/// `GET /audit`: the forms, and the verification report when asked for (`?verify`).
pub async fn home(
    State(state): State<AppState>,
    page: Auditor,
    Query(values): Query<Values>,
) -> Response {
    let mut context = page.context("Audit");
    if values.contains_key("verify") {
        match audit::verify(State(state), page.user.clone()).await {
            Ok(Json(report)) => context.insert("report", &report),
            Err(error) => return page.failed(error),
        }
    }
    page.render_with("audit.html", context, None)
}

/// `GET /audit/state?customer=&as_of=`: a customer's state as of an instant.
pub async fn state_as_of(
    State(state): State<AppState>,
    page: Auditor,
    Query(values): Query<Values>,
) -> Response {
    let customer = given(values.get("customer")).and_then(|raw| raw.parse().ok());
    let Some(customer) = customer else {
        let error = ApiError::Validation(vec![FieldError::new("customer", "must be a user id")]);
        return match page.refused("state", values, error) {
            Ok(refused) => page.render_with("audit.html", page.context("Audit"), Some(refused)),
            Err(response) => response,
        };
    };
    let query = AsOfQuery {
        as_of: instant(values.get("as_of")),
    };
    match audit::customer_state(
        State(state),
        page.user.clone(),
        ApiPath(customer),
        ApiQuery(query),
    )
    .await
    {
        Ok(Json(found)) => {
            let mut context = page.context("State as of");
            context.insert("found", &found);
            page.render("audit_state.html", &context)
        }
        Err(error @ ApiError::Validation(_)) => match page.refused("state", values, error) {
            Ok(refused) => page.render_with("audit.html", page.context("Audit"), Some(refused)),
            Err(response) => response,
        },
        Err(error) => page.failed(error),
    }
}

/// `GET /audit/events`: the event browser.
pub async fn events(
    State(state): State<AppState>,
    page: Auditor,
    Query(values): Query<Values>,
) -> Response {
    let query = EventsQuery {
        customer: given(values.get("customer")),
        stream: given(values.get("stream")),
        event_type: given(values.get("type")),
        from: instant(values.get("from")),
        to: instant(values.get("to")),
        after: given(values.get("after")),
        limit: None,
    };
    let listed = audit::events(State(state), page.user.clone(), ApiQuery(query))
        .await
        .map(|Json(events)| events);
    let mut refused = None;
    let events = match page.listed(listed, &values, &mut refused) {
        Ok(events) => events,
        Err(response) => return response,
    };
    let mut context = page.context("Events");
    context.insert("events", &events);
    context.insert("filters", &values);
    page.render_with("audit_events.html", context, refused)
}

/// `GET /audit/events/{id}/why`: why an event happened.
pub async fn why(State(state): State<AppState>, page: Auditor, Path(id): Path<String>) -> Response {
    let found = match path_id(&id) {
        Ok(event_id) => audit::why(State(state), page.user.clone(), ApiPath(event_id)).await,
        Err(error) => Err(error),
    };
    match found {
        Ok(Json(why)) => {
            let mut context = page.context("Why it happened");
            context.insert("why", &why);
            page.render("audit_why.html", &context)
        }
        Err(error) => page.failed(error),
    }
}

/// `GET /audit/export?format=&customer=`: the download.
pub async fn export(
    State(state): State<AppState>,
    page: Auditor,
    Query(values): Query<Values>,
) -> Response {
    let query = ExportQuery {
        format: given(values.get("format")),
        customer: given(values.get("customer")),
    };
    match audit::export(State(state), page.user.clone(), ApiQuery(query)).await {
        Ok(download) => download,
        Err(error) => page.failed(error),
    }
}
