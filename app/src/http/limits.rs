//! Overload protection: at most so many requests are worked on at once, and none for longer
//! than the request timeout. A request beyond the cap, or one that runs out of time, is
//! answered 503 with `Retry-After` instead of queueing without bound (each waiting request
//! holds a connection, its body and a task).
//!
//! Liveness and metrics are never turned away: an orchestrator must not restart a server
//! because it is busy, and an operator needs the figures most when it is.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use infrastructure::metrics::Metrics;
use tokio::sync::Semaphore;

use super::error::ApiError;

/// How much work the server takes on at once; the middleware's own state, so that a
/// request costs two reference counts here rather than a clone of the whole `AppState`.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    in_flight: Arc<Semaphore>,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

impl RequestLimits {
    /// At most `max_in_flight` requests at once (at least one), each given `timeout`;
    /// refusals are counted in `metrics`.
    #[must_use]
    pub fn new(max_in_flight: usize, timeout: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
            timeout,
            metrics,
        }
    }
}

/// Paths that answer whatever the load.
const ALWAYS_ANSWERED: [&str; 2] = ["/healthz", "/metrics"];

/// The middleware; see the module documentation.
pub async fn shed_load(
    State(limits): State<RequestLimits>,
    request: Request,
    next: Next,
) -> Response {
    if ALWAYS_ANSWERED.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let Ok(_permit) = limits.in_flight.try_acquire() else {
        limits.metrics.request_shed();
        return ApiError::Overloaded(
            "The server is working on as many requests as it takes; nothing of this one was \
             done. Try again after Retry-After."
                .into(),
        )
        .into_response();
    };
    match tokio::time::timeout(limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            limits.metrics.request_timed_out();
            ApiError::Overloaded(format!(
                "The request took longer than {} s and its answer was not waited for. Sent \
                 with an Idempotency-Key, it runs to its end: send it again with the same key \
                 for its answer. Without one, a command may still have been recorded.",
                limits.timeout.as_secs_f64()
            ))
            .into_response()
        }
    }
}
