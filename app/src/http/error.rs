//! The one error type of the HTTP layer, answered as `application/problem+json` (RFC 9457).
//!
//! Each variant's doc names its status. Server-side failures are logged with their whole
//! cause chain and answered with an opaque detail: a client never sees internals.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One offending field of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field's name in the request.
    pub field: String,
    /// What is wrong with it.
    pub detail: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            detail: detail.into(),
        }
    }
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not the JSON the route takes.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401: no valid credentials (sent with `WWW-Authenticate: Bearer`).
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// 403: signed in, but the role may not do this.
    #[error("forbidden")]
    Forbidden,
    /// 404: no such resource (also for other people's resources).
    #[error("not found")]
    NotFound,
    /// 404: no route has this path; the detail names it.
    #[error("no route: {0}")]
    NoRoute(String),
    /// 405: the route exists but not with this method; the detail says so.
    #[error("method not allowed: {0}")]
    MethodNotAllowed(String),
    /// 409: conflicts with the current state, e.g. an email already registered.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 429: too many attempts; `Retry-After` says when to try again.
    #[error("too many attempts")]
    TooManyRequests(std::time::Duration),
    /// 422: well-formed but invalid fields, each named.
    #[error("invalid fields")]
    Validation(Vec<FieldError>),
    /// 422: the domain refused the command; the detail says why.
    #[error("rejected: {0}")]
    Rejected(String),
    /// 413: the body is larger than the route takes; the detail says the limit.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// 503: the service cannot serve right now; the detail says why.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// 503: too busy to take this request now; `Retry-After` says when to try again, and
    /// nothing of the request was done (or, after a timeout, see the detail).
    #[error("overloaded: {0}")]
    Overloaded(String),
    /// 500: anything else; logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The problem document (RFC 9457), the body of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    #[schema(example = "/problems/validation")]
    pub kind: String,
    /// Short, human-readable summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
    /// The offending fields, for validation problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl ApiError {
    /// The HTTP status this error is answered with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound | Self::NoRoute(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Validation(_) | Self::Rejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) | Self::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad-request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::NoRoute(_) => "no-route",
            Self::MethodNotAllowed(_) => "method-not-allowed",
            Self::Conflict(_) => "conflict",
            Self::Validation(_) => "validation",
            Self::TooManyRequests(_) => "too-many-requests",
            Self::Rejected(_) => "rejected",
            Self::PayloadTooLarge(_) => "payload-too-large",
            Self::Unavailable(_) => "unavailable",
            Self::Overloaded(_) => "overloaded",
            Self::Internal(_) => "internal",
        }
    }
}

impl ApiError {
    /// What to tell the user: the detail and the offending fields. A server-side failure is
    /// logged here with its cause chain and told opaquely.
    pub(crate) fn explain(self) -> (String, Vec<FieldError>) {
        match self {
            Self::BadRequest(reason)
            | Self::NoRoute(reason)
            | Self::MethodNotAllowed(reason)
            | Self::Conflict(reason)
            | Self::Rejected(reason)
            | Self::PayloadTooLarge(reason)
            | Self::Unavailable(reason)
            | Self::Overloaded(reason) => (reason, Vec::new()),
            Self::Unauthorized(reason) => (reason.to_owned(), Vec::new()),
            Self::Forbidden => ("Your role may not do this.".to_owned(), Vec::new()),
            Self::NotFound => ("There is nothing at this address.".to_owned(), Vec::new()),
            Self::Validation(errors) => {
                ("Some fields are invalid; see `errors`.".to_owned(), errors)
            }
            Self::TooManyRequests(_) => (
                "Too many failed attempts; wait as long as Retry-After says, then try again."
                    .to_owned(),
                Vec::new(),
            ),
            Self::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "request failed");
                (
                    "Something went wrong on our side; it has been logged.".to_owned(),
                    Vec::new(),
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let kind = self.kind();
        let unauthorized = matches!(self, Self::Unauthorized(_));
        let retry_after = match &self {
            Self::TooManyRequests(wait) => {
                Some(wait.as_secs().max(1) + u64::from(wait.subsec_nanos() > 0))
            }
            // Load passes in well under a second; a client told to wait one spreads out.
            Self::Overloaded(_) => Some(1),
            _ => None,
        };
        let (detail, errors) = self.explain();
        let problem = Problem {
            kind: format!("/problems/{kind}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            errors,
        };
        let mut response = (status, axum::Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if unauthorized {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
