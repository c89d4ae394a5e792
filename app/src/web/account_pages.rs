//! Sign-in, sign-up, sign-out and the start page.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use domain::user::{Email, NewPassword, Registrar, Role, UserId};
use infrastructure::web_sessions::USER_ID_KEY;
use serde::Deserialize;
use tower_sessions::Session;

use super::page::View;
use super::session::signed_in_account;
use crate::accounts::{CreateAccountError, NewAccount, SignInError, create_account, sign_in};
use crate::commands::CommandError;
use crate::password_reset::{self, ResetError};
use crate::state::AppState;

fn internal(templates: &View, error: &anyhow::Error) -> Response {
    templates.internal(error)
}

/// Where to go after signing in: only a path on this site, never another site.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next) if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') => {
            next
        }
        _ => "/",
    }
}

/// Starts a signed-in session: a fresh session id (so that an id planted before sign-in is
/// worth nothing) holding the user.
async fn start_session(session: &Session, user: UserId) -> anyhow::Result<()> {
    session.cycle_id().await?;
    session.insert(USER_ID_KEY, user.0).await?;
    super::csrf::renew(session).await?;
    Ok(())
}

/// `GET /`: a visitor goes to the sign-in page, a signed-in user to their role's home.
pub async fn home(State(state): State<AppState>, templates: View, session: Session) -> Response {
    match signed_in_account(&state, &session).await {
        Ok(None) => Redirect::to("/login").into_response(),
        Ok(Some(account)) => Redirect::to(role_home(account.role)).into_response(),
        Err(error) => internal(&templates, &error),
    }
}

/// Where each role starts.
pub fn role_home(role: Role) -> &'static str {
    match role {
        Role::Customer => "/dashboard",
        Role::Agent => "/agent/queue",
        Role::Admin => "/admin",
        Role::Auditor => "/audit",
    }
}

/// `GET /login?next=...`.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn login_page(
    templates: &View,
    status: StatusCode,
    email: &str,
    next: &str,
    message: &str,
) -> Response {
    let mut context = tera::Context::new();
    context.insert("signed_in", &false);
    context.insert("email", email);
    context.insert("next", next);
    context.insert("message", message);
    templates.page(status, "login.html", &context)
}

/// The sign-in form; a browser already signed in goes on at once.
pub async fn login_form(
    State(state): State<AppState>,
    templates: View,
    session: Session,
    Query(query): Query<NextQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref());
    match signed_in_account(&state, &session).await {
        Ok(Some(_)) => Redirect::to(next).into_response(),
        Ok(None) => login_page(&templates, StatusCode::OK, "", next, ""),
        Err(error) => internal(&templates, &error),
    }
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// Signs in with the same rules as the API (throttling, one answer for every failure) and
/// starts a session.
pub async fn login(
    State(state): State<AppState>,
    templates: View,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    match sign_in(&state, &form.email, &form.password, peer.ip()).await {
        Ok(account) => match start_session(&session, account.id).await {
            Ok(()) => Redirect::to(next).into_response(),
            Err(error) => internal(&templates, &error),
        },
        Err(SignInError::WrongCredentials) => login_page(
            &templates,
            StatusCode::UNAUTHORIZED,
            &form.email,
            next,
            "Wrong email or password.",
        ),
        Err(SignInError::Throttled(wait)) => {
            let minutes = wait.as_secs().div_ceil(60).max(1);
            let mut page = login_page(
                &templates,
                StatusCode::TOO_MANY_REQUESTS,
                &form.email,
                next,
                &format!("Too many failed attempts. Try again in {minutes} minute(s)."),
            );
            if let Ok(seconds) = wait.as_secs().max(1).to_string().parse() {
                page.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, seconds);
            }
            page
        }
        Err(SignInError::Failed(error)) => internal(&templates, &error),
    }
}

/// The sign-up form's fields.
#[derive(Debug, Default, Deserialize, serde::Serialize)]
pub struct SignupForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    mobile: String,
    #[serde(default, skip_serializing)]
    password: String,
}

fn signup_page(
    templates: &View,
    status: StatusCode,
    form: &SignupForm,
    errors: &HashMap<&str, String>,
    message: &str,
) -> Response {
    let mut context = tera::Context::new();
    context.insert("signed_in", &false);
    // The password is never sent back.
    context.insert("form", form);
    context.insert("errors", errors);
    context.insert("message", message);
    templates.page(status, "signup.html", &context)
}

/// The sign-up form.
pub async fn signup_form(templates: View) -> Response {
    signup_page(
        &templates,
        StatusCode::OK,
        &SignupForm::default(),
        &HashMap::new(),
        "",
    )
}

