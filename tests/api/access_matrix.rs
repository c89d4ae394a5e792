//! Every route so far, tried as every role, against a written matrix of answers.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, spawn_app_with_admin};

const PASSWORD: &str = "correct horse battery staple";
/// A name no read model has.
pub const NO_MODEL: &str = "no-such-model";
pub const NOBODY: &str = "0190f3c4-0000-7000-8000-000000000000";

#[derive(Debug, Clone, Copy)]
enum Who {
    Anonymous,
    Customer,
    Agent,
    Admin,
    Auditor,
}

const EVERYONE: [Who; 5] = [
    Who::Anonymous,
    Who::Customer,
    Who::Agent,
    Who::Admin,
    Who::Auditor,
];

pub struct Tokens {
    pub customer: String,
    pub agent: String,
    pub admin: String,
    pub auditor: String,
}

impl Tokens {
    fn of(&self, who: Who) -> Option<&str> {
        match who {
            Who::Anonymous => None,
            Who::Customer => Some(&self.customer),
            Who::Agent => Some(&self.agent),
            Who::Admin => Some(&self.admin),
            Who::Auditor => Some(&self.auditor),
        }
    }
}

/// A customer, an agent and an auditor made beside the start-up admin, each signed in.
pub async fn sign_everyone_in(app: &TestApp) -> Tokens {
    let admin = app.token_for(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    app.register_customer("customer@example.com", PASSWORD)
        .await;
    let agent = json!({
        "name": "Ravi Kumar", "email": "agent@example.com", "mobile": "+919123456789",
        "gender": "male", "username": "agent", "password": PASSWORD
    });
    assert_eq!(
        app.post_as(Some(&admin), "/api/v1/admin/agents", &agent)
            .await
            .status(),
        StatusCode::CREATED
    );
    let auditor =
        json!({ "name": "Meera Iyer", "email": "auditor@example.com", "password": PASSWORD });
    assert_eq!(
        app.post_as(Some(&admin), "/api/v1/admin/auditors", &auditor)
            .await
            .status(),
        StatusCode::CREATED
    );
    Tokens {
        customer: app.token_for("customer@example.com", PASSWORD).await,
        agent: app.token_for("agent@example.com", PASSWORD).await,
        admin,
        auditor: app.token_for("auditor@example.com", PASSWORD).await,
    }
}

async fn send(
    app: &TestApp,
    token: Option<&str>,
    method: &Method,
    path: &str,
    body: &Value,
) -> StatusCode {
    let mut request = app
        .client
        .request(method.clone(), format!("{}{path}", app.address));
    if *method != Method::GET {
        request = request.json(body);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("answered").status()
}

/// (method, path, body, expected answer for anonymous, customer, agent, admin, auditor).
/// Bodies are deliberately incomplete where a complete one would change state: reaching
/// the body check proves the caller got past the access check.
#[rustfmt::skip]
pub fn matrix() -> Vec<(Method, String, Value, [u16; 5])> {
    let user = |action: &str| format!("/api/v1/admin/users/{NOBODY}/{action}");
    vec![
        (Method::GET, "/healthz".into(), Value::Null, [200, 200, 200, 200, 200]),
        (Method::GET, "/readyz".into(), Value::Null, [200, 200, 200, 200, 200]),
        (Method::GET, "/metrics".into(), Value::Null, [200, 200, 200, 200, 200]),
        (Method::POST, "/api/v1/auth/register".into(), json!({}), [400, 400, 400, 400, 400]),
        (Method::POST, "/api/v1/auth/login".into(), json!({}), [400, 400, 400, 400, 400]),
        (Method::POST, "/api/v1/auth/password-reset".into(), json!({}), [400, 400, 400, 400, 400]),
        (Method::POST, "/api/v1/auth/password-reset/confirm".into(), json!({}), [400, 400, 400, 400, 400]),
        (Method::GET, "/api/v1/me".into(), Value::Null, [401, 200, 200, 200, 200]),
        (Method::GET, "/api/v1/wallet".into(), Value::Null, [401, 200, 403, 403, 403]),
        (Method::POST, "/api/v1/wallet/top-ups".into(), json!({}), [401, 400, 403, 403, 403]),
        (Method::POST, "/api/v1/expenses".into(), json!({}), [401, 400, 403, 403, 403]),
        (Method::GET, "/api/v1/expenses".into(), Value::Null, [401, 200, 403, 403, 403]),
        (Method::GET, "/api/v1/dashboard".into(), Value::Null, [401, 200, 403, 403, 403]),
        (Method::POST, format!("/api/v1/expenses/{NOBODY}/void"), json!({ "reason": "x" }), [401, 404, 403, 403, 403]),
        // A JSON body where a multipart form is expected: the customer's is a bad request.
        (Method::POST, "/api/v1/receipts".into(), json!({}), [401, 400, 403, 403, 403]),
        (Method::GET, format!("/api/v1/receipts/{NOBODY}"), Value::Null, [401, 404, 404, 404, 404]),
        (Method::POST, "/api/v1/assistant".into(), json!({ "message": "help" }), [401, 200, 200, 200, 200]),
        (Method::PUT, "/api/v1/limits".into(), json!({}), [401, 400, 403, 403, 403]),
        (Method::DELETE, "/api/v1/limits".into(), json!({}), [401, 400, 403, 403, 403]),
        (Method::POST, "/api/v1/savings-goals".into(), json!({}), [401, 400, 403, 403, 403]),
        (Method::POST, format!("/api/v1/savings-goals/{NOBODY}/contributions"), json!({ "amount": "1" }), [401, 404, 403, 403, 403]),
        (Method::POST, format!("/api/v1/savings-goals/{NOBODY}/withdrawals"), json!({ "amount": "1" }), [401, 404, 403, 403, 403]),
        (Method::GET, "/api/v1/reminders".into(), Value::Null, [401, 200, 403, 403, 403]),
        (Method::POST, "/api/v1/reminders".into(), json!({}), [401, 400, 403, 403, 403]),
        (Method::POST, format!("/api/v1/reminders/{NOBODY}/cancel"), json!({}), [401, 404, 403, 403, 403]),
        (Method::GET, "/api/v1/recurring-payments".into(), Value::Null, [401, 200, 403, 403, 403]),
        (Method::POST, "/api/v1/recurring-payments".into(), json!({}), [401, 400, 403, 403, 403]),
        (Method::POST, format!("/api/v1/recurring-payments/{NOBODY}/cancel"), json!({}), [401, 404, 403, 403, 403]),
        (Method::POST, "/api/v1/admin/agents".into(), json!({}), [401, 403, 403, 400, 403]),
        (Method::POST, "/api/v1/admin/auditors".into(), json!({}), [401, 403, 403, 400, 403]),
        (Method::POST, user("deactivate"), json!({}), [401, 403, 403, 404, 403]),
        (Method::POST, user("reactivate"), json!({}), [401, 403, 403, 404, 403]),
        (Method::POST, user("erase"), json!({}), [401, 403, 403, 404, 403]),
        (Method::GET, "/api/v1/admin/users".into(), Value::Null, [401, 403, 403, 200, 403]),
        (Method::GET, "/api/v1/agent/queue".into(), Value::Null, [401, 403, 200, 200, 403]),
        (Method::GET, "/api/v1/tickets".into(), Value::Null, [401, 200, 403, 403, 403]),
        (Method::GET, format!("/api/v1/tickets/{NOBODY}"), Value::Null, [401, 404, 404, 404, 403]),
        (Method::POST, format!("/api/v1/tickets/{NOBODY}/comments"), json!({ "text": "hello" }), [401, 404, 404, 404, 403]),
        (Method::POST, format!("/api/v1/tickets/{NOBODY}/reopen"), json!({ "reason": "again" }), [401, 404, 404, 404, 403]),
        (Method::POST, format!("/api/v1/tickets/{NOBODY}/resolve"), json!({ "resolution": "done" }), [401, 403, 404, 404, 403]),
        (Method::POST, format!("/api/v1/tickets/{NOBODY}/assign"), json!({ "assignee": NOBODY }), [401, 403, 403, 422, 403]),
        (Method::GET, "/api/v1/admin/mail/parked".into(), Value::Null, [401, 403, 403, 200, 403]),
        (Method::GET, "/api/v1/admin/projections".into(), Value::Null, [401, 403, 403, 200, 403]),
        (Method::POST, format!("/api/v1/admin/projections/{NO_MODEL}/rebuild"), json!({}), [401, 403, 403, 404, 403]),
        (Method::POST, format!("/api/v1/admin/mail/{NOBODY}/retry"), json!({}), [401, 403, 403, 404, 403]),
        (Method::GET, "/api/v1/audit/verify".into(), Value::Null, [401, 403, 403, 403, 200]),
        (Method::GET, format!("/api/v1/audit/customers/{NOBODY}/state"), Value::Null, [401, 403, 403, 403, 404]),
        (Method::GET, "/api/v1/audit/events".into(), Value::Null, [401, 403, 403, 403, 200]),
        (Method::GET, format!("/api/v1/audit/events/{NOBODY}/why"), Value::Null, [401, 403, 403, 403, 404]),
        (Method::GET, "/api/v1/audit/export".into(), Value::Null, [401, 403, 403, 403, 200]),
        (Method::GET, "/api/v1/admin/audit-reads".into(), Value::Null, [401, 403, 403, 200, 403]),
        // Last: it ends the session of whoever calls it.
        (Method::POST, "/api/v1/auth/logout".into(), json!({}), [401, 204, 204, 204, 204]),
    ]
}

#[tokio::test]
async fn every_role_gets_the_written_answer_on_every_route() {
    let app = spawn_app_with_admin().await;
    let tokens = sign_everyone_in(&app).await;
    let mut mismatches = Vec::new();
    for (method, path, body, expected) in matrix() {
        for (who, expected) in EVERYONE.iter().zip(expected) {
            let got = send(&app, tokens.of(*who), &method, &path, &body).await;
            if got.as_u16() != expected {
                mismatches.push(format!(
                    "{method} {path} as {who:?}: expected {expected}, got {got}"
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}
