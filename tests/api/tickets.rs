//! The support flow end to end, over a real SMTP listener: a crossed limit opens one
//! ticket, given to the least loaded agent, and both parties get one mail each.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, spawn_app_with_admin_and_smtp};
use crate::smtp::SmtpCatcher;

const PASSWORD: &str = "correct horse battery staple";

async fn agent(app: &TestApp, admin: &str, email: &str, username: &str, name: &str) -> String {
    let body = json!({
        "name": name, "email": email, "mobile": "+91 91234 56789",
        "gender": "female", "username": username, "password": PASSWORD
    });
    let response = app
        .post_as(Some(admin), "/api/v1/admin/agents", &body)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    body["user_id"].as_str().expect("id").to_owned()
}

async fn spend(app: &TestApp, token: &str, amount: &str) {
    let body = json!({ "amount": amount, "category": "Food", "spent_on": "2026-11-20" });
    let response = app
        .call(Method::POST, Some(token), "/api/v1/expenses", Some(&body))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

/// Waits until `path` lists `count` items.
async fn listed(app: &TestApp, token: &str, path: &str, count: usize) -> Value {
    for _ in 0..250 {
        let list = app.read(token, path).await;
        if list["items"].as_array().map(Vec::len) == Some(count) {
            return list;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{path} never listed {count} items");
}

/// Waits until the support process has handled the log up to `head`.
async fn wait_until_handled(app: &TestApp, head: i64) {
    for _ in 0..500 {
        if app.support_position().await == head {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        app.support_position().await,
        head,
        "the whole log was handled again"
    );
}

fn recipients(mails: &[String]) -> Vec<String> {
    let mut to: Vec<String> = mails
        .iter()
        .filter_map(|mail| {
            mail.lines()
                .find_map(|line| line.strip_prefix("To: "))
                .map(|to| to.trim().trim_matches(['<', '>']).to_owned())
        })
        .collect();
    to.sort();
    to
}

async fn mails(smtp: &mut SmtpCatcher, count: usize) -> Vec<String> {
    let mut mails = Vec::new();
    for _ in 0..count {
        mails.push(smtp.next_mail().await);
    }
    mails
}

#[tokio::test]
async fn a_crossed_limit_gives_one_ticket_to_the_least_loaded_agent_and_one_mail_each() {
    let (app, mut smtp) = spawn_app_with_admin_and_smtp().await;
    let admin = app.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let ravi = agent(&app, &admin, "ravi@example.com", "ravi", "Ravi Kumar").await;
    app.register_customer("asha@example.com", PASSWORD).await;
    let asha = app.token_for("asha@example.com", PASSWORD).await;
    let limit = json!({ "period": "monthly", "amount": "100", "category": "Food" });
    let set = app
        .call(Method::PUT, Some(&asha), "/api/v1/limits", Some(&limit))
        .await;
    assert_eq!(set.status(), StatusCode::OK);

    // 80%: a warning to the customer, no ticket.
    spend(&app, &asha, "85").await;
    let warning = mails(&mut smtp, 1).await;
    assert_eq!(recipients(&warning), ["asha@example.com"]);
    assert!(
        warning[0].contains("close to a spending limit"),
        "{}",
        warning[0]
    );

    // 100%: one ticket, given to the only agent; a mail to each of them.
    spend(&app, &asha, "20").await;
    let mine = listed(&app, &asha, "/api/v1/tickets", 1).await;
    let ticket = &mine["items"][0];
    assert_eq!(ticket["status"], "assigned");
    assert_eq!(ticket["agent"]["user_id"], ravi.as_str());
    assert_eq!(ticket["agent"]["name"], "Ravi Kumar");
    assert_eq!(ticket["limit"]["spent"], "105.00");
    let told = mails(&mut smtp, 2).await;
    assert_eq!(recipients(&told), ["asha@example.com", "ravi@example.com"]);
    let to_asha = told
        .iter()
        .find(|m| m.contains("To: asha@example.com"))
        .expect("the customer's mail");
    assert!(to_asha.contains("Ravi Kumar"), "names the agent: {to_asha}");

    // A crash after acting but before saving that it did, or the same events delivered
    // again: everything is handled again from the start, and nothing doubles.
    let events_before = app.event_count().await;
    app.rewind_support_process(0).await;
    // A second expense in the same period crosses nothing new (and wakes the process).
    spend(&app, &asha, "5").await;
    let ravi_token = app.token_for("ravi@example.com", PASSWORD).await;
    let queue = app.read(&ravi_token, "/api/v1/agent/queue").await;
    assert_eq!(queue["items"].as_array().map(Vec::len), Some(1));
    let head = app.event_count().await;
    wait_until_handled(&app, head).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(smtp.received_so_far().is_empty(), "nothing more was sent");
    assert_eq!(
        app.event_count().await,
        events_before + 1,
        "only the expense: no second ticket, assignment or warning"
    );
    assert_eq!(
        listed(&app, &asha, "/api/v1/tickets", 1).await["items"][0]["ticket_id"],
        ticket["ticket_id"]
    );

    // A second agent gets the next customer's ticket: Ravi already has one open.
    let meera = agent(&app, &admin, "meera@example.com", "meera", "Meera Shah").await;
    app.register_customer("bala@example.com", PASSWORD).await;
    let bala = app.token_for("bala@example.com", PASSWORD).await;
    let set = app
        .call(Method::PUT, Some(&bala), "/api/v1/limits", Some(&limit))
        .await;
    assert_eq!(set.status(), StatusCode::OK);
    spend(&app, &bala, "150").await;
    let theirs = listed(&app, &bala, "/api/v1/tickets", 1).await;
    assert_eq!(theirs["items"][0]["agent"]["user_id"], meera.as_str());
    // Straight past 100%: no warning, the two ticket mails.
    let told = mails(&mut smtp, 2).await;
    assert_eq!(recipients(&told), ["bala@example.com", "meera@example.com"]);

    // Working Asha's ticket.
    let id = ticket["ticket_id"].as_str().expect("id").to_owned();
    let act = |token: &str, action: &str, body: Value| {
        let path = format!("/api/v1/tickets/{id}/{action}");
        let token = token.to_owned();
        let app = &app;
        async move {
            app.call(Method::POST, Some(&token), &path, Some(&body))
                .await
                .status()
        }
    };
    let comment = json!({ "text": "Was this the party?" });
    assert_eq!(
        act(&bala, "comments", comment.clone()).await,
        StatusCode::NOT_FOUND,
        "not hers"
    );
    assert_eq!(
        act(&asha, "comments", json!({ "text": "  " })).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        act(&asha, "comments", comment).await,
        StatusCode::NO_CONTENT
    );
    let resolution = json!({ "resolution": "Explained; the limit stays." });
    assert_eq!(
        act(&asha, "resolve", resolution.clone()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        act(&ravi_token, "resolve", resolution.clone()).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        act(&ravi_token, "resolve", resolution).await,
        StatusCode::CONFLICT
    );
    let seen = app.read(&asha, "/api/v1/tickets").await;
    assert_eq!(seen["items"][0]["status"], "resolved");
    assert_eq!(
        seen["items"][0]["resolution"],
        "Explained; the limit stays."
    );
    assert_eq!(seen["items"][0]["comments"], 1);
    assert_eq!(
        act(&asha, "reopen", json!({ "reason": "It happened again" })).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.read(&asha, "/api/v1/tickets").await["items"][0]["status"],
        "assigned"
    );

    // The detail: comments with their authors, the customer's spending and limits.
    let path = format!("/api/v1/tickets/{id}");
    let detail = app.read(&ravi_token, &path).await;
    assert_eq!(detail["ticket"]["ticket_id"], id.as_str());
    assert_eq!(detail["comments"][0]["text"], "Was this the party?");
    assert_eq!(detail["comments"][0]["author"]["kind"], "customer");
    assert_eq!(detail["recent_expenses"].as_array().map(Vec::len), Some(3));
    // (What the limit's current period holds depends on today's date; its amount does not.)
    assert_eq!(detail["limits"][0]["amount"], "100.00");
    assert_eq!(detail["other_tickets"], json!([]));
    // The crossed limit's history: six months up to now, the crossing's month over it.
    let history = detail["limit_history"].as_array().expect("history");
    assert_eq!(history.len(), 6);
    let crossed = history
        .iter()
        .find(|period| period["period_start"] == "2026-11-01")
        .expect("the crossing's month");
    assert_eq!(crossed["spent"], "110.00");
    assert_eq!(crossed["percent"], 110);
    assert_eq!(crossed["over"], true);
    assert_eq!(history[0]["over"], false);
    assert_eq!(
        app.read(&asha, &path).await["ticket"]["ticket_id"],
        id.as_str()
    );
    let stranger = app.call(Method::GET, Some(&bala), &path, None).await;
    assert_eq!(
        stranger.status(),
        StatusCode::NOT_FOUND,
        "another customer's ticket"
    );
    let to_meera = json!({ "assignee": meera });
    assert_eq!(
        act(&ravi_token, "assign", to_meera.clone()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        act(&admin, "assign", to_meera).await,
        StatusCode::NO_CONTENT
    );
    let meera_token = app.token_for("meera@example.com", PASSWORD).await;
    let queue = app.read(&meera_token, "/api/v1/agent/queue").await;
    let theirs: Vec<&Value> = queue["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| &t["customer"]["name"])
        .collect();
    assert_eq!(
        theirs.len(),
        2,
        "Asha's ticket is Meera's now, beside Bala's: {queue}"
    );
    assert_eq!(
        app.read(&ravi_token, "/api/v1/agent/queue").await["items"],
        json!([])
    );
}

#[tokio::test]
async fn with_no_agent_the_ticket_waits_admins_are_told_and_the_next_agent_takes_it() {
    let (app, mut smtp) = spawn_app_with_admin_and_smtp().await;
    let admin = app.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    app.register_customer("asha@example.com", PASSWORD).await;
    let asha = app.token_for("asha@example.com", PASSWORD).await;
    let limit = json!({ "period": "weekly", "amount": "50" });
    let set = app
        .call(Method::PUT, Some(&asha), "/api/v1/limits", Some(&limit))
        .await;
    assert_eq!(set.status(), StatusCode::OK);
    spend(&app, &asha, "60").await;
    let waiting = listed(&app, &admin, "/api/v1/agent/queue", 1).await;
    assert_eq!(waiting["items"][0]["status"], "unassigned");
    let told = mails(&mut smtp, 2).await;
    assert_eq!(
        recipients(&told),
        ["admin@example.com", "asha@example.com"],
        "the crossing to the customer (straight past 80%: no warning), the waiting ticket \
         to the admin"
    );

    let ravi = agent(&app, &admin, "ravi@example.com", "ravi", "Ravi Kumar").await;
    let mut taken = Value::Null;
    for _ in 0..250 {
        taken = app.read(&asha, "/api/v1/tickets").await;
        if taken["items"][0]["status"] == "assigned" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        taken["items"][0]["agent"]["user_id"],
        ravi.as_str(),
        "{taken}"
    );
    let told = mails(&mut smtp, 1).await;
    assert_eq!(recipients(&told), ["ravi@example.com"]);

    // Handled again from the start (a crash before the checkpoint moved), with a second
    // agent now free: Ravi keeps the ticket and nobody is mailed again.
    let events_before = app.event_count().await;
    app.rewind_support_process(0).await;
    agent(&app, &admin, "meera@example.com", "meera", "Meera Shah").await;
    let head = app.event_count().await;
    wait_until_handled(&app, head).await;
    assert_eq!(head, events_before + 1, "only Meera's registration");
    let kept = app.read(&asha, "/api/v1/tickets").await;
    assert_eq!(kept["items"][0]["agent"]["user_id"], ravi.as_str());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(smtp.received_so_far().is_empty(), "nothing more was sent");
}
