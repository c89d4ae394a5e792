//! The web pages' session store, on both databases.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use infrastructure::clock::{Clock as _, FakeClock};
use infrastructure::database::Database;
use infrastructure::testing::TestDatabase;
use infrastructure::web_sessions::{USER_ID_KEY, WebSessions};
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::SessionStore;
use uuid::Uuid;

/// Minutes after the start, shared by the store and the test.
#[derive(Clone)]
struct Clock(FakeClock);

impl Default for Clock {
    fn default() -> Self {
        Self(FakeClock::at(Self::at(0)))
    }
}

impl Clock {
    fn at(minutes: i64) -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 8, 0, 0)
            .single()
            .expect("valid")
            + chrono::Duration::minutes(minutes)
    }
    fn now(&self) -> chrono::DateTime<Utc> {
        self.0.now()
    }
    fn set(&self, minutes: i64) {
        self.0.set(Self::at(minutes));
    }
}

/// A signed-in record that expires `idle_minutes` after the clock's now.
fn record(clock: &Clock, user: Uuid, idle_minutes: i64) -> Record {
    let expires = clock.now() + chrono::Duration::minutes(idle_minutes);
    let mut data = std::collections::HashMap::new();
    data.insert(USER_ID_KEY.to_owned(), serde_json::json!(user.to_string()));
    Record {
        id: Id::default(),
        data,
        expiry_date: time::OffsetDateTime::from_unix_timestamp(expires.timestamp())
            .expect("a valid instant"),
    }
}

async fn sessions_live_and_die_as_promised(database: Database) {
    let clock = Clock::default();
    let sessions = WebSessions::new(database.clone(), Duration::from_secs(8 * 60 * 60))
        .with_clock(clock.0.clone().into());
    let asha = Uuid::new_v4();
    let ravi = Uuid::new_v4();

    let mut first = record(&clock, asha, 30);
    sessions.create(&mut first).await.expect("create");
    let loaded = sessions
        .load(&first.id)
        .await
        .expect("load")
        .expect("alive");
    assert_eq!(loaded.data, first.data);
    assert_eq!(sessions.load(&Id::default()).await.expect("load"), None);

    // Saving with a later idle deadline keeps it alive past the first one...
    for minute in (20..=460).step_by(20) {
        clock.set(minute);
        let mut renewed = sessions
            .load(&first.id)
            .await
            .expect("load")
            .expect("alive");
        renewed.expiry_date = record(&clock, asha, 30).expiry_date;
        sessions.save(&renewed).await.expect("save");
    }
    // ...but never past the absolute end, eight hours after creation.
    clock.set(481);
    assert_eq!(
        sessions.load(&first.id).await.expect("load"),
        None,
        "absolute end"
    );

    // Unused, it dies at its idle deadline.
    clock.set(1_000);
    let mut idle = record(&clock, asha, 30);
    sessions.create(&mut idle).await.expect("create");
    clock.set(1_031);
    assert_eq!(
        sessions.load(&idle.id).await.expect("load"),
        None,
        "idle end"
    );

    // Revoking a person's sessions ends all of theirs and nobody else's, and a save of a
    // revoked session does not bring it back.
    clock.set(2_000);
    let mut one = record(&clock, asha, 30);
    let mut two = record(&clock, asha, 30);
    let mut other = record(&clock, ravi, 30);
    for record in [&mut one, &mut two, &mut other] {
        sessions.create(record).await.expect("create");
    }
    assert_eq!(sessions.count_for(asha).await.expect("count"), 2);
    sessions.revoke_all_for(asha).await.expect("revoke");
    assert_eq!(sessions.count_for(asha).await.expect("count"), 0);
    sessions.save(&one).await.expect("save");
    assert_eq!(
        sessions.load(&one.id).await.expect("load"),
        None,
        "stays revoked"
    );
    assert!(sessions.load(&other.id).await.expect("load").is_some());

    sessions.delete(&other.id).await.expect("delete");
    assert_eq!(sessions.load(&other.id).await.expect("load"), None);

    // Only digests of session ids are stored.
    let mut live = record(&clock, ravi, 30);
    sessions.create(&mut live).await.expect("create");
    let stored: Vec<Vec<u8>> = match &database {
        Database::Sqlite(sqlite) => {
            sqlx::query_scalar("SELECT id_hash FROM web_sessions")
                .fetch_all(sqlite.pool())
                .await
        }
        Database::Postgres(pool) => {
            sqlx::query_scalar("SELECT id_hash FROM web_sessions")
                .fetch_all(pool)
                .await
        }
    }
    .expect("read");
    let id_text = live.id.to_string();
    assert!(!stored.is_empty());
    assert!(
        stored
            .iter()
            .all(|hash| hash.len() == 32 && hash.as_slice() != id_text.as_bytes()),
        "no session id in clear"
    );
    // Creating a session swept the dead ones away.
    assert_eq!(stored.len(), 1, "only the live session is left");
}

#[tokio::test]
async fn sqlite_sessions_live_and_die_as_promised() {
    sessions_live_and_die_as_promised(TestDatabase::sqlite().connect().await).await;
}

#[tokio::test]
async fn postgres_sessions_live_and_die_as_promised() {
    let Some(database) = TestDatabase::postgres("postgres_sessions_live_and_die_as_promised").await
    else {
        return;
    };
    sessions_live_and_die_as_promised(database.connect().await).await;
}
