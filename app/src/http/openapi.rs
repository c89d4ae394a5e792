//! The OpenAPI document at `/api/openapi.json`. Each route's own part is written beside its
//! handler (`#[utoipa::path]`) and collected by the router that serves it, so a route cannot
//! be served without being described. What every route shares is added here, once: the
//! bearer scheme, the `Idempotency-Key` header of POSTs, and the 400/401/403/500 answers.

use std::sync::Arc;

use axum::{Extension, Json};
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, PathItem, Ref, RefOr, Required};
use utoipa::{OpenApi, PartialSchema, ToSchema};

use super::error::{FieldError, Problem};

/// The document's fixed parts.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Personal Expense Tracker",
        description = "Amounts are strings with the currency's minor units (`\"12.50\"`), days \
                       are `YYYY-MM-DD`. Every error is `application/problem+json`."
    ),
    components(schemas(Problem, FieldError)),
    tags(
        (name = "accounts", description = "Sign-up, sign-in and passwords."),
        (name = "wallet", description = "Balance, top-ups and the dashboard."),
        (name = "expenses", description = "Recording, listing and voiding expenses."),
        (name = "limits", description = "Spending limits per period and category."),
        (name = "savings", description = "Savings goals."),
        (name = "reminders", description = "Reminders and recurring payments."),
        (name = "admin", description = "Agents, auditors, erasure and mail."),
        (name = "agent", description = "The queue of tickets agents work."),
        (name = "tickets", description = "Tickets opened when a limit is crossed."),
        (name = "receipts", description = "Receipt files, for their owner, their tickets' agents and auditors."),
        (name = "assistant", description = "Answers from the user's own figures, and quick entries to confirm."),
        (name = "audit", description = "Tamper evidence, state as of any instant, the event browser and exports; every read is recorded."),
        (name = "operations", description = "Probes and this document."),
    )
)]
pub struct ApiDoc;

/// A limit's period, as the API writes it.
#[derive(Debug, ToSchema)]
#[schema(as = Period)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PeriodSchema {
    /// Monday to Sunday.
    Weekly,
    /// From `first_day` (1 to 28) of one month to the day before it in the next.
    Monthly {
        /// Day of the month the period starts on.
        first_day: u8,
    },
}

/// `GET /api/openapi.json`: this document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.")))]
pub async fn document(Extension(document): Extension<Arc<Document>>) -> Json<Arc<Document>> {
    Json(document)
}

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            Content::new(Some(Ref::from_schema_name("Problem"))),
        )
        .build()
        .into()
}

fn idempotency_key() -> RefOr<Parameter> {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Applies the request once: a retry with the same key gets the first answer; \
             the same key with another body is a 422. Remembered per user for 24 hours.",
        ))
        .schema(Some(String::schema()))
        .build()
        .into()
}

/// The tags of the routes only customers may use.
const CUSTOMER_TAGS: [&str; 5] = ["wallet", "expenses", "limits", "savings", "reminders"];

fn add_shared_answers(operation: &mut Operation, is_post: bool) {
    let responses = &mut operation.responses.responses;
    let has_input = operation.request_body.is_some()
        || operation
            .parameters
            .as_ref()
            .is_some_and(|parameters| !parameters.is_empty());
    if has_input {
        responses.entry("400".into()).or_insert_with(|| {
            problem("Malformed JSON, wrong types, missing or unknown fields or parameters.")
        });
    }
    if operation
        .security
        .as_ref()
        .is_some_and(|security| !security.is_empty())
    {
        responses
            .entry("401".into())
            .or_insert_with(|| problem("No valid bearer token."));
        // The role each tag's routes admit; the extractor answers 403 to the others.
        let tags = operation.tags.as_deref().unwrap_or_default();
        let only = if tags.iter().any(|t| t == "admin") {
            Some("Only admins.")
        } else if tags.iter().any(|t| t == "audit") {
            Some("Only auditors.")
        } else if tags.iter().any(|t| t == "agent") {
            Some("Only agents and admins.")
        } else if tags.iter().any(|t| CUSTOMER_TAGS.contains(&t.as_str())) {
            Some("Only customers.")
        } else {
            None
        };
        if let Some(only) = only {
            responses
                .entry("403".into())
                .or_insert_with(|| problem(only));
        }
    }
    responses
        .entry("500".into())
        .or_insert_with(|| problem("A failure on our side; it is logged."));
    if is_post {
        operation
            .parameters
            .get_or_insert_with(Vec::new)
            .push(idempotency_key());
    }
}

/// The complete document: `routes` (as collected by the router) with the shared parts.
#[must_use]
pub fn complete(mut document: Document) -> Document {
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("A token from `POST /api/v1/auth/login`."))
                .build(),
        ),
    );
    for (path, item) in &mut document.paths.paths {
        let PathItem {
            get,
            put,
            post,
            delete,
            ..
        } = item;
        let under_api = path.starts_with("/api/v1/");
        for operation in [get, put, delete].into_iter().flatten() {
            add_shared_answers(operation, false);
        }
        if let Some(operation) = post {
            add_shared_answers(operation, under_api);
        }
    }
    document
}
