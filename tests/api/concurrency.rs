//! Hundreds of concurrent commands through HTTP, on one hot wallet and across many, on
//! SQLite and on PostgreSQL: no lost update, no duplicate (retries carry the same
//! Idempotency-Key), balances exact to the cent, and every read model equal to a rebuild of
//! it from the log.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::admin::rebuild_and_wait;
use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, spawn_app_on_postgres_configured, spawn_app_with_admin,
};

const PASSWORD: &str = "correct horse battery staple";
/// Expenses sent at once to the hot wallet, each with a key of its own.
const HOT_EXPENSES: usize = 200;
/// Of those, how many are sent a second time at the same moment with the same key.
const RETRIED: usize = 50;
/// Wallets written at once besides the hot one, and commands sent to each.
const WALLETS: usize = 8;
const EXPENSES_EACH: usize = 15;
const TOP_UPS_EACH: usize = 10;

/// One command as the test sends it.
#[derive(Clone)]
struct Command {
    token: String,
    path: &'static str,
    body: Value,
    key: String,
}

async fn send(
    client: reqwest::Client,
    address: String,
    command: Command,
) -> (String, StatusCode, Value) {
    let response = client
        .post(format!("{address}{}", command.path))
        .bearer_auth(&command.token)
        .header("Idempotency-Key", &command.key)
        .json(&command.body)
        .send()
        .await
        .expect("answered");
    let status = response.status();
    (
        command.key,
        status,
        response.json().await.unwrap_or(Value::Null),
    )
}

fn decimal(amount: &str) -> Decimal {
    amount.parse().expect("a decimal amount")
}

async fn balance(app: &TestApp, token: &str) -> Decimal {
    let wallet: Value = app
        .call(Method::GET, Some(token), "/api/v1/wallet", None)
        .await
        .json()
        .await
        .expect("json");
    decimal(wallet["balance"].as_str().expect("a balance"))
}

async fn expense_ids(app: &TestApp, token: &str) -> Vec<String> {
    let page: Value = app
        .call(Method::GET, Some(token), "/api/v1/expenses?limit=200", None)
        .await
        .json()
        .await
        .expect("json");
    assert!(page["next_cursor"].is_null(), "one page holds them all");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["expense_id"].as_str().expect("an id").to_owned())
        .collect()
}

async fn customer(app: &TestApp, n: usize) -> String {
    let email = format!("c{n}@example.com");
    app.register_customer(&email, PASSWORD).await;
    let token = app.token_for(&email, PASSWORD).await;
    let top_up = app
        .call(
            Method::POST,
            Some(&token),
            "/api/v1/wallet/top-ups",
            Some(&json!({ "amount": "1000" })),
        )
        .await;
    assert_eq!(top_up.status(), StatusCode::CREATED);
    token
}

async fn hammer(app: TestApp) {
    let hot = customer(&app, 0).await;
    let mut others = Vec::new();
    for n in 1..=WALLETS {
        others.push(customer(&app, n).await);
    }
    let mut commands = Vec::new();
    let mut hot_spent = Decimal::ZERO;
    for i in 0..HOT_EXPENSES {
        let amount = format!("{}.{:02}", 1 + i / 100, i % 100);
        hot_spent += decimal(&amount);
        commands.push(Command {
            token: hot.clone(),
            path: "/api/v1/expenses",
            body: json!({ "amount": amount, "category": "Food", "spent_on": "2026-11-20" }),
            key: format!("hot-{i}"),
        });
    }
    let retries: Vec<Command> = commands[..RETRIED].to_vec();
    commands.extend(retries);
    for (n, token) in others.iter().enumerate() {
        for i in 0..EXPENSES_EACH {
            commands.push(Command {
                token: token.clone(),
                path: "/api/v1/expenses",
                body: json!({ "amount": "2.50", "category": "Travel", "spent_on": "2026-11-19" }),
                key: format!("w{n}-e{i}"),
            });
        }
        for i in 0..TOP_UPS_EACH {
            commands.push(Command {
                token: token.clone(),
                path: "/api/v1/wallet/top-ups",
                body: json!({ "amount": "10" }),
                key: format!("w{n}-t{i}"),
            });
        }
    }
    let sent = commands.len();
    let tasks: Vec<_> = commands
        .into_iter()
        .map(|command| tokio::spawn(send(app.client.clone(), app.address.clone(), command)))
        .collect();
    let mut answers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for task in tasks {
        let (key, status, body) = task.await.expect("the task ran");
        match status {
            StatusCode::OK | StatusCode::CREATED => {
                let id = body["expense_id"].as_str().unwrap_or("top-up").to_owned();
                answers.entry(key).or_default().insert(id);
            }
            // The same key still being handled: the client is told to retry; it changes nothing.
            StatusCode::CONFLICT => {}
            other => panic!("{key}: {other} {body}"),
        }
    }

    // Every key was answered with one and the same expense, however often it was sent.
    for (key, ids) in &answers {
        assert_eq!(ids.len(), 1, "{key} was answered with {ids:?}");
    }
    let hot_ids = expense_ids(&app, &hot).await;
    assert_eq!(hot_ids.len(), HOT_EXPENSES, "no expense lost or doubled");
    assert_eq!(
        hot_ids.iter().collect::<BTreeSet<_>>().len(),
        HOT_EXPENSES,
        "no expense listed twice"
    );
    let answered: BTreeSet<&String> = answers
        .iter()
        .filter(|(key, _)| key.starts_with("hot-"))
        .flat_map(|(_, ids)| ids)
        .collect();
    assert_eq!(
        answered,
        hot_ids.iter().collect(),
        "what was answered is what is stored"
    );
    assert_eq!(balance(&app, &hot).await, decimal("1000") - hot_spent);
    for token in &others {
        assert_eq!(expense_ids(&app, token).await.len(), EXPENSES_EACH);
        let expected = decimal("1000") + decimal("10") * Decimal::from(TOP_UPS_EACH)
            - decimal("2.50") * Decimal::from(EXPENSES_EACH);
        assert_eq!(balance(&app, token).await, expected);
    }

    // The read models built as the commands came equal the same models rebuilt from the log.
    let admin = app.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let list = app.read(&admin, "/api/v1/admin/projections").await;
    let names: Vec<String> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|model| model["name"].as_str().expect("a name").to_owned())
        .collect();
    assert!(names.len() >= 4, "{names:?}");
    for name in &names {
        let model = rebuild_and_wait(&app, &admin, name).await;
        let last = &model["last_rebuild"];
        assert_eq!(last["error"], Value::Null, "{name}: {last}");
        assert_eq!(last["differing_tables"], json!([]), "{name}: {last}");
    }
    eprintln!(
        "concurrency: {sent} commands sent at once, {} keys checked",
        answers.len()
    );
}

#[tokio::test]
async fn concurrent_commands_on_sqlite_lose_nothing_and_double_nothing() {
    hammer(spawn_app_with_admin().await).await;
}

#[tokio::test]
async fn concurrent_commands_on_postgres_lose_nothing_and_double_nothing() {
    let Some(app) = spawn_app_on_postgres_configured("concurrent_http_commands", |config| {
        config.admin_email = Some(ADMIN_EMAIL.into());
        config.admin_password = Some(ADMIN_PASSWORD.into());
    })
    .await
    else {
        return;
    };
    hammer(app).await;
}
