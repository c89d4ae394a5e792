//! The web pages' sign-in, sign-up and sign-out, and the session cookie they rely on.

use reqwest::StatusCode;
use reqwest::header::SET_COOKIE;
use serde_json::json;

use crate::browser::{Browser, location};
use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, spawn_app, spawn_app_configured, spawn_app_on_postgres,
    spawn_app_with_admin, spawn_app_with_smtp,
};
use crate::password_reset::token_in;

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test]
async fn signing_in_sets_a_protected_session_cookie_and_signing_out_ends_it() {
    let app = spawn_app().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    let mut browser = Browser::on(&app);

    let home = browser.get("/").await;
    assert_eq!(home.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&home), "/login");
    let dashboard = browser.get("/dashboard").await;
    assert_eq!(location(&dashboard), "/login?next=%2Fdashboard");

    let form = browser.get("/login").await;
    assert_eq!(form.status(), StatusCode::OK);
    assert!(
        form.text()
            .await
            .expect("html")
            .contains("name=\"password\"")
    );

    let signed_in = browser.sign_in("Asha@Example.com", PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&signed_in), "/");
    let set_cookie = signed_in
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "plain http: {set_cookie}");

    let home = browser.get("/").await;
    assert_eq!(
        location(&home),
        "/dashboard",
        "a customer starts on the dashboard"
    );
    let dashboard = browser.get("/dashboard").await;
    assert_eq!(dashboard.status(), StatusCode::OK);
    let html = dashboard.text().await.expect("html");
    assert!(html.contains("Balance"), "customers see their balance");

    let kept = browser.cookie.clone();
    let signed_out = browser.post("/logout", &[]).await;
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&signed_out), "/login");
    // Even a browser that kept the old cookie is signed out: the session is gone.
    browser.cookie = kept;
    assert!(!browser.is_signed_in().await);
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_product_is_served_over_https() {
    let app = spawn_app_configured(|config| {
        config.base_url = Some("https://expenses.example".into());
    })
    .await;
    app.register_customer("asha@example.com", PASSWORD).await;
    let mut browser = Browser::on(&app);
    let signed_in = browser.sign_in("asha@example.com", PASSWORD).await;
    let set_cookie = signed_in
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie");
    assert!(set_cookie.contains("Secure"), "{set_cookie}");
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_and_starts_no_session() {
    let app = spawn_app().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    let mut browser = Browser::on(&app);
    let refused = browser
        .sign_in("asha@example.com", "not the password")
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let html = refused.text().await.expect("html");
    assert!(!browser.is_signed_in().await, "no signed-in session");
    assert!(html.contains("Wrong email or password."));
    assert!(
        html.contains("value=\"asha@example.com\""),
        "the email is kept"
    );
    assert!(
        !html.contains("not the password"),
        "the password is never echoed"
    );

    for _ in 0..4 {
        browser.sign_in("asha@example.com", "still wrong").await;
    }
    let throttled = browser.sign_in("asha@example.com", PASSWORD).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers().get("retry-after").is_some());
}

