use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{problem, spawn_app, spawn_app_on_postgres};

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
    let value = |name: &str| {
        text.lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} in {text}"))
    };
    let head = value("expense_tracker_event_log_head ");
    assert!(head > 0);
    assert_eq!(
        value("expense_tracker_projection_position{projection=\"wallets\"}"),
        head
    );
    assert_eq!(
        value("expense_tracker_projection_lag_events{projection=\"wallets\"}"),
        0
    );
    assert_eq!(
        value("expense_tracker_projection_failed{projection=\"wallets\"}"),
        0
    );
}
