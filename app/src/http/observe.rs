//! What every request carries and leaves behind: a request id (taken from `x-request-id`
//! when the caller or a proxy sent a sane one, made up otherwise), echoed in the answer,
//! set on the request's tracing span and, through a task-local, in the metadata of every
//! event its commands write; and its latency per route for `/metrics`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use infrastructure::metrics::Metrics;

/// The request id header, in and out.
pub const REQUEST_ID: &str = "x-request-id";

tokio::task_local! {
    static CURRENT_REQUEST: String;
}

/// The id of the request this task is serving, if it serves one.
#[must_use]
pub fn current_request_id() -> Option<String> {
    CURRENT_REQUEST.try_with(Clone::clone).ok()
}

/// `work` still known as this request's (its id and its span) when it runs on a task of
/// its own.
pub fn within_this_request<F: Future>(work: F) -> impl Future<Output = F::Output> {
    let id = current_request_id();
    let work = work.in_current_span();
    async move {
        match id {
            Some(id) => CURRENT_REQUEST.scope(id, work).await,
            None => work.await,
        }
    }
}

/// A caller's id is kept when it is short and plain; anything else is replaced, so a log
/// line cannot be forged or bloated through the header.
fn acceptable(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// Gives the request its id, serves it inside a span and the task-local, and echoes the id.
pub async fn request_id(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| acceptable(id))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let mut response = CURRENT_REQUEST
        .scope(id.clone(), next.run(request).instrument(span))
        .await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Times a routed request and counts it under its route's pattern.
pub async fn record_latency(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // Only routed requests come through here (a route layer), so each has its pattern.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    metrics.request(
        method.as_str(),
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_short_ids_are_kept() {
        assert!(acceptable("0190c2a4-7b1e-7c3a-9d52-1f2e3d4c5b6a"));
        assert!(acceptable("lb:abc_123.x"));
        assert!(!acceptable(""));
        assert!(!acceptable("a\nforged log line"));
        assert!(!acceptable(&"x".repeat(65)));
    }

    #[tokio::test]
    async fn the_task_local_holds_the_id_only_inside_its_request() {
        assert_eq!(current_request_id(), None);
        let inside = CURRENT_REQUEST
            .scope("r-1".to_owned(), async { current_request_id() })
            .await;
        assert_eq!(inside.as_deref(), Some("r-1"));
    }
}
