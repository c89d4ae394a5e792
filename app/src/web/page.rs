//! What a page handler starts from: [`View`] (the templates and the session's CSRF token,
//! for any visitor) and [`Page`] (a signed-in user whose role the page admits, with the
//! common layout's context). Forms post, then redirect with a one-time notice (post,
//! redirect, get); a refused form is shown again with the user's values and each problem
//! beside its field, and nothing is written.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use axum::Extension;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use domain::user::{Role, UserId};
use tower_sessions::Session;

use super::csrf::CsrfToken;
use super::forms::Values;
use super::session::signed_in_account;
use super::templates::PageTemplates;
use crate::http::error::ApiError;
use crate::http::extract::{AllowedRoles, Authorized, CurrentUser};
use crate::state::AppState;

/// Where the one-time notice of the next page waits.
const NOTICE_KEY: &str = "notice";

/// Where the assistant's last answer waits for the page it sends the user back to.
pub const ASSISTANT_KEY: &str = "assistant";

/// A question to the assistant and its answer, shown once in the panel.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Exchange {
    /// What was asked.
    pub question: String,
    /// What it answered.
    pub reply: crate::assistant::Reply,
}

/// The templates and the CSRF token every form of the page carries.
#[derive(Debug, Clone)]
pub struct View {
    templates: Arc<PageTemplates>,
    csrf: String,
}

impl View {
    /// `name` rendered with `context` and the CSRF token.
    pub fn page(&self, status: StatusCode, name: &str, context: &tera::Context) -> Response {
        let mut context = context.clone();
        context.insert("csrf_token", &self.csrf);
        self.templates.page(status, name, &context)
    }

    /// A page that says what went wrong.
    pub fn problem(&self, status: StatusCode, detail: &str, signed_in: bool) -> Response {
        let mut context = tera::Context::new();
        context.insert("title", status.canonical_reason().unwrap_or("Error"));
        context.insert("detail", detail);
        context.insert("signed_in", &signed_in);
        // The menu needs a role; a page that failed before knowing it shows none.
        context.insert("role", "");
        context.insert("name", "");
        self.page(status, "problem.html", &context)
    }

    /// A failure on our side: logged, and told without its details.
    pub fn internal(&self, error: &anyhow::Error) -> Response {
        tracing::error!(error = format!("{error:#}"), "a page request failed");
        self.problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side; it has been logged.",
            false,
        )
    }
}

fn outside_the_layers() -> Response {
    tracing::error!("a page runs outside the template or session layers");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong on our side.",
    )
        .into_response()
}

impl<S: Send + Sync> FromRequestParts<S> for View {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Extension(templates) =
            Extension::<Arc<PageTemplates>>::from_request_parts(parts, state)
                .await
                .map_err(|_| outside_the_layers())?;
        let CsrfToken(csrf) = CsrfToken::from_request_parts(parts, state).await?;
        Ok(Self { templates, csrf })
    }
}

/// A form that was refused: shown again with what the user typed and why.
#[derive(Debug, serde::Serialize)]
pub struct Refused {
    /// Which form of the page it was.
    pub form: &'static str,
    /// 422, 409...
    #[serde(skip)]
    pub status: StatusCode,
    /// What to say above the form.
    pub message: String,
    /// What the user sent, by field.
    pub values: HashMap<String, String>,
    /// What is wrong, by field.
    pub errors: HashMap<String, String>,
}

/// A signed-in user whose role the page admits.
#[derive(Debug)]
pub struct Page<R> {
    /// Templates and CSRF token.
    pub view: View,
    /// Who, as the API's handlers take them.
    pub user: Authorized<R>,
    session: Session,
    notice: Option<String>,
    exchange: Option<Exchange>,
    path: String,
}

impl<R> Page<R> {
    /// The signed-in user's id.
    pub fn user_id(&self) -> UserId {
        self.user.user.user_id
    }

    /// The signed-in user's role.
    pub fn role(&self) -> Role {
        self.user.user.role
    }

    /// The layout's context: who is signed in, their role's menu, and the notice left by
    /// the form sent before.
    pub fn context(&self, title: &str) -> tera::Context {
        let mut context = tera::Context::new();
        context.insert("signed_in", &true);
        context.insert("title", title);
        let name = self
            .user
            .user
            .account
            .profile
            .as_ref()
            .map_or_else(String::new, |p| p.name.as_str().to_owned());
        context.insert("name", &name);
        context.insert("role", &self.user.user.role);
        context.insert("notice", &self.notice);
        context.insert("path", &self.path);
        if let Some(exchange) = &self.exchange {
            context.insert("assistant_open", &true);
            context.insert("assistant_question", &exchange.question);
            context.insert("assistant_reply", &exchange.reply);
        }
        context
    }

    /// The session, for what a page keeps in it.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// `name` rendered with `context`, answered 200.
    pub fn render(&self, name: &str, context: &tera::Context) -> Response {
        self.view.page(StatusCode::OK, name, context)
    }

    /// `name` rendered with `context` and, when a form was refused, that form's values and
    /// problems, answered with the refusal's status.
    pub fn render_with(
        &self,
        name: &str,
        mut context: tera::Context,
        refused: Option<Refused>,
    ) -> Response {
        let status = refused.as_ref().map_or(StatusCode::OK, |r| r.status);
        context.insert("refused", &refused);
        self.view.page(status, name, &context)
    }

