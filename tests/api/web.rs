//! Each role's main flow on the pages, as a browser without JavaScript would go through
//! it: real forms, the session cookie, and the CSRF token every form carries.

use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::browser::{Browser, location};
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, spawn_app, spawn_app_with_admin};

const PASSWORD: &str = "correct horse battery staple";

/// The smallest PNG: its signature and an empty header chunk are all the check reads.
fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 13]);
    bytes.extend_from_slice(b"IHDR");
    bytes.extend_from_slice(&[0; 17]);
    bytes
}

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

async fn sign_up(app: &TestApp, name: &str, email: &str) -> Browser {
    let mut browser = Browser::on(app);
    let created = browser
        .post(
            "/signup",
            &[
                ("name", name),
                ("email", email),
                ("mobile", "+919876543210"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    browser
}

/// Waits (the support process runs beside the requests) until `path` shows `text`.
async fn eventually_shows(browser: &mut Browser, path: &str, text: &str) -> String {
    for _ in 0..250 {
        let html = browser.page(path).await;
        if html.contains(text) {
            return html;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{path} never showed {text}");
}

/// Ravi Kumar (`ravi`), an agent the admin created over the API.
pub(crate) async fn create_agent(app: &TestApp) -> String {
    let admin = app.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let body = json!({
        "name": "Ravi Kumar", "email": "ravi@example.com", "mobile": "+919123456789",
        "gender": "male", "username": "ravi", "password": PASSWORD
    });
    let created = app
        .post_as(Some(&admin), "/api/v1/admin/agents", &body)
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    created.json::<Value>().await.expect("json")["user_id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// Between `first` and `then` in `html`, in that order.
fn between<'a>(html: &'a str, first: &str, then: &str) -> &'a str {
    let start = html
        .find(first)
        .unwrap_or_else(|| panic!("{first} in the page"))
        + first.len();
    let end = html[start..].find(then).map_or(html.len(), |i| start + i);
    &html[start..end]
}

#[tokio::test]
async fn a_customer_tops_up_sets_a_limit_records_expenses_and_follows_the_ticket_on_the_pages() {
    let app = spawn_app_with_admin().await;
    create_agent(&app).await;
    let mut asha = sign_up(&app, "Asha Rao", "asha@example.com").await;

    // A refused top-up comes back with the value kept and the problem named; nothing stored.
    let before = app.event_count().await;
    let refused = asha
        .post("/top-up", &[("amount", "-5"), ("note", "pocket money")])
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.expect("html");
    assert!(html.contains("value=\"-5\""), "the amount is kept");
    assert!(html.contains("value=\"pocket money\""), "the note is kept");
    assert!(
        html.contains("class=\"error\""),
        "the problem is beside the field"
    );
    assert_eq!(app.event_count().await, before, "nothing stored");

    let topped = asha
        .post("/top-up", &[("amount", "1000"), ("note", "salary")])
        .await;
    let dashboard = asha.follow(topped).await;
    assert!(
        dashboard.contains("Money added to your wallet."),
        "a notice, once"
    );
    assert!(dashboard.contains("1000.00 INR"), "{dashboard}");
    assert!(
        !asha.page("/dashboard").await.contains("Money added"),
        "shown once"
    );

    let limit = asha
        .post(
            "/limits",
            &[
                ("period", "monthly"),
                ("first_day", "1"),
                ("category", ""),
                ("amount", "300"),
            ],
        )
        .await;
    let limits = asha.follow(limit).await;
    assert!(limits.contains("Limit set."));
    assert!(limits.contains("All spending"));

    // One expense with a receipt, within the limit: the bar is amber past 80%.
    let recorded = asha
        .post_multipart(
            "/expenses",
            &[
                ("amount", "250"),
                ("category", "Groceries"),
                ("description", "weekly shop"),
                ("spent_on", &today()),
            ],
            Some(("file", png())),
        )
        .await;
    let expenses = asha.follow(recorded).await;
    assert!(expenses.contains("Expense recorded."));
    assert!(expenses.contains("weekly shop"));
    let receipt = between(&expenses, "href=\"/receipts/", "\"").to_owned();
    let image = asha.get(&format!("/receipts/{receipt}")).await;
    assert_eq!(image.status(), StatusCode::OK);
    assert_eq!(image.headers()[CONTENT_TYPE], "image/png");
    assert!(
        image.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("ascii")
            .contains("sandbox")
    );
    assert_eq!(image.bytes().await.expect("bytes").to_vec(), png());
    let board = asha.page("/dashboard").await;
    assert!(
        board.contains("class=\"limit warn\""),
        "amber at 83%: {board}"
    );

    // A file that only claims to be an image is refused, and nothing of it is kept.
    let before = app.event_count().await;
    let fake = asha
        .post_multipart(
            "/expenses",
            &[
                ("amount", "5"),
                ("category", "Food"),
                ("spent_on", &today()),
            ],
            Some(("file", b"<script>alert(1)</script>".to_vec())),
        )
        .await;
    assert_eq!(fake.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = fake.text().await.expect("html");
    assert!(html.contains("not a JPEG, PNG or PDF"), "{html}");
    assert!(html.contains("value=\"5\""), "the form keeps its values");
    assert_eq!(app.event_count().await, before);

    // Past the limit: red, and a ticket the customer can follow.
    let over = asha
        .post_multipart(
            "/expenses",
            &[
                ("amount", "80"),
                ("category", "Food"),
                ("description", "=HYPERLINK(\"x\")"),
                ("spent_on", &today()),
            ],
            None,
        )
        .await;
    assert_eq!(over.status(), StatusCode::SEE_OTHER);
    assert!(
        asha.page("/dashboard")
            .await
            .contains("class=\"limit over\"")
    );
    let tickets = eventually_shows(&mut asha, "/tickets", "/tickets/").await;
    assert!(
        tickets.contains("Ravi Kumar"),
        "the agent is named: {tickets}"
    );
    let ticket = between(&tickets, "href=\"/tickets/", "\"").to_owned();
    let commented = asha
        .post(
            &format!("/tickets/{ticket}/comment"),
            &[("text", "Rent was due this week.")],
        )
        .await;
    let detail = asha.follow(commented).await;
    assert!(detail.contains("Rent was due this week."));

    // The list filters, and the export has every expense with formulas defused.
    let food = asha.page("/expenses?category=food&status=live").await;
    assert!(food.contains("=HYPERLINK") && !food.contains("weekly shop"));
    let csv = asha.get("/expenses.csv").await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()[CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/csv")
    );
    let csv = csv.text().await.expect("csv");
    assert_eq!(csv.lines().count(), 3, "a header and two expenses: {csv}");
    assert!(csv.contains("'=HYPERLINK"), "{csv}");
    assert!(csv.contains("/receipts/"), "{csv}");

    // Void one: the balance comes back.
    let expense = between(&food, "action=\"/expenses/", "/void").to_owned();
    let voided = asha
        .post(
            &format!("/expenses/{expense}/void"),
            &[("reason", "duplicate")],
        )
        .await;
    assert!(asha.follow(voided).await.contains("Expense voided"));
    assert!(asha.page("/dashboard").await.contains("750.00 INR"));

    // Another customer sees neither the receipt nor the ticket.
    let mut other = sign_up(&app, "Bina Shah", "bina@example.com").await;
    assert_eq!(
        other.get(&format!("/receipts/{receipt}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        other.get(&format!("/tickets/{ticket}")).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn savings_reminders_and_recurring_payments_work_from_their_pages() {
    let app = spawn_app().await;
    let mut asha = sign_up(&app, "Asha Rao", "asha@example.com").await;
    asha.post("/top-up", &[("amount", "500")]).await;

    let goal = asha
        .post(
            "/savings",
            &[("name", "Bicycle"), ("target", "200"), ("due", "")],
        )
        .await;
    let savings = asha.follow(goal).await;
    assert!(savings.contains("Bicycle"));
    let goal_id = between(&savings, "action=\"/savings/", "/contribute").to_owned();
    let moved = asha
        .post(
            &format!("/savings/{goal_id}/contribute"),
            &[("amount", "50")],
        )
        .await;
    assert!(asha.follow(moved).await.contains("50.00 of 200.00"));
    let too_much = asha
        .post(&format!("/savings/{goal_id}/withdraw"), &[("amount", "80")])
        .await;
    assert_eq!(too_much.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Days::new(1)).to_string();
    let reminder = asha
        .post(
            "/reminders",
            &[
                ("title", "Pay the plumber"),
                ("due", &tomorrow),
                ("repeat", ""),
            ],
        )
        .await;
    let page = asha.follow(reminder).await;
    assert!(page.contains("Pay the plumber"));
    let payment = asha
        .post(
            "/recurring-payments",
            &[
                ("amount", "49"),
                ("category", "Utilities"),
                ("description", "Internet"),
                ("cadence", "monthly"),
                ("first_due", &tomorrow),
                ("remind_days_before", "2"),
            ],
        )
        .await;
    let page = asha.follow(payment).await;
    assert!(page.contains("Internet") && page.contains("49.00"));
    assert!(
        asha.page("/dashboard").await.contains("Pay the plumber"),
        "upcoming on the dashboard"
    );

    let bad = asha
        .post(
            "/reminders",
            &[("title", ""), ("due", "2020-01-01"), ("repeat", "hourly")],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let reminder_id = between(&page, "action=\"/reminders/", "/cancel").to_owned();
    let cancelled = asha
        .post(&format!("/reminders/{reminder_id}/cancel"), &[])
        .await;
    assert!(asha.follow(cancelled).await.contains("Reminder cancelled."));
}

#[tokio::test]
async fn an_agent_takes_comments_and_resolves_a_ticket_and_sees_the_receipt() {
    let app = spawn_app_with_admin().await;
    let mut asha = sign_up(&app, "Asha Rao", "asha@example.com").await;
    asha.post("/top-up", &[("amount", "500")]).await;
    asha.post(
        "/limits",
        &[("period", "weekly"), ("first_day", ""), ("amount", "100")],
    )
    .await;
    let over = asha
        .post_multipart(
            "/expenses",
            &[
                ("amount", "150"),
                ("category", "Travel"),
                ("spent_on", &today()),
            ],
            Some(("file", png())),
        )
        .await;
    assert_eq!(over.status(), StatusCode::SEE_OTHER);
    let expenses = asha.page("/expenses").await;
    let receipt = between(&expenses, "href=\"/receipts/", "\"").to_owned();

    // No agent yet: the ticket waits; the agent created next takes it.
    create_agent(&app).await;
    let mut ravi = Browser::on(&app);
    assert_eq!(
        ravi.sign_in("ravi", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(location(&ravi.get("/").await), "/agent/queue");
    let queue = eventually_shows(&mut ravi, "/agent/queue", "Asha Rao").await;
    let ticket = between(&queue, "href=\"/tickets/", "\"").to_owned();
    let detail = ravi.page(&format!("/tickets/{ticket}")).await;
    assert!(detail.contains("Limit history"), "{detail}");
    assert!(detail.contains("150.00"));
    assert_eq!(
        ravi.get(&format!("/receipts/{receipt}")).await.status(),
        StatusCode::OK,
        "the ticket's agent sees it"
    );

    let commented = ravi
        .post(
            &format!("/tickets/{ticket}/comment"),
            &[("text", "Calling you now.")],
        )
        .await;
    assert!(ravi.follow(commented).await.contains("Calling you now."));
    let empty = ravi
        .post(&format!("/tickets/{ticket}/resolve"), &[("resolution", "")])
        .await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let resolved = ravi
        .post(
            &format!("/tickets/{ticket}/resolve"),
            &[("resolution", "Travel was a one-off.")],
        )
        .await;
    assert!(ravi.follow(resolved).await.contains("Ticket resolved."));
    assert!(
        !ravi.page("/agent/queue").await.contains(&ticket),
        "gone from the queue"
    );
    assert!(
        asha.page("/tickets")
            .await
            .contains("Travel was a one-off.")
    );

    // Agents may not open the admin's pages, nor customers the agent's.
    assert_eq!(ravi.get("/admin").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        asha.get("/agent/queue").await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn an_admin_creates_people_deactivates_them_and_rebuilds_a_read_model_on_the_pages() {
    let app = spawn_app_with_admin().await;
    let mut admin = Browser::on(&app);
    assert_eq!(
        admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(location(&admin.get("/").await), "/admin");

    let before = app.event_count().await;
    let refused = admin
        .post(
            "/admin/agents",
            &[
                ("name", "Ravi Kumar"),
                ("email", "not-an-email"),
                ("mobile", "+919123456789"),
                ("gender", "male"),
                ("username", "ravi"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.expect("html");
    assert!(html.contains("value=\"Ravi Kumar\""), "values kept");
    assert!(!html.contains(PASSWORD), "never the password");
    assert_eq!(app.event_count().await, before);

    let created = admin
        .post(
            "/admin/agents",
            &[
                ("name", "Ravi Kumar"),
                ("email", "ravi@example.com"),
                ("mobile", "+919123456789"),
                ("gender", "male"),
                ("username", "ravi"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let people = admin.follow(created).await;
    assert!(people.contains("Agent created.") && people.contains("ravi@example.com"));
    let auditor = admin
        .post(
            "/admin/auditors",
            &[
                ("name", "Odile Audit"),
                ("email", "odile@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert!(admin.follow(auditor).await.contains("odile@example.com"));

    let mut ravi = Browser::on(&app);
    ravi.sign_in("ravi", PASSWORD).await;
    assert!(ravi.is_signed_in().await);
    let agents = admin.page("/admin?role=agent&q=ravi").await;
    let ravi_id = between(&agents, "action=\"/admin/people/", "/deactivate").to_owned();
    let deactivated = admin
        .post(&format!("/admin/people/{ravi_id}/deactivate"), &[])
        .await;
    assert!(
        admin
            .follow(deactivated)
            .await
            .contains("Account deactivated")
    );
    assert!(!ravi.is_signed_in().await, "signed out at once");

    let models = admin.page("/admin/read-models").await;
    for name in ["wallets", "users", "tickets", "schedules"] {
        assert!(
            models.contains(&format!("/admin/read-models/{name}/rebuild")),
            "{name}"
        );
    }
    let started = admin.post("/admin/read-models/wallets/rebuild", &[]).await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let models = eventually_shows(
        &mut admin,
        "/admin/read-models",
        "identical to the live one",
    )
    .await;
    assert!(models.contains("data-live-progress=\"idle\""), "{models}");
    assert_eq!(
        admin
            .post("/admin/read-models/nothing/rebuild", &[])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    let mail = admin.page("/admin/mail").await;
    assert!(mail.contains("No parked mail."));
}

#[tokio::test]
async fn a_form_post_without_the_right_csrf_token_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let mut asha = sign_up(&app, "Asha Rao", "asha@example.com").await;
    let before = app.event_count().await;
    for (path, form) in [
        ("/top-up", vec![("amount", "10")]),
        (
            "/expenses",
            vec![
                ("amount", "10"),
                ("category", "Food"),
                ("spent_on", "2026-01-01"),
            ],
        ),
        ("/limits", vec![("period", "weekly"), ("amount", "10")]),
        ("/logout", vec![]),
    ] {
        let refused = asha.post_without_token(path, &form).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path}");
        let mut forged = form.clone();
        forged.push((
            "csrf_token",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ));
        let refused = asha.post_without_token(path, &forged).await;
        assert_eq!(
            refused.status(),
            StatusCode::FORBIDDEN,
            "{path} with a made-up token"
        );
    }
    assert_eq!(app.event_count().await, before, "nothing stored");
    assert!(asha.is_signed_in().await, "not even signed out");

    // A token from another browser's session is worth nothing in this one.
    let mut stranger = Browser::on(&app);
    let theirs = stranger.csrf().await;
    let refused = asha
        .post_without_token("/top-up", &[("amount", "10"), ("csrf_token", &theirs)])
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let mut anonymous = Browser::on(&app);
    let refused = anonymous
        .post_without_token(
            "/login",
            &[("email", "asha@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        refused.status(),
        StatusCode::FORBIDDEN,
        "the sign-in form too"
    );
}

#[tokio::test]
async fn every_page_is_served_with_the_safety_headers_and_its_own_assets_only() {
    let app = spawn_app().await;
    let mut asha = sign_up(&app, "Asha Rao", "asha@example.com").await;
    for path in [
        "/dashboard",
        "/expenses",
        "/top-up",
        "/limits",
        "/savings",
        "/reminders",
        "/tickets",
        "/signup",
    ] {
        let mut anonymous = Browser::on(&app);
        let browser = if path == "/signup" {
            &mut anonymous
        } else {
            &mut asha
        };
        let page = browser.get(path).await;
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        let headers = page.headers().clone();
        let policy = headers[CONTENT_SECURITY_POLICY].to_str().expect("ascii");
        assert!(
            policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"),
            "{policy}"
        );
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers.contains_key("referrer-policy"));
        let html = page.text().await.expect("html");
        assert!(html.contains("name=\"viewport\""), "{path} fits a phone");
        assert!(
            !html.contains("<script>") && !html.contains("style=\""),
            "{path}: nothing inline"
        );
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{path}: nothing from elsewhere"
        );
        for form in html.split("<form").skip(1) {
            if form.contains("method=\"post\"") {
                assert!(
                    form.contains("name=\"csrf_token\""),
                    "{path}: a form without its token"
                );
            }
        }
    }
    for (asset, kind) in [
        ("/assets/app.css", "text/css"),
        ("/assets/app.js", "text/javascript"),
    ] {
        let response = app.call(Method::GET, None, asset, None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()[CONTENT_TYPE]
                .to_str()
                .expect("ascii")
                .starts_with(kind)
        );
    }
}

#[tokio::test]
async fn long_lists_link_to_their_next_page_on_the_pages() {
    let app = spawn_app_with_admin().await;
    let mut asha = sign_up(&app, "Asha Rao", "asha@example.com").await;
    let token = app.token_for("asha@example.com", PASSWORD).await;
    let top_up = serde_json::json!({ "amount": "10000" });
    let topped = app
        .post_as(Some(&token), "/api/v1/wallet/top-ups", &top_up)
        .await;
    assert_eq!(topped.status(), StatusCode::CREATED);
    for day in 1..=51 {
        let expense = serde_json::json!({
            "amount": "1", "category": "Tea", "description": format!("cup {day}"),
            "spent_on": format!("2026-10-{:02}", day % 28 + 1),
        });
        let recorded = app
            .post_as(Some(&token), "/api/v1/expenses", &expense)
            .await;
        assert_eq!(recorded.status(), StatusCode::CREATED);
    }
    let first = asha.page("/expenses?category=Tea").await;
    let older = first
        .split("href=\"")
        .find_map(|s| s.split('"').next().filter(|h| h.contains("cursor=")))
        .expect("a link to older expenses")
        .replace("&amp;", "&");
    assert!(older.contains("category=Tea"), "{older}");
    let second = asha.page(&older).await;
    assert_eq!(second.matches("cup ").count(), 1, "the 51st expense");

    // The admin's directory pages the same way.
    let mut admin = Browser::on(&app);
    admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    for n in 0..50 {
        let mut someone = Browser::on(&app);
        let email = format!("person{n}@example.com");
        someone
            .post(
                "/signup",
                &[
                    ("name", "Someone Else"),
                    ("email", &email),
                    ("mobile", "+919876543210"),
                    ("password", PASSWORD),
                ],
            )
            .await;
    }
    let people = admin.page("/admin?role=customer").await;
    let more = people
        .split("href=\"")
        .find_map(|s| s.split('"').next().filter(|h| h.contains("cursor=")))
        .expect("a link to more people")
        .replace("&amp;", "&");
    assert!(more.contains("role=customer"), "{more}");
    admin.page(&more).await;
}
