//! What auditors do over the JSON API: verify the log, see a customer's state as of an
//! instant, browse events and their causes, and export. Every read is recorded first
//! (`audit_reads`); admins list the record.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use infrastructure::tamper_evidence::{self, Verification};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::{ApiError, Problem};
use super::extract::{Admins, ApiPath, ApiQuery, Auditors, Authorized};
use super::fields::{Fields, optional};
use crate::audit::as_of::{self, CustomerState};
use crate::audit::browser::{self, EventFilter, EventPage, MAX_PAGE, Why};
use crate::audit::export::{Export, ExportFormat};
use crate::state::AppState;

/// What `verify` found: `ok`, how many events and seals were checked, and where the log
/// first differs from what was written.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyReport {
    ok: bool,
    checked: u64,
    seals_checked: u64,
    first_bad_position: Option<u64>,
    first_bad_stream: Option<String>,
    problem: Option<String>,
}

impl From<Verification> for VerifyReport {
    fn from(v: Verification) -> Self {
        Self {
            ok: v.ok,
            checked: v.checked,
            seals_checked: v.seals_checked,
            first_bad_position: v.first_bad_position,
            first_bad_stream: v.first_bad_stream,
            problem: v.problem,
        }
    }
}

async fn record(
    state: &AppState,
    auditor: &Authorized<Auditors>,
    what: &str,
    customer: Option<Uuid>,
) -> Result<(), ApiError> {
    state
        .audit_reads
        .record(auditor.user.user_id.0, what, customer, state.now())
        .await
        .map_err(|e| ApiError::Internal(e.into()))
}

/// Walks the whole log against its hash chain and the stored seals.
///
/// # Errors
/// 401/403 for anyone but an auditor.
#[utoipa::path(get, path = "/audit/verify", tag = "audit", security(("bearer" = [])),
    responses(
        (status = 200, description = "The report; `ok` is false when any stored event was altered, inserted or removed.", body = VerifyReport),
    ))]
pub async fn verify(
    State(state): State<AppState>,
    auditor: Authorized<Auditors>,
) -> Result<Json<VerifyReport>, ApiError> {
    record(&state, &auditor, "verified the event log", None).await?;
    let report = tamper_evidence::verify(&state.database, &[], |_| {})
        .await
        .map_err(anyhow::Error::from)?;
    Ok(Json(report.into()))
}

/// `?as_of=` for a customer's state.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AsOfQuery {
    /// The instant, RFC 3339 (e.g. `2026-11-01T00:00:00Z`); now when absent.
    pub(crate) as_of: Option<String>,
}

fn instant(raw: &str) -> Result<DateTime<Utc>, &'static str> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| "must be an instant in RFC 3339, e.g. 2026-11-01T00:00:00Z")
}

/// A customer's wallet, limits, expenses, savings and tickets as they stood at an instant,
/// rebuilt from their events up to then.
///
/// # Errors
/// 404 when no account had this id by then; 422 for a bad instant.
#[utoipa::path(get, path = "/audit/customers/{customer_id}/state", tag = "audit",
    security(("bearer" = [])),
    params(("customer_id" = Uuid, Path, description = "The customer's user id."), AsOfQuery),
    responses(
        (status = 200, description = "The state at that instant.", body = CustomerState),
        (status = 404, description = "No account had this id then.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The instant does not parse.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn customer_state(
    State(state): State<AppState>,
    auditor: Authorized<Auditors>,
    ApiPath(customer): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<AsOfQuery>,
) -> Result<Json<CustomerState>, ApiError> {
    let mut fields = Fields::default();
    let as_of = optional(&mut fields, "as_of", query.as_of.as_deref(), instant);
    let as_of = fields.finish(as_of)?.unwrap_or_else(|| state.now());
    record(
        &state,
        &auditor,
        &format!("state as of {}", as_of.to_rfc3339()),
        Some(customer),
    )
    .await?;
    let found = as_of::customer_state(&state, customer, as_of)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(found))
}

