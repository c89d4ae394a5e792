//! Creating accounts, shared by sign-up, the admin API, `create-admin` and the first-start
//! settings: parse every field (collecting each error under its name), hash the password,
//! and register through the command service.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use domain::user::{
    Account, EMAIL_SCOPE, Email, Gender, InvalidValue, Mobile, NewPassword, PersonName, Profile,
    Registrar, Role, USERNAME_SCOPE, User, UserCommand, UserId, UserRejection, Username,
};
use infrastructure::event_store::UniqueClaim;
use infrastructure::personal_data::VaultError;
use uuid::Uuid;

use crate::commands::{CommandContext, CommandError, CommandService, Executed};
use crate::state::AppState;

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    /// Its name in the request.
    pub field: &'static str,
    /// What is wrong.
    pub problem: InvalidValue,
}

/// The raw fields of a new account, as typed.
#[derive(Debug, Default)]
pub struct NewAccount<'a> {
    /// Required.
    pub name: &'a str,
    /// Required.
    pub email: &'a str,
    /// Required for customers and agents.
    pub mobile: Option<&'a str>,
    /// Agents only.
    pub gender: Option<Gender>,
    /// Required for agents.
    pub username: Option<&'a str>,
    /// Required; never stored.
    pub password: &'a str,
}

/// Why an account was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreateAccountError {
    /// Fields are invalid; nothing was stored.
    #[error("invalid fields: {}", describe(.0))]
    Invalid(Vec<InvalidField>),
    /// The command failed or was refused.
    #[error(transparent)]
    Command(#[from] CommandError<domain::user::UserRejection>),
}

fn describe(fields: &[InvalidField]) -> String {
    fields
        .iter()
        .map(|f| format!("{} {}", f.field, f.problem))
        .collect::<Vec<_>>()
        .join("; ")
}

fn parse<T>(
    errors: &mut Vec<InvalidField>,
    field: &'static str,
    parsed: Result<T, InvalidValue>,
) -> Option<T> {
    parsed
        .map_err(|problem| errors.push(InvalidField { field, problem }))
        .ok()
}

/// Creates an account with `role`, registered by `registrar`, acting as `actor`.
///
/// # Errors
/// [`CreateAccountError`]: invalid fields (all of them), or the command's failure (the email
/// or username taken, a refusal such as staff signing themselves up, or a failure).
pub async fn create_account(
    state: &AppState,
    role: Role,
    fields: &NewAccount<'_>,
    registrar: Registrar,
    actor: &str,
) -> Result<UserId, CreateAccountError> {
    let mut errors = Vec::new();
    let name = parse(&mut errors, "name", PersonName::parse(fields.name));
    let email = parse(&mut errors, "email", Email::parse(fields.email));
    let needs_mobile = matches!(role, Role::Customer | Role::Agent);
    let mobile = match fields.mobile {
        Some(mobile) => parse(&mut errors, "mobile", Mobile::parse(mobile)),
        None if needs_mobile => parse(&mut errors, "mobile", Err(InvalidValue::Empty)),
        None => None,
    };
    let username = match fields.username {
        Some(username) => parse(&mut errors, "username", Username::parse(username)),
        None if role == Role::Agent => parse(&mut errors, "username", Err(InvalidValue::Empty)),
        None => None,
    };
    if role == Role::Agent && fields.gender.is_none() {
        errors.push(InvalidField {
            field: "gender",
            problem: InvalidValue::Empty,
        });
    }
    let password = parse(&mut errors, "password", NewPassword::parse(fields.password));
    let (Some(name), Some(email), Some(password), true) =
        (name, email, password, errors.is_empty())
    else {
        return Err(CreateAccountError::Invalid(errors));
    };
    let password_hash = state
        .passwords
        .hash(&password)
        .await
        .map_err(|e| CommandError::Failed(e.into()))?;
    let user_id = UserId(crate::repeatable_ids::new_id());
    let command = UserCommand::Register {
        user_id,
        role,
        profile: Profile {
            name,
            email,
            mobile,
            gender: fields.gender,
            username,
        },
        password_hash,
        registered_by: registrar,
    };
    let context = CommandContext::new(actor, state.now());
    run_on_account(state, user_id.0, &command, &context).await?;
    Ok(user_id)
}

/// Runs `command` on the account `user_id`.
///
/// # Errors
/// [`CommandError`].
pub async fn run_on_account(
    state: &AppState,
    user_id: Uuid,
    command: &UserCommand,
    context: &CommandContext,
) -> Result<Executed<User>, CommandError<UserRejection>> {
    state
        .commands
        .execute::<User>(user_id, command, context)
        .await
}

/// What [`ensure_admin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminSetup {
    /// A new admin account exists now.
    Created(UserId),
    /// An account with that email existed already; nothing changed.
    AlreadyThere,
}

/// Creates the first admin (by the operator) unless an account has the email already.
///
/// # Errors
/// [`CreateAccountError`] for invalid fields or a failure.
pub async fn ensure_admin(
    state: &AppState,
    name: &str,
    email: &str,
    password: &str,
) -> Result<AdminSetup, CreateAccountError> {
    let fields = NewAccount {
        name,
        email,
        password,
        ..NewAccount::default()
    };
    match create_account(state, Role::Admin, &fields, Registrar::Operator, "operator").await {
        Ok(user_id) => Ok(AdminSetup::Created(user_id)),
        Err(CreateAccountError::Command(CommandError::ValueTaken { .. })) => {
            Ok(AdminSetup::AlreadyThere)
        }
        Err(other) => Err(other),
    }
}

