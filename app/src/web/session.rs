//! Who a browser is signed in as: read from its session, checked against the account's
//! stream on every request, so a deactivated or erased person is signed out at once.

use domain::user::{Account, User};
use infrastructure::web_sessions::USER_ID_KEY;
use tower_sessions::Session;
use uuid::Uuid;

use crate::state::AppState;

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
