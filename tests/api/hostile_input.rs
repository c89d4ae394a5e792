//! Hostile input on every route, generated from the OpenAPI document so that a new route
//! is covered the day it is added: broken and wrongly shaped bodies, each field of the
//! documented body replaced by wrong types, huge and negative numbers, too many decimals,
//! absurd dates, oversized text and injection strings, and ids and query values built to
//! traverse paths or inject SQL. No answer is a 5xx; every refusal is a problem document;
//! a refused request stores nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::helpers::{TestApp, spawn_app_with_admin};
use crate::openapi::{document, each_operation, with_id};

const NOBODY: &str = "0190f3c4-0000-7000-8000-000000000000";

/// Values no field should take, or that must be stored as plain text if a field does.
fn hostile_values() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(-1),
        json!(0),
        json!(1e308),
        json!(u64::MAX),
        json!("-1"),
        json!("0"),
        json!("0.001"),
        json!("1e400"),
        json!("99999999999999999999999999999999999.99"),
        json!("NaN"),
        json!(""),
        json!(" "),
        json!("x".repeat(5_000)),
        json!("../../../../etc/passwd"),
        json!("'; DROP TABLE events; --"),
        json!("\" OR 1=1 --"),
        json!("<script>alert(1)</script>"),
        json!("{{ 7*7 }}"),
        json!("\u{0000}"),
        json!("2026-02-30"),
        json!("0000-00-00"),
        json!("+275760-09-13"),
        json!("-2026-01-01"),
        json!([]),
        json!({}),
        json!([1, 2, 3]),
    ]
}

/// Whole bodies that are not what any route takes.
fn hostile_bodies() -> Vec<String> {
    vec![
        String::new(),
        "{".into(),
        "null".into(),
        "[]".into(),
        "\"a string\"".into(),
        "12".into(),
        "{\"a\":".into(),
        "{\"a\": 1,}".into(),
        // Deeply nested: the parser must stop, not overflow the stack.
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        format!("{{\"x\": \"{}\"}}", "\\u0000".repeat(1_000)),
        "\u{feff}{}".into(),
    ]
}

/// Ids and query values built to traverse paths or inject.
fn hostile_ids() -> Vec<String> {
    vec![
        "..%2F..%2Fetc%2Fpasswd".into(),
        "%2e%2e".into(),
        "1%20OR%201%3D1".into(),
        "%27%3B%20DROP%20TABLE%20events%3B--".into(),
        "%00".into(),
        "x".repeat(10_000),
        "-1".into(),
        "99999999999999999999999".into(),
    ]
}

fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap_or_default();
            resolve(document, &document["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// A body shaped as `schema` says, with plausible values: the base each field is spoiled in.
fn example_of(document: &Value, schema: &Value) -> Value {
    let schema = resolve(document, schema);
    if let Some(first) = schema["enum"].as_array().and_then(|values| values.first()) {
        return first.clone();
    }
    for combined in ["oneOf", "anyOf", "allOf"] {
        if let Some(first) = schema[combined].as_array().and_then(|s| s.first()) {
            return example_of(document, first);
        }
    }
    if let Some(properties) = schema["properties"].as_object() {
        return Value::Object(
            properties
                .iter()
                .map(|(name, property)| (name.clone(), example_of(document, property)))
                .collect::<Map<_, _>>(),
        );
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds
            .iter()
            .find(|k| k.as_str() != Some("null"))
            .cloned()
            .unwrap_or_default(),
        kind => kind.clone(),
    };
    match (kind.as_str(), schema["format"].as_str()) {
        (Some("string"), Some("date")) => json!("2026-11-20"),
        (Some("string"), Some("date-time")) => json!("2026-11-20T10:00:00Z"),
        (Some("string"), Some("uuid")) => json!(NOBODY),
        (Some("string"), Some("email")) => json!("hostile@example.com"),
        (Some("string"), _) => json!("12.50"),
        (Some("integer" | "number"), _) => json!(1),
        (Some("boolean"), _) => json!(false),
        (Some("array"), _) => json!([]),
        _ => json!({}),
    }
}

/// A token of each role that signs in, in the order they are tried.
struct Tokens(Vec<String>);

async fn sign_everyone_in(app: &TestApp) -> Tokens {
    let tokens = crate::access_matrix::sign_everyone_in(app).await;
    Tokens(vec![
        tokens.customer,
        tokens.agent,
        tokens.auditor,
        tokens.admin,
    ])
}

/// What the sweep saw.
#[derive(Default)]
struct Sweep {
    requests: usize,
    wrong: Vec<String>,
}

impl Sweep {
    /// Sends one request and checks its answer: never 5xx, refusals as problem documents,
    /// nothing stored by a refusal.
    async fn send(
        &mut self,
        app: &TestApp,
        token: &str,
        method: &Method,
        path: &str,
        body: Option<String>,
    ) -> StatusCode {
        let before = app.event_count().await;
        let mut request = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.clone());
        }
        let response = request.send().await.expect("answered");
        self.requests += 1;
        let status = response.status();
        let problem = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            == Some("application/problem+json");
        let short: String = path.chars().take(120).collect();
        if status.is_server_error() {
            let text = response.text().await.unwrap_or_default();
            self.wrong
                .push(format!("{method} {short}: {status} {text}"));
        } else if status.is_client_error() {
            if !problem {
                self.wrong.push(format!(
                    "{method} {short}: {status} without a problem document"
                ));
            }
            if app.event_count().await != before {
                self.wrong.push(format!(
                    "{method} {short}: refused with {status} but stored events"
                ));
            }
        }
        status
    }
}