    /// After a form was taken: on to `to`, whose page shows `notice` once.
    pub async fn done(&self, to: &str, notice: &str) -> Response {
        if let Err(error) = self.session.insert(NOTICE_KEY, notice).await {
            tracing::warn!(%error, "a notice was lost");
        }
        Redirect::to(to).into_response()
    }

    /// How to answer a command the API refused: a form shown again (`Ok`), or a page of its
    /// own for a missing resource, a role that may not, or a failure on our side (`Err`).
    ///
    /// # Errors
    /// The page to answer with when the form cannot be shown again.
    #[allow(clippy::result_large_err)] // answered at once, never carried
    pub fn refused(
        &self,
        form: &'static str,
        values: Values,
        error: ApiError,
    ) -> Result<Refused, Response> {
        let status = error.status();
        if matches!(
            error,
            ApiError::NotFound
                | ApiError::NoRoute(_)
                | ApiError::Forbidden
                | ApiError::Unauthorized(_)
                | ApiError::MethodNotAllowed(_)
                | ApiError::Internal(_)
        ) {
            return Err(self.failed(error));
        }
        let validation = matches!(error, ApiError::Validation(_));
        // A password is never sent back to the browser.
        let mut values = values;
        values.retain(|name, _| !name.contains("password") && name != super::csrf::FIELD);
        let (detail, errors) = error.explain();
        Ok(Refused {
            form,
            status,
            message: if validation {
                "Please correct the fields below.".to_owned()
            } else {
                detail
            },
            values,
            errors: errors.into_iter().map(|e| (e.field, e.detail)).collect(),
        })
    }

    /// A list read with the user's filters: the list, or, when the API refused the
    /// filters, an empty one with that refusal shown (unless a form's refusal is shown
    /// already).
    ///
    /// # Errors
    /// The page to answer with when the read failed for another reason.
    #[allow(clippy::result_large_err)] // answered at once, never carried
    pub fn listed<T: Default>(
        &self,
        listed: Result<T, ApiError>,
        filters: &Values,
        refused: &mut Option<Refused>,
    ) -> Result<T, Response> {
        match listed {
            Ok(list) => Ok(list),
            Err(error) => {
                let bad_filters = self.refused("filters", filters.clone(), error)?;
                refused.get_or_insert(bad_filters);
                Ok(T::default())
            }
        }
    }

    /// Answers a form: on to `to` with `notice` when it was taken; when refused, the page
    /// `again` renders with the user's values and the problems.
    pub async fn settle<T, Again>(
        &self,
        result: Result<T, ApiError>,
        form: &'static str,
        values: Values,
        (to, notice): (&str, &str),
        again: impl FnOnce(Refused) -> Again,
    ) -> Response
    where
        Again: Future<Output = Response>,
    {
        match result {
            Ok(_) => self.done(to, notice).await,
            Err(error) => match self.refused(form, values, error) {
                Ok(refused) => again(refused).await,
                Err(page) => page,
            },
        }
    }

    /// A request the API refused, as a page of its own (a 404, a 403, a failure...).
    pub fn failed(&self, error: ApiError) -> Response {
        let status = error.status();
        let (detail, _) = error.explain();
        let mut context = self.context(status.canonical_reason().unwrap_or("Error"));
        context.insert("detail", &detail);
        self.view.page(status, "problem.html", &context)
    }

    /// A failure on our side, as a page.
    pub fn internal(&self, error: impl Into<anyhow::Error>) -> Response {
        self.view.internal(&error.into())
    }
}

impl<R: AllowedRoles + Send + Sync> FromRequestParts<AppState> for Page<R> {
    /// To the sign-in page (and back) when nobody is signed in; a page saying so when the
    /// role may not see this one.
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let view = View::from_request_parts(parts, state).await?;
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let account = match signed_in_account(state, &session).await {
            Ok(Some(account)) => account,
            Ok(None) => {
                let back = parts
                    .uri
                    .path_and_query()
                    .map_or("/", axum::http::uri::PathAndQuery::as_str);
                let back: String = serde_urlencoded::to_string([("next", back)])
                    .unwrap_or_else(|_| "next=/".to_owned());
                return Err(Redirect::to(&format!("/login?{back}")).into_response());
            }
            Err(error) => return Err(view.internal(&error)),
        };
        let current = CurrentUser {
            user_id: account.id,
            role: account.role,
            account,
            token: String::new(),
        };
        let user = Authorized::<R>::admit(current).map_err(|_| {
            view.problem(
                StatusCode::FORBIDDEN,
                "Your role may not see this page.",
                true,
            )
        })?;
        // Every page shows read models, a refused form too: after every write its reader
        // was told is done (ADR 0026).
        state.read_models.show_acknowledged_writes().await;
        // A notice and an answer are shown once, by the next page that is looked at.
        let (notice, exchange) = if parts.method == Method::GET {
            let notice = session
                .remove::<String>(NOTICE_KEY)
                .await
                .map_err(|error| view.internal(&error.into()))?;
            let exchange = session
                .remove::<Exchange>(ASSISTANT_KEY)
                .await
                .map_err(|error| view.internal(&error.into()))?;
            (notice, exchange)
        } else {
            (None, None)
        };
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", axum::http::uri::PathAndQuery::as_str)
            .to_owned();
        Ok(Self {
            view,
            user,
            session,
            notice,
            exchange,
            path,
        })
    }
}
