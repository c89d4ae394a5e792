use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, problem, spawn_app_with_admin};

const PASSWORD: &str = "correct horse battery staple";

fn agent(email: &str, username: &str) -> Value {
    json!({
        "name": "Ravi Kumar", "email": email, "mobile": "+91 91234 56789",
        "gender": "male", "username": username, "password": PASSWORD
    })
}

async fn admin_token(app: &TestApp) -> String {
    app.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await
}

async fn create_agent(app: &TestApp, admin: &str, email: &str, username: &str) -> String {
    let response = app
        .post_as(Some(admin), "/api/v1/admin/agents", &agent(email, username))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    body["user_id"].as_str().expect("an id").to_owned()
}

#[tokio::test]
async fn the_first_admin_comes_from_the_start_settings_and_signs_in_as_admin() {
    let app = spawn_app_with_admin().await;
    let response = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["role"], "admin");
}

#[tokio::test]
async fn admin_routes_answer_401_to_strangers_and_403_to_customers() {
    let app = spawn_app_with_admin().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    let customer = app.token_for("asha@example.com", PASSWORD).await;

    for path in ["/api/v1/admin/agents", "/api/v1/admin/auditors"] {
        let anonymous = app
            .post_as(None, path, &agent("r@example.com", "ravi"))
            .await;
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{path}");
        let forbidden = app
            .post_as(Some(&customer), path, &agent("r@example.com", "ravi"))
            .await;
        assert_eq!(forbidden.status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(problem(forbidden).await["status"], 403);
    }
    assert_eq!(
        app.event_count().await,
        3,
        "the admin, the customer and their wallet, nothing else"
    );
}

#[tokio::test]
async fn an_admin_creates_an_agent_who_signs_in_by_email_or_username() {
    let app = spawn_app_with_admin().await;
    let admin = admin_token(&app).await;
    let agent_id = create_agent(&app, &admin, "ravi@example.com", "Ravi.K").await;

    for login in ["ravi@example.com", "RAVI.K", "ravi.k"] {
        let response = app.login(login, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK, "{login}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["role"], "agent");
        assert_eq!(body["user_id"], agent_id);
    }
}

#[tokio::test]
async fn an_admin_creates_an_auditor() {
    let app = spawn_app_with_admin().await;
    let admin = admin_token(&app).await;
    let response = app
        .post_as(
            Some(&admin),
            "/api/v1/admin/auditors",
            &json!({ "name": "Meera Iyer", "email": "meera@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = app
        .login("meera@example.com", PASSWORD)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["role"], "auditor");
}

#[tokio::test]
async fn a_taken_username_or_email_is_a_409_and_bad_fields_a_422() {
    let app = spawn_app_with_admin().await;
    let admin = admin_token(&app).await;
    create_agent(&app, &admin, "ravi@example.com", "ravi").await;
    let before = app.event_count().await;

    let same_username = app
        .post_as(
            Some(&admin),
            "/api/v1/admin/agents",
            &agent("other@example.com", "RAVI"),
        )
        .await;
    assert_eq!(same_username.status(), StatusCode::CONFLICT);
    let same_email = app
        .post_as(
            Some(&admin),
            "/api/v1/admin/agents",
            &agent("Ravi@Example.com", "other"),
        )
        .await;
    assert_eq!(same_email.status(), StatusCode::CONFLICT);
    let mut bad = agent("not-an-email", "x");
    bad["password"] = json!("short");
    let invalid = app
        .post_as(Some(&admin), "/api/v1/admin/agents", &bad)
        .await;
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> = problem(invalid).await["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(fields, vec!["email", "username", "password"]);
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn a_deactivated_agent_is_signed_out_at_once_and_can_come_back() {
    let app = spawn_app_with_admin().await;
    let admin = admin_token(&app).await;
    let agent_id = create_agent(&app, &admin, "ravi@example.com", "ravi").await;
    let agent_token = app.token_for("ravi", PASSWORD).await;

    let deactivated = app
        .post_as(
            Some(&admin),
            &format!("/api/v1/admin/users/{agent_id}/deactivate"),
            &json!({}),
        )
        .await;
    assert_eq!(deactivated.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.me(Some(&agent_token)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("ravi", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let again = app
        .post_as(
            Some(&admin),
            &format!("/api/v1/admin/users/{agent_id}/deactivate"),
            &json!({}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let reactivated = app
        .post_as(
            Some(&admin),
            &format!("/api/v1/admin/users/{agent_id}/reactivate"),
            &json!({}),
        )
        .await;
    assert_eq!(reactivated.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.me(Some(&agent_token)).await.status(),
        StatusCode::UNAUTHORIZED,
        "deactivation ended the tokens they had"
    );
    assert_eq!(app.login("ravi", PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn customers_cannot_be_deactivated_and_unknown_ids_are_404() {
    let app = spawn_app_with_admin().await;
    let admin = admin_token(&app).await;
    let customer_id = app.register_customer("asha@example.com", PASSWORD).await;

    let customer = app
        .post_as(
            Some(&admin),
            &format!("/api/v1/admin/users/{customer_id}/deactivate"),
            &json!({}),
        )
        .await;
    assert_eq!(customer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = app
        .post_as(
            Some(&admin),
            "/api/v1/admin/users/0190f3c4-0000-7000-8000-000000000000/deactivate",
            &json!({}),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let not_an_id = app
        .post_as(
            Some(&admin),
            "/api/v1/admin/users/..%2F..%2Fetc/deactivate",
            &json!({}),
        )
        .await;
    assert_eq!(not_an_id.status(), StatusCode::BAD_REQUEST);
    assert_eq!(problem(not_an_id).await["status"], 400);
}

#[tokio::test]
async fn admins_see_each_read_model_caught_up_with_the_log() {
    let app = crate::helpers::spawn_app_with_admin().await;
    let admin = app
        .token_for(crate::helpers::ADMIN_EMAIL, crate::helpers::ADMIN_PASSWORD)
        .await;
    let customer = app
        .register_customer("asha@example.com", "correct horse battery staple")
        .await;
    assert!(!customer.is_empty());
    let response = app
        .call(
            reqwest::Method::GET,
            Some(&admin),
            "/api/v1/admin/projections",
            None,
        )
        .await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let list: serde_json::Value = response.json().await.expect("json");
    let wallets = list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|p| p["name"] == "wallets"))
        .expect("the wallets read model is listed")
        .clone();
    assert_eq!(wallets["status"], "running");
    assert!(wallets["head"].as_u64().is_some_and(|head| head > 0));
    assert_eq!(
        wallets["position"], wallets["head"],
        "sign-up opened a wallet and answered once the read model had it"
    );
    assert_eq!(wallets["behind"], 0);
}

#[tokio::test]
async fn an_admin_rebuilds_a_read_model_while_customers_keep_reading() {
    let app = crate::helpers::spawn_app_with_admin().await;
    let admin = app
        .token_for(crate::helpers::ADMIN_EMAIL, crate::helpers::ADMIN_PASSWORD)
        .await;
    app.register_customer("asha@example.com", "correct horse battery staple")
        .await;
    let asha = app
        .token_for("asha@example.com", "correct horse battery staple")
        .await;
    for amount in ["10", "20.5", "7.25"] {
        let body =
            serde_json::json!({ "amount": amount, "category": "Food", "spent_on": "2026-11-20" });
        let recorded = app
            .call(
                reqwest::Method::POST,
                Some(&asha),
                "/api/v1/expenses",
                Some(&body),
            )
            .await;
        assert_eq!(recorded.status(), reqwest::StatusCode::CREATED);
    }
    let rebuild = |name: &'static str| {
        let app = &app;
        let admin = admin.clone();
        async move {
            app.call(
                reqwest::Method::POST,
                Some(&admin),
                &format!("/api/v1/admin/projections/{name}/rebuild"),
                Some(&serde_json::json!({})),
            )
            .await
        }
    };
    assert_eq!(
        rebuild("nothing").await.status(),
        reqwest::StatusCode::NOT_FOUND
    );
    assert_eq!(
        rebuild("wallets").await.status(),
        reqwest::StatusCode::ACCEPTED
    );

    // Reads go on during the rebuild and always see the whole list.
    let mut finished = false;
    for _ in 0..500 {
        let listed = app
            .call(reqwest::Method::GET, Some(&asha), "/api/v1/expenses", None)
            .await;
        assert_eq!(listed.status(), reqwest::StatusCode::OK);
        let page: serde_json::Value = listed.json().await.expect("json");
        assert_eq!(page["items"].as_array().map(Vec::len), Some(3));
        let list: serde_json::Value = app
            .call(
                reqwest::Method::GET,
                Some(&admin),
                "/api/v1/admin/projections",
                None,
            )
            .await
            .json()
            .await
            .expect("json");
        let wallets = read_model(&list, "wallets");
        if wallets["rebuilding"] == false {
            let last = &wallets["last_rebuild"];
            assert_eq!(last["error"], serde_json::Value::Null, "{last}");
            assert!(
                last["events"].as_u64().is_some_and(|n| n > 0),
                "the rebuild ran through the log: {last}"
            );
            assert_eq!(last["differing_tables"], serde_json::json!([]));
            assert!(wallets["rebuild_position"].is_null(), "the twin is gone");
            assert_eq!(wallets["position"], wallets["head"]);
            finished = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(finished, "the rebuild finished and was swapped in");
    let board: serde_json::Value = app
        .call(reqwest::Method::GET, Some(&asha), "/api/v1/dashboard", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(board["balance"], "-37.75");
}

fn read_model<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("{name} is listed: {list}"))
}

async fn get(app: &TestApp, token: &str, path: &str) -> (StatusCode, Value) {
    let response = app
        .call(reqwest::Method::GET, Some(token), path, None)
        .await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn emails(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|user| user["email"].as_str().unwrap_or("-").to_owned())
        .collect()
}

/// Rebuilds `name` on the running server and waits until it is swapped in.
/// Starts a rebuild of `name` and waits for the list to show it finished.
pub(crate) async fn rebuild_and_wait(app: &TestApp, admin: &str, name: &str) -> Value {
    let started = app
        .post_as(
            Some(admin),
            &format!("/api/v1/admin/projections/{name}/rebuild"),
            &json!({}),
        )
        .await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    for _ in 0..500 {
        let (_, list) = get(app, admin, "/api/v1/admin/projections").await;
        let model = read_model(&list, name).clone();
        if model["rebuilding"] == false && !model["last_rebuild"].is_null() {
            return model;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the rebuild of {name} did not finish");
}

#[tokio::test]
async fn admins_search_the_directory_and_an_erased_person_stays_nameless_through_a_rebuild() {
    let app = spawn_app_with_admin().await;
    let admin = admin_token(&app).await;
    app.register_customer("asha@example.com", PASSWORD).await;
    let ravi = create_agent(&app, &admin, "ravi@example.com", "ravi.k").await;
    let meera = create_agent(&app, &admin, "meera@example.com", "Meera_S").await;
    let deactivated = app
        .post_as(
            Some(&admin),
            &format!("/api/v1/admin/users/{meera}/deactivate"),
            &json!({}),
        )
        .await;
    assert_eq!(deactivated.status(), StatusCode::NO_CONTENT);

    // Each answer came after the directory had it: newest first, everyone there.
    let (status, all) = get(&app, &admin, "/api/v1/admin/users").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(
        emails(&all),
        [
            "meera@example.com",
            "ravi@example.com",
            "asha@example.com",
            ADMIN_EMAIL
        ]
    );
    let ravi_entry = &all["items"][1];
    assert_eq!(ravi_entry["role"], "agent");
    assert_eq!(ravi_entry["username"], "ravi.k");
    assert_eq!(ravi_entry["active"], true);
    assert_eq!(ravi_entry["registered_by"]["kind"], "admin");
    assert_eq!(all["items"][2]["registered_by"]["kind"], "self_sign_up");
    assert_eq!(all["items"][0]["active"], false);

    for (query, expected) in [
        ("role=agent", vec!["meera@example.com", "ravi@example.com"]),
        ("role=customer", vec!["asha@example.com"]),
        ("status=deactivated", vec!["meera@example.com"]),
        ("q=RAVI.K", vec!["ravi@example.com"]),
        ("q=kumar", vec!["meera@example.com", "ravi@example.com"]),
        // Nothing is a wildcard: only Meera's username holds an underscore.
        ("q=_", vec!["meera@example.com"]),
        (
            "q=example.com&role=agent&status=active",
            vec!["ravi@example.com"],
        ),
    ] {
        let (status, page) = get(&app, &admin, &format!("/api/v1/admin/users?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
        assert_eq!(emails(&page), expected, "{query}");
    }

    // Pages of one, following the cursor, give everyone once, in order.
    let mut seen = Vec::new();
    let mut path = "/api/v1/admin/users?limit=1".to_owned();
    loop {
        let (_, page) = get(&app, &admin, &path).await;
        seen.extend(emails(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/admin/users?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, emails(&all));

    let erased = app
        .post_as(
            Some(&admin),
            &format!("/api/v1/admin/users/{ravi}/erase"),
            &json!({}),
        )
        .await;
    assert_eq!(erased.status(), StatusCode::NO_CONTENT);
    let (_, gone) = get(&app, &admin, "/api/v1/admin/users?status=erased").await;
    let entry = &gone["items"][0];
    assert_eq!(entry["user_id"], ravi.as_str());
    assert_eq!(entry["erased"], true);
    for field in ["name", "email", "mobile", "username"] {
        assert!(entry[field].is_null(), "{field} is wiped: {entry}");
    }
    let (_, before) = get(&app, &admin, "/api/v1/admin/users").await;

    // Rebuilt from the log, the erased person's data no longer opens: the same directory.
    let users = rebuild_and_wait(&app, &admin, "users").await;
    assert_eq!(users["last_rebuild"]["error"], Value::Null, "{users}");
    assert_eq!(users["last_rebuild"]["differing_tables"], json!([]));
    let (_, after) = get(&app, &admin, "/api/v1/admin/users").await;
    assert_eq!(after, before);
}

#[tokio::test]
async fn bad_directory_parameters_are_named_and_unknown_ones_refused() {
    let app = spawn_app_with_admin().await;
    let admin = admin_token(&app).await;
    let (status, body) = get(
        &app,
        &admin,
        "/api/v1/admin/users?role=boss&status=gone&limit=0&cursor=abc",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let named: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(named, ["role", "status", "limit", "cursor"], "{body}");
    let (status, _) = get(&app, &admin, "/api/v1/admin/users?sort=name").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.register_customer("asha@example.com", PASSWORD).await;
    let customer = app.token_for("asha@example.com", PASSWORD).await;
    let (status, _) = get(&app, &customer, "/api/v1/admin/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
