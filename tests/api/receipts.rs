//! Receipts over the JSON API: only JPEG, PNG and PDF by their content, at most 5 MB,
//! attached only by their owner, and shown only to the owner, their tickets' agents and
//! auditors.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, spawn_app_with_admin};

const PASSWORD: &str = "correct horse battery staple";

async fn upload(app: &TestApp, token: &str, bytes: Vec<u8>) -> reqwest::Response {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name("photo.png"),
    );
    app.client
        .post(format!("{}/api/v1/receipts", app.address))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("answered")
}

async fn download(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/api/v1/receipts/{id}", app.address))
        .bearer_auth(token)
        .send()
        .await
        .expect("answered")
}

fn pdf() -> Vec<u8> {
    b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n".to_vec()
}

#[tokio::test]
async fn receipts_are_checked_by_content_kept_by_owner_and_shown_to_the_right_people() {
    let app = spawn_app_with_admin().await;
    app.register_customer("asha@example.com", PASSWORD).await;
    app.register_customer("bina@example.com", PASSWORD).await;
    let asha = app.token_for("asha@example.com", PASSWORD).await;
    let bina = app.token_for("bina@example.com", PASSWORD).await;
    let admin = app.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let created = app
        .post_as(
            Some(&admin),
            "/api/v1/admin/auditors",
            &json!({ "name": "Odile", "email": "odile@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let auditor = app.token_for("odile@example.com", PASSWORD).await;

    // Named .png, but HTML inside: refused, whatever the name says.
    for refused in [b"<html><script>alert(1)</script>".to_vec(), Vec::new(), {
        let mut big = pdf();
        big.resize(5 * 1024 * 1024 + 1, b' ');
        big
    }] {
        let response = upload(&app, &asha, refused).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let problem: Value = response.json().await.expect("problem");
        assert_eq!(problem["errors"][0]["field"], "file", "{problem}");
    }

    let stored = upload(&app, &asha, pdf()).await;
    assert_eq!(stored.status(), StatusCode::CREATED);
    let stored: Value = stored.json().await.expect("json");
    assert_eq!(stored["content_type"], "application/pdf");
    let receipt = stored["receipt_id"].as_str().expect("id").to_owned();

    // Bina cannot attach Asha's receipt, nor see it; Asha and auditors can.
    let today = chrono::Utc::now().date_naive().to_string();
    let expense = |receipt: &str| json!({ "amount": "12", "category": "Food", "spent_on": today, "receipt_id": receipt });
    let stolen = app
        .post_as(Some(&bina), "/api/v1/expenses", &expense(&receipt))
        .await;
    assert_eq!(stolen.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let own = app
        .post_as(Some(&asha), "/api/v1/expenses", &expense(&receipt))
        .await;
    assert_eq!(own.status(), StatusCode::CREATED);
    assert_eq!(
        download(&app, &bina, &receipt).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        download(&app, &admin, &receipt).await.status(),
        StatusCode::NOT_FOUND,
        "admins work no ticket of hers"
    );
    for token in [&asha, &auditor] {
        let file = download(&app, token, &receipt).await;
        assert_eq!(file.status(), StatusCode::OK);
        assert_eq!(file.headers()["content-type"], "application/pdf");
        assert_eq!(file.headers()["x-content-type-options"], "nosniff");
        assert_eq!(file.bytes().await.expect("bytes").to_vec(), pdf());
    }
    let listed: Value = app
        .call(reqwest::Method::GET, Some(&asha), "/api/v1/expenses", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["items"][0]["receipt_id"], receipt.as_str());
}
