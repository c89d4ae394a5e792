use uuid::Uuid;

use super::*;
use crate::aggregate::UniqueValue;
use crate::aggregate::given_when_then::given;

fn id(n: u128) -> UserId {
    UserId(Uuid::from_u128(n))
}

fn hash(tag: &str) -> PasswordHash {
    PasswordHash::from_phc(format!("$argon2id$v=19$m=19456,t=2,p=1${tag}"))
}

fn profile(username: Option<&str>) -> Profile {
    Profile {
        name: PersonName::parse("Asha Rao").expect("valid"),
        email: Email::parse("asha@example.com").expect("valid"),
        mobile: Some(Mobile::parse("+91 98765 43210").expect("valid")),
        gender: None,
        username: username.map(|u| Username::parse(u).expect("valid")),
    }
}

fn register(role: Role, registered_by: Registrar) -> UserCommand {
    UserCommand::Register {
        user_id: id(1),
        role,
        profile: profile(Some("asha")),
        password_hash: hash("first"),
        registered_by,
    }
}

fn registered(role: Role) -> UserEvent {
    UserEvent::UserRegistered {
        user_id: id(1),
        role,
        profile: Some(profile(Some("asha"))),
        password_hash: hash("first"),
        registered_by: Registrar::Operator,
    }
}

const ADMIN: UserId = UserId(Uuid::from_u128(99));

#[test]
fn a_customer_signs_up_on_their_own() {
    given::<User>([])
        .when(register(Role::Customer, Registrar::SelfSignUp))
        .then([UserEvent::UserRegistered {
            user_id: id(1),
            role: Role::Customer,
            profile: Some(profile(Some("asha"))),
            password_hash: hash("first"),
            registered_by: Registrar::SelfSignUp,
        }]);
}

#[test]
fn staff_cannot_sign_themselves_up() {
    given::<User>([])
        .when(register(Role::Agent, Registrar::SelfSignUp))
        .then_rejected(UserRejection::NeedsAnAdmin(Role::Agent));
    given::<User>([])
        .when(register(Role::Auditor, Registrar::SelfSignUp))
        .then_rejected(UserRejection::NeedsAnAdmin(Role::Auditor));
}

#[test]
fn an_admin_creates_agents_and_auditors() {
    let by_admin = Registrar::Admin(ADMIN);
    let outcome = User::default().decide(&register(Role::Agent, by_admin));
    assert!(matches!(
        outcome.as_deref(),
        Ok([UserEvent::UserRegistered {
            role: Role::Agent,
            ..
        }])
    ));
    let outcome = User::default().decide(&register(Role::Auditor, by_admin));
    assert!(matches!(
        outcome.as_deref(),
        Ok([UserEvent::UserRegistered {
            role: Role::Auditor,
            ..
        }])
    ));
}

#[test]
fn admins_come_only_from_the_operator() {
    given::<User>([])
        .when(register(Role::Admin, Registrar::Admin(ADMIN)))
        .then_rejected(UserRejection::AdminsOnlyByTheOperator);
    given::<User>([])
        .when(register(Role::Admin, Registrar::SelfSignUp))
        .then_rejected(UserRejection::AdminsOnlyByTheOperator);
    let outcome = User::default().decide(&register(Role::Admin, Registrar::Operator));
    assert!(outcome.is_ok());
}

#[test]
fn an_agent_needs_a_username() {
    given::<User>([])
        .when(UserCommand::Register {
            user_id: id(1),
            role: Role::Agent,
            profile: profile(None),
            password_hash: hash("first"),
            registered_by: Registrar::Admin(ADMIN),
        })
        .then_rejected(UserRejection::AgentNeedsAUsername);
}

#[test]
fn an_account_is_registered_once() {
    given::<User>([registered(Role::Customer)])
        .when(register(Role::Customer, Registrar::SelfSignUp))
        .then_rejected(UserRejection::AlreadyRegistered);
}

#[test]
fn nothing_but_registration_happens_to_an_unknown_account() {
    given::<User>([])
        .when(UserCommand::ChangePassword {
            password_hash: hash("new"),
            cause: PasswordChangeCause::Reset,
        })
        .then_rejected(UserRejection::NotRegistered);
}

#[test]
fn a_password_change_replaces_the_hash() {
    given::<User>([registered(Role::Customer)])
        .when(UserCommand::ChangePassword {
            password_hash: hash("new"),
            cause: PasswordChangeCause::Reset,
        })
        .then([UserEvent::PasswordChanged {
            password_hash: hash("new"),
            cause: PasswordChangeCause::Reset,
        }]);
    let state = User::replay(&[
        registered(Role::Customer),
        UserEvent::PasswordChanged {
            password_hash: hash("new"),
            cause: PasswordChangeCause::ChangedByUser,
        },
    ]);
    assert!(
        matches!(state, User::Registered(Account { ref password_hash, .. }) if *password_hash == hash("new"))
    );
}

#[test]
fn agents_and_auditors_are_deactivated_and_reactivated() {
    given::<User>([registered(Role::Agent)])
        .when(UserCommand::Deactivate { by: ADMIN })
        .then([UserEvent::UserDeactivated { by: ADMIN }]);
    given::<User>([
        registered(Role::Auditor),
        UserEvent::UserDeactivated { by: ADMIN },
    ])
    .when(UserCommand::Reactivate { by: ADMIN })
    .then([UserEvent::UserReactivated { by: ADMIN }]);
}

