use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{problem, spawn_app, spawn_app_on_postgres};

/// The value of the first line of a `/metrics` page that starts with `series`.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{series} in {text}"))
}

#[tokio::test]
async fn healthz_answers_200_alive() {
    let app = spawn_app().await;
    let response = app.healthz().await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "alive");
}

#[tokio::test]
async fn a_first_run_creates_and_migrates_the_sqlite_file_in_the_data_directory() {
    let app = spawn_app().await;
    assert!(app.data_dir.join("expense-tracker.db").is_file());
    let response = app.readyz().await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["database"], "sqlite");
}

#[tokio::test]
async fn readyz_answers_200_on_postgres() {
    let Some(app) = spawn_app_on_postgres("readyz_answers_200_on_postgres").await else {
        return;
    };
    let response = app.readyz().await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["database"], "postgres");
}

#[tokio::test]
async fn readyz_answers_503_problem_when_the_database_is_gone() {
    let Some(app) =
        spawn_app_on_postgres("readyz_answers_503_problem_when_the_database_is_gone").await
    else {
        return;
    };
    app.postgres().expect("on postgres").destroy_now().await;

    let response = app.readyz().await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let problem = problem(response).await;
    assert_eq!(problem["status"], 503);
    assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    // Liveness does not depend on the database.
    assert_eq!(app.healthz().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = spawn_app().await;
    let response = app.get("/no/such/page").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(problem(response).await["status"], 404);
}

#[tokio::test]
async fn the_server_shuts_down_gracefully_when_asked() {
    let app = spawn_app().await;
    assert_eq!(app.healthz().await.status(), StatusCode::OK);
    app.shut_down().await.expect("a clean shutdown");
}

#[tokio::test]
async fn metrics_show_each_read_model_against_the_log() {
    let app = crate::helpers::spawn_app().await;
    app.register_customer("asha@example.com", "correct horse battery staple")
        .await;
    let token = app
        .token_for("asha@example.com", "correct horse battery staple")
        .await;
    // A read shows every write acknowledged before it: once it answers, the read models
    // stand at the head (and /metrics itself waits for nothing).
    assert_eq!(app.me(Some(&token)).await.status(), StatusCode::OK);
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain"))
    );
    let text = response.text().await.expect("text");
    let value = |series: &str| metric(&text, series);
    let head = value("expense_tracker_event_log_head ");
    assert!(head > 0.0);
    assert_eq!(
        value("expense_tracker_projection_position{projection=\"wallets\"}"),
        head
    );
    assert_eq!(
        value("expense_tracker_projection_lag_events{projection=\"wallets\"}"),
        0.0
    );
    assert_eq!(
        value("expense_tracker_projection_failed{projection=\"wallets\"}"),
        0.0
    );
}

#[tokio::test]
async fn a_request_id_is_echoed_and_written_into_the_events_it_caused() {
    let app = spawn_app().await;
    // A sane id from the caller is kept.
    let response = app
        .client
        .post(format!("{}/api/v1/auth/register", app.address))
        .header("x-request-id", "probe-7f3a")
        .json(&serde_json::json!({
            "name": "Asha Rao", "email": "asha@example.com",
            "mobile": "+91 98765 43210", "password": "correct horse battery staple"
        }))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("probe-7f3a")
    );
    let database = app.own_database().await;
    let infrastructure::database::Database::Sqlite(sqlite) = &database else {
        unreachable!("the test app runs on SQLite")
    };
    let metadata: Vec<String> = sqlx::query_scalar("SELECT metadata FROM events")
        .fetch_all(sqlite.pool())
        .await
        .expect("events");
    assert!(!metadata.is_empty());
    for text in &metadata {
        let value: Value = serde_json::from_str(text).expect("json");
        assert_eq!(value["request_id"], "probe-7f3a", "{text}");
    }
    database.close().await;

    // Without one, or with one that is not plain, the product makes one up.
    for sent in [None, Some("a forged\tline")] {
        let mut request = app.client.get(format!("{}/healthz", app.address));
        if let Some(sent) = sent {
            request = request.header("x-request-id", sent);
        }
        let response = request.send().await.expect("answered");
        let id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .expect("an id")
            .to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    }
}

