//! The OpenAPI document describes exactly the routes the product serves.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::access_matrix::{NO_MODEL, NOBODY, matrix};
use crate::helpers::{TestApp, problem, spawn_app};

/// The product's OpenAPI document, as it serves it.
pub async fn document(app: &TestApp) -> Value {
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("the document is JSON")
}

/// `{expense_id}`, `{user_id}`, ... all become `{}`, so that templates and tried paths compare.
fn template(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment == NOBODY
                || segment == NO_MODEL
                || (segment.starts_with('{') && segment.ends_with('}'))
            {
                "{}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every operation of `document`: its method, its path template and its description.
pub fn each_operation(document: &Value) -> Vec<(Method, &str, &Value)> {
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in [
            Method::GET,
            Method::PUT,
            Method::POST,
            Method::DELETE,
            Method::PATCH,
        ] {
            if let Some(operation) = item.get(method.as_str().to_lowercase()) {
                operations.push((method, path.as_str(), operation));
            }
        }
    }
    operations
}

/// `template` with every `{parameter}` segment replaced by `id`.
pub fn with_id(template: &str, id: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                id
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn operations(document: &Value) -> BTreeSet<(String, String)> {
    each_operation(document)
        .into_iter()
        .map(|(method, path, _)| (method.to_string(), template(path)))
        .collect()
}

#[tokio::test]
async fn every_route_tried_by_the_access_matrix_is_documented_and_nothing_else() {
    let app = spawn_app().await;
    let documented = operations(&document(&app).await);
    let mut tried: BTreeSet<(String, String)> = matrix()
        .into_iter()
        .map(|(method, path, _, _)| (method.to_string(), template(&path)))
        .collect();
    tried.insert(("GET".into(), "/api/openapi.json".into()));
    let undocumented: Vec<_> = tried.difference(&documented).collect();
    let untried: Vec<_> = documented.difference(&tried).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    assert!(
        untried.is_empty(),
        "documented but not in the access matrix: {untried:?}"
    );
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = spawn_app().await;
    for (method, path) in operations(&document(&app).await) {
        let path = path.replace("{}", NOBODY);
        let method = Method::from_bytes(method.as_bytes()).expect("a method");
        let response = app.call(method.clone(), None, &path, None).await;
        let status = response.status();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        if status == StatusCode::NOT_FOUND {
            let body = problem(response).await;
            assert_ne!(body["type"], "/problems/no-route", "{method} {path}");
        }
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_too() {
    let app = spawn_app().await;
    let missing = app.get("/api/v1/nothing-here").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(problem(missing).await["type"], "/problems/no-route");
    let wrong_method = app
        .call(Method::PATCH, None, "/api/v1/expenses", None)
        .await;
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        problem(wrong_method).await["type"],
        "/problems/method-not-allowed"
    );
}

#[tokio::test]
async fn bodies_errors_and_shared_conventions_are_described() {
    let app = spawn_app().await;
    let document = document(&app).await;
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "an OpenAPI 3 document"
    );
    let record = &document["paths"]["/api/v1/expenses"]["post"];
    assert_eq!(
        record["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ExpenseBody"
    );
    for status in ["201", "400", "401", "403", "422", "500"] {
        assert!(
            record["responses"].get(status).is_some(),
            "POST /api/v1/expenses answers {status}"
        );
    }
    assert_eq!(
        record["responses"]["422"]["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
    assert!(
        record["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key")),
        "POSTs take an Idempotency-Key"
    );
    let list = &document["paths"]["/api/v1/expenses"]["get"];
    let parameters: BTreeSet<&str> = list["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        parameters,
        BTreeSet::from(["from", "to", "category", "status", "limit", "cursor"])
    );
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for schema in ["Problem", "ExpensePage", "Dashboard", "Period", "LoggedIn"] {
        assert!(
            document["components"]["schemas"].get(schema).is_some(),
            "{schema} is described"
        );
    }
}

#[tokio::test]
async fn every_route_that_refuses_a_role_documents_its_403() {
    let app = spawn_app().await;
    let document = document(&app).await;
    let mut missing = Vec::new();
    for (method, path, _, answers) in matrix() {
        if !answers.contains(&403) {
            continue;
        }
        let documented = document["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .find(|(documented, _)| template(documented) == template(&path))
            .and_then(|(_, item)| item.get(method.as_str().to_lowercase()));
        let has_403 = documented
            .and_then(|operation| operation["responses"].get("403"))
            .is_some();
        if !has_403 {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(missing.is_empty(), "no 403 documented: {missing:?}");
}
