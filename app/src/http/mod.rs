//! The HTTP surface: the router and its handlers. Handlers are thin: they parse, call the
//! application, and translate the answer; they never touch SQL.

mod admin;
mod auth;
pub mod error;
mod extract;
mod health;
pub mod idempotency;
mod wallet;

use axum::Router;
use axum::routing::{get, post, put};
use tower_http::trace::TraceLayer;

use crate::state::AppState;
use error::ApiError;

/// Every route of the product.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/password-reset", post(auth::request_password_reset))
        .route(
            "/auth/password-reset/confirm",
            post(auth::confirm_password_reset),
        )
        .route("/me", get(auth::me))
        .route("/wallet", get(wallet::show))
        .route("/wallet/top-ups", post(wallet::top_up))
        .route(
            "/expenses",
            get(wallet::list_expenses).post(wallet::record_expense),
        )
        .route("/dashboard", get(wallet::dashboard))
        .route("/expenses/{expense_id}/void", post(wallet::void_expense))
        .route(
            "/limits",
            put(wallet::set_limit).delete(wallet::remove_limit),
        )
        .route("/savings-goals", post(wallet::create_goal))
        .route(
            "/savings-goals/{goal_id}/contributions",
            post(wallet::contribute),
        )
        .route(
            "/savings-goals/{goal_id}/withdrawals",
            post(wallet::withdraw),
        )
        .route("/admin/agents", post(admin::create_agent))
        .route("/admin/auditors", post(admin::create_auditor))
        .route("/admin/users/{user_id}/deactivate", post(admin::deactivate))
        .route("/admin/users/{user_id}/reactivate", post(admin::reactivate))
        .route("/admin/users/{user_id}/erase", post(admin::erase))
        .route("/admin/mail/parked", get(admin::parked_mail))
        .route("/admin/mail/{message_id}/retry", post(admin::retry_mail));
    let api = api.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        idempotency::remember_answers,
    ));
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(|| async { ApiError::NotFound })
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
