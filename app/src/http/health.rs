//! Liveness and readiness, for load balancers and orchestrators.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`: the process is alive and serving HTTP. Never touches the database, so
/// a slow database does not get a healthy instance restarted.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "alive" }))
}

/// `GET /readyz`: the database answers and every migration this binary knows is applied.
///
/// # Errors
/// 503 problem+json naming what is missing.
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
