use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, spawn_app, spawn_app_on_postgres};

const PASSWORD: &str = "correct horse battery staple";

async fn customer(app: &TestApp, email: &str) -> String {
    app.register_customer(email, PASSWORD).await;
    app.token_for(email, PASSWORD).await
}

async fn balance(app: &TestApp, token: &str) -> Value {
    app.read(token, "/api/v1/wallet").await
}

fn expense(amount: &str) -> Value {
    json!({ "amount": amount, "category": "Groceries", "description": "weekly shop", "spent_on": "2026-11-20" })
}

#[tokio::test]
async fn a_new_customer_has_an_empty_wallet_in_the_default_currency() {
    let app = spawn_app().await;
    let token = customer(&app, "asha@example.com").await;
    assert_eq!(
        balance(&app, &token).await,
        json!({ "balance": "0.00", "currency": "INR" })
    );
}

#[tokio::test]
async fn top_ups_expenses_and_voids_move_the_balance_exactly() {
    let app = spawn_app().await;
    let token = customer(&app, "asha@example.com").await;

    let topped = app
        .call(
            Method::POST,
            Some(&token),
            "/api/v1/wallet/top-ups",
            Some(&json!({ "amount": "1000", "note": "salary" })),
        )
        .await;
    assert_eq!(topped.status(), StatusCode::CREATED);
    assert_eq!(
        topped.json::<Value>().await.expect("json")["balance"],
        "1000.00"
    );

    let recorded = app
        .call(
            Method::POST,
            Some(&token),
            "/api/v1/expenses",
            Some(&expense("250.50")),
        )
        .await;
    assert_eq!(recorded.status(), StatusCode::CREATED);
    let expense_id = recorded.json::<Value>().await.expect("json")["expense_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    app.call(
        Method::POST,
        Some(&token),
        "/api/v1/expenses",
        Some(&expense("800")),
    )
    .await;
    assert_eq!(
        balance(&app, &token).await["balance"],
        "-50.50",
        "a balance may go negative"
    );

    let void = format!("/api/v1/expenses/{expense_id}/void");
    let voided = app
        .call(
            Method::POST,
            Some(&token),
            &void,
            Some(&json!({ "reason": "paid twice" })),
        )
        .await;
    assert_eq!(voided.status(), StatusCode::NO_CONTENT);
    assert_eq!(balance(&app, &token).await["balance"], "200.00");
    let again = app
        .call(
            Method::POST,
            Some(&token),
            &void,
            Some(&json!({ "reason": "again" })),
        )
        .await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn another_customers_expense_is_not_found() {
    let app = spawn_app().await;
    let asha = customer(&app, "asha@example.com").await;
    let ravi = customer(&app, "ravi@example.com").await;
    let recorded: Value = app
        .call(
            Method::POST,
            Some(&asha),
            "/api/v1/expenses",
            Some(&expense("10")),
        )
        .await
        .json()
        .await
        .expect("json");
    let void = format!(
        "/api/v1/expenses/{}/void",
        recorded["expense_id"].as_str().expect("id")
    );
    let response = app
        .call(
            Method::POST,
            Some(&ravi),
            &void,
            Some(&json!({ "reason": "mine now" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(balance(&app, &asha).await["balance"], "-10.00", "untouched");
}

#[tokio::test]
async fn each_kind_of_bad_input_is_a_4xx_problem_and_stores_nothing() {
    let app = spawn_app().await;
    let token = customer(&app, "asha@example.com").await;
    let before = app.event_count().await;
    let cases = [
        (
            json!({ "amount": "12.345", "category": "x", "spent_on": "2026-11-20" }),
            "amount",
        ),
        (
            json!({ "amount": "-5", "category": "x", "spent_on": "2026-11-20" }),
            "amount",
        ),
        (
            json!({ "amount": "0", "category": "x", "spent_on": "2026-11-20" }),
            "amount",
        ),
        (
            json!({ "amount": "1e9", "category": "x", "spent_on": "2026-11-20" }),
            "amount",
        ),
        (
            json!({ "amount": "99999999999999999999", "category": "x", "spent_on": "2026-11-20" }),
            "amount",
        ),
        (
            json!({ "amount": "5", "category": "", "spent_on": "2026-11-20" }),
            "category",
        ),
        (
            json!({ "amount": "5", "category": "x".repeat(65), "spent_on": "2026-11-20" }),
            "category",
        ),
        (
            json!({ "amount": "5", "category": "x", "spent_on": "2026-13-01" }),
            "spent_on",
        ),
        (
            json!({ "amount": "5", "category": "x", "spent_on": "1899-12-31" }),
            "spent_on",
        ),
        (
            json!({ "amount": "5", "category": "x", "spent_on": "2999-01-01" }),
            "spent_on",
        ),
        (
            json!({ "amount": "5", "category": "x", "description": "d".repeat(501), "spent_on": "2026-11-20" }),
            "description",
        ),
    ];
    for (body, field) in cases {
        let response = app
            .call(Method::POST, Some(&token), "/api/v1/expenses", Some(&body))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        assert_eq!(
            problem(response).await["errors"][0]["field"],
            field,
            "{body}"
        );
    }
    for body in [
        json!({ "amount": 12.5, "category": "x", "spent_on": "2026-11-20" }),
        json!({ "category": "x", "spent_on": "2026-11-20" }),
        json!({ "amount": "5", "category": "x", "spent_on": "2026-11-20", "extra": true }),
    ] {
        let response = app
            .call(Method::POST, Some(&token), "/api/v1/expenses", Some(&body))
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    let bad_limit = app
        .call(
            Method::PUT,
            Some(&token),
            "/api/v1/limits",
            Some(&json!({ "period": "daily", "amount": "5" })),
        )
        .await;
    assert_eq!(bad_limit.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn a_limit_is_set_per_period_and_category() {
    let app = spawn_app().await;
    let token = customer(&app, "asha@example.com").await;
    let response = app
        .call(
            Method::PUT,
            Some(&token),
            "/api/v1/limits",
            Some(&json!({ "period": "monthly", "first_day": 25, "amount": "5000", "category": "Food" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["period"],
        json!({ "kind": "monthly", "first_day": 25 })
    );
    assert_eq!(body["category"], "Food");
    assert_eq!(body["amount"], "5000");
}

#[tokio::test]
async fn two_hundred_concurrent_expenses_on_one_wallet_all_land_and_the_balance_is_exact() {
    let app = spawn_app().await;
    let token = customer(&app, "asha@example.com").await;
    let body = expense("1.25");
    let requests =
        (0..200).map(|_| app.call(Method::POST, Some(&token), "/api/v1/expenses", Some(&body)));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(requests)
        .await
        .iter()
        .map(reqwest::Response::status)
        .collect();
    assert!(
        statuses.iter().all(|s| *s == StatusCode::CREATED),
        "{statuses:?}"
    );
    assert_eq!(balance(&app, &token).await["balance"], "-250.00");
}

#[tokio::test]
async fn only_customers_have_a_wallet() {
    let app = crate::helpers::spawn_app_with_admin().await;
    let admin = app
        .token_for(crate::helpers::ADMIN_EMAIL, crate::helpers::ADMIN_PASSWORD)
        .await;
    assert_eq!(
        app.call(Method::GET, Some(&admin), "/api/v1/wallet", None)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(Method::GET, None, "/api/v1/wallet", None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn post_with_key(
    app: &TestApp,
    token: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("answered")
}

#[tokio::test]
async fn five_retries_with_one_idempotency_key_make_one_expense_and_the_same_answer() {
    let app = spawn_app().await;
    let token = customer(&app, "asha@example.com").await;
    let before = app.event_count().await;

    let mut answers = Vec::new();
    for attempt in 0..5 {
        let response = post_with_key(
            &app,
            &token,
            "/api/v1/expenses",
            "order-2026-11-21-001",
            &expense("99.99"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED, "attempt {attempt}");
        let replayed = response.headers().contains_key("idempotent-replayed");
        assert_eq!(replayed, attempt > 0, "attempt {attempt}");
        answers.push(response.json::<Value>().await.expect("json"));
    }
    assert!(
        answers.windows(2).all(|pair| pair[0] == pair[1]),
        "{answers:?}"
    );
    assert_eq!(app.event_count().await, before + 1, "one expense");
    assert_eq!(balance(&app, &token).await["balance"], "-99.99");
}

#[tokio::test]
async fn the_same_idempotency_key_with_another_body_is_a_422() {
    let app = spawn_app().await;
    let token = customer(&app, "asha@example.com").await;
    let first = post_with_key(&app, &token, "/api/v1/expenses", "k-1", &expense("10")).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let other = post_with_key(&app, &token, "/api/v1/expenses", "k-1", &expense("11")).await;
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        problem(other).await["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Idempotency-Key"))
    );
}

#[tokio::test]
async fn idempotency_keys_belong_to_their_user_and_refusals_are_replayed_too() {
    let app = spawn_app().await;
    let asha = customer(&app, "asha@example.com").await;
    let ravi = customer(&app, "ravi@example.com").await;
    assert_eq!(
        post_with_key(&app, &asha, "/api/v1/expenses", "same", &expense("10"))
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        post_with_key(&app, &ravi, "/api/v1/expenses", "same", &expense("10"))
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(balance(&app, &ravi).await["balance"], "-10.00");

    let bad = json!({ "amount": "0", "category": "x", "spent_on": "2026-11-20" });
    let refused = post_with_key(&app, &asha, "/api/v1/expenses", "bad", &bad).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let again = post_with_key(&app, &asha, "/api/v1/expenses", "bad", &bad).await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.headers().contains_key("idempotent-replayed"));
    let empty_key = post_with_key(&app, &asha, "/api/v1/expenses", " ", &expense("1")).await;
    assert_eq!(empty_key.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_retry_whose_first_answer_died_with_its_instance_applies_nothing_twice() {
    let app = spawn_app().await;
    let register = json!({ "name": "Asha Rao", "email": "asha@example.com", "mobile": "+91 98765 43210", "password": PASSWORD });
    let signup = (None, "/api/v1/auth/register", "signup-1", register);
    let user = created_with_key(&app, &signup).await;
    let token = app.token_for("asha@example.com", PASSWORD).await;
    let goal = json!({ "name": "New bike", "target": "300", "due": "2027-03-01" });
    let keyed = [
        signup,
        (
            Some(token.clone()),
            "/api/v1/expenses",
            "shop-1",
            expense("12.50"),
        ),
        (Some(token.clone()), "/api/v1/savings-goals", "goal-1", goal),
    ];
    let mut answers = vec![user];
    for request in &keyed[1..] {
        answers.push(created_with_key(&app, request).await);
    }
    let events = app.event_count().await;

    app.lose_remembered_answers_as_a_crash_would().await;

    // Each retry does its work again and finds it done: the same answer, nothing new
    // stored, instead of a second expense or goal, or "this email is taken".
    for (request, first) in keyed.iter().zip(&answers) {
        let retried = send_with_key(&app, request).await;
        assert_eq!(retried.status(), StatusCode::CREATED, "{}", request.1);
        assert!(!retried.headers().contains_key("idempotent-replayed"));
        assert_eq!(&retried.json::<Value>().await.expect("json"), first);
    }
    assert_eq!(app.event_count().await, events, "nothing was stored twice");
    assert_eq!(balance(&app, &token).await["balance"], "-12.50");
    let board = app.read(&token, "/api/v1/dashboard").await;
    let goals = &board["savings_goals"];
    assert_eq!(goals.as_array().map(Vec::len), Some(1), "{goals}");

    // The retries' answers are remembered in turn.
    let again = send_with_key(&app, &keyed[1]).await;
    assert!(again.headers().contains_key("idempotent-replayed"));
}

/// A POST with an `Idempotency-Key`: the caller's token (none for sign-up), path, key, body.
type KeyedRequest = (Option<String>, &'static str, &'static str, Value);

async fn send_with_key(
    app: &TestApp,
    (token, path, key, body): &KeyedRequest,
) -> reqwest::Response {
    let request = app
        .client
        .post(format!("{}{path}", app.address))
        .header("Idempotency-Key", *key)
        .json(body);
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
    .send()
    .await
    .expect("answered")
}

/// Sends `request`, expects 201, and returns the answer's body.
async fn created_with_key(app: &TestApp, request: &KeyedRequest) -> Value {
    let response = send_with_key(app, request).await;
    assert_eq!(response.status(), StatusCode::CREATED, "{}", request.1);
    response.json().await.expect("json")
}

#[tokio::test]
async fn savings_move_money_out_of_the_balance_and_back() {
    let app = spawn_app().await;
    let token = customer(&app, "asha@example.com").await;
    app.call(
        Method::POST,
        Some(&token),
        "/api/v1/wallet/top-ups",
        Some(&json!({ "amount": "500" })),
    )
    .await;
    let created = app
        .call(
            Method::POST,
            Some(&token),
            "/api/v1/savings-goals",
            Some(&json!({ "name": "New bike", "target": "300", "due": "2027-03-01" })),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let goal: Value = created.json().await.expect("json");
    let goal_id = goal["goal_id"].as_str().expect("id");

    let contributions = format!("/api/v1/savings-goals/{goal_id}/contributions");
    let moved: Value = app
        .call(
            Method::POST,
            Some(&token),
            &contributions,
            Some(&json!({ "amount": "200" })),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(moved, json!({ "saved": "200", "balance": "300.00" }));
    let too_much = app
        .call(
            Method::POST,
            Some(&token),
            &contributions,
            Some(&json!({ "amount": "400" })),
        )
        .await;
    assert_eq!(too_much.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let withdrawals = format!("/api/v1/savings-goals/{goal_id}/withdrawals");
    let back = app
        .call(
            Method::POST,
            Some(&token),
            &withdrawals,
            Some(&json!({ "amount": "50" })),
        )
        .await;
    assert_eq!(back.status(), StatusCode::OK);
    assert_eq!(balance(&app, &token).await["balance"], "350.00");
    let unknown = app
        .call(
            Method::POST,
            Some(&token),
            "/api/v1/savings-goals/0190f3c4-0000-7000-8000-000000000000/contributions",
            Some(&json!({ "amount": "1" })),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_limit_can_be_removed_once() {
    let app = spawn_app().await;
    let token = customer(&app, "asha@example.com").await;
    let limit = json!({ "period": "weekly", "amount": "100", "category": "Food" });
    app.call(Method::PUT, Some(&token), "/api/v1/limits", Some(&limit))
        .await;
    let key = json!({ "period": "weekly", "category": "food" });
    let removed = app
        .call(Method::DELETE, Some(&token), "/api/v1/limits", Some(&key))
        .await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let again = app
        .call(Method::DELETE, Some(&token), "/api/v1/limits", Some(&key))
        .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
}

async fn record(app: &TestApp, token: &str, body: &Value) -> String {
    let response = app
        .call(Method::POST, Some(token), "/api/v1/expenses", Some(body))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED, "{body}");
    let answer: Value = response.json().await.expect("json");
    answer["expense_id"].as_str().expect("an id").to_owned()
}

async fn list(app: &TestApp, token: &str, query: &str) -> reqwest::Response {
    app.call(
        Method::GET,
        Some(token),
        &format!("/api/v1/expenses{query}"),
        None,
    )
    .await
}

async fn listed_ids(app: &TestApp, token: &str, query: &str) -> (Vec<String>, Value) {
    let response = list(app, token, query).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    let page: Value = response.json().await.expect("json");
    let ids = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["expense_id"].as_str().expect("id").to_owned())
        .collect();
    (ids, page["next_cursor"].clone())
}

#[tokio::test]
async fn expenses_are_listed_newest_first_with_filters_and_pages() {
    listed_newest_first_with_filters_and_pages(&spawn_app().await).await;
}

/// On PostgreSQL the list's ids and days are `uuid` and `date` (ADR 0031): its filters and
/// cursors cast their text, and the dashboard's sums of a month and of a limit too.
#[tokio::test]
async fn expenses_are_listed_with_filters_and_pages_and_summed_on_postgres() {
    let Some(app) = spawn_app_on_postgres("expense_list_filters_pages").await else {
        return;
    };
    let token = listed_newest_first_with_filters_and_pages(&app).await;
    let today = chrono::Utc::now().date_naive().to_string();
    let limit = json!({ "period": "monthly", "amount": "100", "category": "Groceries" });
    let set = app
        .call(Method::PUT, Some(&token), "/api/v1/limits", Some(&limit))
        .await;
    assert!(set.status().is_success(), "{}", set.status());
    let spend =
        json!({ "amount": "30", "category": "groceries", "description": "d", "spent_on": today });
    record(&app, &token, &spend).await;
    let dashboard = app.read(&token, "/api/v1/dashboard").await;
    assert_eq!(dashboard["limits"][0]["spent"], "30.00", "{dashboard:#}");
    assert_eq!(
        dashboard["by_category"][0]["spent"], "30.00",
        "{dashboard:#}"
    );
    for (query, field) in [("?from=0000-01-01", "from"), ("?to=+10000-01-01", "to")] {
        refused_naming(list(&app, &token, query).await, field, query).await;
    }
}

/// The list's answer to `query`: a 422 whose problem names `field`.
async fn refused_naming(response: reqwest::Response, field: &str, query: &str) {
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "{query}"
    );
    assert_eq!(
        problem(response).await["errors"][0]["field"],
        field,
        "{query}"
    );
}

/// Records and voids expenses for two customers and walks the first one's list; the first
/// customer's token.
async fn listed_newest_first_with_filters_and_pages(app: &TestApp) -> String {
    let token = customer(app, "asha@example.com").await;
    let other = customer(app, "ravi@example.com").await;
    let on = |day: &str, category: &str| json!({ "amount": "10", "category": category, "description": "d", "spent_on": day });
    let oldest = record(app, &token, &on("2026-09-30", "Rent")).await;
    let mut october = Vec::new();
    for _ in 0..5 {
        october.push(record(app, &token, &on("2026-10-15", "groceries")).await);
    }
    let newest = record(app, &token, &on("2026-11-01", "Groceries")).await;
    record(app, &other, &on("2026-10-15", "groceries")).await;
    let voided = app
        .call(
            Method::POST,
            Some(&token),
            &format!("/api/v1/expenses/{newest}/void"),
            Some(&json!({ "reason": "typed twice" })),
        )
        .await;
    assert_eq!(voided.status(), StatusCode::NO_CONTENT);

    let (all, cursor) = listed_ids(app, &token, "").await;
    assert_eq!(all.len(), 7, "only the customer's own expenses");
    assert_eq!(all.first(), Some(&newest));
    assert_eq!(all.last(), Some(&oldest));
    assert_eq!(cursor, Value::Null);

    // Pages of three walk the same list without gaps or repeats.
    let mut walked = Vec::new();
    let mut query = "?limit=3".to_owned();
    loop {
        let (ids, next) = listed_ids(app, &token, &query).await;
        assert!(ids.len() <= 3);
        walked.extend(ids);
        match next.as_str() {
            Some(next) => query = format!("?limit=3&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(walked, all);

    let (groceries, _) = listed_ids(app, &token, "?category=GROCERIES&status=live").await;
    let mut expected = october.clone();
    expected.reverse();
    assert_eq!(groceries, expected, "case-insensitive, voided left out");
    let (in_range, _) = listed_ids(app, &token, "?from=2026-10-01&to=2026-10-31").await;
    assert_eq!(in_range.len(), 5);
    let (only_voided, _) = listed_ids(app, &token, "?status=voided").await;
    assert_eq!(only_voided, vec![newest]);
    token
}

#[tokio::test]
async fn bad_list_parameters_are_named_in_a_problem() {
    let app = spawn_app().await;
    let token = customer(&app, "asha@example.com").await;
    for (query, field) in [
        ("?from=2026-02-30", "from"),
        ("?to=yesterday", "to"),
        ("?from=2026-11-02&to=2026-11-01", "to"),
        ("?limit=0", "limit"),
        ("?limit=201", "limit"),
        ("?limit=ten", "limit"),
        ("?status=deleted", "status"),
        ("?cursor=not-a-cursor", "cursor"),
        ("?from=0000-01-01", "from"),
        ("?to=-0001-12-31", "to"),
        (
            "?cursor=0000-01-01~0190c1b2-0000-7000-8000-000000000000",
            "cursor",
        ),
        ("?category=", "none"),
    ] {
        let response = list(&app, &token, query).await;
        if field == "none" {
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "an empty filter is no filter"
            );
            continue;
        }
        refused_naming(response, field, query).await;
    }
    let unknown = list(&app, &token, "?sort=amount").await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    assert!(
        problem(unknown).await["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("sort")),
        "the unknown parameter is named"
    );
}

#[tokio::test]
async fn the_dashboard_shows_balance_month_spending_limits_and_goals() {
    let app = spawn_app().await;
    let token = customer(&app, "asha@example.com").await;
    let today = chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    let post = |path: &'static str, body: Value| {
        let app = &app;
        let token = token.clone();
        async move {
            let response = app
                .call(Method::POST, Some(&token), path, Some(&body))
                .await;
            assert!(response.status().is_success(), "{path} {body}");
            response.json::<Value>().await.unwrap_or(Value::Null)
        }
    };
    post("/api/v1/wallet/top-ups", json!({ "amount": "500" })).await;
    let limit = app
        .call(
            Method::PUT,
            Some(&token),
            "/api/v1/limits",
            Some(&json!({ "period": "monthly", "amount": "100", "category": "food" })),
        )
        .await;
    assert_eq!(limit.status(), StatusCode::OK);
    for (amount, category) in [("30", "Food"), ("55.25", "food"), ("200", "rent")] {
        post(
            "/api/v1/expenses",
            json!({ "amount": amount, "category": category, "spent_on": today }),
        )
        .await;
    }
    let goal = post(
        "/api/v1/savings-goals",
        json!({ "name": "Holiday", "target": "400" }),
    )
    .await;
    let goal_id = goal["goal_id"].as_str().expect("goal id").to_owned();
    let contributions = format!("/api/v1/savings-goals/{goal_id}/contributions");
    let response = app
        .call(
            Method::POST,
            Some(&token),
            &contributions,
            Some(&json!({ "amount": "100" })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let board = app.read(&token, "/api/v1/dashboard").await;
    assert_eq!(board["balance"], "114.75");
    assert_eq!(board["currency"], "INR");
    assert_eq!(board["spent_this_month"], "285.25");
    assert_eq!(
        board["by_category"],
        json!([
            { "category": "rent", "spent": "200.00" },
            { "category": "Food", "spent": "85.25" },
        ])
    );
    assert_eq!(board["limits"][0]["spent"], "85.25");
    assert_eq!(board["limits"][0]["amount"], "100.00");
    assert_eq!(board["limits"][0]["percent"], 85);
    assert_eq!(board["recent_expenses"].as_array().map(Vec::len), Some(3));
    assert_eq!(board["savings_goals"][0]["saved"], "100.00");
    assert_eq!(board["savings_goals"][0]["percent"], 25);
    assert_eq!(board["trend"].as_array().map(Vec::len), Some(12));
    assert_eq!(board["trend"][11]["spent"], "285.25");
    assert_eq!(board["open_tickets"], json!([]));
}
