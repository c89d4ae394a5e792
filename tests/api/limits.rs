//! Overload gives clear answers instead of unbounded memory: bodies over the limit are 413,
//! requests beyond the in-flight cap or past the timeout are 503 with `Retry-After`, and
//! nothing of a refused request is stored.

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, problem, spawn_app, spawn_app_configured};

const PASSWORD: &str = "correct horse battery staple";

/// A request whose headers promise a body that never fully comes: the server works on it
/// (its handler waits for the rest of the body) until the connection closes.
async fn stalled_request(app: &TestApp) -> TcpStream {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.expect("connected");
    stream
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: test\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":",
        )
        .await
        .expect("sent");
    stream
}

/// The status line and headers of the answer on `stream`, lower-cased.
async fn answer_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0_u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = stream.read(&mut byte).await.expect("read");
        assert_eq!(read, 1, "the connection closed before an answer");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).to_lowercase()
}

#[tokio::test]
async fn a_json_body_over_the_limit_is_413_and_stores_nothing() {
    let app = spawn_app().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    let token = app.token_for("asha@example.com", PASSWORD).await;
    let before = app.event_count().await;
    let huge = json!({
        "amount": "12.50", "category": "Food", "spent_on": "2026-11-20",
        "description": "x".repeat(70 * 1024)
    });
    let response = app
        .call(Method::POST, Some(&token), "/api/v1/expenses", Some(&huge))
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = problem(response).await;
    assert_eq!(body["type"], "/problems/payload-too-large");
    assert_eq!(body["status"], 413);

    // The same with an Idempotency-Key, which buffers the body first.
    let response = app
        .client
        .post(format!("{}/api/v1/expenses", app.address))
        .bearer_auth(&token)
        .header("Idempotency-Key", "huge-1")
        .json(&huge)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem(response).await["status"], 413);
    assert_eq!(app.event_count().await, before, "nothing was stored");

    // Just under the limit the body is read, and the text's own limit answers.
    let long = json!({
        "amount": "12.50", "category": "Food", "spent_on": "2026-11-20",
        "description": "x".repeat(60 * 1024)
    });
    let response = app
        .call(Method::POST, Some(&token), "/api/v1/expenses", Some(&long))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.event_count().await, before, "nothing was stored");
}

#[tokio::test]
async fn beyond_the_in_flight_cap_a_request_gets_503_with_retry_after() {
    let app = spawn_app_configured(|config| config.max_in_flight_requests = 1).await;
    let mut stalled = stalled_request(&app).await;
    // The stalled request takes the only place once the server has read its headers.
    let mut shed = None;
    for _ in 0..200 {
        let response = app.get("/readyz").await;
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            shed = Some(response);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let shed = shed.expect("a request beyond the cap is turned away");
    assert_eq!(
        shed.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body = problem(shed).await;
    assert_eq!(body["type"], "/problems/overloaded");
    assert_eq!(body["status"], 503);

    // Liveness and metrics answer whatever the load, and count what was turned away.
    assert_eq!(app.healthz().await.status(), StatusCode::OK);
    let metrics = app.get("/metrics").await.text().await.expect("text");
    let shed_total = metrics
        .lines()
        .find_map(|line| line.strip_prefix("expense_tracker_http_requests_shed_total "))
        .and_then(|n| n.parse::<u64>().ok())
        .expect("the shed counter");
    assert!(shed_total >= 1, "{shed_total}");

    // Once the stalled request is over, its place is free again.
    stalled
        .write_all(format!("{:<91}", "\"a@b.c\"}").as_bytes())
        .await
        .expect("the rest of the body");
    let head = answer_head(&mut stalled).await;
    assert!(head.starts_with("http/1.1 4"), "{head}");
    drop(stalled);
    let mut served = false;
    for _ in 0..200 {
        if app.get("/readyz").await.status() == StatusCode::OK {
            served = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(served, "the place was never given back");
}

#[tokio::test]
async fn a_request_past_the_timeout_gets_503_with_retry_after() {
    let app = spawn_app_configured(|config| config.request_timeout_seconds = 0.3).await;
    let mut stalled = stalled_request(&app).await;
    let head = answer_head(&mut stalled).await;
    assert!(head.starts_with("http/1.1 503"), "{head}");
    assert!(head.contains("retry-after: 1\r\n"), "{head}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    let metrics = app.get("/metrics").await.text().await.expect("text");
    assert!(
        metrics.contains("expense_tracker_http_requests_timed_out_total 1"),
        "{metrics}"
    );
}
