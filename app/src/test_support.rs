//! What the application's own tests share: a fresh product on a throw-away database, and
//! people and wallets made through the real command path.

use domain::money::{Currency, Money};
use domain::user::{
    Email, Mobile, PasswordHash, PersonName, Profile, Registrar, Role, User, UserCommand, UserId,
    Username,
};
use domain::wallet::{Category, Description, LimitKey, Period, Wallet, WalletCommand};
use projections::ProjectionRunner;
use uuid::Uuid;

use crate::commands::CommandContext;
use crate::config::Config;
use crate::startup::build_parts;
use crate::state::AppState;

/// The product's state and read-model runner on a fresh SQLite database in `data`, set up
/// by `configure`.
pub(crate) async fn fresh(
    data: &tempfile::TempDir,
    configure: impl FnOnce(&mut Config),
) -> (AppState, ProjectionRunner) {
    let mut config = Config::for_tests(data.path().to_path_buf(), None);
    configure(&mut config);
    build_parts(&config).await.expect("state")
}

/// Someone with `role` and `name`, registered by the operator.
pub(crate) async fn person(state: &AppState, role: Role, name: &str) -> UserId {
    let user_id = UserId(Uuid::now_v7());
    let command = UserCommand::Register {
        user_id,
        role,
        profile: Profile {
            name: PersonName::parse(name).expect("name"),
            email: Email::parse(&format!("{}@example.com", user_id.0)).expect("email"),
            mobile: Some(Mobile::parse("+91 90000 00001").expect("mobile")),
            gender: None,
            username: (role == Role::Agent)
                .then(|| Username::parse(&name.replace(' ', ".")).expect("username")),
        },
        password_hash: PasswordHash::from_phc(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        ),
        registered_by: Registrar::Operator,
    };
    state
        .commands
        .execute::<User>(
            user_id.0,
            &command,
            &CommandContext::new("test", state.now()),
        )
        .await
        .expect("registered");
    user_id
}

/// Runs `commands` on `owner`'s wallet.
pub(crate) async fn on_wallet(state: &AppState, owner: UserId, commands: Vec<WalletCommand>) {
    for command in commands {
        state
            .commands
            .execute::<Wallet>(owner.0, &command, &CommandContext::new("test", state.now()))
            .await
            .expect("decided");
    }
}

/// Opens `owner`'s wallet in INR with a monthly limit of 100 on everything, and spends 150
/// in one expense today: a `LimitExceeded` (and no warning).
pub(crate) async fn cross_a_limit(state: &AppState, owner: UserId) {
    let inr = Currency::parse("INR").expect("INR");
    let money = |amount: &str| Money::parse(amount, inr).expect("amount");
    on_wallet(
        state,
        owner,
        vec![
            WalletCommand::Open {
                owner,
                currency: inr,
            },
            WalletCommand::SetLimit {
                key: LimitKey {
                    period: Period::Monthly { first_day: 1 },
                    category: None,
                },
                amount: money("100"),
            },
            WalletCommand::RecordExpense {
                expense_id: Uuid::now_v7(),
                amount: money("150"),
                category: Category::parse("Food").expect("category"),
                description: Description::parse("").expect("description"),
                spent_on: state.now().date_naive(),
                receipt_id: None,
            },
        ],
    )
    .await;
}

/// How many messages of each kind the outbox holds, by kind.
pub(crate) async fn outbox_kinds(state: &AppState) -> Vec<(String, i64)> {
    projections::sql::fetch_all(
        &state.database,
        "SELECT kind, COUNT(*) FROM outbox GROUP BY kind ORDER BY kind",
        &[],
    )
    .await
    .expect("outbox")
}

/// The event types of one stream, in order.
pub(crate) async fn stream_types(state: &AppState, stream: &str) -> Vec<String> {
    let stream = infrastructure::event_store::StreamId::parse(stream).expect("stream");
    state
        .events
        .read_stream(&stream, 1)
        .await
        .expect("stream")
        .into_iter()
        .map(|event| event.event_type)
        .collect()
}
