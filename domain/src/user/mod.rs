//! A person's account: registration, password changes, deactivation of staff, and erasure
//! of personal data. One stream per person (`user-<id>`), so an auditor can see when an
//! account was created, by whom, and when its password changed.

mod values;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use values::{
    Email, Gender, InvalidValue, Mobile, NewPassword, PasswordHash, PersonName, Role, Username,
};

use crate::aggregate::{Aggregate, DomainEvent, UniqueValue, UniqueValueChanges};

/// Identifies a person across the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub Uuid);

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The personal data of an account: what erasure destroys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// How to address them.
    pub name: PersonName,
    /// Where mail goes; unique across accounts, ignoring case.
    pub email: Email,
    /// Customers and agents give one.
    pub mobile: Option<Mobile>,
    /// Asked of agents.
    pub gender: Option<Gender>,
    /// Agents may also log in with it.
    pub username: Option<Username>,
}

/// Who created an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "user_id")]
pub enum Registrar {
    /// The customer, signing up on the open web.
    SelfSignUp,
    /// An admin, creating staff.
    Admin(UserId),
    /// Whoever runs the server: `expense-tracker create-admin` or the first-start settings.
    Operator,
}

/// Why a password changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordChangeCause {
    /// Through a password-reset link sent by mail.
    Reset,
    /// By the person, signed in.
    ChangedByUser,
}

/// What can be asked of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    /// Create the account.
    Register {
        /// Chosen by the caller (the id is not IO).
        user_id: UserId,
        /// What they may do.
        role: Role,
        /// Their personal data.
        profile: Profile,
        /// Already hashed at the edge.
        password_hash: PasswordHash,
        /// Who asks.
        registered_by: Registrar,
    },
    /// Replace the password.
    ChangePassword {
        /// The new hash.
        password_hash: PasswordHash,
        /// Why.
        cause: PasswordChangeCause,
    },
    /// Send the person a one-time link to choose a new password.
    RequestPasswordReset,
    /// Stop a staff member from signing in (an admin's decision).
    Deactivate {
        /// The admin.
        by: UserId,
    },
    /// Let a deactivated staff member sign in again.
    Reactivate {
        /// The admin.
        by: UserId,
    },
    /// Destroy the person's personal data (their key is destroyed by the infrastructure);
    /// the account can never sign in again.
    ErasePersonalData {
        /// The admin, or `None` for the operator's command line.
        by: Option<UserId>,
    },
}

/// What happened to an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum UserEvent {
    /// The account exists.
    UserRegistered {
        /// Its id.
        user_id: UserId,
        /// What it may do.
        role: Role,
        /// Personal data, sealed at rest with the person's key; `None` once they are erased.
        profile: Option<Profile>,
        /// argon2id PHC string.
        password_hash: PasswordHash,
        /// Who created it.
        registered_by: Registrar,
    },
    /// The password was replaced; every session and token of the account ends.
    PasswordChanged {
        /// The new hash.
        password_hash: PasswordHash,
        /// Why.
        cause: PasswordChangeCause,
    },
    /// A one-time link to choose a new password was sent.
    PasswordResetRequested {},
    /// The staff member can no longer sign in.
    UserDeactivated {
        /// The admin.
        by: UserId,
    },
    /// The staff member can sign in again.
    UserReactivated {
        /// The admin.
        by: UserId,
    },
    /// The person's personal data is gone for good.
    PersonalDataErased {
        /// The admin, or `None` for the operator.
        by: Option<UserId>,
    },
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::UserRegistered { .. } => "UserRegistered",
            Self::PasswordChanged { .. } => "PasswordChanged",
            Self::PasswordResetRequested {} => "PasswordResetRequested",
            Self::UserDeactivated { .. } => "UserDeactivated",
            Self::UserReactivated { .. } => "UserReactivated",
            Self::PersonalDataErased { .. } => "PersonalDataErased",
        }
    }

    fn personal_data(&self) -> Option<(Uuid, &'static [&'static str])> {
        match self {
            Self::UserRegistered { user_id, .. } => Some((user_id.0, &["profile"])),
            _ => None,
        }
    }
}

/// Why an account refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserRejection {
    /// The account already exists.
    #[error("this account already exists")]
    AlreadyRegistered,
    /// The account does not exist.
    #[error("there is no such account")]
    NotRegistered,
    /// Only customers sign themselves up; staff are created by an admin.
    #[error("only an admin can create {0:?} accounts")]
    NeedsAnAdmin(Role),
    /// Admins come only from whoever runs the server, never from the web.
    #[error(
        "admin accounts are created only with `expense-tracker create-admin` or the first-start settings"
    )]
    AdminsOnlyByTheOperator,
    /// An agent signs in with a username too, so one is required.
    #[error("an agent needs a username")]
    AgentNeedsAUsername,
    /// Only agents and auditors are deactivated.
    #[error("{0:?} accounts cannot be deactivated")]
    CannotDeactivate(Role),
    /// Already deactivated.
    #[error("the account is already deactivated")]
    AlreadyDeactivated,
    /// Not deactivated.
    #[error("the account is not deactivated")]
    NotDeactivated,
    /// The account is deactivated.
    #[error("the account is deactivated")]
    Inactive,
    /// The person's data was erased; the account is closed for good.
    #[error("the account's personal data was erased")]
    Erased,
}

/// An account as its history leaves it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum User {
    /// No history yet.
    #[default]
    Unregistered,
    /// The account exists.
    Registered(Account),
}

