//! `Idempotency-Key` on POST requests: the first request with a key is handled and its
//! answer remembered; a retry with the same key and the same request gets the same status
//! and body back (marked `Idempotent-Replayed: true`) and nothing is done again. The same
//! key with another request is a 422; while the first is still being handled, a 409. Keys
//! belong to the signed-in user (or to anonymous callers together), for 24 hours.
//! Server-side failures are not remembered, so that a retry can succeed.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use infrastructure::idempotency::{KeyState, StoredAnswer};
use sha2::{Digest, Sha256};

use super::error::ApiError;
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

    let failed = |e: infrastructure::idempotency::IdempotencyError| {
        ApiError::Internal(e.into()).into_response()
    };
    match state
        .idempotency
        .claim(&scope, &key, &request_hash, state.now())
        .await
        .map_err(failed)?
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
        KeyState::Claimed => {
            let response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            if response.status().is_server_error() {
                state
                    .idempotency
                    .release(&scope, &key)
                    .await
                    .map_err(failed)?;
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
                .map_err(failed)?;
            Ok(Response::from_parts(parts, Body::from(body)))
        }
    }
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