/// Filters of the event browser.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only this customer's streams (account, wallet, schedule, tickets).
    pub(crate) customer: Option<String>,
    /// Only this stream, e.g. `wallet-<id>`.
    pub(crate) stream: Option<String>,
    /// Only this event type, e.g. `LimitExceeded`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub(crate) event_type: Option<String>,
    /// Recorded at or after this instant (RFC 3339).
    pub(crate) from: Option<String>,
    /// Recorded before this instant (RFC 3339).
    pub(crate) to: Option<String>,
    /// The `next_after` of the page before.
    pub(crate) after: Option<String>,
    /// 1 to 500; 100 when absent.
    pub(crate) limit: Option<String>,
}

/// Parses the browser's filters, naming every one that fails.
pub(crate) fn event_filter(query: &EventsQuery) -> Result<EventFilter, ApiError> {
    let mut fields = Fields::default();
    let customer = optional(&mut fields, "customer", query.customer.as_deref(), |raw| {
        Uuid::parse_str(raw).map_err(|_| "must be a user id")
    });
    let stream = optional(&mut fields, "stream", query.stream.as_deref(), |raw| {
        infrastructure::event_store::StreamId::parse(raw).map(String::from)
    });
    let event_type = optional(&mut fields, "type", query.event_type.as_deref(), |raw| {
        if raw.len() <= 100 && raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(raw.to_owned())
        } else {
            Err("must be an event type such as LimitExceeded")
        }
    });
    let from = optional(&mut fields, "from", query.from.as_deref(), instant);
    let to = optional(&mut fields, "to", query.to.as_deref(), instant);
    let after = optional(&mut fields, "after", query.after.as_deref(), |raw| {
        raw.parse::<u64>().map_err(|_| "must be a log position")
    });
    let limit = optional(&mut fields, "limit", query.limit.as_deref(), |raw| {
        raw.parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or("must be a whole number from 1 to 500")
    });
    if let (Some(Some(from)), Some(Some(to))) = (from, to)
        && from >= to
    {
        fields.check::<(), _>("to", Err("must be after from"));
    }
    let ((((((customer, stream), event_type), from), to), after), limit) = fields.finish(
        customer
            .zip(stream)
            .zip(event_type)
            .zip(from)
            .zip(to)
            .zip(after)
            .zip(limit),
    )?;
    Ok(EventFilter {
        customer,
        stream,
        event_type,
        from,
        to,
        after: after.unwrap_or(0),
        limit: limit.unwrap_or(100),
    })
}