/// The state of an existing account that its rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Its id.
    pub id: UserId,
    /// What it may do.
    pub role: Role,
    /// False once deactivated (staff) or erased.
    pub active: bool,
    /// True once its personal data was erased.
    pub erased: bool,
    /// The current password hash.
    pub password_hash: PasswordHash,
    /// Personal data; `None` once erased.
    pub profile: Option<Profile>,
}

/// The scopes of an account's unique values.
pub const EMAIL_SCOPE: &str = "email";
/// Agents' usernames are unique too.
pub const USERNAME_SCOPE: &str = "username";

fn unique_values_of(profile: &Profile) -> Vec<UniqueValue> {
    let mut values = vec![UniqueValue {
        scope: EMAIL_SCOPE,
        value: profile.email.normalized(),
    }];
    if let Some(username) = &profile.username {
        values.push(UniqueValue {
            scope: USERNAME_SCOPE,
            value: username.as_str().to_owned(),
        });
    }
    values
}

impl Aggregate for User {
    type Command = UserCommand;
    type Event = UserEvent;
    type Rejection = UserRejection;

    const CATEGORY: &'static str = "user";

    fn decide(&self, command: &UserCommand) -> Result<Vec<UserEvent>, UserRejection> {
        let Self::Registered(account) = self else {
            return match command {
                UserCommand::Register {
                    user_id,
                    role,
                    profile,
                    password_hash,
                    registered_by,
                } => {
                    check_registrar(*role, *registered_by)?;
                    if *role == Role::Agent && profile.username.is_none() {
                        return Err(UserRejection::AgentNeedsAUsername);
                    }
                    Ok(vec![UserEvent::UserRegistered {
                        user_id: *user_id,
                        role: *role,
                        profile: Some(profile.clone()),
                        password_hash: password_hash.clone(),
                        registered_by: *registered_by,
                    }])
                }
                _ => Err(UserRejection::NotRegistered),
            };
        };
        let event = match command {
            UserCommand::Register { .. } => return Err(UserRejection::AlreadyRegistered),
            _ if account.erased => return Err(UserRejection::Erased),
            UserCommand::ChangePassword {
                password_hash,
                cause,
            } => UserEvent::PasswordChanged {
                password_hash: password_hash.clone(),
                cause: *cause,
            },
            UserCommand::RequestPasswordReset => {
                if !account.active {
                    return Err(UserRejection::Inactive);
                }
                UserEvent::PasswordResetRequested {}
            }
            UserCommand::Deactivate { by } => {
                if !matches!(account.role, Role::Agent | Role::Auditor) {
                    return Err(UserRejection::CannotDeactivate(account.role));
                }
                if !account.active {
                    return Err(UserRejection::AlreadyDeactivated);
                }
                UserEvent::UserDeactivated { by: *by }
            }
            UserCommand::Reactivate { by } => {
                if account.active {
                    return Err(UserRejection::NotDeactivated);
                }
                UserEvent::UserReactivated { by: *by }
            }
            UserCommand::ErasePersonalData { by } => UserEvent::PersonalDataErased { by: *by },
        };
        Ok(vec![event])
    }

    fn unique_values(&self, events: &[UserEvent]) -> UniqueValueChanges {
        let mut changes = UniqueValueChanges::default();
        for event in events {
            match (self, event) {
                (
                    _,
                    UserEvent::UserRegistered {
                        profile: Some(profile),
                        ..
                    },
                ) => {
                    changes.claimed.extend(unique_values_of(profile));
                }
                (
                    Self::Registered(Account {
                        profile: Some(profile),
                        ..
                    }),
                    UserEvent::PersonalDataErased { .. },
                ) => changes.released.extend(unique_values_of(profile)),
                _ => {}
            }
        }
        changes
    }

    fn evolve(self, event: &UserEvent) -> Self {
        match (self, event) {
            (
                Self::Unregistered,
                UserEvent::UserRegistered {
                    user_id,
                    role,
                    password_hash,
                    profile,
                    ..
                },
            ) => Self::Registered(Account {
                id: *user_id,
                role: *role,
                active: true,
                erased: false,
                password_hash: password_hash.clone(),
                profile: profile.clone(),
            }),
            (Self::Registered(mut account), event) => {
                match event {
                    UserEvent::UserRegistered { .. } | UserEvent::PasswordResetRequested {} => {}
                    UserEvent::PasswordChanged { password_hash, .. } => {
                        account.password_hash = password_hash.clone()
                    }
                    UserEvent::UserDeactivated { .. } => account.active = false,
                    UserEvent::UserReactivated { .. } => account.active = true,
                    UserEvent::PersonalDataErased { .. } => {
                        account.active = false;
                        account.erased = true;
                        account.profile = None;
                    }
                }
                Self::Registered(account)
            }
            // A history that does not start with registration cannot be produced by
            // `decide`; ignoring the event keeps replay total.
            (state @ Self::Unregistered, _) => state,
        }
    }
}

fn check_registrar(role: Role, registrar: Registrar) -> Result<(), UserRejection> {
    match (role, registrar) {
        (Role::Admin, Registrar::Operator) => Ok(()),
        (Role::Admin, _) => Err(UserRejection::AdminsOnlyByTheOperator),
        (Role::Customer, _) | (_, Registrar::Admin(_) | Registrar::Operator) => Ok(()),
        (staff, Registrar::SelfSignUp) => Err(UserRejection::NeedsAnAdmin(staff)),
    }
}

#[cfg(test)]
mod tests;
