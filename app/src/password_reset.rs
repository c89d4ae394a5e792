//! Forgotten passwords, for the API and the pages alike: a one-time link by mail, then a
//! new password that ends every way the account was signed in.

use domain::user::{
    Account, Email, NewPassword, PasswordChangeCause, User, UserCommand, UserRejection,
};
use infrastructure::event_store::OutboxMessage;

use crate::accounts::{end_every_sign_in, find_account, run_on_account};
use crate::commands::{CommandContext, CommandError};
use crate::mail::PASSWORD_RESET;
use crate::state::AppState;

/// Mails a reset link if `email` belongs to an account that can sign in, and quietly does
/// nothing otherwise (the caller answers the same either way, so nobody learns which
/// addresses have accounts). The mail is written to the outbox with the account's
/// `PasswordResetRequested` event.
///
/// # Errors
/// When the database fails or the account refuses.
pub async fn request(state: &AppState, email: &Email) -> anyhow::Result<()> {
    let Some(account) = find_account(state, &email.normalized()).await? else {
        return Ok(());
    };
    let (Some(profile), true) = (&account.profile, account.active) else {
        return Ok(());
    };
    let now = state.now();
    let token = state.password_resets.issue(account.id.0, now).await?;
    let mail = OutboxMessage {
        message_id: crate::repeatable_ids::new_id(),
        kind: PASSWORD_RESET.to_owned(),
        payload: serde_json::json!({
            "to": profile.email.as_str(),
            "name": profile.name.as_str(),
            "link": format!("{}/reset-password?token={token}", state.base_url),
        }),
    };
    let context = CommandContext::new("anonymous", now);
    state
        .commands
        .execute_with_outbox::<User>(
            account.id.0,
            &UserCommand::RequestPasswordReset,
            &context,
            vec![mail],
        )
        .await
        .map_err(|e| anyhow::anyhow!("recording the reset request: {e}"))?;
    state.mail_wake.notify_one();
    Ok(())
}

/// Why a new password was not set.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// The link is unknown, expired or used.
    #[error("the reset link is invalid, expired or already used")]
    InvalidLink,
    /// The account refused the change.
    #[error("{0}")]
    Refused(CommandError<UserRejection>),
    /// The infrastructure failed.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Sets `password` with a reset link's token: the token is used up, every token, session
/// and other reset link of the account ends, and its failed sign-ins are forgotten.
///
/// # Errors
/// [`ResetError`].
pub async fn confirm(
    state: &AppState,
    token: &str,
    password: &NewPassword,
) -> Result<(), ResetError> {
    let now = state.now();
    let user_id = state
        .password_resets
        .redeem(token.trim(), now)
        .await
        .map_err(anyhow::Error::from)?
        .ok_or(ResetError::InvalidLink)?;
    let password_hash = state
        .passwords
        .hash(password)
        .await
        .map_err(anyhow::Error::from)?;
    let command = UserCommand::ChangePassword {
        password_hash,
        cause: PasswordChangeCause::Reset,
    };
    let context = CommandContext::new(format!("user:{user_id}"), now);
    let changed = run_on_account(state, user_id, &command, &context)
        .await
        .map_err(|error| match error {
            CommandError::Failed(error) => ResetError::Failed(error),
            refused => ResetError::Refused(refused),
        })?;
    end_every_sign_in(state, user_id, now).await?;
    if let User::Registered(Account {
        profile: Some(profile),
        ..
    }) = &changed.state
    {
        let throttle = &state.login_throttle;
        throttle
            .clear_account(&profile.email.normalized())
            .await
            .map_err(anyhow::Error::from)?;
        if let Some(username) = &profile.username {
            throttle
                .clear_account(username.as_str())
                .await
                .map_err(anyhow::Error::from)?;
        }
    }
    Ok(())
}
