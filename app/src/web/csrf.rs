//! CSRF tokens: every form carries the session's token in a `csrf_token` field, and a form
//! post whose token is missing or wrong is refused before any handler runs. The token is
//! kept in the server-side session (a synchronizer token), so it is worth nothing to another
//! browser; a sign-in gives the session a new one.
//!
//! The check reads the whole body (url-encoded, or multipart for the receipt upload) once,
//! then hands the same bytes on to the handler.

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequest, FromRequestParts, Multipart, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;
use uuid::Uuid;

/// The form field that carries the token.
pub const FIELD: &str = "csrf_token";

/// Where the session keeps it.
const KEY: &str = "csrf_token";

/// The largest form accepted: a 5 MB receipt and its fields, with room for the multipart
/// framing.
pub const MAX_FORM_BYTES: usize = 5 * 1024 * 1024 + 64 * 1024;

/// The session's token, for the forms of the page being rendered.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

fn fresh() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// Gives the session a new token, for a sign-in: a token seen before it is worth nothing
/// after.
///
/// # Errors
/// When the session store fails.
pub async fn renew(session: &Session) -> anyhow::Result<()> {
    session.insert(KEY, fresh()).await?;
    Ok(())
}

async fn token_of(session: &Session) -> anyhow::Result<String> {
    if let Some(token) = session.get::<String>(KEY).await? {
        return Ok(token);
    }
    let token = fresh();
    session.insert(KEY, &token).await?;
    Ok(token)
}

/// Equal without telling, by its timing, how much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The token a form sent, from its url-encoded or multipart body.
async fn sent_token(content_type: &str, body: &axum::body::Bytes) -> Option<String> {
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
        return pairs.into_iter().find(|(k, _)| k == FIELD).map(|(_, v)| v);
    }
    if content_type.starts_with("multipart/form-data") {
        let request = Request::builder()
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body.clone()))
            .ok()?;
        let mut form = Multipart::from_request(request, &()).await.ok()?;
        while let Ok(Some(field)) = form.next_field().await {
            if field.name() == Some(FIELD) {
                return field.text().await.ok();
            }
        }
    }
    None
}

fn refused(detail: &'static str) -> Response {
    (StatusCode::FORBIDDEN, detail).into_response()
}

/// Puts the session's token where pages find it, and refuses a post without it.
pub async fn guard(request: Request, next: Next) -> Response {
    let Some(session) = request.extensions().get::<Session>().cloned() else {
        tracing::error!("the CSRF guard runs outside the session layer");
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side.",
        )
            .into_response();
    };
    let token = match token_of(&session).await {
        Ok(token) => token,
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                "reading the CSRF token failed"
            );
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side.",
            )
                .into_response();
        }
    };
    let (mut parts, body) = request.into_parts();
    let body = if parts.method == Method::POST {
        let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                "This form is larger than 5 MB.",
            )
                .into_response();
        };
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        match sent_token(content_type, &bytes).await {
            Some(sent) if same(&sent, &token) => Body::from(bytes),
            Some(_) => {
                return refused(
                    "This form has expired or was not sent from this site's pages; reload the page and send it again.",
                );
            }
            None => return refused("This form is missing its csrf_token field."),
        }
    } else {
        body
    };
    parts.extensions.insert(CsrfToken(token));
    next.run(Request::from_parts(parts, body)).await
}

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Self>().cloned().ok_or_else(|| {
            tracing::error!("a page runs outside the CSRF guard");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side.",
            )
                .into_response()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        let token = fresh();
        assert_eq!(token.len(), 64);
        assert!(same(&token, &token.clone()));
        assert!(!same(&token, &token[..63]));
        assert!(!same(&token, &fresh()));
    }

    #[tokio::test]
    async fn the_token_is_found_in_either_kind_of_form() {
        let body = axum::body::Bytes::from("a=1&csrf_token=xyz&b=2");
        assert_eq!(
            sent_token("application/x-www-form-urlencoded", &body).await,
            Some("xyz".into())
        );
        let multipart = "--B\r\nContent-Disposition: form-data; name=\"amount\"\r\n\r\n5\r\n--B\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nabc\r\n--B--\r\n";
        assert_eq!(
            sent_token("multipart/form-data; boundary=B", &multipart.into()).await,
            Some("abc".into())
        );
        assert_eq!(sent_token("text/plain", &body).await, None);
    }
}
