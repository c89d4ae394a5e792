//! Remembered answers, on both databases.

use chrono::{Duration, TimeZone, Utc};
use infrastructure::database::Database;
use infrastructure::idempotency::{Claim, IdempotencyKeys, KeyState, StoredAnswer};
use infrastructure::testing::TestDatabase;

/// What the key "k" of `scope` means for `request` at `at`.
async fn claim(
    keys: &IdempotencyKeys,
    scope: &str,
    request: &[u8],
    at: chrono::DateTime<Utc>,
) -> KeyState {
    keys.claim(scope, "k", request, at).await.expect("claim")
}

async fn keys_are_claimed_answered_and_forgotten(database: Database) {
    let keys = IdempotencyKeys::new(database);
    let now = Utc
        .with_ymd_and_hms(2026, 11, 21, 10, 0, 0)
        .single()
        .expect("valid");
    let answer = StoredAnswer {
        status: 201,
        content_type: Some("application/json".into()),
        body: br#"{"expense_id":"x"}"#.to_vec(),
    };

    let fresh = |at| {
        KeyState::Claimed(Claim {
            first_claimed_at: at,
            taken_over: false,
        })
    };
    // A retry that takes over a claim keeps the first holder's instant.
    let taken_over = KeyState::Claimed(Claim {
        first_claimed_at: now,
        taken_over: true,
    });

    assert_eq!(claim(&keys, "user:a", b"request", now).await, fresh(now));
    assert_eq!(
        claim(&keys, "user:a", b"request", now).await,
        KeyState::InProgress
    );
    keys.answer("user:a", "k", &answer).await.expect("answer");
    assert_eq!(
        claim(&keys, "user:a", b"request", now).await,
        KeyState::Answered(answer.clone())
    );
    assert_eq!(
        claim(&keys, "user:a", b"another", now).await,
        KeyState::Mismatch
    );
    assert_eq!(
        claim(&keys, "user:b", b"another", now).await,
        fresh(now),
        "per scope"
    );

    // A claim given up after a server-side failure is taken over by the next retry at once,
    // as the same request only: the failure may have come after the work landed.
    keys.release("user:b", "k").await.expect("release");
    assert_eq!(
        claim(&keys, "user:b", b"different", now + Duration::seconds(1)).await,
        KeyState::Mismatch
    );
    assert_eq!(
        claim(&keys, "user:b", b"another", now + Duration::seconds(1)).await,
        taken_over,
        "released"
    );
    assert_eq!(
        claim(&keys, "user:b", b"another", now + Duration::seconds(2)).await,
        KeyState::InProgress,
        "the retry holds it now"
    );

    // A claim left unanswered (its instance died) is taken over once it is clearly
    // abandoned, not before, and by one retry at a time.
    assert_eq!(claim(&keys, "user:c", b"request", now).await, fresh(now));
    assert_eq!(
        claim(&keys, "user:c", b"request", now + Duration::seconds(29)).await,
        KeyState::InProgress
    );
    assert_eq!(
        claim(&keys, "user:c", b"request", now + Duration::seconds(31)).await,
        taken_over,
        "abandoned"
    );
    assert_eq!(
        claim(&keys, "user:c", b"request", now + Duration::seconds(32)).await,
        KeyState::InProgress,
        "the new holder's time starts when it took the claim"
    );
    assert_eq!(
        claim(&keys, "user:c", b"request", now + Duration::seconds(62)).await,
        taken_over,
        "abandoned again, still with the first instant"
    );
    // Abandonment follows the server's request timeout when told it.
    let patient = keys
        .clone()
        .abandoned_after(std::time::Duration::from_secs(95));
    assert_eq!(claim(&patient, "user:d", b"request", now).await, fresh(now));
    assert_eq!(
        claim(&patient, "user:d", b"request", now + Duration::seconds(94)).await,
        KeyState::InProgress
    );
    assert_eq!(
        claim(&patient, "user:d", b"request", now + Duration::seconds(96)).await,
        taken_over,
        "abandoned after its own time"
    );
    // An answered key is kept for its whole lifetime.
    assert_eq!(
        claim(&keys, "user:a", b"request", now + Duration::hours(1)).await,
        KeyState::Answered(answer.clone())
    );

    // After that the key is new, with a new instant: a later use of the same key is
    // another request, not a retry of the first.
    let tomorrow = now + Duration::hours(24) + Duration::seconds(1);
    assert_eq!(
        claim(&keys, "user:a", b"another", tomorrow).await,
        fresh(tomorrow),
        "expired"
    );
}

#[tokio::test]
async fn sqlite_keys_are_claimed_answered_and_forgotten() {
    keys_are_claimed_answered_and_forgotten(TestDatabase::sqlite().connect().await).await;
}

#[tokio::test]
async fn postgres_keys_are_claimed_answered_and_forgotten() {
    let Some(database) =
        TestDatabase::postgres("postgres_keys_are_claimed_answered_and_forgotten").await
    else {
        return;
    };
    keys_are_claimed_answered_and_forgotten(database.connect().await).await;
}
