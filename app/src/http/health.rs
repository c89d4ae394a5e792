//! Liveness and readiness, for load balancers and orchestrators.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::error::{ApiError, Problem};
use crate::state::AppState;

/// `GET /healthz`: the process is alive and serving HTTP. Never touches the database, so
/// a slow database does not get a healthy instance restarted.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive.")))]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "alive" }))
}

/// `GET /readyz`: the database answers and every migration this binary knows is applied.
///
/// # Errors
/// 503 problem+json naming what is missing.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "The database answers and is migrated."),
        (status = 503, description = "What is missing.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state
        .database
        .check_ready()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(Json(
        json!({ "status": "ready", "database": state.database.backend_name() }),
    ))
}

/// `GET /metrics`: Prometheus text format. The log's head; for each read model its
/// position, how many events it is behind, and whether it stopped on an event; and which
/// background workers this instance runs now.
///
/// # Errors
/// 500 when the database cannot be read.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format.", content_type = "text/plain")))]
pub async fn metrics(
    State(state): State<AppState>,
) -> Result<([(axum::http::header::HeaderName, &'static str); 1], String), ApiError> {
    let head = state.events.head().await.map_err(anyhow::Error::from)?.0;
    let statuses = projections::runner::statuses(&state.database).await?;
    let mut text = String::new();
    let mut line = |s: String| {
        text.push_str(&s);
        text.push('\n');
    };
    line("# HELP expense_tracker_event_log_head Position of the newest event in the log.".into());
    line("# TYPE expense_tracker_event_log_head gauge".into());
    line(format!("expense_tracker_event_log_head {head}"));
    for (metric, help) in [
        (
            "projection_position",
            "Position of the last event a read model applied.",
        ),
        (
            "projection_lag_events",
            "Events a read model has still to apply.",
        ),
        (
            "projection_failed",
            "1 when a read model stopped on an event it cannot apply.",
        ),
    ] {
        line(format!("# HELP expense_tracker_{metric} {help}"));
        line(format!("# TYPE expense_tracker_{metric} gauge"));
        for status in &statuses {
            let value = match metric {
                "projection_position" => status.position.0,
                "projection_lag_events" => head.saturating_sub(status.position.0),
                _ => u64::from(status.failure.is_some()),
            };
            line(format!(
                "expense_tracker_{metric}{{projection=\"{}\"}} {value}",
                status.name
            ));
        }
    }
    let depth = state.outbox.depth().await.map_err(anyhow::Error::from)?;
    line("# HELP expense_tracker_outbox_depth Mail waiting to be sent (parked mail aside).".into());
    line("# TYPE expense_tracker_outbox_depth gauge".into());
    line(format!("expense_tracker_outbox_depth {depth}"));
    let parked = state
        .outbox
        .parked_count()
        .await
        .map_err(anyhow::Error::from)?;
    line("# HELP expense_tracker_mail_parked Mail given up on after its retries, until an admin retries it.".into());
    line("# TYPE expense_tracker_mail_parked gauge".into());
    line(format!("expense_tracker_mail_parked {parked}"));
    let leases = state.leases.snapshot();
    if !leases.is_empty() {
        line("# HELP expense_tracker_worker_leader 1 when this instance runs the worker now (it holds its lease).".into());
        line("# TYPE expense_tracker_worker_leader gauge".into());
        for (worker, leading) in leases {
            line(format!(
                "expense_tracker_worker_leader{{worker=\"{worker}\"}} {}",
                u8::from(leading)
            ));
        }
    }
    state.metrics.render(&mut text);
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}
