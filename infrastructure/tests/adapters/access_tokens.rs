//! The API's bearer tokens, on both databases.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use infrastructure::access_tokens::{AccessTokens, TokenPolicy};
use infrastructure::database::Database;
use infrastructure::testing::TestDatabase;
use uuid::Uuid;

const POLICY: TokenPolicy = TokenPolicy {
    idle: Duration::from_secs(30 * 60),
    absolute: Duration::from_secs(8 * 60 * 60),
};

fn at(minutes: i64) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 8, 0, 0)
        .single()
        .expect("valid")
        + chrono::Duration::minutes(minutes)
}

async fn tokens_live_and_die_as_promised(database: Database) {
    let tokens = AccessTokens::new(database.clone(), POLICY);
    let asha = Uuid::new_v4();
    let ravi = Uuid::new_v4();

    let issued = tokens.issue(asha, at(0)).await.expect("issue");
    assert_eq!(issued.expires_at, at(8 * 60));
    assert_eq!(
        tokens
            .authenticate(&issued.token, at(1))
            .await
            .expect("check"),
        Some(asha)
    );
    assert_eq!(
        tokens
            .authenticate("not-a-token", at(1))
            .await
            .expect("check"),
        None
    );

    // Use keeps it alive past the idle window...
    for minute in (20..=460).step_by(20) {
        assert_eq!(
            tokens
                .authenticate(&issued.token, at(minute))
                .await
                .expect("check"),
            Some(asha),
            "minute {minute}"
        );
    }
    // ...but never past its absolute end.
    assert_eq!(
        tokens
            .authenticate(&issued.token, at(8 * 60 + 1))
            .await
            .expect("check"),
        None
    );

    let idle = tokens.issue(asha, at(0)).await.expect("issue");
    assert_eq!(
        tokens
            .authenticate(&idle.token, at(31))
            .await
            .expect("check"),
        None,
        "idle too long"
    );

    let logged_out = tokens.issue(asha, at(0)).await.expect("issue");
    tokens
        .revoke(&logged_out.token, at(1))
        .await
        .expect("revoke");
    assert_eq!(
        tokens
            .authenticate(&logged_out.token, at(2))
            .await
            .expect("check"),
        None
    );

    let first = tokens.issue(asha, at(0)).await.expect("issue");
    let second = tokens.issue(asha, at(0)).await.expect("issue");
    let other = tokens.issue(ravi, at(0)).await.expect("issue");
    tokens
        .revoke_all_for(asha, at(1))
        .await
        .expect("revoke all");
    assert_eq!(
        tokens
            .authenticate(&first.token, at(2))
            .await
            .expect("check"),
        None
    );
    assert_eq!(
        tokens
            .authenticate(&second.token, at(2))
            .await
            .expect("check"),
        None
    );
    assert_eq!(
        tokens
            .authenticate(&other.token, at(2))
            .await
            .expect("check"),
        Some(ravi)
    );

    let stored: Vec<String> = match &database {
        Database::Sqlite(sqlite) => {
            sqlx::query_scalar("SELECT lower(hex(token_hash)) || user_id FROM access_tokens")
                .fetch_all(sqlite.pool())
                .await
        }
        Database::Postgres(pool) => {
            sqlx::query_scalar("SELECT encode(token_hash, 'hex') || user_id FROM access_tokens")
                .fetch_all(pool)
                .await
        }
    }
    .expect("read the table");
    assert!(
        stored.iter().all(|row| !row.contains(&other.token)),
        "only digests are stored"
    );
}

#[tokio::test]
async fn sqlite_tokens_live_and_die_as_promised() {
    tokens_live_and_die_as_promised(TestDatabase::sqlite().connect().await).await;
}

#[tokio::test]
async fn postgres_tokens_live_and_die_as_promised() {
    let Some(database) = TestDatabase::postgres("postgres_tokens_live_and_die_as_promised").await
    else {
        return;
    };
    tokens_live_and_die_as_promised(database.connect().await).await;
}
