//! `Idempotency-Key` on POST requests: the first request with a key is handled and its
//! answer remembered; a retry with the same key and the same request gets the same status
//! and body back (marked `Idempotent-Replayed: true`) and nothing is done again. The same
//! key with another request is a 422; while the first is still being handled, a 409. Keys
//! belong to the signed-in user (or to anonymous callers together), for 24 hours.
//! Server-side failures are not remembered, so that a retry can succeed.
//!
//! Inside a claimed request, ids are repeatable ([`crate::repeatable_ids`]): if its instance
//! dies after its events were stored but before its answer was, the retry that takes the
//! claim over makes the same command ids, and the event store does not apply them twice.
//!
//! The claimed request is handled on a task of its own, so it runs to its end and its
//! answer is stored even when its caller stops waiting (the request timeout, or a client
//! that hangs up): a retry then gets that answer instead of finding the key claimed by
//! nobody and, once the claim is abandoned, doing the work a second time.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use infrastructure::idempotency::{Claim, KeyState, StoredAnswer};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::repeatable_ids::RepeatableIds;
use crate::state::AppState;

/// The request header.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on an answer that is a replay of the first one.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Bodies larger than this are refused before any work (413): the largest any route takes,
/// a receipt with its multipart framing. Each route's own limit applies after.
pub const MAX_BODY: usize = super::MAX_UPLOAD_BODY;

/// The middleware; see the module documentation.
pub async fn remember_answers(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST || !request.headers().contains_key(&IDEMPOTENCY_KEY) {
        return next.run(request).await;
    }
    match handle(&state, request, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn handle(state: &AppState, request: Request, next: Next) -> Result<Response, Response> {
    let key = request
        .headers()
        .get(&IDEMPOTENCY_KEY)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|key| {
            !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::BadRequest("Idempotency-Key must be 1 to 255 printable characters.".into())
                .into_response()
        })?;
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|token| token.trim().to_owned());
    let scope = scope_of(state, token.as_deref())
        .await
        .map_err(IntoResponse::into_response)?;
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError::PayloadTooLarge(format!(
            "A request with an Idempotency-Key takes at most {MAX_BODY} bytes."
        ))
        .into_response()
    })?;
    let mut digest = Sha256::new();
    digest.update(parts.method.as_str().as_bytes());
    digest.update(b" ");
    digest.update(parts.uri.path().as_bytes());
    digest.update(b"\n");
    digest.update(&bytes);
    let request_hash = digest.finalize();

    match state
        .idempotency
        .claim(&scope, &key, &request_hash, state.now())
        .await
        .map_err(key_store_failed)?
    {
        KeyState::Answered(answer) => Ok(replay(answer)),
        KeyState::InProgress => Err(ApiError::Conflict(
            "A request with this Idempotency-Key is still being handled; retry in a moment.".into(),
        )
        .into_response()),
        KeyState::Mismatch => Err(ApiError::Rejected(
            "This Idempotency-Key was already used for a different request.".into(),
        )
        .into_response()),
        KeyState::Claimed(claim) => {
            let request = Request::from_parts(parts, Body::from(bytes));
            let handled = super::observe::within_this_request(run_and_remember(
                state.clone(),
                scope,
                key,
                claim,
                request,
                next,
            ));
            match tokio::spawn(handled).await {
                Ok(answer) => answer,
                Err(error) => Err(ApiError::Internal(anyhow::anyhow!(
                    "handling a request: {error}"
                ))
                .into_response()),
            }
        }
    }
}

/// Handles a request that claimed `key`, with ids that a retry would make again, and
/// stores its answer (or gives the claim up after a server-side failure).
async fn run_and_remember(
    state: AppState,
    scope: String,
    key: String,
    claim: Claim,
    request: Request,
    next: Next,
) -> Result<Response, Response> {
    let ids = RepeatableIds::for_key(&scope, &key, claim.first_claimed_at, claim.taken_over);
    let response = ids.scope(next.run(request)).await;
    if response.status().is_server_error() {
        state
            .idempotency
            .release(&scope, &key)
            .await
            .map_err(key_store_failed)?;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX).await.map_err(|e| {
        ApiError::Internal(anyhow::anyhow!("reading an answer: {e}")).into_response()
    })?;
    let answer = StoredAnswer {
        status: parts.status.as_u16(),
        content_type: parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body.to_vec(),
    };
    state
        .idempotency
        .answer(&scope, &key, &answer)
        .await
        .map_err(key_store_failed)?;
    Ok(Response::from_parts(parts, Body::from(body)))
}

fn key_store_failed(error: infrastructure::idempotency::IdempotencyError) -> Response {
    ApiError::Internal(error.into()).into_response()
}

/// Keys belong to the signed-in user; without a valid token, to anonymous callers.
async fn scope_of(state: &AppState, token: Option<&str>) -> Result<String, ApiError> {
    let Some(token) = token else {
        return Ok("anonymous".into());
    };
    let user = state
        .tokens
        .authenticate(token, state.now())
        .await
        .map_err(anyhow::Error::from)?;
    Ok(user.map_or_else(|| "anonymous".into(), |id| format!("user:{id}")))
}

fn replay(answer: StoredAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, answer.body).into_response();
    let headers = response.headers_mut();
    if let Some(content_type) = answer
        .content_type
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        headers.insert(CONTENT_TYPE, content_type);
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::Router;
    use axum::routing::post;
    use tokio::sync::Notify;

    use super::*;
    use crate::http::limits::{RequestLimits, shed_load};

    /// Serves a route whose work waits for `release`, behind the request timeout and this
    /// middleware as the product layers them.
    async fn serve_slow_work(release: Arc<Notify>) -> (String, tempfile::TempDir) {
        let data = tempfile::tempdir().expect("a data directory");
        let (state, _) = crate::test_support::fresh(&data, |_| {}).await;
        let limits = RequestLimits::new(8, Duration::from_millis(200), Arc::clone(&state.metrics));
        let router = Router::new()
            .route(
                "/work",
                post(move || async move {
                    release.notified().await;
                    (StatusCode::CREATED, "done")
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                state,
                remember_answers,
            ))
            .layer(axum::middleware::from_fn_with_state(limits, shed_load));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let address = format!("http://{}", listener.local_addr().expect("bound"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        (address, data)
    }

    #[tokio::test]
    async fn a_request_cut_off_by_the_timeout_still_stores_its_answer_for_the_retry() {
        let release = Arc::new(Notify::new());
        let (address, _data) = serve_slow_work(Arc::clone(&release)).await;
        let client = reqwest::Client::new();
        let send = || {
            client
                .post(format!("{address}/work"))
                .header("Idempotency-Key", "k-1")
                .send()
        };
        let first = send().await.expect("answered");
        assert_eq!(first.status(), StatusCode::SERVICE_UNAVAILABLE);

        // The work goes on after its caller was answered; while it does, the key is busy.
        let busy = send().await.expect("answered");
        assert_eq!(busy.status(), StatusCode::CONFLICT);
        release.notify_one();
        for _ in 0..200 {
            let retry = send().await.expect("answered");
            if retry.status() == StatusCode::CREATED {
                assert!(retry.headers().contains_key(&REPLAYED), "the stored answer");
                assert_eq!(retry.text().await.expect("text"), "done");
                return;
            }
            assert_eq!(retry.status(), StatusCode::CONFLICT);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the answer of the cut-off request was never stored");
    }
}