/// The layers that wrap the whole product reach every kind of answer: a route of the API,
/// its document, a path no route answers and a method a route does not take.
#[tokio::test]
async fn every_answer_carries_the_security_headers_and_a_request_id() {
    let app = spawn_app().await;
    let answers = [
        (
            reqwest::Method::GET,
            "/api/v1/wallet",
            StatusCode::UNAUTHORIZED,
        ),
        (reqwest::Method::GET, "/api/openapi.json", StatusCode::OK),
        (
            reqwest::Method::GET,
            "/api/v1/no-such-route",
            StatusCode::NOT_FOUND,
        ),
        (
            reqwest::Method::DELETE,
            "/api/v1/wallet",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    for (method, path, status) in answers {
        let response = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), status, "{method} {path}");
        let headers = response.headers();
        assert_eq!(headers["x-frame-options"], "DENY", "{method} {path}");
        assert_eq!(
            headers["x-content-type-options"], "nosniff",
            "{method} {path}"
        );
        assert_eq!(headers["referrer-policy"], "same-origin", "{method} {path}");
        assert!(
            headers.contains_key("content-security-policy"),
            "{method} {path}"
        );
        let id = headers["x-request-id"].to_str().expect("ascii");
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{method} {path}: {id}");
    }
}

#[tokio::test]
async fn metrics_count_requests_by_route_commands_by_outcome_batches_mail_and_leases() {
    let (app, smtp) = crate::helpers::spawn_app_with_smtp().await;
    let asha = "asha@example.com";
    app.register_customer(asha, "correct horse battery staple")
        .await;
    let token = app.token_for(asha, "correct horse battery staple").await;
    let refused = app
        .post_as(
            Some(&token),
            "/api/v1/wallet/top-ups",
            &serde_json::json!({ "amount": "0" }),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let expense = serde_json::json!({
        "amount": "5", "category": "Food", "description": "tea", "spent_on": "2026-11-10"
    });
    let topped = app
        .post_as(
            Some(&token),
            "/api/v1/wallet/top-ups",
            &serde_json::json!({ "amount": "50" }),
        )
        .await;
    assert_eq!(topped.status(), StatusCode::CREATED);
    for _ in 0..3 {
        let recorded = app
            .post_as(Some(&token), "/api/v1/expenses", &expense)
            .await;
        assert_eq!(recorded.status(), StatusCode::CREATED);
    }

    // Voiding an expense that does not exist: the wallet refuses the command.
    let refused = app
        .post_as(
            Some(&token),
            &format!("/api/v1/expenses/{}/void", uuid::Uuid::new_v4()),
            &serde_json::json!({ "reason": "typo" }),
        )
        .await;
    assert!(refused.status().is_client_error(), "{}", refused.status());

    let text = app.get("/metrics").await.text().await.expect("text");
    let value = |series: &str| metric(&text, series);
    assert_eq!(
        value(
            "expense_tracker_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/expenses\",status=\"201\"}"
        ),
        3.0
    );
    assert_eq!(
        value(
            "expense_tracker_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/expenses\",status=\"201\",le=\"+Inf\"}"
        ),
        3.0
    );
    assert_eq!(
        value("expense_tracker_commands_total{command=\"RecordExpense\",outcome=\"accepted\"}"),
        3.0
    );
    assert_eq!(
        value("expense_tracker_commands_total{command=\"VoidExpense\",outcome=\"rejected\"}"),
        1.0
    );
    assert!(value("expense_tracker_append_batch_events_count ") >= 5.0);
    assert_eq!(value("expense_tracker_outbox_depth "), 0.0);
    assert_eq!(value("expense_tracker_mail_failures_total "), 0.0);
    assert_eq!(value("expense_tracker_mail_parked "), 0.0);
    for worker in ["projections", "support", "scheduler", "mail", "sealer"] {
        assert_eq!(
            value(&format!(
                "expense_tracker_worker_leader{{worker=\"{worker}\"}}"
            )),
            1.0,
            "the only instance runs {worker}"
        );
    }

    // Then a mail the server refuses: its failed attempt is counted, and once parked (as
    // the dispatcher parks it after its last attempt) it shows as parked.
    smtp.refuse_recipients(true);
    let reset = app
        .post_json(
            "/api/v1/auth/password-reset",
            &serde_json::json!({ "email": asha }),
        )
        .await;
    assert!(reset.status().is_success(), "{}", reset.status());
    app.park_pending_mail_after_a_failed_attempt().await;
    let text = app.get("/metrics").await.text().await.expect("text");
    let value = |series: &str| metric(&text, series);
    assert!(value("expense_tracker_mail_failures_total ") >= 1.0);
    assert_eq!(value("expense_tracker_mail_parked "), 1.0);
}
