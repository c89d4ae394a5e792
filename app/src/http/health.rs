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
