//! Auditors: state as of any instant, the event browser and its causes, exports, proof that
//! the log is untampered (also after erasure), the record of their reads, and events of an
//! older shape that must still load, project and verify.

use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, problem, spawn_app_with_admin};

const PASSWORD: &str = "correct horse battery staple";

async fn auditor(app: &TestApp, admin: &str) -> (String, String) {
    let body = json!({ "name": "Meera Iyer", "email": "meera@example.com", "password": PASSWORD });
    let created = app
        .post_as(Some(admin), "/api/v1/admin/auditors", &body)
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<Value>().await.expect("json")["user_id"]
        .as_str()
        .expect("id")
        .to_owned();
    (id, app.token_for("meera@example.com", PASSWORD).await)
}

/// An amount as stored (a decimal string), as a number.
fn amount(value: &Value) -> f64 {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

async fn send(app: &TestApp, token: &str, method: Method, path: &str, body: Value) -> Value {
    let response = app.call(method, Some(token), path, Some(&body)).await;
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap_or(Value::Null)
}

async fn top_up(app: &TestApp, token: &str, amount: &str) {
    send(
        app,
        token,
        Method::POST,
        "/api/v1/wallet/top-ups",
        json!({ "amount": amount }),
    )
    .await;
}

async fn spend(app: &TestApp, token: &str, amount: &str, on: &str) -> String {
    spend_on(app, token, amount, on, ("Food", "market")).await
}

async fn spend_on(
    app: &TestApp,
    token: &str,
    amount: &str,
    on: &str,
    (category, description): (&str, &str),
) -> String {
    let body = json!({ "amount": amount, "category": category, "description": description, "spent_on": on });
    send(app, token, Method::POST, "/api/v1/expenses", body).await["expense_id"]
        .as_str()
        .expect("an expense id")
        .to_owned()
}

/// Waits until the customer's ticket list holds `count` tickets.
async fn tickets(app: &TestApp, token: &str, count: usize) -> Value {
    for _ in 0..250 {
        let list = app.read(token, "/api/v1/tickets").await;
        if list["items"].as_array().map(Vec::len) == Some(count) {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the customer never had {count} tickets");
}

/// The instant between two steps: after the first was answered, before the next is sent.
async fn between_steps() -> DateTime<Utc> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    let now = Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    now
}

fn state_path(customer: &str, at: DateTime<Utc>) -> String {
    format!(
        "/api/v1/audit/customers/{customer}/state?as_of={}",
        at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            .replace('+', "%2B")
    )
}

/// What a step-by-step replay of the customer's commands says at each instant.
#[derive(Debug, Clone, Default, PartialEq)]
struct Expected {
    balance: String,
    /// Each expense as `category/description`, then `voided: reason` once taken back, in
    /// the order of their days.
    expenses: Vec<String>,
    limits: usize,
    saved: Option<String>,
    tickets: usize,
}

fn seen(state: &Value) -> Expected {
    let wallet = &state["wallet"];
    let expenses = wallet["expenses"].as_array().expect("expenses");
    Expected {
        balance: wallet["balance"].as_str().expect("balance").to_owned(),
        expenses: expenses
            .iter()
            .map(|e| {
                let shown = format!("{}/{}", e["category"], e["description"]).replace('"', "");
                match (&e["voided"], e["void_reason"].as_str()) {
                    (Value::Bool(true), Some(reason)) => format!("{shown} voided: {reason}"),
                    (Value::Bool(false), None) => shown,
                    odd => panic!("voided and its reason disagree: {odd:?}"),
                }
            })
            .collect(),
        limits: wallet["limits"].as_array().expect("limits").len(),
        saved: wallet["savings"][0]["saved"].as_str().map(str::to_owned),
        tickets: state["tickets"].as_array().expect("tickets").len(),
    }
}

#[tokio::test]
async fn state_as_of_any_instant_matches_a_step_by_step_replay_and_each_read_is_recorded() {
    let app = spawn_app_with_admin().await;
    let admin = app.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (auditor_id, auditor) = auditor(&app, &admin).await;
    let before_anything = between_steps().await;
    let customer = app.register_customer("asha@example.com", PASSWORD).await;
    let asha = app.token_for("asha@example.com", PASSWORD).await;

    let mut steps: Vec<(DateTime<Utc>, Expected)> = Vec::new();
    let mut expected = Expected {
        balance: "0.00".into(),
        ..Expected::default()
    };
    steps.push((between_steps().await, expected.clone()));

    send(
        &app,
        &asha,
        Method::POST,
        "/api/v1/wallet/top-ups",
        json!({ "amount": "1000" }),
    )
    .await;
    expected.balance = "1000.00".into();
    steps.push((between_steps().await, expected.clone()));

    let limit = json!({ "period": "monthly", "amount": "500", "category": "Food" });
    send(&app, &asha, Method::PUT, "/api/v1/limits", limit).await;
    expected.limits = 1;
    steps.push((between_steps().await, expected.clone()));

    let first = spend(&app, &asha, "300", "2026-11-02").await;
    expected.balance = "700.00".into();
    expected.expenses = vec!["Food/market".into()];
    steps.push((between_steps().await, expected.clone()));

    // The same category spelled another way counts against the same limit, and is shown as
    // typed.
    spend_on(&app, &asha, "250", "2026-11-03", ("FOOD", "bakery")).await;
    tickets(&app, &asha, 1).await;
    expected.balance = "450.00".into();
    expected.expenses.push("FOOD/bakery".into());
    expected.tickets = 1;
    steps.push((between_steps().await, expected.clone()));

    let void = json!({ "reason": "returned" });
    send(
        &app,
        &asha,
        Method::POST,
        &format!("/api/v1/expenses/{first}/void"),
        void,
    )
    .await;
    expected.balance = "750.00".into();
    expected.expenses[0] = "Food/market voided: returned".into();
    steps.push((between_steps().await, expected.clone()));

    let goal = send(
        &app,
        &asha,
        Method::POST,
        "/api/v1/savings-goals",
        json!({ "name": "Bicycle", "target": "400" }),
    )
    .await;
    let goal = goal["goal_id"].as_str().expect("goal id").to_owned();
    send(
        &app,
        &asha,
        Method::POST,
        &format!("/api/v1/savings-goals/{goal}/contributions"),
        json!({ "amount": "150" }),
    )
    .await;
    expected.balance = "600.00".into();
    expected.saved = Some("150.00".into());
    steps.push((between_steps().await, expected.clone()));

    for (at, expected) in &steps {
        let state = app.read(&auditor, &state_path(&customer, *at)).await;
        let mut got = seen(&state);
        // Amounts are exact decimals; compare them as numbers written with two places.
        got.balance = format!("{:.2}", got.balance.parse::<f64>().expect("a number"));
        got.saved = got
            .saved
            .map(|s| format!("{:.2}", s.parse::<f64>().expect("a number")));
        assert_eq!(&got, expected, "as of {at}");
        assert_eq!(state["customer_id"], customer.as_str());
    }
    // The ticket's status as of now: the process manager gave it to nobody (no agents).
    let now = app.read(&auditor, &state_path(&customer, Utc::now())).await;
    assert_eq!(now["tickets"][0]["status"], "unassigned");

    // Before the customer existed there is nothing to show.
    let missing = app
        .call(
            Method::GET,
            Some(&auditor),
            &state_path(&customer, before_anything),
            None,
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let bad = app
        .call(
            Method::GET,
            Some(&auditor),
            &format!("/api/v1/audit/customers/{customer}/state?as_of=yesterday"),
            None,
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem(bad).await["errors"][0]["field"], "as_of");

    // Every read was recorded, newest first, and admins see it; auditors and customers do not.
    let reads = app
        .read(
            &admin,
            &format!("/api/v1/admin/audit-reads?customer={customer}"),
        )
        .await;
    let reads = reads.as_array().expect("a list");
    assert_eq!(reads.len(), steps.len() + 2, "{reads:#?}");
    assert!(reads.iter().all(|r| r["auditor_id"] == auditor_id.as_str()));
    assert!(
        reads[0]["what"]
            .as_str()
            .expect("what")
            .starts_with("state as of")
    );
    for token in [&auditor, &asha] {
        let refused = app
            .call(Method::GET, Some(token), "/api/v1/admin/audit-reads", None)
            .await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }
}

/// An app where Asha spent 120 on food past her limit of 100, and her ticket is open;
/// Meera is an auditor.
struct Crossed {
    app: TestApp,
    admin: String,
    auditor: String,
    customer: String,
    asha: String,
    expense: String,
}

async fn a_customer_past_a_limit() -> Crossed {
    let app = spawn_app_with_admin().await;
    let admin = app.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (_, auditor) = auditor(&app, &admin).await;
    let customer = app.register_customer("asha@example.com", PASSWORD).await;
    let asha = app.token_for("asha@example.com", PASSWORD).await;
    let limit = json!({ "period": "monthly", "amount": "100", "category": "Food" });
    send(&app, &asha, Method::PUT, "/api/v1/limits", limit).await;
    top_up(&app, &asha, "500").await;
    let expense = spend(&app, &asha, "120", "2026-11-04").await;
    tickets(&app, &asha, 1).await;
    Crossed {
        app,
        admin,
        auditor,
        customer,
        asha,
        expense,
    }
}

#[tokio::test]
async fn the_event_browser_follows_a_ticket_back_to_the_expense_and_the_request() {
    let Crossed {
        app,
        admin,
        auditor,
        customer,
        asha,
        expense,
    } = a_customer_past_a_limit().await;

    let opened = app
        .read(
            &auditor,
            &format!("/api/v1/audit/events?customer={customer}&type=TicketOpened"),
        )
        .await;
    let opened = opened["events"].as_array().expect("events").clone();
    assert_eq!(opened.len(), 1, "{opened:#?}");
    assert!(
        opened[0]["stream"]
            .as_str()
            .expect("stream")
            .starts_with("ticket-")
    );

    let why = app
        .read(
            &auditor,
            &format!(
                "/api/v1/audit/events/{}/why",
                opened[0]["event_id"].as_str().expect("id")
            ),
        )
        .await;
    assert_eq!(why["event"]["event_type"], "TicketOpened");
    assert_eq!(why["because"][0]["event_type"], "LimitExceeded");
    assert_eq!(why["because"][0]["payload"]["expense_id"], expense.as_str());
    assert_eq!(amount(&why["because"][0]["payload"]["overspent"]), 20.0);
    assert_eq!(why["request"]["actor"], format!("user:{customer}"));
    let written: Vec<&str> = why["request"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["event_type"].as_str().expect("type"))
        .collect();
    assert_eq!(written, ["ExpenseRecorded", "LimitExceeded"]);
    assert_eq!(
        why["request"]["events"][0]["payload"]["expense_id"],
        expense.as_str()
    );

    // Paging: the customer's whole history two at a time, in log order, nothing repeated.
    let everything = app
        .read(
            &auditor,
            &format!("/api/v1/audit/events?customer={customer}&limit=500"),
        )
        .await;
    let all: Vec<u64> = everything["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["position"].as_u64().expect("position"))
        .collect();
    assert!(all.len() >= 5 && everything["next_after"].is_null());
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = app
            .read(
                &auditor,
                &format!("/api/v1/audit/events?customer={customer}&limit=2&after={after}"),
            )
            .await;
        paged.extend(
            page["events"]
                .as_array()
                .expect("events")
                .iter()
                .map(|e| e["position"].as_u64().expect("position")),
        );
        match page["next_after"].as_u64() {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(paged, all);
    // Other filters: a stream, a time range that holds nothing.
    let wallet = app
        .read(
            &auditor,
            &format!("/api/v1/audit/events?stream=wallet-{customer}"),
        )
        .await;
    assert!(
        wallet["events"]
            .as_array()
            .expect("events")
            .iter()
            .all(|e| e["stream"] == format!("wallet-{customer}"))
    );
    let empty = app
        .read(
            &auditor,
            "/api/v1/audit/events?from=2001-01-01T00:00:00Z&to=2001-01-02T00:00:00Z",
        )
        .await;
    assert_eq!(empty["events"], json!([]));

    // Bad filters are named; unknown ones refused; nothing leaks to other roles.
    let bad = app
        .call(
            Method::GET,
            Some(&auditor),
            "/api/v1/audit/events?customer=x&limit=0&from=2026-13-01&type=a;DROP",
            None,
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> = problem(bad).await["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field").to_owned())
        .collect();
    assert_eq!(fields, ["customer", "type", "from", "limit"]);
    let unknown = app
        .call(
            Method::GET,
            Some(&auditor),
            "/api/v1/audit/events?sort=up",
            None,
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    for token in [&asha, &admin] {
        let refused = app
            .call(Method::GET, Some(token), "/api/v1/audit/events", None)
            .await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn exports_stream_a_customers_history_and_the_whole_log_as_csv_and_json_lines() {
    let app = spawn_app_with_admin().await;
    let admin = app.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (_, auditor) = auditor(&app, &admin).await;
    let asha_id = app.register_customer("asha@example.com", PASSWORD).await;
    let asha = app.token_for("asha@example.com", PASSWORD).await;
    app.register_customer("bina@example.com", PASSWORD).await;
    let bina = app.token_for("bina@example.com", PASSWORD).await;
    top_up(&app, &asha, "100").await;
    top_up(&app, &bina, "100").await;
    spend(&app, &asha, "12.50", "2026-11-05").await;
    spend(&app, &bina, "99", "2026-11-05").await;

    let export = |query: String| {
        let app = &app;
        let auditor = &auditor;
        async move {
            let response = app
                .call(
                    Method::GET,
                    Some(auditor),
                    &format!("/api/v1/audit/export?{query}"),
                    None,
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK, "{query}");
            let disposition = response.headers()[reqwest::header::CONTENT_DISPOSITION]
                .to_str()
                .expect("ascii")
                .to_owned();
            (disposition, response.text().await.expect("text"))
        }
    };
    let (disposition, lines) = export(format!("customer={asha_id}&format=jsonl")).await;
    assert!(disposition.contains(&format!("history-{asha_id}.jsonl")));
    let events: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(
        events
            .iter()
            .all(|e| e["stream"].as_str().expect("stream").ends_with(&asha_id))
    );
    assert!(
        events.iter().any(
            |e| e["event_type"] == "ExpenseRecorded" && amount(&e["payload"]["amount"]) == 12.5
        )
    );
    let browsed = app
        .read(
            &auditor,
            &format!("/api/v1/audit/events?customer={asha_id}&limit=500"),
        )
        .await;
    assert_eq!(
        events.len(),
        browsed["events"].as_array().expect("events").len()
    );

    let (_, csv) = export("format=csv".into()).await;
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header[..4],
        ["position", "recorded_at", "stream", "version"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a row")).collect();
    assert_eq!(rows.len() as i64, app.event_count().await);
    let positions: Vec<u64> = rows
        .iter()
        .map(|r| r[0].parse().expect("position"))
        .collect();
    assert_eq!(positions, (1..=rows.len() as u64).collect::<Vec<_>>());
    assert!(rows.iter().any(|r| &r[4] == "ExpenseRecorded"
        && amount(&serde_json::from_str::<Value>(&r[11]).expect("a JSON payload")["amount"])
            == 99.0));

    let bad = app
        .call(
            Method::GET,
            Some(&auditor),
            "/api/v1/audit/export?format=xml",
            None,
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// Runs raw SQL on the SQLite file of a running app, as an attacker with the file would.
async fn on_the_file(app: &TestApp, statements: &str) {
    let database = app.own_database().await;
    let infrastructure::database::Database::Sqlite(sqlite) = &database else {
        unreachable!("a SQLite app")
    };
    sqlx::raw_sql(statements)
        .execute(sqlite.pool())
        .await
        .expect("the attack runs");
    database.close().await;
}

#[tokio::test]
async fn verify_proves_the_log_intact_after_erasure_and_names_the_event_altered_behind_its_back() {
    let app = spawn_app_with_admin().await;
    let admin = app.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (_, auditor) = auditor(&app, &admin).await;
    let customer = app.register_customer("asha@example.com", PASSWORD).await;
    let asha = app.token_for("asha@example.com", PASSWORD).await;
    top_up(&app, &asha, "100").await;
    spend(&app, &asha, "40", "2026-11-06").await;

    let report = app.read(&auditor, "/api/v1/audit/verify").await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["checked"].as_i64(), Some(app.event_count().await));

    // Erasing the customer's personal data destroys their key, not their events: the
    // stored bytes are unchanged and still verify.
    let erased = app
        .post_as(
            Some(&admin),
            &format!("/api/v1/admin/users/{customer}/erase"),
            &json!({}),
        )
        .await;
    assert!(erased.status().is_success(), "{}", erased.status());
    let report = app.read(&auditor, "/api/v1/audit/verify").await;
    assert_eq!(report["ok"], true, "{report}");

    // Someone with the database file changes the amount of the expense.
    let page = app
        .read(
            &auditor,
            &format!("/api/v1/audit/events?stream=wallet-{customer}&type=ExpenseRecorded"),
        )
        .await;
    let position = page["events"][0]["position"].as_u64().expect("position");
    on_the_file(&app, &format!(
        "DROP TRIGGER events_are_never_updated; \
         UPDATE events SET payload = json_set(payload, '$.amount', '4') WHERE position = {position};"
    )).await;

    let report = app.read(&auditor, "/api/v1/audit/verify").await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["first_bad_position"].as_u64(), Some(position));
    assert_eq!(report["first_bad_stream"], format!("wallet-{customer}"));
    assert_eq!(report["checked"].as_u64(), Some(position - 1));
}

/// Events as the release before schema version 2 of `LimitExceeded` wrote them.
const V1_FIXTURE: &str = include_str!("fixtures/wallet_history_v1.json");

#[tokio::test]
async fn events_of_an_older_shape_still_load_project_and_verify() {
    let app = spawn_app_with_admin().await;
    let admin = app.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (_, auditor) = auditor(&app, &admin).await;
    let customer = app.register_customer("asha@example.com", PASSWORD).await;
    let asha = app.token_for("asha@example.com", PASSWORD).await;

    // The fixture's events are appended to Asha's wallet as they were stored then.
    let database = app.own_database().await;
    let store =
        infrastructure::event_store::SqlEventStore::open(database.clone(), Default::default())
            .await
            .expect("a second writer on the file");
    let today = Utc::now().date_naive();
    let month_start = today.with_day(1).expect("the first of the month");
    let fixture = V1_FIXTURE
        .replace("{{today}}", &today.to_string())
        .replace("{{month_start}}", &month_start.to_string());
    let fixture: Vec<Value> = serde_json::from_str(&fixture).expect("the fixture parses");
    let stream =
        infrastructure::event_store::StreamId::parse(format!("wallet-{customer}")).expect("stream");
    use infrastructure::event_store::EventStore;
    let version = store.read_stream(&stream, 1).await.expect("read").len() as u64;
    let events = fixture
        .iter()
        .map(|e| infrastructure::event_store::NewEvent {
            event_id: uuid::Uuid::now_v7(),
            event_type: e["event_type"].as_str().expect("type").to_owned(),
            schema_version: u16::try_from(e["schema_version"].as_u64().expect("version"))
                .expect("small"),
            payload: serde_json::value::RawValue::from_string(e["payload"].to_string())
                .expect("json"),
        })
        .collect();
    let metadata = infrastructure::event_store::EventMetadata {
        command_id: uuid::Uuid::now_v7(),
        correlation_id: uuid::Uuid::now_v7(),
        causation_id: None,
        actor: format!("user:{customer}"),
        recorded_at: Utc::now(),
        request_id: None,
    };
    store
        .append(infrastructure::event_store::AppendRequest::new(
            stream,
            infrastructure::event_store::ExpectedVersion::Exact(version),
            metadata,
            events,
        ))
        .await
        .expect("the v1 history is appended");
    drop(store);
    database.close().await;

    // Load: the wallet decodes the v1 crossing (an expense in the same period raises no
    // second crossing); project: the dashboard counts the v1 expense; the process manager
    // opens a ticket for the v1 crossing.
    spend(&app, &asha, "10", &today.to_string()).await;
    let dashboard = app.read(&asha, "/api/v1/dashboard").await;
    let food = dashboard["limits"]
        .as_array()
        .expect("limits")
        .iter()
        .find(|l| l["category"] == "Food")
        .expect("the fixture's limit")
        .clone();
    assert_eq!(food["spent"], "140.00", "{dashboard:#}");
    let list = tickets(&app, &asha, 1).await;
    assert_eq!(list["items"][0]["limit"]["spent"], "130.00");
    let crossings = app
        .read(
            &auditor,
            &format!("/api/v1/audit/events?customer={customer}&type=LimitExceeded"),
        )
        .await;
    let crossings = crossings["events"].as_array().expect("events");
    assert_eq!(crossings.len(), 1, "no second crossing in the same period");
    assert_eq!(crossings[0]["schema_version"], 1);
    assert!(
        crossings[0]["payload"].get("overspent").is_none(),
        "stored as it was written"
    );
    let why = app
        .read(
            &auditor,
            &format!(
                "/api/v1/audit/events/{}/why",
                crossings[0]["event_id"].as_str().expect("id")
            ),
        )
        .await;
    assert_eq!(
        why["request"]["events"].as_array().expect("events").len(),
        4
    );

    // Verify: the v1 events are chained like any other.
    let report = app.read(&auditor, "/api/v1/audit/verify").await;
    assert_eq!(report["ok"], true, "{report}");
}

#[tokio::test]
async fn an_auditor_verifies_replays_browses_and_exports_on_the_pages() {
    use crate::browser::{Browser, location};

    let Crossed {
        app,
        admin,
        customer,
        ..
    } = a_customer_past_a_limit().await;

    let mut meera = Browser::on(&app);
    assert_eq!(
        meera.sign_in("meera@example.com", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(location(&meera.get("/").await), "/audit");
    let home = meera.page("/audit?verify=1").await;
    assert!(home.contains("intact"), "{home}");

    // A bad id comes back on the form, named; an unknown one is a 404 page.
    let refused = meera.get("/audit/state?customer=nobody").await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text()
            .await
            .expect("html")
            .contains("must be a user id")
    );
    let bad_instant = meera
        .get(&format!("/audit/state?customer={customer}&as_of=soon"))
        .await;
    assert_eq!(bad_instant.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let state = meera
        .page(&format!(
            "/audit/state?customer={customer}&as_of=2999-01-01T00:00"
        ))
        .await;
    assert!(state.contains("Balance <strong>380"), "{state}");
    assert!(state.contains("unassigned"), "{state}");

    let events = meera
        .page(&format!(
            "/audit/events?customer={customer}&type=TicketOpened"
        ))
        .await;
    let why_link = events
        .split("href=\"")
        .find_map(|s| s.split('"').next().filter(|href| href.ends_with("/why")))
        .expect("a why link")
        .to_owned();
    let why = meera.page(&why_link).await;
    assert!(
        why.contains("because of") && why.contains("LimitExceeded"),
        "{why}"
    );
    assert!(why.contains(&format!("user:{customer}")), "{why}");
    let bad_filters = meera.get("/audit/events?limit=0&type=no%20such").await;
    assert_eq!(bad_filters.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let csv = meera
        .get(&format!("/audit/export?format=csv&customer={customer}"))
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/csv")
    );
    let csv = csv.text().await.expect("text");
    assert!(csv.starts_with("position,recorded_at,stream"));
    assert!(csv.lines().skip(1).all(|line| line.contains(&customer)));

    // Customers have no way in.
    let mut asha_pages = Browser::on(&app);
    asha_pages.sign_in("asha@example.com", PASSWORD).await;
    assert_eq!(
        asha_pages.get("/audit/events").await.status(),
        StatusCode::FORBIDDEN
    );
    // Every page read above was recorded.
    let reads = app
        .read(
            &admin,
            &format!("/api/v1/admin/audit-reads?customer={customer}"),
        )
        .await;
    assert!(reads.as_array().expect("a list").len() >= 4, "{reads:#}");
}

#[tokio::test]
async fn the_server_seals_the_head_of_the_log_when_it_stops() {
    let app = spawn_app_with_admin().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    let head = app.event_count().await;
    // Stopped as SIGTERM would, then started again on the same files.
    let app = app.restart(|| {}, |_| {}).await;

    let database = app.own_database().await;
    let seals = infrastructure::tamper_evidence::stored_seals(&database)
        .await
        .expect("seals");
    assert!(
        seals.iter().any(|(seal, _)| seal.position as i64 == head),
        "a seal of the head at shutdown: {seals:?}"
    );
    let report = infrastructure::tamper_evidence::verify(&database, &[], |_| {})
        .await
        .expect("verify");
    assert!(report.ok && report.seals_checked >= 1, "{report:?}");
    database.close().await;
}
