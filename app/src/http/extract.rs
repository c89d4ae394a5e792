//! Extractors: JSON bodies whose rejections are problem documents, and the signed-in user,
//! checked in one place so that handlers never check credentials themselves.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use domain::user::{Account, Role, User, UserId};

use super::error::ApiError;
use crate::state::AppState;

/// A JSON body; malformed JSON, a wrong content type, wrong types, and missing or unknown
/// fields all become a 400 problem saying what is wrong.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge(format!(
                    "A JSON body takes at most {} bytes.",
                    super::MAX_JSON_BODY
                )))
            }
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

/// A path parameter; one that does not parse (e.g. an id that is not a UUID) is a 400
/// problem, never a stray plain-text answer.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    axum::extract::Path<T>:
        FromRequestParts<S, Rejection = axum::extract::rejection::PathRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

/// A query string; unknown parameters and values of the wrong type are a 400 problem.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    axum::extract::Query<T>:
        FromRequestParts<S, Rejection = axum::extract::rejection::QueryRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}

/// The signed-in user behind a valid bearer token, whose account is active.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// Their id.
    pub user_id: UserId,
    /// Their role.
    pub role: Role,
    /// Their account as its stream tells it.
    pub account: Account,
    /// The token they used, for logout; empty for a browser signed in with a session.
    pub token: String,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        const MISSING: &str = "Sign in and send the token as `Authorization: Bearer <token>`.";
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(ApiError::Unauthorized(MISSING))?;
        let expired =
            ApiError::Unauthorized("The token is unknown, expired or revoked; sign in again.");
        let user_id = state
            .tokens
            .authenticate(token, state.now())
            .await
            .map_err(anyhow::Error::from)?
            .ok_or(expired)?;
        let account = match state
            .commands
            .peek::<User, _>(user_id, active_account)
            .await?
        {
            Some(account) => Some(account),
            // Refused only on the account as stored, not as this instance last saw it.
            None => active_account(&state.commands.load::<User>(user_id).await?.0),
        };
        let account = account.ok_or(ApiError::Unauthorized(
            "This account can no longer sign in.",
        ))?;
        if parts.method == Method::GET || parts.method == Method::HEAD {
            // A read shows every write its reader was told is done (ADR 0026).
            state.read_models.show_acknowledged_writes().await;
        }
        Ok(Self {
            user_id: account.id,
            role: account.role,
            account,
            token: token.to_owned(),
        })
    }
}

/// The account, if it may sign in.
fn active_account(user: &User) -> Option<Account> {
    match user {
        User::Registered(account) if account.active => Some(account.clone()),
        _ => None,
    }
}

/// Which roles a route admits.
pub trait AllowedRoles {
    /// The roles.
    const ROLES: &'static [Role];
}

/// Routes for customers (their own wallet).
#[derive(Debug)]
pub struct Customers;

impl AllowedRoles for Customers {
    const ROLES: &'static [Role] = &[Role::Customer];
}

/// Routes for admins.
#[derive(Debug)]
pub struct Admins;

impl AllowedRoles for Admins {
    const ROLES: &'static [Role] = &[Role::Admin];
}

/// Routes for anyone signed in, whatever their role.
#[derive(Debug)]
pub struct Everyone;

impl AllowedRoles for Everyone {
    const ROLES: &'static [Role] = &[Role::Customer, Role::Agent, Role::Admin, Role::Auditor];
}

/// Routes for auditors.
#[derive(Debug)]
pub struct Auditors;

impl AllowedRoles for Auditors {
    const ROLES: &'static [Role] = &[Role::Auditor];
}

/// Routes for staff who work tickets: agents and admins.
#[derive(Debug)]
pub struct Staff;

impl AllowedRoles for Staff {
    const ROLES: &'static [Role] = &[Role::Agent, Role::Admin];
}

/// Routes for the parties to a ticket: its customer and the staff who work tickets.
#[derive(Debug)]
pub struct TicketParties;

impl AllowedRoles for TicketParties {
    const ROLES: &'static [Role] = &[Role::Customer, Role::Agent, Role::Admin];
}

/// The signed-in user, whose role the route admits: 401 when not signed in, 403 when the
/// role may not. The one place where roles are checked.
#[derive(Debug)]
pub struct Authorized<R> {
    /// Who.
    pub user: CurrentUser,
    roles: std::marker::PhantomData<R>,
}

impl<R: AllowedRoles + Send + Sync> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Self::admit(CurrentUser::from_request_parts(parts, state).await?)
    }
}

impl<R> Clone for Authorized<R> {
    fn clone(&self) -> Self {
        Self {
            user: self.user.clone(),
            roles: std::marker::PhantomData,
        }
    }
}

impl<R: AllowedRoles> Authorized<R> {
    /// `user`, if the route admits their role (a signed-in browser's user comes here too).
    ///
    /// # Errors
    /// `Forbidden` for any other role.
    pub(crate) fn admit(user: CurrentUser) -> Result<Self, ApiError> {
        if R::ROLES.contains(&user.role) {
            Ok(Self {
                user,
                roles: std::marker::PhantomData,
            })
        } else {
            Err(ApiError::Forbidden)
        }
    }
}
