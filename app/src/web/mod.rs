//! The server-rendered pages (tera templates embedded in the binary). Every core flow works
//! without JavaScript: plain forms that post and redirect. Signed-in browsers carry a
//! server-side session (tower-sessions on the product's database, see
//! `infrastructure::web_sessions`): the cookie is HttpOnly, SameSite=Lax and, when
//! `BASE_URL` is https, Secure. Form posts from another origin are refused.

mod account_pages;
mod admin_pages;
mod assets;
mod assistant_pages;
mod auditor_pages;
mod charts;
mod csrf;
mod customer_pages;
mod forms;
mod page;
mod session;
mod templates;
mod ticket_pages;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::cookie::time::Duration;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::state::AppState;
pub use templates::PageTemplates;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "expense_tracker_session";

/// A signed-in browser unused for this long is signed out.
const IDLE: Duration = Duration::hours(2);

/// What every answer of the product carries: scripts, styles and images from this site
/// only (nothing inline), no framing, no sniffing, and no full URLs leaked to other sites.
/// Layers to put once around the whole product (see `http::router`).
pub fn security_headers() -> (
    SetResponseHeaderLayer<HeaderValue>,
    SetResponseHeaderLayer<HeaderValue>,
    SetResponseHeaderLayer<HeaderValue>,
    SetResponseHeaderLayer<HeaderValue>,
) {
    const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
        connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";
    (
        SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(POLICY),
        ),
        SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ),
        SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
    )
}

/// The pages, with their session and CSRF layers, and their assets.
pub fn pages(state: &AppState, templates: Arc<PageTemplates>) -> Router<AppState> {
    let sessions = SessionManagerLayer::new(state.web_sessions.clone())
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.base_url.starts_with("https://"))
        .with_expiry(Expiry::OnInactivity(IDLE))
        // Every answer to a signed-in browser moves the idle deadline forward.
        .with_always_save(true);
    Router::new()
        .route("/", get(account_pages::home))
        .route(
            "/login",
            get(account_pages::login_form).post(account_pages::login),
        )
        .route(
            "/signup",
            get(account_pages::signup_form).post(account_pages::signup),
        )
        .route("/logout", post(account_pages::logout))
        .route(
            "/forgot-password",
            get(account_pages::forgot_password_form).post(account_pages::forgot_password),
        )
        .route(
            "/reset-password",
            get(account_pages::reset_password_form).post(account_pages::reset_password),
        )
        .merge(customer_routes())
        .merge(staff_routes())
        .route("/audit", get(auditor_pages::home))
        .route("/audit/state", get(auditor_pages::state_as_of))
        .route("/audit/events", get(auditor_pages::events))
        .route("/audit/events/{id}/why", get(auditor_pages::why))
        .route("/audit/export", get(auditor_pages::export))
        .route("/assistant", post(assistant_pages::ask))
        .layer(axum::middleware::from_fn(csrf::guard))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_foreign_posts,
        ))
        .layer(sessions)
        .layer(Extension(templates))
        // The receipt upload is the largest form; the CSRF guard holds it to this too.
        .layer(axum::extract::DefaultBodyLimit::max(csrf::MAX_FORM_BYTES))
        .merge(assets::routes())
}

fn customer_routes() -> Router<AppState> {
    use customer_pages as c;
    Router::new()
        .route("/dashboard", get(c::dashboard))
        .route("/expenses", get(c::expenses).post(c::record_expense))
        .route("/expenses.csv", get(c::expenses_csv))
        .route("/expenses/{id}/void", post(c::void_expense))
        .route("/top-up", get(c::top_up_form).post(c::top_up))
        .route("/limits", get(c::limits).post(c::set_limit))
        .route("/limits/remove", post(c::remove_limit))
        .route("/savings", get(c::savings).post(c::create_goal))
        .route("/savings/{id}/{direction}", post(c::move_savings))
        .route("/reminders", get(c::reminders).post(c::set_reminder))
        .route("/reminders/{id}/cancel", post(c::cancel_reminder))
        .route("/recurring-payments", post(c::schedule_payment))
        .route("/recurring-payments/{id}/cancel", post(c::cancel_payment))
        .route("/tickets", get(ticket_pages::mine))
        .route("/receipts/{id}", get(c::receipt))
}

fn staff_routes() -> Router<AppState> {
    Router::new()
        .route("/tickets/{id}", get(ticket_pages::detail))
        .route("/tickets/{id}/{action}", post(ticket_pages::act))
        .route("/agent/queue", get(ticket_pages::queue))
        .route("/admin", get(admin_pages::people))
        .route("/admin/{kind}", post(admin_pages::create))
        .route("/admin/people/{id}/{change}", post(admin_pages::activation))
        .route("/admin/read-models", get(admin_pages::read_models))
        .route(
            "/admin/read-models/{name}/rebuild",
            post(admin_pages::rebuild),
        )
        .route("/admin/mail", get(admin_pages::mail))
        .route("/admin/mail/{id}/retry", post(admin_pages::retry_mail))
}

/// The scheme, host and port of a URL, as an `Origin` header writes them.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

/// Refuses a form post whose `Origin` is neither `BASE_URL`'s nor the host it was sent to:
/// SameSite=Lax already keeps the cookie off cross-site posts, and this also stops a
/// foreign page from posting the sign-up and sign-in forms themselves.
async fn refuse_foreign_posts(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == Method::POST
        && let Some(origin) = request.headers().get(header::ORIGIN)
    {
        let origin = origin.to_str().unwrap_or_default();
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .unwrap_or_default();
        let same_host = origin_of(origin)
            .split_once("://")
            .is_some_and(|(_, authority)| authority == host);
        if origin != origin_of(&state.base_url) && !same_host {
            return (
                StatusCode::FORBIDDEN,
                "This form may only be sent from this site's own pages.",
            )
                .into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(origin_of("https://x.example/a/b"), "https://x.example");
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(origin_of("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
    }
}