#[test]
fn customers_and_admins_are_not_deactivated() {
    given::<User>([registered(Role::Customer)])
        .when(UserCommand::Deactivate { by: ADMIN })
        .then_rejected(UserRejection::CannotDeactivate(Role::Customer));
    given::<User>([registered(Role::Admin)])
        .when(UserCommand::Deactivate { by: ADMIN })
        .then_rejected(UserRejection::CannotDeactivate(Role::Admin));
}

#[test]
fn deactivation_and_reactivation_happen_once() {
    given::<User>([
        registered(Role::Agent),
        UserEvent::UserDeactivated { by: ADMIN },
    ])
    .when(UserCommand::Deactivate { by: ADMIN })
    .then_rejected(UserRejection::AlreadyDeactivated);
    given::<User>([registered(Role::Agent)])
        .when(UserCommand::Reactivate { by: ADMIN })
        .then_rejected(UserRejection::NotDeactivated);
}

#[test]
fn an_erased_account_is_closed_for_good() {
    let erased = [
        registered(Role::Customer),
        UserEvent::PersonalDataErased { by: Some(ADMIN) },
    ];
    given::<User>(erased.clone())
        .when(UserCommand::ChangePassword {
            password_hash: hash("new"),
            cause: PasswordChangeCause::Reset,
        })
        .then_rejected(UserRejection::Erased);
    given::<User>(erased.clone())
        .when(UserCommand::ErasePersonalData { by: None })
        .then_rejected(UserRejection::Erased);
    assert!(matches!(
        User::replay(&erased),
        User::Registered(Account {
            active: false,
            erased: true,
            ..
        })
    ));
}

#[test]
fn events_keep_their_stable_names_and_shape() {
    let event = UserEvent::UserDeactivated { by: ADMIN };
    assert_eq!(event.event_type(), "UserDeactivated");
    assert_eq!(event.schema_version(), 1);
    let json = serde_json::to_value(&event).expect("serialises");
    assert_eq!(json["type"], "UserDeactivated");
    assert_eq!(json["data"]["by"], ADMIN.0.to_string());
    let back: UserEvent = serde_json::from_value(json).expect("deserialises");
    assert_eq!(back, event);
}

#[test]
fn registration_claims_the_email_ignoring_case_and_the_username() {
    let mut command = register(Role::Agent, Registrar::Admin(ADMIN));
    if let UserCommand::Register { profile, .. } = &mut command {
        profile.email = Email::parse("Asha@Example.com").expect("valid");
    }
    let events = User::default().decide(&command).expect("registered");
    let changes = User::default().unique_values(&events);
    assert_eq!(
        changes.claimed,
        vec![
            UniqueValue {
                scope: EMAIL_SCOPE,
                value: "asha@example.com".into()
            },
            UniqueValue {
                scope: USERNAME_SCOPE,
                value: "asha".into()
            },
        ]
    );
    assert!(changes.released.is_empty());
}

#[test]
fn erasure_gives_the_email_and_username_up_and_forgets_the_profile() {
    let state = User::replay(&[registered(Role::Agent)]);
    let events = state
        .decide(&UserCommand::ErasePersonalData { by: Some(ADMIN) })
        .expect("erased");
    let changes = state.unique_values(&events);
    assert_eq!(changes.released.len(), 2);
    assert!(changes.claimed.is_empty());
    let after = events.iter().fold(state, User::evolve);
    assert!(matches!(
        after,
        User::Registered(Account {
            profile: None,
            erased: true,
            ..
        })
    ));
}

#[test]
fn a_password_reset_is_requested_for_active_accounts_only() {
    given::<User>([registered(Role::Customer)])
        .when(UserCommand::RequestPasswordReset)
        .then([UserEvent::PasswordResetRequested {}]);
    given::<User>([
        registered(Role::Agent),
        UserEvent::UserDeactivated { by: ADMIN },
    ])
    .when(UserCommand::RequestPasswordReset)
    .then_rejected(UserRejection::Inactive);
    given::<User>([
        registered(Role::Customer),
        UserEvent::PersonalDataErased { by: None },
    ])
    .when(UserCommand::RequestPasswordReset)
    .then_rejected(UserRejection::Erased);
    given::<User>([])
        .when(UserCommand::RequestPasswordReset)
        .then_rejected(UserRejection::NotRegistered);
}

#[test]
fn registration_carries_the_profile_as_personal_data_of_the_new_user() {
    let event = registered(Role::Customer);
    assert_eq!(event.personal_data(), Some((id(1).0, &["profile"][..])));
    assert_eq!(
        UserEvent::UserDeactivated { by: ADMIN }.personal_data(),
        None
    );
}

#[test]
fn a_registration_read_back_after_erasure_has_no_profile() {
    let mut event = registered(Role::Agent);
    if let UserEvent::UserRegistered { profile, .. } = &mut event {
        *profile = None;
    }
    let state = User::replay(&[event]);
    assert!(matches!(
        state,
        User::Registered(Account { profile: None, .. })
    ));
    let erase = state
        .decide(&UserCommand::ErasePersonalData { by: None })
        .expect("erasable");
    assert!(
        state.unique_values(&erase).released.is_empty(),
        "nothing left to release"
    );
}
