//! The server-rendered pages (tera templates embedded in the binary). Every core flow works
//! without JavaScript: plain forms that post and redirect. Signed-in browsers carry a
//! server-side session (tower-sessions on the product's database, see
//! `infrastructure::web_sessions`): the cookie is HttpOnly, SameSite=Lax and, when
//! `BASE_URL` is https, Secure. Form posts from another origin are refused.

mod account_pages;
mod session;
mod templates;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use tower_sessions::cookie::SameSite;
use tower_sessions::cookie::time::Duration;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::state::AppState;
pub use templates::PageTemplates;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "expense_tracker_session";

/// A signed-in browser unused for this long is signed out.
const IDLE: Duration = Duration::hours(2);

/// The pages, with their session layer.
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
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_foreign_posts,
        ))
        .layer(sessions)
        .layer(Extension(templates))
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
