//! `POST /api/v1/assistant`: the assistant for API clients.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::{ApiError, FieldError, Problem};
use super::extract::{ApiJson, CurrentUser};
use crate::assistant::{self, Reply};
use crate::state::AppState;

/// The longest message taken.
pub const MAX_MESSAGE: usize = 500;

/// A message to the assistant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssistantBody {
    /// What the user asks or tells, 1 to 500 characters.
    pub(crate) message: String,
}

/// The message, checked.
///
/// # Errors
/// 422 naming `message` when empty or too long.
pub fn checked(message: &str) -> Result<&str, ApiError> {
    let message = message.trim();
    if message.is_empty() || message.chars().count() > MAX_MESSAGE {
        return Err(ApiError::Validation(vec![FieldError::new(
            "message",
            "must be 1 to 500 characters",
        )]));
    }
    Ok(message)
}

/// Answers from the caller's own read models. A quick entry ("spent 250 on groceries
/// yesterday") comes back as `proposed_expense`, recorded only if the client then posts it
/// to `/api/v1/expenses`; anything not understood gets suggestions.
///
/// # Errors
/// 422 for an empty or too long message; 401 when not signed in.
#[utoipa::path(post, path = "/assistant", tag = "assistant", security(("bearer" = [])),
    request_body = AssistantBody,
    responses(
        (status = 200, description = "The answer.", body = Reply),
        (status = 422, description = "An empty or too long message.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn ask(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<AssistantBody>,
) -> Result<Json<Reply>, ApiError> {
    let message = checked(&body.message)?;
    Ok(Json(
        assistant::reply(&state, user.user_id.0, user.role, message).await?,
    ))
}
