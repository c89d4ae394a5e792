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
    trusted_for: Duration::from_secs(1),
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
    assert_eq!(
        tokens
            .authenticate(&logged_out.token, at(1))
            .await
            .expect("check"),
        Some(asha),
        "alive, and now remembered"
    );
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
    for remembered in [&first, &second, &other] {
        tokens
            .authenticate(&remembered.token, at(1))
            .await
            .expect("check");
    }
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

/// Another instance's revocation (another server, or another process on the same file) is
/// seen once the token's trusted second has passed, and not looked up before.
async fn a_revocation_elsewhere_is_seen_within_the_trusted_second(database: Database) {
    let here = AccessTokens::new(database.clone(), POLICY);
    let elsewhere = AccessTokens::new(database, POLICY);
    let asha = Uuid::new_v4();
    let issued = here.issue(asha, at(0)).await.expect("issue");
    let second = |millis: i64| at(1) + chrono::Duration::milliseconds(millis);

    assert_eq!(
        here.authenticate(&issued.token, second(0))
            .await
            .expect("check"),
        Some(asha)
    );
    elsewhere
        .revoke(&issued.token, second(100))
        .await
        .expect("revoke");
    assert_eq!(
        here.authenticate(&issued.token, second(900))
            .await
            .expect("check"),
        Some(asha),
        "trusted without a lookup for a second"
    );
    assert_eq!(
        here.authenticate(&issued.token, second(1_001))
            .await
            .expect("check"),
        None,
        "looked up again, and found revoked"
    );
}

#[tokio::test]
async fn sqlite_a_revocation_elsewhere_is_seen_within_the_trusted_second() {
    a_revocation_elsewhere_is_seen_within_the_trusted_second(
        TestDatabase::sqlite().connect().await,
    )
    .await;
}

#[tokio::test]
async fn postgres_a_revocation_elsewhere_is_seen_within_the_trusted_second() {
    let Some(database) =
        TestDatabase::postgres("postgres_a_revocation_elsewhere_is_seen_within_the_trusted").await
    else {
        return;
    };
    a_revocation_elsewhere_is_seen_within_the_trusted_second(database.connect().await).await;
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
