use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{problem, spawn_app, spawn_app_with_smtp};

const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a brand new passphrase";

/// The token in a mail's reset link. Mail bodies travel quoted-printable: long lines are
/// broken with a trailing `=` and `=` itself is written `=3D`; undo both first.
pub fn token_in(mail: &str) -> String {
    let decoded = decode_quoted_printable(mail);
    let start = decoded.find("reset-password?token=").expect("a reset link")
        + "reset-password?token=".len();
    decoded[start..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect()
}

fn decode_quoted_printable(mail: &str) -> String {
    mail.replace(
        "=
", "",
    )
    .replace("=3D", "=")
}

#[tokio::test]
async fn the_reset_flow_works_end_to_end_over_smtp() {
    let (app, mut smtp) = spawn_app_with_smtp().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    let old_token = app.token_for("asha@example.com", PASSWORD).await;

    let requested = app
        .post_json(
            "/api/v1/auth/password-reset",
            &json!({ "email": "Asha@Example.com" }),
        )
        .await;
    assert_eq!(requested.status(), StatusCode::ACCEPTED);

    let mail = smtp.next_mail().await;
    assert!(mail.contains("To: asha@example.com"), "{mail}");
    assert!(
        decode_quoted_printable(&mail)
            .contains("https://expenses.example.com/reset-password?token="),
        "{mail}"
    );
    assert!(
        mail.contains("text/plain") && mail.contains("text/html"),
        "both parts: {mail}"
    );
    let token = token_in(&mail);
    assert_eq!(token.len(), 64, "{mail}");

    let confirmed = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({ "token": token, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::NO_CONTENT);

    assert_eq!(
        app.login("asha@example.com", NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login("asha@example.com", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.me(Some(&old_token)).await.status(),
        StatusCode::UNAUTHORIZED,
        "old tokens die"
    );

    let again = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({ "token": token, "new_password": "yet another passphrase" }),
        )
        .await;
    assert_eq!(
        again.status(),
        StatusCode::BAD_REQUEST,
        "a reset token works once"
    );
    assert_eq!(problem(again).await["status"], 400);
}

#[tokio::test]
async fn a_new_password_kills_every_other_reset_link() {
    let (app, mut smtp) = spawn_app_with_smtp().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    for _ in 0..2 {
        let requested = app
            .post_json(
                "/api/v1/auth/password-reset",
                &json!({ "email": "asha@example.com" }),
            )
            .await;
        assert_eq!(requested.status(), StatusCode::ACCEPTED);
    }
    let first = token_in(&smtp.next_mail().await);
    let second = token_in(&smtp.next_mail().await);

    let used = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({ "token": first, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(used.status(), StatusCode::NO_CONTENT);
    let stale = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({ "token": second, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(stale.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_unknown_address_gets_the_same_202_and_no_mail() {
    let (app, mut smtp) = spawn_app_with_smtp().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    let events_before = app.event_count().await;

    let unknown = app
        .post_json(
            "/api/v1/auth/password-reset",
            &json!({ "email": "nobody@example.com" }),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    // A known address afterwards: its mail is the first one to arrive, so none was sent
    // for the unknown one.
    let known = app
        .post_json(
            "/api/v1/auth/password-reset",
            &json!({ "email": "asha@example.com" }),
        )
        .await;
    assert_eq!(known.status(), StatusCode::ACCEPTED);
    let mail = smtp.next_mail().await;
    assert!(mail.contains("To: asha@example.com"));
    assert!(smtp.received_so_far().is_empty());
    assert_eq!(
        app.event_count().await,
        events_before + 1,
        "only the known account's request"
    );
}

#[tokio::test]
async fn a_reset_forgets_failed_logins() {
    let (app, mut smtp) = spawn_app_with_smtp().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    for _ in 0..5 {
        app.login("asha@example.com", "a wrong password").await;
    }
    assert_eq!(
        app.login("asha@example.com", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    app.post_json(
        "/api/v1/auth/password-reset",
        &json!({ "email": "asha@example.com" }),
    )
    .await;
    let token = token_in(&smtp.next_mail().await);
    app.post_json(
        "/api/v1/auth/password-reset/confirm",
        &json!({ "token": token, "new_password": NEW_PASSWORD }),
    )
    .await;

    assert_eq!(
        app.login("asha@example.com", NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_reset_input_is_refused_clearly() {
    let app = spawn_app().await;
    let malformed = app
        .post_json("/api/v1/auth/password-reset", &json!({ "email": "nope" }))
        .await;
    assert_eq!(malformed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let weak = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({ "token": "abc", "new_password": "short" }),
        )
        .await;
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem(weak).await["errors"][0]["field"], "new_password");
    let forged = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({ "token": "abc", "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn without_smtp_the_reset_mail_is_an_eml_file_in_the_data_directory() {
    let app = spawn_app().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    app.post_json(
        "/api/v1/auth/password-reset",
        &json!({ "email": "asha@example.com" }),
    )
    .await;

    let mail_dir = app.data_dir.join("mail");
    let mut found = None;
    for _ in 0..300 {
        if let Some(file) = std::fs::read_dir(&mail_dir)
            .ok()
            .and_then(|mut entries| entries.find_map(|e| e.ok().map(|e| e.path())))
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        {
            found = Some(file);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let file = found.expect("an .eml file appears within 6 s");
    let content = std::fs::read_to_string(file).expect("readable");
    assert!(content.contains("reset-password?token="));
}

#[tokio::test]
async fn an_admin_sees_mail_that_keeps_failing_and_can_send_it_again() {
    use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, spawn_app_with_admin_and_smtp};

    let (app, mut smtp) = spawn_app_with_admin_and_smtp().await;
    let admin = app.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    app.register_customer("asha@example.com", PASSWORD).await;
    smtp.refuse_recipients(true);
    app.post_json(
        "/api/v1/auth/password-reset",
        &json!({ "email": "asha@example.com" }),
    )
    .await;
    // The first attempt fails; the next would come 10 s later. Stand in for the seven
    // further failures by parking the message as the dispatcher would.
    let message_id = app.park_pending_mail_after_a_failed_attempt().await;

    let parked = app
        .client
        .get(format!("{}/api/v1/admin/mail/parked", app.address))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("answered");
    assert_eq!(parked.status(), StatusCode::OK);
    let body: serde_json::Value = parked.json().await.expect("json");
    assert_eq!(body["items"][0]["message_id"], message_id);
    assert!(
        body["items"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("451")),
        "{body}"
    );

    smtp.refuse_recipients(false);
    let retried = app
        .post_as(
            Some(&admin),
            &format!("/api/v1/admin/mail/{message_id}/retry"),
            &json!({}),
        )
        .await;
    assert_eq!(retried.status(), StatusCode::ACCEPTED);
    assert!(smtp.next_mail().await.contains("To: asha@example.com"));
    let unknown = app
        .post_as(
            Some(&admin),
            &format!("/api/v1/admin/mail/{message_id}/retry"),
            &json!({}),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND, "no longer parked");
}
