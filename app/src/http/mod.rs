//! The HTTP surface: the router and its handlers. Handlers are thin: they parse, call the
//! application, and translate the answer; they never touch SQL.

pub mod error;
mod health;

use axum::Router;
use axum::routing::get;
use tower_http::trace::TraceLayer;

use crate::state::AppState;
use error::ApiError;

/// Every route of the product.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(|| async { ApiError::NotFound })
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