/// Creates a customer account with the same rules as the API, opens the wallet, and signs
/// the new customer in. A refused form comes back with each problem beside its field.
pub async fn signup(
    State(state): State<AppState>,
    templates: View,
    session: Session,
    Form(form): Form<SignupForm>,
) -> Response {
    let fields = NewAccount {
        name: &form.name,
        email: &form.email,
        mobile: Some(&form.mobile),
        password: &form.password,
        ..NewAccount::default()
    };
    let created = create_account(
        &state,
        Role::Customer,
        &fields,
        Registrar::SelfSignUp,
        "anonymous",
    )
    .await;
    let user_id = match created {
        Ok(user_id) => user_id,
        Err(CreateAccountError::Invalid(invalid)) => {
            let errors = invalid
                .into_iter()
                .map(|f| (f.field, f.problem.to_string()))
                .collect();
            return signup_page(
                &templates,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                &errors,
                "Please correct the fields below.",
            );
        }
        Err(CreateAccountError::Command(CommandError::ValueTaken { .. })) => {
            let errors = HashMap::from([(
                "email",
                "An account with this email address exists already.".to_owned(),
            )]);
            return signup_page(
                &templates,
                StatusCode::CONFLICT,
                &form,
                &errors,
                "Please correct the fields below.",
            );
        }
        Err(CreateAccountError::Command(error)) => {
            return internal(&templates, &anyhow::anyhow!("{error}"));
        }
    };
    if let Err(error) = crate::http::wallet_of(&state, user_id).await {
        tracing::warn!(%user_id, ?error, "the new customer's wallet will open on first use");
    }
    match start_session(&session, user_id).await {
        Ok(()) => Redirect::to("/").into_response(),
        Err(error) => internal(&templates, &error),
    }
}

/// Ends the browser's session (its row is deleted, so the cookie is worth nothing even if
/// kept) and goes to the sign-in page.
pub async fn logout(templates: View, session: Session) -> Response {
    match session.flush().await {
        Ok(()) => Redirect::to("/login").into_response(),
        Err(error) => internal(&templates, &anyhow::Error::from(error)),
    }
}

fn forgot_page(
    templates: &View,
    status: StatusCode,
    email: &str,
    sent: bool,
    error: &str,
) -> Response {
    let mut context = tera::Context::new();
    context.insert("signed_in", &false);
    context.insert("email", email);
    context.insert("sent", &sent);
    context.insert("error", error);
    templates.page(status, "forgot_password.html", &context)
}

/// `GET /forgot-password`.
pub async fn forgot_password_form(templates: View) -> Response {
    forgot_page(&templates, StatusCode::OK, "", false, "")
}

/// The forgotten-password form's field.
#[derive(Debug, Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// Mails a reset link if the address has an account; the page says the same either way.
pub async fn forgot_password(
    State(state): State<AppState>,
    templates: View,
    Form(form): Form<ForgotForm>,
) -> Response {
    let email = match Email::parse(&form.email) {
        Ok(email) => email,
        Err(error) => {
            return forgot_page(
                &templates,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form.email,
                false,
                &error.to_string(),
            );
        }
    };
    match password_reset::request(&state, &email).await {
        Ok(()) => forgot_page(&templates, StatusCode::OK, email.as_str(), true, ""),
        Err(error) => internal(&templates, &error),
    }
}

fn reset_page(
    templates: &View,
    status: StatusCode,
    token: &str,
    message: &str,
    error: &str,
) -> Response {
    let mut context = tera::Context::new();
    context.insert("signed_in", &false);
    context.insert("token", token);
    context.insert("message", message);
    context.insert("error", error);
    templates.page(status, "reset_password.html", &context)
}

/// `GET /reset-password?token=...`: the link in the mail.
#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// The new-password form of a reset link. The token is checked when the form is sent, so
/// merely opening the link (or a mail scanner fetching it) uses nothing up.
pub async fn reset_password_form(templates: View, Query(query): Query<TokenQuery>) -> Response {
    if query.token.trim().is_empty() {
        return reset_page(
            &templates,
            StatusCode::BAD_REQUEST,
            "",
            "This page needs the link from the reset mail.",
            "",
        );
    }
    reset_page(&templates, StatusCode::OK, query.token.trim(), "", "")
}

/// The new-password form's fields.
#[derive(Debug, Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
}

/// Sets the new password; every session and token of the account ends, and the sign-in
/// page follows.
pub async fn reset_password(
    State(state): State<AppState>,
    templates: View,
    Form(form): Form<ResetForm>,
) -> Response {
    let password = match NewPassword::parse(&form.new_password) {
        Ok(password) => password,
        Err(error) => {
            return reset_page(
                &templates,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form.token,
                "",
                &error.to_string(),
            );
        }
    };
    match password_reset::confirm(&state, &form.token, &password).await {
        Ok(()) => login_page(
            &templates,
            StatusCode::OK,
            "",
            "/",
            "Your password is changed. Sign in with the new one.",
        ),
        Err(ResetError::InvalidLink) => reset_page(
            &templates,
            StatusCode::BAD_REQUEST,
            "",
            "This reset link is invalid, expired or already used.",
            "",
        ),
        Err(ResetError::Refused(error)) => reset_page(
            &templates,
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
            &error.to_string(),
            "",
        ),
        Err(ResetError::Failed(error)) => internal(&templates, &error),
    }
}