#[tokio::test]
async fn signing_up_on_the_page_signs_in_and_refusals_name_the_field() {
    let app = spawn_app().await;
    let mut browser = Browser::on(&app);
    assert_eq!(browser.get("/signup").await.status(), StatusCode::OK);
    let before = app.event_count().await;

    let short = browser
        .post(
            "/signup",
            &[
                ("name", "Asha Rao"),
                ("email", "asha@example.com"),
                ("mobile", "+919876543210"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = short.text().await.expect("html");
    assert!(html.contains("value=\"Asha Rao\""), "the fields are kept");
    assert!(
        html.contains("class=\"error\""),
        "the problem is shown beside its field"
    );
    assert_eq!(app.event_count().await, before, "nothing stored");
    assert!(!browser.is_signed_in().await);

    let created = browser
        .post(
            "/signup",
            &[
                ("name", "Asha Rao"),
                ("email", "asha@example.com"),
                ("mobile", "+919876543210"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let home = browser.get("/dashboard").await;
    assert_eq!(home.status(), StatusCode::OK);
    assert!(home.text().await.expect("html").contains("Asha Rao"));

    let mut other = Browser::on(&app);
    let taken = other
        .post(
            "/signup",
            &[
                ("name", "Someone"),
                ("email", "ASHA@example.com"),
                ("mobile", "+919876543211"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    assert!(taken.text().await.expect("html").contains("exists already"));
}

#[tokio::test]
async fn a_form_posted_from_another_site_is_refused() {
    let app = spawn_app().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    let browser = Browser::on(&app);
    let foreign = browser
        .client
        .post(format!("{}/login", app.address))
        .header("Origin", "https://evil.example")
        .form(&[("email", "asha@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .expect("answered");
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let mut browser = browser;
    let own = browser
        .post_with_origin(
            "/login",
            &[("email", "asha@example.com"), ("password", PASSWORD)],
            &app.address,
        )
        .await;
    assert_eq!(own.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn next_only_leads_to_this_site() {
    let app = spawn_app().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    let mut browser = Browser::on(&app);
    let response = browser
        .post(
            "/login",
            &[
                ("email", "asha@example.com"),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/");
}

#[tokio::test]
async fn a_deactivation_ends_web_sessions_at_once() {
    let app = spawn_app_with_admin().await;
    let admin = app.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let agent = json!({
        "name": "Ravi Kumar", "email": "agent@example.com", "mobile": "+919123456789",
        "gender": "male", "username": "ravi", "password": PASSWORD
    });
    let created = app
        .post_as(Some(&admin), "/api/v1/admin/agents", &agent)
        .await;
    let agent_id = created.json::<serde_json::Value>().await.expect("json")["user_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut browser = Browser::on(&app);
    assert_eq!(
        browser.sign_in("ravi", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    assert!(browser.is_signed_in().await);
    let deactivated = app
        .post_as(
            Some(&admin),
            &format!("/api/v1/admin/users/{agent_id}/deactivate"),
            &json!({}),
        )
        .await;
    assert_eq!(deactivated.status(), StatusCode::NO_CONTENT);
    assert!(!browser.is_signed_in().await);
}

#[tokio::test]
async fn a_second_instance_on_the_same_sqlite_file_is_refused_with_the_reason() {
    let app = spawn_app().await;
    let data = tempfile::tempdir().expect("a data directory");
    let mut config = app::Config::for_tests(data.path().to_path_buf(), None);
    config.database_url = Some(format!(
        "sqlite://{}",
        app.data_dir.join("expense-tracker.db").display()
    ));
    let refused = app::Application::build(&config)
        .await
        .expect_err("SQLite serves one instance");
    let reason = format!("{refused:#}");
    assert!(
        reason.contains("another expense-tracker instance"),
        "{reason}"
    );
    assert!(reason.contains("PostgreSQL"), "{reason}");
    // The first instance is unaffected.
    assert_eq!(app.readyz().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_session_works_on_every_instance_sharing_a_postgresql_database() {
    let Some(app) =
        spawn_app_on_postgres("a_session_works_on_every_instance_sharing_a_postgresql_database")
            .await
    else {
        return;
    };
    app.register_customer("asha@example.com", PASSWORD).await;
    let second = app.another_instance().await;
    let mut browser = Browser::on(&app);
    browser.sign_in("asha@example.com", PASSWORD).await;
    browser.base = second.address.clone();
    assert!(browser.is_signed_in().await);
}

#[tokio::test]
async fn a_password_reset_ends_every_web_session() {
    let (app, mut smtp) = spawn_app_with_smtp().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    let mut laptop = Browser::on(&app);
    let mut phone = Browser::on(&app);
    laptop.sign_in("asha@example.com", PASSWORD).await;
    phone.sign_in("asha@example.com", PASSWORD).await;
    assert!(laptop.is_signed_in().await);

    let requested = app
        .post_json(
            "/api/v1/auth/password-reset",
            &json!({ "email": "asha@example.com" }),
        )
        .await;
    assert_eq!(requested.status(), StatusCode::ACCEPTED);
    let token = token_in(&smtp.next_mail().await);
    let confirmed = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({ "token": token, "new_password": "a brand new passphrase" }),
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::NO_CONTENT);

    assert!(!laptop.is_signed_in().await);
    assert!(!phone.is_signed_in().await);
}

#[tokio::test]
async fn the_forgotten_password_pages_reset_it_end_to_end_over_smtp() {
    let (app, mut smtp) = spawn_app_with_smtp().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    let mut browser = Browser::on(&app);
    assert_eq!(
        browser.get("/forgot-password").await.status(),
        StatusCode::OK
    );

    let bad = browser
        .post("/forgot-password", &[("email", "not an address")])
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let unknown = browser
        .post("/forgot-password", &[("email", "nobody@example.com")])
        .await;
    let known = browser
        .post("/forgot-password", &[("email", "asha@example.com")])
        .await;
    assert_eq!(unknown.status(), StatusCode::OK);
    assert_eq!(known.status(), StatusCode::OK);
    let (unknown, known) = (
        unknown.text().await.expect("html"),
        known.text().await.expect("html"),
    );
    assert_eq!(
        unknown.replace("nobody@example.com", "X"),
        known.replace("asha@example.com", "X"),
        "the page tells nobody whether the address has an account"
    );

    let token = token_in(&smtp.next_mail().await);
    let form = browser.get(&format!("/reset-password?token={token}")).await;
    assert_eq!(form.status(), StatusCode::OK);
    assert!(form.text().await.expect("html").contains(&token));

    let short = browser
        .post(
            "/reset-password",
            &[("token", &token), ("new_password", "short")],
        )
        .await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let done = browser
        .post(
            "/reset-password",
            &[
                ("token", &token),
                ("new_password", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(done.status(), StatusCode::OK);
    assert!(
        done.text()
            .await
            .expect("html")
            .contains("Your password is changed")
    );

    let again = browser
        .post(
            "/reset-password",
            &[
                ("token", &token),
                ("new_password", "yet another passphrase"),
            ],
        )
        .await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST, "a link works once");
    assert_eq!(
        browser
            .sign_in("asha@example.com", "a brand new passphrase")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
}
