//! Another customer's things: every route of the OpenAPI document that takes an id is tried
//! by a second customer with the real ids of the first one's expense, receipt, goal,
//! reminder, payment and ticket. Each answer is 404 (or 403 where customers may not go at
//! all), never the first customer's data, and the first customer's state is left as it was.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use crate::openapi::{document, each_operation};

const PASSWORD: &str = "correct horse battery staple";

async fn created(response: reqwest::Response, id: &str) -> String {
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    body[id]
        .as_str()
        .unwrap_or_else(|| panic!("no {id} in {body}"))
        .to_owned()
}

/// What the first customer owns, by the name of the path parameter that takes it.
async fn things_of_asha(app: &TestApp, asha: &str, asha_id: &str) -> BTreeMap<String, String> {
    let post = |path: String, body: Value| async move {
        app.call(Method::POST, Some(asha), &path, Some(&body)).await
    };
    let top_up = post("/api/v1/wallet/top-ups".into(), json!({ "amount": "1000" })).await;
    assert_eq!(top_up.status(), StatusCode::CREATED);
    let limit = app
        .call(
            Method::PUT,
            Some(asha),
            "/api/v1/limits",
            Some(&json!({ "period": "monthly", "first_day": 1, "amount": "100" })),
        )
        .await;
    assert_eq!(limit.status(), StatusCode::OK);
    let expense = json!({ "amount": "250", "category": "Food", "spent_on": "2026-11-20",
                          "description": "Asha's secret dinner" });
    let expense_id = created(post("/api/v1/expenses".into(), expense).await, "expense_id").await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF\n".to_vec())
            .file_name("bill.pdf"),
    );
    let receipt = app
        .client
        .post(format!("{}/api/v1/receipts", app.address))
        .bearer_auth(asha)
        .multipart(form)
        .send()
        .await
        .expect("answered");
    let receipt_id = created(receipt, "receipt_id").await;
    let goal = json!({ "name": "Asha's bike", "target": "300", "due": "2027-03-01" });
    let goal_id = created(post("/api/v1/savings-goals".into(), goal).await, "goal_id").await;
    let contributed = post(
        format!("/api/v1/savings-goals/{goal_id}/contributions"),
        json!({ "amount": "50" }),
    )
    .await;
    assert_eq!(contributed.status(), StatusCode::OK);
    let reminder = json!({ "title": "Asha's card bill", "due": "2027-01-24", "repeat": "monthly" });
    let reminder_id = created(
        post("/api/v1/reminders".into(), reminder).await,
        "reminder_id",
    )
    .await;
    let payment = json!({ "amount": "150", "category": "Rent", "description": "Asha's flat",
                          "cadence": "monthly", "first_due": "2027-01-31", "remind_days_before": 3 });
    let payment_id = created(
        post("/api/v1/recurring-payments".into(), payment).await,
        "payment_id",
    )
    .await;
    // The crossed limit opens a ticket (no agent yet: it waits, unassigned).
    let mut ticket_id = None;
    for _ in 0..500 {
        let tickets: Value = app
            .call(Method::GET, Some(asha), "/api/v1/tickets", None)
            .await
            .json()
            .await
            .expect("json");
        if let Some(id) = tickets["items"][0]["ticket_id"].as_str() {
            ticket_id = Some(id.to_owned());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let ticket_id = ticket_id.expect("the crossed limit opened a ticket");
    [
        ("expense_id", expense_id),
        ("receipt_id", receipt_id),
        ("goal_id", goal_id),
        ("reminder_id", reminder_id),
        ("payment_id", payment_id),
        ("ticket_id", ticket_id),
        ("user_id", asha_id.to_owned()),
        ("customer_id", asha_id.to_owned()),
        // Routes customers may not use at all: any id shows that.
        ("event_id", asha_id.to_owned()),
        ("message_id", asha_id.to_owned()),
        ("name", "wallets".to_owned()),
    ]
    .into_iter()
    .map(|(name, id)| (name.to_owned(), id))
    .collect()
}

/// A body the route would take from its owner, so that an answer is about the id.
fn body_for(path: &str, asha_id: &str) -> Value {
    let last = path.rsplit('/').next().unwrap_or_default();
    match last {
        "void" => json!({ "reason": "not mine" }),
        "contributions" | "withdrawals" => json!({ "amount": "1" }),
        "comments" => json!({ "text": "hello" }),
        "reopen" => json!({ "reason": "again" }),
        "resolve" => json!({ "resolution": "done" }),
        "assign" => json!({ "assignee": asha_id }),
        _ => json!({}),
    }
}

/// Everything the first customer can see of their own: compared before and after.
async fn state_of(app: &TestApp, token: &str) -> Vec<Value> {
    let mut state = Vec::new();
    for path in [
        "/api/v1/wallet",
        "/api/v1/expenses",
        "/api/v1/dashboard",
        "/api/v1/reminders",
        "/api/v1/recurring-payments",
        "/api/v1/tickets",
    ] {
        let response = app.call(Method::GET, Some(token), path, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        state.push(response.json().await.expect("json"));
    }
    state
}

#[tokio::test]
async fn another_customers_ids_give_404_never_their_data_and_change_nothing() {
    let app = spawn_app().await;
    let asha_id = app.register_customer("asha@example.com", PASSWORD).await;
    app.register_customer("bina@example.com", PASSWORD).await;
    let asha = app.token_for("asha@example.com", PASSWORD).await;
    let bina = app.token_for("bina@example.com", PASSWORD).await;
    let ids = things_of_asha(&app, &asha, &asha_id).await;
    app.wait_until_support_handled_everything().await;
    let before = state_of(&app, &asha).await;
    let events_before = app.event_count().await;

    let document = document(&app).await;
    let mut tried = 0;
    let mut wrong = Vec::new();
    for (method, template, _) in each_operation(&document) {
        if !template.contains('{') {
            continue;
        }
        let mut path = template.to_owned();
        for (name, id) in &ids {
            path = path.replace(&format!("{{{name}}}"), id);
        }
        assert!(
            !path.contains('{'),
            "{template} takes an id this test does not know yet: add whose it is"
        );
        // Customers are kept out of staff routes before any id is looked at.
        let staff = template.starts_with("/api/v1/admin/")
            || template.starts_with("/api/v1/audit/")
            || template.ends_with("/assign")
            || template.ends_with("/resolve");
        let expected = if staff {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::NOT_FOUND
        };
        let body = (method != Method::GET).then(|| body_for(template, &asha_id));
        let response = app
            .call(method.clone(), Some(&bina), &path, body.as_ref())
            .await;
        let status = response.status();
        let text = response.text().await.expect("text");
        tried += 1;
        if status != expected {
            wrong.push(format!(
                "{method} {template}: {status}, expected {expected}"
            ));
        }
        for secret in ids.values().chain([&asha_id]) {
            if secret != "wallets" && text.contains(secret.as_str()) {
                wrong.push(format!("{method} {template} answered with an id of Asha's"));
            }
        }
        if text.contains("Asha") {
            wrong.push(format!("{method} {template} answered with Asha's text"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(tried >= 18, "only {tried} routes with ids were tried");
    assert_eq!(app.event_count().await, events_before, "nothing was stored");
    assert_eq!(
        state_of(&app, &asha).await,
        before,
        "Asha's things are as they were"
    );
}
