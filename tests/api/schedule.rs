//! Reminders and recurring payments end to end, on a fake clock and over a real SMTP
//! listener: three simulated months give three recorded expenses and three mails of each
//! reminder kind, across restarts, and nothing twice.

use app::Config;
use chrono::{DateTime, TimeZone, Utc};
use infrastructure::clock::FakeClock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::access_matrix::NOBODY;
use crate::admin::rebuild_and_wait;
use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, problem, spawn_app_configured,
    spawn_app_on_postgres_configured,
};
use crate::smtp::SmtpCatcher;

const EMAIL: &str = "asha@example.com";
const PASSWORD: &str = "correct horse battery staple";

fn morning(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 9, 0, 0).unwrap()
}

async fn get(app: &TestApp, path: &str) -> Value {
    // Tokens expire while the fake clock runs through months: sign in afresh.
    let token = app.token_for(EMAIL, PASSWORD).await;
    app.read(&token, path).await
}

/// The rent expenses' days, once the wallet lists `count` of them.
async fn rent_days(app: &TestApp, count: usize) -> Vec<String> {
    for _ in 0..500 {
        let list = get(app, "/api/v1/expenses?category=Rent").await;
        let items = list["items"].as_array().expect("items").clone();
        if items.len() >= count {
            let mut days: Vec<String> = items
                .iter()
                .map(|e| e["spent_on"].as_str().expect("day").to_owned())
                .collect();
            days.sort();
            return days;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the wallet never listed {count} rent expenses");
}

/// The next mail, which must be to Asha with `subject`.
async fn expect_mail(smtp: &mut SmtpCatcher, subject: &str) {
    let mail = smtp.next_mail().await;
    assert!(mail.contains(&format!("To: {EMAIL}")), "{mail}");
    assert!(
        mail.contains(&format!("Subject: {subject}")),
        "expected {subject:?}: {mail}"
    );
}

/// The fake clock, the test's SMTP server and a first admin.
fn settings(config: &mut Config, clock: FakeClock, smtp_url: String) {
    config.clock = clock.into();
    config.smtp_url = Some(smtp_url);
    config.admin_email = Some(ADMIN_EMAIL.into());
    config.admin_password = Some(ADMIN_PASSWORD.into());
}

async fn start(clock: &FakeClock, smtp: &SmtpCatcher) -> TestApp {
    let (clock, url) = (clock.clone(), smtp.url.clone());
    spawn_app_configured(move |config| settings(config, clock, url)).await
}

async fn start_on_postgres(name: &str, clock: &FakeClock, smtp: &SmtpCatcher) -> Option<TestApp> {
    let (clock, url) = (clock.clone(), smtp.url.clone());
    spawn_app_on_postgres_configured(name, move |config| settings(config, clock, url)).await
}

async fn restart(
    app: TestApp,
    clock: &FakeClock,
    smtp: &SmtpCatcher,
    at: DateTime<Utc>,
) -> TestApp {
    let (down_clock, clock, url) = (clock.clone(), clock.clone(), smtp.url.clone());
    app.restart(
        move || down_clock.set(at),
        move |config| settings(config, clock, url),
    )
    .await
}

#[tokio::test]
async fn three_months_of_a_recurring_payment_record_three_expenses_and_mail_three_reminders_across_restarts()
 {
    let clock = FakeClock::at(morning(2027, 1, 20));
    let smtp = SmtpCatcher::start().await;
    let app = start(&clock, &smtp).await;
    three_months(app, clock, smtp).await;
}

#[tokio::test]
async fn three_months_of_reminders_and_payments_on_postgresql() {
    let clock = FakeClock::at(morning(2027, 1, 20));
    let smtp = SmtpCatcher::start().await;
    let Some(app) = start_on_postgres("schedule_three_months", &clock, &smtp).await else {
        return;
    };
    three_months(app, clock, smtp).await;
}

async fn three_months(mut app: TestApp, clock: FakeClock, mut smtp: SmtpCatcher) {
    app.register_customer(EMAIL, PASSWORD).await;
    let token = app.token_for(EMAIL, PASSWORD).await;
    let response = app
        .post_as(
            Some(&token),
            "/api/v1/recurring-payments",
            &json!({ "amount": "15000", "category": "Rent", "description": "Flat 4B",
                     "cadence": "monthly", "first_due": "2027-01-31", "remind_days_before": 3 }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let payment: Value = response.json().await.expect("json");
    let response = app
        .post_as(
            Some(&token),
            "/api/v1/reminders",
            &json!({ "title": "Pay the credit card bill", "due": "2027-01-24", "repeat": "monthly" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    // The dashboard shows what comes, soonest first.
    let dashboard = get(&app, "/api/v1/dashboard").await;
    let upcoming = dashboard["upcoming_reminders"].as_array().expect("list");
    assert_eq!(upcoming.len(), 2, "{upcoming:?}");
    assert_eq!(upcoming[0]["title"], "Pay the credit card bill");
    assert_eq!(upcoming[0]["due"], "2027-01-24");
    assert_eq!(upcoming[1]["kind"], "payment");
    assert_eq!(upcoming[1]["due"], "2027-01-31");
    assert_eq!(upcoming[1]["amount"], "15000.00");

    // January, running.
    clock.set(morning(2027, 1, 24));
    expect_mail(&mut smtp, "Reminder: Pay the credit card bill").await;
    clock.set(morning(2027, 1, 28));
    expect_mail(&mut smtp, "Coming up on 2027-01-31: Rent, 15000.00 INR").await;
    clock.set(morning(2027, 1, 31));
    assert_eq!(rent_days(&app, 1).await, ["2027-01-31"]);

    // Down over the card bill's February date: mailed on the first step after the start.
    app = restart(app, &clock, &smtp, morning(2027, 2, 24)).await;
    expect_mail(&mut smtp, "Reminder: Pay the credit card bill").await;
    clock.set(morning(2027, 2, 25));
    expect_mail(&mut smtp, "Coming up on 2027-02-28: Rent, 15000.00 INR").await;
    clock.set(morning(2027, 2, 28));
    assert_eq!(rent_days(&app, 2).await, ["2027-01-31", "2027-02-28"]);

    // March's mails while running, then down over the payment's day: recorded on start,
    // on its own day, once.
    clock.set(morning(2027, 3, 24));
    expect_mail(&mut smtp, "Reminder: Pay the credit card bill").await;
    clock.set(morning(2027, 3, 28));
    expect_mail(&mut smtp, "Coming up on 2027-03-31: Rent, 15000.00 INR").await;
    app = restart(app, &clock, &smtp, morning(2027, 4, 1)).await;
    let days = rent_days(&app, 3).await;
    assert_eq!(days, ["2027-01-31", "2027-02-28", "2027-03-31"]);

    // Started once more on the same day: nothing is done again.
    app = restart(app, &clock, &smtp, morning(2027, 4, 1)).await;
    let payments = get(&app, "/api/v1/recurring-payments").await;
    let listed = &payments["items"][0];
    assert_eq!(listed["payment_id"], payment["payment_id"]);
    assert_eq!(listed["recorded"], 3);
    assert_eq!(listed["next_due"], "2027-04-30");
    assert_eq!(listed["next_reminder"], "2027-04-27");
    let reminders = get(&app, "/api/v1/reminders").await;
    assert_eq!(reminders["items"][0]["sent"], 3);
    assert_eq!(reminders["items"][0]["next_due"], "2027-04-24");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        rent_days(&app, 3).await.len(),
        3,
        "no payment recorded twice"
    );
    assert_eq!(
        smtp.received_so_far(),
        Vec::<String>::new(),
        "no mail twice"
    );

    // Cancelled, the payment records nothing more; the expenses stay.
    let response = app
        .call(
            Method::POST,
            Some(&app.token_for(EMAIL, PASSWORD).await),
            &format!(
                "/api/v1/recurring-payments/{}/cancel",
                payment["payment_id"].as_str().expect("id")
            ),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    clock.set(morning(2027, 5, 1));
    let payments = get(&app, "/api/v1/recurring-payments").await;
    assert_eq!(payments["items"][0]["status"], "cancelled");
    expect_mail(&mut smtp, "Reminder: Pay the credit card bill").await;
    assert_eq!(rent_days(&app, 3).await.len(), 3);

    // Rebuilt from the log, the schedules read model is the one the product kept.
    let admin = app.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let rebuilt = rebuild_and_wait(&app, &admin, "schedules").await;
    assert_eq!(rebuilt["last_rebuild"]["error"], Value::Null, "{rebuilt}");
    assert_eq!(rebuilt["last_rebuild"]["differing_tables"], json!([]));
    assert!(
        rebuilt["last_rebuild"]["events"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
}

#[tokio::test]
async fn bad_schedules_are_refused_field_by_field_and_store_nothing() {
    let clock = FakeClock::at(morning(2027, 1, 20));
    let smtp = SmtpCatcher::start().await;
    let app = start(&clock, &smtp).await;
    app.register_customer(EMAIL, PASSWORD).await;
    let token = app.token_for(EMAIL, PASSWORD).await;
    let events = app.event_count().await;

    let response = app
        .post_as(
            Some(&token),
            "/api/v1/recurring-payments",
            &json!({ "amount": "-5", "category": "", "cadence": "daily",
                     "first_due": "2027-01-19", "remind_days_before": 31 }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused = problem(response).await;
    let mut named: Vec<&str> = refused["errors"]
        .as_array()
        .expect("field errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    named.sort_unstable();
    assert_eq!(
        named,
        [
            "amount",
            "cadence",
            "category",
            "first_due",
            "remind_days_before"
        ]
    );

    let response = app
        .post_as(
            Some(&token),
            "/api/v1/reminders",
            &json!({ "title": " ", "due": "2037-06-01", "repeat": "hourly" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        problem(response).await["errors"].as_array().map(Vec::len),
        Some(3)
    );
    let response = app
        .post_as(
            Some(&token),
            "/api/v1/reminders",
            &json!({ "title": "x", "due": "2027-02-01", "colour": "red" }),
        )
        .await;
    assert!(
        response.status().is_client_error(),
        "unknown fields refused"
    );
    let unknown = format!("/api/v1/reminders/{NOBODY}/cancel");
    let response = app.call(Method::POST, Some(&token), &unknown, None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.event_count().await, events, "nothing stored");
}