/// The event browser: the log, filtered, oldest first, a page at a time, each event with
/// its metadata (command, correlation, cause, actor).
///
/// # Errors
/// 422 naming bad filters; 400 for unknown ones.
#[utoipa::path(get, path = "/audit/events", tag = "audit", security(("bearer" = [])),
    params(EventsQuery),
    responses(
        (status = 200, description = "A page of events.", body = EventPage),
        (status = 422, description = "Filters that do not parse, each named.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn events(
    State(state): State<AppState>,
    auditor: Authorized<Auditors>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let filter = event_filter(&query)?;
    let customer = match (filter.customer, &filter.stream) {
        (Some(customer), _) => Some(customer),
        (None, Some(stream)) => browser::customer_of_stream(&state, stream).await?,
        (None, None) => None,
    };
    record(&state, &auditor, "browsed events", customer).await?;
    Ok(Json(browser::browse(&state, &filter).await?))
}

/// Why an event happened: its cause, the cause's cause, and the request at the root (who
/// asked, when, and everything that request wrote).
///
/// # Errors
/// 404 when no event has this id.
#[utoipa::path(get, path = "/audit/events/{event_id}/why", tag = "audit",
    security(("bearer" = [])),
    params(("event_id" = Uuid, Path, description = "The event's id.")),
    responses(
        (status = 200, description = "The chain of causes.", body = Why),
        (status = 404, description = "No such event.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn why(
    State(state): State<AppState>,
    auditor: Authorized<Auditors>,
    ApiPath(event_id): ApiPath<Uuid>,
) -> Result<Json<Why>, ApiError> {
    let why = browser::why(&state, event_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let customer = browser::customer_of_stream(&state, &why.event.stream).await?;
    record(
        &state,
        &auditor,
        &format!("why event {event_id} happened"),
        customer,
    )
    .await?;
    Ok(Json(why))
}

/// `?format=&customer=` of an export.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `csv` or `jsonl` (default).
    pub(crate) format: Option<String>,
    /// Only this customer's history; the whole log when absent.
    pub(crate) customer: Option<String>,
}

/// Streams a customer's history, or the whole log, as CSV or JSON Lines.
///
/// # Errors
/// 422 for a bad format or customer id.
#[utoipa::path(get, path = "/audit/export", tag = "audit", security(("bearer" = [])),
    params(ExportQuery),
    responses(
        (status = 200, description = "The events, oldest first, one per line: JSON Lines (application/x-ndjson) or CSV (text/csv).", content_type = "application/x-ndjson"),
        (status = 422, description = "Parameters that do not parse, each named.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn export(
    State(state): State<AppState>,
    auditor: Authorized<Auditors>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let mut fields = Fields::default();
    let format = optional(&mut fields, "format", query.format.as_deref(), |raw| {
        ExportFormat::parse(raw).ok_or("must be csv or jsonl")
    });
    let customer = optional(&mut fields, "customer", query.customer.as_deref(), |raw| {
        Uuid::parse_str(raw).map_err(|_| "must be a user id")
    });
    let (format, customer) = fields.finish(format.zip(customer))?;
    let format = format.unwrap_or(ExportFormat::JsonLines);
    record(
        &state,
        &auditor,
        &format!("exported events as {}", format.extension()),
        customer,
    )
    .await?;
    let export = Export::start(&state, customer, format).await?;
    let pages = futures_util::stream::try_unfold(export, |mut export| async move {
        let chunk = export.next_chunk().await.map_err(|e| {
            tracing::error!(error = format!("{e:#}"), "an export failed midway");
            std::io::Error::other("the export failed midway")
        })?;
        Ok::<_, std::io::Error>(chunk.map(|(bytes, _)| (bytes, export)))
    });
    let name = match customer {
        Some(customer) => format!("history-{customer}.{}", format.extension()),
        None => format!("event-log.{}", format.extension()),
    };
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(pages),
    )
        .into_response())
}

/// `?customer=&limit=` of the record of auditors' reads.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditReadsQuery {
    /// Only reads of this customer's history.
    pub(crate) customer: Option<String>,
    /// 1 to 500; 100 when absent.
    pub(crate) limit: Option<String>,
}

/// One recorded read of someone's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditReadItem {
    auditor_id: Uuid,
    what: String,
    customer_id: Option<Uuid>,
    read_at: DateTime<Utc>,
}

/// Who read whose history, when: the newest first.
///
/// # Errors
/// 422 for bad parameters; 401/403 for anyone but an admin.
#[utoipa::path(get, path = "/admin/audit-reads", tag = "admin", security(("bearer" = [])),
    params(AuditReadsQuery),
    responses(
        (status = 200, description = "The newest reads first.", body = [AuditReadItem]),
        (status = 422, description = "Parameters that do not parse, each named.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn audit_reads(
    State(state): State<AppState>,
    _admin: Authorized<Admins>,
    ApiQuery(query): ApiQuery<AuditReadsQuery>,
) -> Result<Json<Vec<AuditReadItem>>, ApiError> {
    let mut fields = Fields::default();
    let customer = optional(&mut fields, "customer", query.customer.as_deref(), |raw| {
        Uuid::parse_str(raw).map_err(|_| "must be a user id")
    });
    let limit = optional(&mut fields, "limit", query.limit.as_deref(), |raw| {
        raw.parse::<u32>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or("must be a whole number from 1 to 500")
    });
    let (customer, limit) = fields.finish(customer.zip(limit))?;
    let reads = state
        .audit_reads
        .recent(customer, limit.unwrap_or(100))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(
        reads
            .into_iter()
            .map(|r| AuditReadItem {
                auditor_id: r.auditor_id,
                what: r.what,
                customer_id: r.customer_id,
                read_at: r.read_at,
            })
            .collect(),
    ))
}
