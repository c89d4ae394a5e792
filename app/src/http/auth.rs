//! Accounts over the JSON API: sign-up, login, logout, and who am I.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use domain::user::{EMAIL_SCOPE, Email, NewPassword, Registrar, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, FieldError, Problem};
use super::extract::{ApiJson, CurrentUser};
use crate::accounts::{CreateAccountError, NewAccount, SignInError, create_account, sign_in};
use crate::commands::CommandError;
use crate::password_reset::{self, ResetError};
use crate::state::AppState;

/// `POST /api/v1/auth/register`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    name: String,
    email: String,
    mobile: String,
    password: String,
}

/// The new account's id.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    user_id: Uuid,
}

/// Turns a command's failure into the answer: a refusal is the caller's 4xx, a failure
/// our 500.
pub fn command_error<R: std::fmt::Display>(error: CommandError<R>) -> ApiError {
    match error {
        CommandError::Rejected(rejection) => ApiError::Rejected(rejection.to_string()),
        CommandError::ValueTaken { scope } if scope == EMAIL_SCOPE => {
            ApiError::Conflict("An account with this email address already exists.".into())
        }
        CommandError::ValueTaken { scope } => {
            ApiError::Conflict(format!("This {scope} is already taken."))
        }
        CommandError::Conflict(_) => {
            ApiError::Conflict("It changed at the same moment; try again.".into())
        }
        CommandError::Failed(error) => ApiError::Internal(error),
    }
}

/// Signs a customer up. 201 with the new id; 409 when the email (in any case) is taken;
/// 422 naming each invalid field. Nothing is stored from a refused request.
///
/// # Errors
/// As above, or 500.
#[utoipa::path(post, path = "/auth/register", tag = "accounts",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "Signed up; the wallet is opened in the default currency.", body = Registered),
        (status = 409, description = "The email address is taken.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Fields that break the rules, each named.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let fields = NewAccount {
        name: &body.name,
        email: &body.email,
        mobile: Some(&body.mobile),
        password: &body.password,
        ..NewAccount::default()
    };
    let user_id = create_account(
        &state,
        Role::Customer,
        &fields,
        Registrar::SelfSignUp,
        "anonymous",
    )
    .await?;
    // The wallet opens with the account; should this fail, the first use opens it instead.
    if let Err(error) = super::wallet::wallet_of(&state, user_id).await {
        tracing::warn!(%user_id, ?error, "the new customer's wallet will open on first use");
    }
    Ok((StatusCode::CREATED, Json(Registered { user_id: user_id.0 })))
}

impl From<CreateAccountError> for ApiError {
    fn from(error: CreateAccountError) -> Self {
        match error {
            CreateAccountError::Invalid(fields) => Self::Validation(
                fields
                    .into_iter()
                    .map(|f| FieldError::new(f.field, f.problem.to_string()))
                    .collect(),
            ),
            CreateAccountError::Command(error) => command_error(error),
        }
    }
}

/// `POST /api/v1/auth/login`: `email` may also be an agent's username.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    password: String,
}

/// A bearer token for the API.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoggedIn {
    token: String,
    user_id: Uuid,
    #[schema(value_type = String, example = "customer")]
    role: Role,
    expires_at: chrono::DateTime<chrono::Utc>,
}

const WRONG_CREDENTIALS: &str = "Wrong email or password.";

