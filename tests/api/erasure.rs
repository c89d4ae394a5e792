use reqwest::StatusCode;
use serde_json::json;

use infrastructure::testing::ReaderInTheLog;

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, spawn_app_with_admin};

const PASSWORD: &str = "correct horse battery staple";
const NAME: &str = "Zanele Okonkwo-Ruiz";
const EMAIL: &str = "zanele.unique@example.org";
const MOBILE: &str = "+27831234567";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

async fn the_key_of(app: &TestApp, user_id: &str) -> Vec<u8> {
    let database = app.own_database().await;
    let infrastructure::database::Database::Sqlite(sqlite) = &database else {
        unreachable!("a SQLite app")
    };
    let key: Vec<u8> = sqlx::query_scalar("SELECT key FROM personal_data_keys WHERE subject = $1")
        .bind(user_id)
        .fetch_one(sqlite.pool())
        .await
        .expect("the person has a key");
    database.close().await;
    key
}

#[tokio::test]
async fn personal_data_is_never_stored_in_clear_and_erasure_leaves_nothing_readable() {
    let app = spawn_app_with_admin().await;
    let admin = app.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let response = app.register(NAME, EMAIL, MOBILE, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let user_id = response.json::<serde_json::Value>().await.expect("json")["user_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let token = app.token_for(EMAIL, PASSWORD).await;
    let me: serde_json::Value = app.me(Some(&token)).await.json().await.expect("json");
    assert_eq!(
        me["name"], NAME,
        "sealed data reads back while the key exists"
    );

    let before = app.data_files_bytes();
    for secret in [NAME, EMAIL, MOBILE] {
        assert!(
            !contains(&before, secret.as_bytes()),
            "{secret} is stored in clear"
        );
    }
    let key = the_key_of(&app, &user_id).await;
    assert_eq!(key.len(), 32);
    let events_before = app.event_count().await;

    let erased = app
        .post_as(
            Some(&admin),
            &format!("/api/v1/admin/users/{user_id}/erase"),
            &json!({}),
        )
        .await;
    assert_eq!(erased.status(), StatusCode::NO_CONTENT);

    assert_eq!(
        app.event_count().await,
        events_before + 1,
        "the history stays; the erasure is an event"
    );
    let after = app.data_files_bytes();
    assert!(!contains(&after, &key), "the key is gone from every file");
    for secret in [NAME, EMAIL, MOBILE] {
        assert!(
            !contains(&after, secret.as_bytes()),
            "{secret} is readable after erasure"
        );
    }
    assert_eq!(
        app.me(Some(&token)).await.status(),
        StatusCode::UNAUTHORIZED,
        "tokens die"
    );
    assert_eq!(
        app.login(EMAIL, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The address was released: someone may sign up with it again.
    assert_eq!(
        app.register("Someone New", EMAIL, MOBILE, PASSWORD)
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn erasing_twice_completes_quietly_and_unknown_people_are_404() {
    let app = spawn_app_with_admin().await;
    let admin = app.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let user_id = app.register_customer("asha@example.com", PASSWORD).await;
    for _ in 0..2 {
        let erased = app
            .post_as(
                Some(&admin),
                &format!("/api/v1/admin/users/{user_id}/erase"),
                &json!({}),
            )
            .await;
        assert_eq!(erased.status(), StatusCode::NO_CONTENT);
    }
    let unknown = app
        .post_as(
            Some(&admin),
            "/api/v1/admin/users/0190f3c4-0000-7000-8000-000000000000/erase",
            &json!({}),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

/// The old copy of an erased key is wiped from SQLite's log only once no reader is still in
/// it. A reader that stays (here: a transaction left open on another connection) gets the
/// admin a 503 that says so, with the key already destroyed and the person signed out;
/// erasing again, once the reader has gone, wipes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_kept_in_the_log_delays_the_wipe_and_erasing_again_finishes_it() {
    let app = spawn_app_with_admin().await;
    let admin = app.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let user_id = app.register_customer(EMAIL, PASSWORD).await;
    let token = app.token_for(EMAIL, PASSWORD).await;
    let key = the_key_of(&app, &user_id).await;

    let database = app.own_database().await;
    let infrastructure::database::Database::Sqlite(sqlite) = &database else {
        unreachable!("a SQLite app")
    };
    let reader = ReaderInTheLog::enter(sqlite, "personal_data_keys").await;

    let erase_path = format!("/api/v1/admin/users/{user_id}/erase");
    let held = app.post_as(Some(&admin), &erase_path, &json!({})).await;
    assert_eq!(held.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(held.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = held.json().await.expect("a problem");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("erase again")),
        "{problem}"
    );
    assert_eq!(
        app.me(Some(&token)).await.status(),
        StatusCode::UNAUTHORIZED,
        "signed out at once"
    );

    reader.leave().await;
    database.close().await;
    assert_eq!(
        app.post_as(Some(&admin), &erase_path, &json!({}))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert!(
        !contains(&app.data_files_bytes(), &key),
        "the key is gone from every file"
    );
}
