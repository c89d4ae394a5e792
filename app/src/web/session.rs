//! Who a browser is signed in as: read from its session, checked against the account's
//! stream on every request, so a deactivated or erased person is signed out at once.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use domain::user::{Account, User};
use infrastructure::web_sessions::USER_ID_KEY;
use tower_sessions::Session;
use uuid::Uuid;

use crate::state::AppState;

/// A browser whose session holds an active account.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The account as its stream tells it.
    pub account: Account,
}

/// The account a session is signed in as, if it still may be; a session whose account was
/// closed is ended.
///
/// # Errors
/// When the session store or the event store fails.
pub async fn signed_in_account(
    state: &AppState,
    session: &Session,
) -> anyhow::Result<Option<Account>> {
    let Some(user_id) = session.get::<Uuid>(USER_ID_KEY).await? else {
        return Ok(None);
    };
    match state.commands.load::<User>(user_id).await?.0 {
        User::Registered(account) if account.active && !account.erased => Ok(Some(account)),
        _ => {
            session.flush().await?;
            Ok(None)
        }
    }
}

fn failed(error: &anyhow::Error) -> Response {
    tracing::error!(
        error = format!("{error:#}"),
        "reading the web session failed"
    );
    (
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong on our side; it has been logged.",
    )
        .into_response()
}

impl FromRequestParts<AppState> for SignedIn {
    /// A redirect to the sign-in page, which comes back here afterwards.
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match signed_in_account(state, &session).await {
            Ok(Some(account)) => Ok(Self { account }),
            Ok(None) => {
                let back = parts.uri.path();
                Err(Redirect::to(&format!("/login?next={back}")).into_response())
            }
            Err(error) => Err(failed(&error)),
        }
    }
}
