use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{problem, spawn_app, spawn_app_on_postgres};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test]
async fn register_returns_201_and_logging_in_straight_after_works() {
    let app = spawn_app().await;
    let user_id = app.register_customer("asha@example.com", PASSWORD).await;

    let response = app.login("asha@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["user_id"], user_id);
    assert_eq!(body["role"], "customer");
    assert!(body["token"].as_str().is_some_and(|t| t.len() >= 32));
}

#[tokio::test]
async fn me_tells_who_the_token_belongs_to() {
    let app = spawn_app().await;
    let user_id = app.register_customer("Asha@Example.com", PASSWORD).await;
    let token = app.token_for("asha@example.com", PASSWORD).await;

    let response = app.me(Some(&token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({ "user_id": user_id, "name": "Asha Rao", "email": "Asha@Example.com", "role": "customer" })
    );
}

#[tokio::test]
async fn registering_an_email_again_in_another_case_is_a_409_problem_and_stores_nothing() {
    let app = spawn_app().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    let before = app.event_count().await;

    let response = app
        .register(
            "Someone Else",
            "ASHA@example.COM",
            "+44 20 7946 0958",
            PASSWORD,
        )
        .await;

    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(
        problem(response).await["detail"]
            .as_str()
            .is_some_and(|d| d.contains("email"))
    );
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn concurrent_sign_ups_with_one_email_let_exactly_one_through() {
    let app = spawn_app().await;
    let attempts = (0..10).map(|i| {
        let email = if i % 2 == 0 {
            "same@example.com"
        } else {
            "SAME@example.com"
        };
        app.register("Asha Rao", email, "+91 98765 43210", PASSWORD)
    });
    let statuses = statuses(attempts).await;

    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        9,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn concurrent_sign_ups_with_one_email_let_exactly_one_through_on_postgres() {
    let Some(app) = spawn_app_on_postgres(
        "concurrent_sign_ups_with_one_email_let_exactly_one_through_on_postgres",
    )
    .await
    else {
        return;
    };
    let attempts =
        (0..10).map(|_| app.register("Asha Rao", "same@example.com", "+91 98765 43210", PASSWORD));
    let statuses = statuses(attempts).await;
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(app.event_count().await, 2, "one account and its wallet");
}

async fn statuses(
    requests: impl Iterator<Item = impl std::future::Future<Output = reqwest::Response>>,
) -> Vec<StatusCode> {
    futures_util::future::join_all(requests)
        .await
        .iter()
        .map(reqwest::Response::status)
        .collect()
}

#[tokio::test]
async fn invalid_fields_are_a_422_problem_naming_each_field_and_nothing_is_stored() {
    let app = spawn_app().await;
    let response = app.register("  ", "not-an-email", "12", "short").await;

    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem = problem(response).await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, vec!["name", "email", "mobile", "password"]);
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn malformed_json_missing_and_unknown_fields_are_400_problems() {
    let app = spawn_app().await;
    let malformed = app
        .client
        .post(format!("{}/api/v1/auth/register", app.address))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("answered");
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(problem(malformed).await["status"], 400);

    let missing = app
        .post_json("/api/v1/auth/register", &json!({ "name": "Asha" }))
        .await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    let unknown = app
        .post_json(
            "/api/v1/auth/register",
            &json!({ "name": "Asha", "email": "a@example.com", "mobile": "+919876543210", "password": PASSWORD, "role": "admin" }),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    assert!(
        problem(unknown).await["detail"]
            .as_str()
            .is_some_and(|d| d.contains("role"))
    );
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_401() {
    let app = spawn_app().await;
    app.register_customer("asha@example.com", PASSWORD).await;

    let wrong_password = app
        .login("asha@example.com", "not the password at all")
        .await;
    let unknown_email = app.login("nobody@example.com", PASSWORD).await;
    let not_an_email = app.login("@@@", PASSWORD).await;

    for response in [wrong_password, unknown_email, not_an_email] {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer")
        );
        assert_eq!(
            problem(response).await["detail"],
            "Wrong email or password."
        );
    }
}

#[tokio::test]
async fn me_without_a_valid_token_is_a_401_problem() {
    let app = spawn_app().await;
    assert_eq!(app.me(None).await.status(), StatusCode::UNAUTHORIZED);
    let forged = app.me(Some("0123456789abcdef0123456789abcdef")).await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(problem(forged).await["status"], 401);
}

#[tokio::test]
async fn logout_revokes_the_token_and_only_that_token() {
    let app = spawn_app().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    let phone = app.token_for("asha@example.com", PASSWORD).await;
    let laptop = app.token_for("asha@example.com", PASSWORD).await;

    assert_eq!(app.logout(&phone).await.status(), StatusCode::NO_CONTENT);

    assert_eq!(
        app.me(Some(&phone)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.logout(&phone).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.me(Some(&laptop)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_database_files_hold_no_password_or_token_in_clear() {
    let app = spawn_app().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    let token = app.token_for("asha@example.com", PASSWORD).await;

    let bytes = app.data_files_bytes();
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(
        contains("UserRegistered"),
        "the scan reads the database (sanity check)"
    );
    assert!(!contains(PASSWORD), "the password is stored in clear");
    assert!(!contains(&token), "the token is stored in clear");
}

#[tokio::test]
async fn five_failures_lock_the_account_with_429_and_retry_after_but_not_others() {
    let app = spawn_app().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    app.register_customer("ravi@example.com", PASSWORD).await;

    for attempt in 1..=5 {
        let response = app.login("asha@example.com", "a wrong password").await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }
    // Even the right password waits now, in whatever case the address is typed.
    let locked = app.login("ASHA@example.com", PASSWORD).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = locked
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=15 * 60).contains(&retry_after), "{retry_after}");
    assert_eq!(problem(locked).await["status"], 429);

    assert_eq!(
        app.login("ravi@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_successful_login_forgets_earlier_failures() {
    let app = spawn_app().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    for _ in 0..4 {
        app.login("asha@example.com", "a wrong password").await;
    }
    assert_eq!(
        app.login("asha@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
    for _ in 0..4 {
        app.login("asha@example.com", "a wrong password").await;
    }
    assert_eq!(
        app.login("asha@example.com", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn fifty_failures_from_one_address_lock_that_address() {
    let app = spawn_app().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    for n in 0..50 {
        let response = app
            .login(&format!("nobody{n}@example.com"), "a wrong password")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    let response = app.login("asha@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}
