//! The assistant's panel on every signed-in page: a question is posted, answered from the
//! user's read models, and shown on the page it was asked from; a proposed expense is
//! recorded only when its button is pressed, which posts it to the expense form's route.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};

use super::account_pages::{role_home, safe_next};
use super::forms::Values;
use super::page::{ASSISTANT_KEY, Exchange, Page};
use crate::assistant;
use crate::http::assistant::checked;
use crate::http::extract::Everyone;
use crate::state::AppState;

/// `POST /assistant`: `message`, and `back`, the page to show the answer on.
pub async fn ask(
    State(state): State<AppState>,
    page: Page<Everyone>,
    Form(values): Form<Values>,
) -> Response {
    let back = match values.get("back").map(String::as_str) {
        Some(back) if back.starts_with('/') => safe_next(Some(back)).to_owned(),
        _ => role_home(page.role()).to_owned(),
    };
    let question = values.get("message").map_or("", |m| m.trim()).to_owned();
    let reply = match checked(&question) {
        Ok(message) => match assistant::reply(&state, page.user_id().0, page.role(), message).await
        {
            Ok(reply) => reply,
            Err(error) => return page.internal(error),
        },
        Err(_) => assistant::Reply {
            text: "Type a question of up to 500 characters.".into(),
            links: Vec::new(),
            suggestions: Vec::new(),
            proposed_expense: None,
        },
    };
    let exchange = Exchange {
        question: question.chars().take(500).collect(),
        reply,
    };
    if let Err(error) = page.session().insert(ASSISTANT_KEY, exchange).await {
        return page.internal(error);
    }
    Redirect::to(&back).into_response()
}