/// Signs in. A wrong password, an unknown email and a closed account all get the same 401
/// after the same work, so the answer tells nobody which accounts exist. Too many failures
/// for one account or from one address get 429 with `Retry-After`.
///
/// # Errors
/// 401 as above, or 500.
#[utoipa::path(post, path = "/auth/login", tag = "accounts",
    request_body = LoginBody,
    responses(
        (status = 200, description = "A bearer token.", body = LoggedIn),
        (status = 401, description = "Wrong email, username or password.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failures; see Retry-After.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<LoggedIn>, ApiError> {
    let account = sign_in(&state, &body.email, &body.password, peer.ip())
        .await
        .map_err(|error| match error {
            SignInError::Throttled(wait) => ApiError::TooManyRequests(wait),
            SignInError::WrongCredentials => ApiError::Unauthorized(WRONG_CREDENTIALS),
            SignInError::Failed(error) => ApiError::Internal(error),
        })?;
    let issued = state
        .tokens
        .issue(account.id.0, state.now())
        .await
        .map_err(anyhow::Error::from)?;
    Ok(Json(LoggedIn {
        token: issued.token,
        user_id: account.id.0,
        role: account.role,
        expires_at: issued.expires_at,
    }))
}

/// Ends the session of the token used. 204.
///
/// # Errors
/// 401 without a valid token, or 500.
#[utoipa::path(post, path = "/auth/logout", tag = "accounts",
    security(("bearer" = [])),
    responses((status = 204, description = "The token no longer works.")))]
pub async fn logout(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<StatusCode, ApiError> {
    state
        .tokens
        .revoke(&user.token, state.now())
        .await
        .map_err(anyhow::Error::from)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who the token belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    user_id: Uuid,
    name: String,
    email: String,
    #[schema(value_type = String, example = "customer")]
    role: Role,
}

/// `GET /api/v1/me`.
///
/// # Errors
/// 401 without a valid token.
#[utoipa::path(get, path = "/me", tag = "accounts",
    security(("bearer" = [])),
    responses((status = 200, description = "The signed-in account.", body = Me)))]
pub async fn me(user: CurrentUser) -> Result<Json<Me>, ApiError> {
    let profile = user.account.profile.ok_or(ApiError::Unauthorized(
        "This account can no longer sign in.",
    ))?;
    Ok(Json(Me {
        user_id: user.user_id.0,
        name: profile.name.to_string(),
        email: profile.email.to_string(),
        role: user.role,
    }))
}

/// `POST /api/v1/auth/password-reset`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequestBody {
    email: String,
}

/// Mails a one-time link to choose a new password, if the address belongs to an account
/// that can sign in. Always 202, so that nobody learns which addresses have accounts; a
/// malformed address is a 422 (that says nothing about accounts).
///
/// # Errors
/// 422 for a malformed address, or 500.
#[utoipa::path(post, path = "/auth/password-reset", tag = "accounts",
    request_body = ResetRequestBody,
    responses(
        (status = 202, description = "A link is mailed if the address has an account."),
        (status = 422, description = "A malformed address.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn request_password_reset(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetRequestBody>,
) -> Result<StatusCode, ApiError> {
    let email = Email::parse(&body.email)
        .map_err(|e| ApiError::Validation(vec![FieldError::new("email", e.to_string())]))?;
    password_reset::request(&state, &email).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /api/v1/auth/password-reset/confirm`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirmBody {
    token: String,
    new_password: String,
}

/// Sets a new password with a reset link's token: the token is used up, every token and
/// session of the account ends, every other reset link dies, and failed logins are
/// forgotten. 204.
///
/// # Errors
/// 422 for a password that breaks the rules, 400 for a token that is unknown, expired or
/// used, or 500.
#[utoipa::path(post, path = "/auth/password-reset/confirm", tag = "accounts",
    request_body = ResetConfirmBody,
    responses(
        (status = 204, description = "The password is changed; every session ended."),
        (status = 422, description = "The new password breaks the rules.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn confirm_password_reset(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ResetConfirmBody>,
) -> Result<StatusCode, ApiError> {
    let password = NewPassword::parse(&body.new_password)
        .map_err(|e| ApiError::Validation(vec![FieldError::new("new_password", e.to_string())]))?;
    match password_reset::confirm(&state, &body.token, &password).await {
        Ok(()) => {}
        Err(ResetError::InvalidLink) => {
            return Err(ApiError::BadRequest(
                "This reset link is invalid, expired or already used.".into(),
            ));
        }
        Err(ResetError::Refused(error)) => return Err(command_error(error)),
        Err(ResetError::Failed(error)) => return Err(ApiError::Internal(error)),
    }
    Ok(StatusCode::NO_CONTENT)
}