/// The first role the route lets past its access check, to spoil the input as that role.
async fn role_for(
    app: &TestApp,
    tokens: &Tokens,
    method: &Method,
    path: &str,
    body: Option<&Value>,
) -> String {
    for token in &tokens.0 {
        let status = app
            .call(method.clone(), Some(token), path, body)
            .await
            .status();
        if status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN {
            return token.clone();
        }
    }
    tokens.0[0].clone()
}

#[tokio::test]
async fn every_route_refuses_hostile_input_with_a_4xx_problem_and_stores_nothing() {
    let app = spawn_app_with_admin().await;
    let tokens = sign_everyone_in(&app).await;
    let document = document(&app).await;
    let mut sweep = Sweep::default();
    let mut operations = 0;
    for (method, template, operation) in each_operation(&document) {
        // Signing out would end the session the sweep goes on with.
        if template.ends_with("/auth/logout") {
            continue;
        }
        operations += 1;
        let path = with_id(template, NOBODY);
        let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
        let base = (!schema.is_null()).then(|| example_of(&document, schema));
        let token = role_for(&app, &tokens, &method, &path, base.as_ref()).await;

        // Ids that traverse or inject, in every id segment.
        if template.contains('{') {
            for id in hostile_ids() {
                let spoiled = with_id(template, &id);
                let body = base.as_ref().map(Value::to_string);
                let status = sweep.send(&app, &token, &method, &spoiled, body).await;
                if status.is_success() {
                    sweep
                        .wrong
                        .push(format!("{method} {template} took the id {id:.40}"));
                }
            }
        }
        // Query values that inject, in every documented query parameter.
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            if parameter["in"] != "query" {
                continue;
            }
            let name = parameter["name"].as_str().expect("a name");
            for value in hostile_ids() {
                let query = format!("{path}?{name}={value}");
                sweep.send(&app, &token, &method, &query, None).await;
            }
        }
        let Some(base) = base else {
            continue;
        };
        // Bodies that are no JSON object at all, or broken JSON.
        for body in hostile_bodies() {
            let status = sweep.send(&app, &token, &method, &path, Some(body)).await;
            if !status.is_client_error() {
                sweep
                    .wrong
                    .push(format!("{method} {template}: a broken body got {status}"));
            }
        }
        // An unknown field beside the documented ones.
        if let Value::Object(fields) = &base {
            let mut extra = fields.clone();
            extra.insert("is_admin".into(), json!(true));
            let status = sweep
                .send(
                    &app,
                    &token,
                    &method,
                    &path,
                    Some(Value::Object(extra).to_string()),
                )
                .await;
            if !fields.is_empty() && status != StatusCode::BAD_REQUEST {
                // Only the routes whose bodies are all optional may ignore it... none do.
                sweep.wrong.push(format!(
                    "{method} {template}: an unknown field got {status}"
                ));
            }
            // Each field spoiled in turn.
            for name in fields.keys() {
                for value in hostile_values() {
                    let mut spoiled = fields.clone();
                    spoiled.insert(name.clone(), value);
                    let body = Value::Object(spoiled).to_string();
                    sweep.send(&app, &token, &method, &path, Some(body)).await;
                }
            }
        }
    }
    assert!(
        operations >= 50,
        "only {operations} operations in the document"
    );
    assert!(sweep.wrong.is_empty(), "{:#?}", sweep.wrong);
    eprintln!(
        "hostile input: {} requests over {operations} operations, no 5xx",
        sweep.requests
    );
}
