//! The HTTP surface: the router and its handlers. Handlers are thin: they parse, call the
//! application, and translate the answer; they never touch SQL.

pub(crate) mod admin;
pub(crate) mod assistant;
pub(crate) mod audit;
pub(crate) mod auth;
pub mod error;
pub(crate) mod extract;
pub(crate) mod fields;
mod health;
pub mod idempotency;
pub mod limits;
pub mod observe;
pub mod openapi;
pub(crate) mod receipts;
pub(crate) mod schedule;
pub(crate) mod tickets;
pub(crate) mod wallet;

use std::sync::Arc;

use axum::http::{Method, Uri};
use axum::{Extension, Router};
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;
use crate::web::{self, PageTemplates};
use error::ApiError;
pub(crate) use wallet::{dashboard_of, wallet_of};

/// The JSON API under `/api/v1`. Routes are only ever added with `routes!`, which takes
/// each handler's `#[utoipa::path]`: that is what keeps the document complete.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::request_password_reset))
        .routes(routes!(auth::confirm_password_reset))
        .routes(routes!(auth::me))
        .routes(routes!(wallet::show))
        .routes(routes!(wallet::top_up))
        .routes(routes!(wallet::list_expenses, wallet::record_expense))
        .routes(routes!(wallet::dashboard))
        .routes(routes!(wallet::void_expense))
        .routes(routes!(receipts::download))
        .routes(routes!(wallet::set_limit, wallet::remove_limit))
        .routes(routes!(wallet::create_goal))
        .routes(routes!(wallet::contribute))
        .routes(routes!(wallet::withdraw))
        .routes(routes!(schedule::list_reminders, schedule::set_reminder))
        .routes(routes!(schedule::cancel_reminder))
        .routes(routes!(schedule::list_payments, schedule::schedule_payment))
        .routes(routes!(schedule::cancel_payment))
        .routes(routes!(admin::create_agent))
        .routes(routes!(admin::create_auditor))
        .routes(routes!(admin::deactivate))
        .routes(routes!(admin::reactivate))
        .routes(routes!(admin::erase))
        .routes(routes!(admin::directory))
        .routes(routes!(tickets::queue))
        .routes(routes!(tickets::mine))
        .routes(routes!(tickets::detail))
        .routes(routes!(tickets::comment))
        .routes(routes!(tickets::resolve))
        .routes(routes!(tickets::reopen))
        .routes(routes!(tickets::assign))
        .routes(routes!(admin::parked_mail))
        .routes(routes!(admin::retry_mail))
        .routes(routes!(admin::projections))
        .routes(routes!(admin::rebuild_projection))
        .routes(routes!(assistant::ask))
        .routes(routes!(audit::verify))
        .routes(routes!(audit::customer_state))
        .routes(routes!(audit::events))
        .routes(routes!(audit::why))
        .routes(routes!(audit::export))
        .routes(routes!(audit::audit_reads))
}

/// The largest JSON body any route takes: far above any command's fields (whose texts have
/// limits of their own), far below what would cost memory to refuse.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// The largest body of all: a receipt of 5 MB and its multipart framing.
pub const MAX_UPLOAD_BODY: usize = infrastructure::receipts::MAX_RECEIPT_BYTES + 64 * 1024;

/// The routes that take files, each with the larger body limit.
fn upload_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(receipts::upload))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD_BODY))
}

/// Every route of the product, and the OpenAPI document describing them.
fn documented_routes(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let api = api_routes()
        .layer(axum::extract::DefaultBodyLimit::max(MAX_JSON_BODY))
        .merge(upload_routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::remember_answers,
        ));
    let (router, document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest("/api/v1", api)
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(openapi::document))
        .split_for_parts();
    (router, openapi::complete(document))
}

/// What a worker instance answers: liveness, readiness and metrics, nothing else.
pub fn operations_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", axum::routing::get(health::healthz))
        .route("/readyz", axum::routing::get(health::readyz))
        .route("/metrics", axum::routing::get(health::metrics))
        .fallback(|method: Method, uri: Uri| async move {
            ApiError::NoRoute(format!(
                "No route answers {method} {} on a worker instance (ROLE=worker).",
                uri.path()
            ))
        })
        // The counters alone: a request clones this layer's state.
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.metrics),
            observe::record_latency,
        ))
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn(observe::request_id))
        .with_state(state)
}

/// Every route of the product: the JSON API, its document, and the pages.
///
/// What applies to every request (security headers, request id, tracing, load shedding)
/// wraps the finished router once. Layered on the router itself (`Router::layer`), each
/// would wrap every route in a boxed service of its own, and a request would clone and box
/// through all of them: a tenth of the request path's CPU under load (docs/BENCHMARKS.md).
/// Only what needs the matched route (its latency, by pattern) stays a route layer.
pub fn router(state: AppState, templates: Arc<PageTemplates>) -> Router {
    let (router, document) = documented_routes(&state);
    let routes = router
        .merge(web::pages(&state, templates))
        .fallback(|method: Method, uri: Uri| async move {
            ApiError::NoRoute(format!("No route answers {method} {}.", uri.path()))
        })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            ApiError::MethodNotAllowed(format!("{} does not take {method}.", uri.path()))
        })
        // The counters alone: a request clones this layer's state.
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.metrics),
            observe::record_latency,
        ))
        .with_state(state.clone());
    let whole = ServiceBuilder::new()
        .layer(web::security_headers())
        .layer(axum::middleware::from_fn(observe::request_id))
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn_with_state(
            state.limits.clone(),
            limits::shed_load,
        ))
        .layer(Extension(Arc::new(document)))
        .service(routes);
    Router::new().fallback_service(whole)
}