/// What [`erase_person`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erasure {
    /// The person's personal data is gone for good (now or already before).
    Erased,
    /// No account has this id.
    NoSuchPerson,
    /// Their personal data can no longer be read and their sign-ins are ended, but the old
    /// copy of their key is still in SQLite's log: readers stayed in it. Erasing again
    /// wipes it.
    NotWipedYet,
}

/// Erases a person's personal data: records the erasure (releasing their email and
/// username), destroys their key so that every sealed field of their events reads as
/// absent, and ends their tokens and reset links. Safe to run again after an interruption:
/// it completes whatever was left undone.
///
/// # Errors
/// When a step fails; running again completes it.
pub async fn erase_person(
    state: &AppState,
    user_id: Uuid,
    by: Option<UserId>,
    actor: &str,
) -> anyhow::Result<Erasure> {
    let now = state.now();
    let context = CommandContext::new(actor, now);
    let command = UserCommand::ErasePersonalData { by };
    match run_on_account(state, user_id, &command, &context).await {
        Ok(_) | Err(CommandError::Rejected(UserRejection::Erased)) => {}
        Err(CommandError::Rejected(UserRejection::NotRegistered)) => {
            return Ok(Erasure::NoSuchPerson);
        }
        Err(error) => return Err(anyhow::anyhow!("recording the erasure: {error}")),
    }
    let key = state.vault.erase(user_id, now).await;
    // The erasure is recorded: sign-ins end whatever became of the key or its wipe.
    end_every_sign_in(state, user_id, now).await?;
    match key {
        Ok(_) => Ok(Erasure::Erased),
        Err(VaultError::NotWipedYet(_)) => Ok(Erasure::NotWipedYet),
        Err(error) => Err(error.into()),
    }
}

/// Ends every way a person is signed in or could sign in without their password: API
/// tokens, web sessions and password-reset links.
///
/// # Errors
/// When the database fails.
pub async fn end_every_sign_in(
    state: &AppState,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    state.tokens.revoke_all_for(user_id, now).await?;
    state.web_sessions.revoke_all_for(user_id).await?;
    state.password_resets.revoke_all_for(user_id, now).await?;
    Ok(())
}

/// Why a sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Too many failures for the account or the address; try again after this long.
    #[error("too many failed sign-ins")]
    Throttled(std::time::Duration),
    /// A wrong password, an unknown login, or a closed account: deliberately one answer.
    #[error("wrong email or password")]
    WrongCredentials,
    /// The infrastructure failed.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Checks a login (an email address, or an agent's username) and password, for the API and
/// the web pages alike. A wrong password, an unknown login and a closed account get the
/// same answer after the same work (a dummy hash is verified when there is no account), so
/// nobody learns which accounts exist; failures are counted per account and per address.
///
/// # Errors
/// [`SignInError`].
pub async fn sign_in(
    state: &AppState,
    login: &str,
    password: &str,
    from: IpAddr,
) -> Result<Account, SignInError> {
    let login = login.trim().to_lowercase();
    let now = state.now();
    if let Some(wait) = state
        .login_throttle
        .wait_before_trying(&login, from, now)
        .await
        .map_err(anyhow::Error::from)?
    {
        return Err(SignInError::Throttled(wait));
    }
    let account = find_account(state, &login).await?;
    let usable = account.filter(|a| a.active && !a.erased);
    let verified = state
        .passwords
        .verify(password, usable.as_ref().map(|a| &a.password_hash))
        .await;
    let Some(account) = usable.filter(|_| verified) else {
        state
            .login_throttle
            .record_failure(&login, from, now)
            .await
            .map_err(anyhow::Error::from)?;
        return Err(SignInError::WrongCredentials);
    };
    state
        .login_throttle
        .clear_account(&login)
        .await
        .map_err(anyhow::Error::from)?;
    Ok(account)
}

/// The account an email address or username belongs to, read from its stream (never from
/// a read model, so a login right after sign-up works).
///
/// # Errors
/// When the store fails.
pub async fn find_account(state: &AppState, login: &str) -> anyhow::Result<Option<Account>> {
    let claim = if login.contains('@') {
        Email::parse(login)
            .ok()
            .map(|email| UniqueClaim::new(EMAIL_SCOPE, &email.normalized()))
    } else {
        Username::parse(login)
            .ok()
            .map(|username| UniqueClaim::new(USERNAME_SCOPE, username.as_str()))
    };
    let Some(claim) = claim else { return Ok(None) };
    let owner = state.events.claim_owner(&claim).await?;
    let Some(user_id) = owner.and_then(|stream| CommandService::id_in::<User>(&stream)) else {
        return Ok(None);
    };
    let (user, _) = state.commands.load::<User>(user_id).await?;
    Ok(match user {
        User::Registered(account) => Some(account),
        User::Unregistered => None,
    })
}
