//! The one error type of the HTTP layer, answered as `application/problem+json` (RFC 9457).
//!
//! Each variant's doc names its status. Server-side failures are logged with their whole
//! cause chain and answered with an opaque detail: a client never sees internals.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404: no such route or resource.
    #[error("not found")]
    NotFound,
    /// 503: the service cannot serve right now; the detail says why.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// 500: anything else; logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The problem document.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, human-readable summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::NotFound => "not-found",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            Self::NotFound => "There is nothing at this address.".to_owned(),
            Self::Unavailable(reason) => reason.clone(),
            Self::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "request failed");
                "Something went wrong on our side; it has been logged.".to_owned()
            }
        };
        let problem = Problem {
            kind: format!("/problems/{}", self.kind()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
        };
        let mut response = (status, axum::Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}
