//! The assistant answers from the user's own figures, proposes quick entries without
//! recording them, and suggests what it understands when it does not.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, problem, spawn_app_with_admin};

const PASSWORD: &str = "correct horse battery staple";

async fn ask(app: &TestApp, token: &str, message: &str) -> Value {
    let response = app
        .post_as(
            Some(token),
            "/api/v1/assistant",
            &json!({ "message": message }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{message}");
    response.json().await.expect("json")
}

#[tokio::test]
async fn the_assistant_answers_from_the_customers_own_figures_and_records_nothing_unasked() {
    let app = spawn_app_with_admin().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    let asha = app.token_for("asha@example.com", PASSWORD).await;
    let today = chrono::Utc::now().date_naive();
    for (path, body) in [
        ("/api/v1/wallet/top-ups", json!({ "amount": "1000" })),
        (
            "/api/v1/expenses",
            json!({ "amount": "120.50", "category": "Groceries", "spent_on": today.to_string() }),
        ),
        (
            "/api/v1/expenses",
            json!({ "amount": "30", "category": "Food", "spent_on": today.to_string() }),
        ),
    ] {
        assert!(
            app.post_as(Some(&asha), path, &body)
                .await
                .status()
                .is_success()
        );
    }
    let put = app
        .call(
            Method::PUT,
            Some(&asha),
            "/api/v1/limits",
            Some(&json!({ "period": "monthly", "amount": "100" })),
        )
        .await;
    assert_eq!(put.status(), StatusCode::OK);

    let balance = ask(&app, &asha, "what's my balance").await;
    assert!(
        balance["text"]
            .as_str()
            .expect("text")
            .contains("849.50 INR"),
        "{balance}"
    );
    let groceries = ask(&app, &asha, "how much did I spend on groceries this month").await;
    assert!(
        groceries["text"]
            .as_str()
            .expect("text")
            .contains("120.50 INR on Groceries"),
        "{groceries}"
    );
    let over = ask(&app, &asha, "am I over my limit").await;
    assert!(
        over["text"].as_str().expect("text").starts_with("Yes."),
        "{over}"
    );
    let how = ask(&app, &asha, "how do I set a limit").await;
    assert_eq!(how["links"][0]["href"], "/limits");

    let before = app.event_count().await;
    let quick = ask(&app, &asha, "spent 250 on groceries yesterday").await;
    let yesterday = (today - chrono::Days::new(1)).to_string();
    assert_eq!(quick["proposed_expense"]["amount"], "250");
    assert_eq!(quick["proposed_expense"]["category"], "Groceries");
    assert_eq!(quick["proposed_expense"]["spent_on"], yesterday.as_str());
    assert_eq!(
        app.event_count().await,
        before,
        "nothing recorded before it is confirmed"
    );

    let lost = ask(&app, &asha, "tell me a joke").await;
    assert!(
        !lost["suggestions"].as_array().expect("list").is_empty(),
        "{lost}"
    );
    let empty = app
        .post_as(
            Some(&asha),
            "/api/v1/assistant",
            &json!({ "message": "  " }),
        )
        .await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem(empty).await["errors"][0]["field"], "message");

    let admin = app.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let queue = ask(&app, &admin, "how many tickets are in my queue").await;
    assert!(
        queue["text"]
            .as_str()
            .expect("text")
            .contains("open ticket(s)"),
        "{queue}"
    );
}

#[tokio::test]
async fn the_panel_answers_on_the_page_it_was_asked_from_and_a_confirmed_entry_is_recorded() {
    let app = spawn_app_with_admin().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    let mut asha = Browser::on(&app);
    asha.sign_in("asha@example.com", PASSWORD).await;
    asha.post("/top-up", &[("amount", "500")]).await;

    let asked = asha
        .post(
            "/assistant",
            &[("message", "what's my balance?"), ("back", "/limits")],
        )
        .await;
    assert_eq!(crate::browser::location(&asked), "/limits");
    let page = asha.follow(asked).await;
    assert!(
        page.contains("500.00 INR") && page.contains("<details id=\"assistant\" open>"),
        "{page}"
    );
    assert!(
        !asha.page("/limits").await.contains("500.00 INR"),
        "shown once"
    );

    let asked = asha
        .post(
            "/assistant",
            &[
                ("message", "spent 42 on taxi today"),
                ("back", "//evil.example"),
            ],
        )
        .await;
    assert_eq!(
        crate::browser::location(&asked),
        "/",
        "only back to this site"
    );
    let page = asha.page("/dashboard").await;
    assert!(page.contains("Record 42 for Taxi"), "{page}");
    let today = chrono::Utc::now().date_naive().to_string();
    let confirmed = asha
        .post(
            "/expenses",
            &[
                ("amount", "42"),
                ("category", "Taxi"),
                ("description", "spent 42 on taxi today"),
                ("spent_on", &today),
            ],
        )
        .await;
    let expenses = asha.follow(confirmed).await;
    assert!(expenses.contains("Expense recorded.") && expenses.contains("Taxi"));
}
