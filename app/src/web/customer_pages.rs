//! The customer's pages: dashboard, expenses (with filters, voids and a CSV export), top-up,
//! limits, savings goals, reminders and recurring payments. Each form goes through the same
//! handler as its JSON API route (see `forms`), so the rules and the read-your-writes wait
//! are the API's.

use axum::Form;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::charts::{self, Bar};
use super::forms::{self, Posted, Values, given};
use super::page::{Page, Refused};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, Customers, Everyone};
use crate::http::{dashboard_of, receipts, schedule, wallet};
use crate::state::AppState;
use crate::wallet_views::{self, LimitStatus, MAX_PAGE};

type Customer = Page<Customers>;

/// Categories offered as suggestions; any other name is welcome too.
const CATEGORIES: [&str; 12] = [
    "Groceries",
    "Food",
    "Rent",
    "Transport",
    "Utilities",
    "Health",
    "Entertainment",
    "Shopping",
    "Travel",
    "Education",
    "Gifts",
    "Other",
];

/// An id in a page's path; one that is not an id is simply not found.
fn id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

/// A limit as its bar draws it.
#[derive(Debug, Serialize)]
struct LimitBar<'a> {
    #[serde(flatten)]
    limit: &'a LimitStatus,
    /// The bar's length, 0 to 100.
    width: u32,
    /// ok, warn (80% and more) or over (past the limit).
    state: &'static str,
}

fn limit_bars(limits: &[LimitStatus]) -> Vec<LimitBar<'_>> {
    limits
        .iter()
        .map(|limit| LimitBar {
            limit,
            width: limit.percent.min(100),
            state: charts::limit_state(&limit.spent, &limit.amount, limit.percent),
        })
        .collect()
}

/// "2026-03" as "Mar 2026".
fn month_name(month: &str) -> String {
    chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .map_or_else(|_| month.to_owned(), |day| day.format("%b %Y").to_string())
}

/// `GET /dashboard`.
pub async fn dashboard(State(state): State<AppState>, page: Customer) -> Response {
    let board = match dashboard_of(&state, page.user_id()).await {
        Ok(board) => board,
        Err(error) => return page.failed(error),
    };
    let categories: Vec<Bar> = charts::bars(
        board
            .by_category
            .iter()
            .map(|c| (c.category.clone(), c.spent.clone()))
            .collect(),
    );
    let trend: Vec<Bar> = charts::bars(
        board
            .trend
            .iter()
            .map(|m| (month_name(&m.month), m.spent.clone()))
            .collect(),
    );
    let mut context = page.context("Dashboard");
    context.insert("board", &board);
    context.insert("categories", &categories);
    context.insert("trend", &trend);
    context.insert("limits", &limit_bars(&board.limits));
    page.render("dashboard.html", &context)
}

/// The expense filters of a query: empty fields are no filter.
fn expense_query(
    values: &Values,
    limit: Option<String>,
    cursor: Option<String>,
) -> wallet::ExpenseQuery {
    wallet::ExpenseQuery {
        from: given(values.get("from")),
        to: given(values.get("to")),
        category: given(values.get("category")),
        status: given(values.get("status")),
        limit,
        cursor,
    }
}

/// The filters as a query string, for the next page's and the export's links.
fn filter_query(values: &Values) -> String {
    let kept: Vec<(&str, String)> = ["from", "to", "category", "status"]
        .into_iter()
        .filter_map(|name| given(values.get(name)).map(|v| (name, v)))
        .collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

pub(super) async fn expenses_page(
    state: &AppState,
    page: &Customer,
    filters: Values,
    refused: Option<Refused>,
) -> Response {
    let filters = &filters;
    let query = expense_query(filters, None, given(filters.get("cursor")));
    let listed =
        wallet::list_expenses(State(state.clone()), page.user.clone(), ApiQuery(query)).await;
    let mut context = page.context("Expenses");
    let mut refused = refused;
    match listed {
        Ok(Json(list)) => context.insert("list", &list),
        Err(error) => match page.refused("filters", filters.clone(), error) {
            Ok(bad_filters) => {
                context.insert("list", &wallet_views::ExpensePage::default());
                refused = refused.or(Some(bad_filters));
            }
            Err(response) => return response,
        },
    }
    context.insert("filters", filters);
    context.insert("filter_query", &filter_query(filters));
    context.insert("categories", &CATEGORIES);
    context.insert("today", &state.now().date_naive().to_string());
    page.render_with("expenses.html", context, refused)
}

/// `GET /expenses`: the list with its filters, and the form to record one.
pub async fn expenses(
    State(state): State<AppState>,
    page: Customer,
    Query(filters): Query<Values>,
) -> Response {
    expenses_page(&state, &page, filters, None).await
}

/// `POST /expenses`: with an optional receipt file, kept first and forgotten again if the
/// expense is refused.
pub async fn record_expense(
    State(state): State<AppState>,
    page: Customer,
    posted: Posted,
) -> Response {
    let Posted { values, file } = posted;
    let result = record_with_receipt(&state, &page, &values, file).await;
    page.settle(
        result,
        "expense",
        values,
        ("/expenses", "Expense recorded."),
        |refused| expenses_page(&state, &page, Values::new(), Some(refused)),
    )
    .await
}

async fn record_with_receipt(
    state: &AppState,
    page: &Customer,
    values: &Values,
    file: Option<axum::body::Bytes>,
) -> Result<(), ApiError> {
    let mut body: wallet::ExpenseBody = forms::body(values, &[])?;
    if let Some(file) = file {
        let stored = receipts::keep(state, page.user_id().0, file)
            .await
            .map_err(|error| match error {
                ApiError::Validation(mut errors) => {
                    errors.iter_mut().for_each(|e| e.field = "receipt".into());
                    ApiError::Validation(errors)
                }
                other => other,
            })?;
        body.receipt_id = Some(stored.receipt_id);
    }
    let receipt = body.receipt_id;
    let recorded =
        wallet::record_expense(State(state.clone()), page.user.clone(), ApiJson(body)).await;
    if let (Err(_), Some(receipt)) = (&recorded, receipt)
        && let Err(error) = state.receipts.discard(receipt).await
    {
        tracing::warn!(%receipt, %error, "a refused expense's receipt stays behind");
    }
    recorded.map(drop)
}

/// `GET /receipts/{id}`: for its owner, the agents of their tickets and auditors.
pub async fn receipt(
    State(state): State<AppState>,
    page: Page<Everyone>,
    Path(receipt): Path<String>,
) -> Response {
    let shown = match id(&receipt) {
        Ok(receipt) => receipts::show(&state, &page.user.user, receipt).await,
        Err(error) => Err(error),
    };
    shown.unwrap_or_else(|error| page.failed(error))
}

/// `POST /expenses/{id}/void`.
pub async fn void_expense(
    State(state): State<AppState>,
    page: Customer,
    Path(expense): Path<String>,
    Form(values): Form<Values>,
) -> Response {
    let result = match (id(&expense), forms::body(&values, &[])) {
        (Ok(expense), Ok(body)) => {
            wallet::void_expense(
                State(state.clone()),
                page.user.clone(),
                ApiPath(expense),
                ApiJson(body),
            )
            .await
        }
        (Err(error), _) | (_, Err(error)) => Err(error),
    };
    page.settle(
        result,
        "void",
        values,
        ("/expenses", "Expense voided; the balance is restored."),
        |refused| expenses_page(&state, &page, Values::new(), Some(refused)),
    )
    .await
}

/// Cells that a spreadsheet would run as a formula are written as text.
fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// `GET /expenses.csv`: every expense the filters select, newest first.
pub async fn expenses_csv(
    State(state): State<AppState>,
    page: Customer,
    Query(filters): Query<Values>,
) -> Response {
    let currency = match wallet_views::wallet(&state.database, page.user_id().0).await {
        Ok(wallet) => wallet.map(|w| w.currency).unwrap_or_default(),
        Err(error) => return page.internal(error),
    };
    let mut csv = csv::Writer::from_writer(Vec::new());
    let mut written = csv.write_record([
        "expense_id",
        "spent_on",
        "amount",
        "currency",
        "category",
        "description",
        "status",
        "void_reason",
        "receipt",
    ]);
    let mut cursor = None;
    loop {
        let query = expense_query(&filters, Some(MAX_PAGE.to_string()), cursor.take());
        let list =
            match wallet::list_expenses(State(state.clone()), page.user.clone(), ApiQuery(query))
                .await
            {
                Ok(Json(list)) => list,
                Err(error) => return page.failed(error),
            };
        for item in &list.items {
            written = written.and_then(|()| {
                csv.write_record([
                    item.expense_id.to_string(),
                    item.spent_on.to_string(),
                    item.amount.clone(),
                    currency.clone(),
                    cell(&item.category),
                    cell(&item.description),
                    if item.voided { "voided" } else { "live" }.to_owned(),
                    cell(item.void_reason.as_deref().unwrap_or_default()),
                    item.receipt_id
                        .map(|r| format!("/receipts/{r}"))
                        .unwrap_or_default(),
                ])
            });
        }
        match list.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let bytes = match written
        .map_err(anyhow::Error::from)
        .and_then(|()| csv.into_inner().map_err(|e| anyhow::anyhow!("{e}")))
    {
        Ok(bytes) => bytes,
        Err(error) => return page.internal(error),
    };
    let name = format!(
        "attachment; filename=\"expenses-{}.csv\"",
        state.now().date_naive()
    );
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, name),
        ],
        bytes,
    )
        .into_response()
}

async fn top_up_page(state: &AppState, page: &Customer, refused: Option<Refused>) -> Response {
    let board = match dashboard_of(state, page.user_id()).await {
        Ok(board) => board,
        Err(error) => return page.failed(error),
    };
    let mut context = page.context("Top up");
    context.insert("board", &board);
    page.render_with("top_up.html", context, refused)
}

/// `GET /top-up`.
pub async fn top_up_form(State(state): State<AppState>, page: Customer) -> Response {
    top_up_page(&state, &page, None).await
}

/// `POST /top-up`.
pub async fn top_up(
    State(state): State<AppState>,
    page: Customer,
    Form(values): Form<Values>,
) -> Response {
    let result = match forms::body(&values, &[]) {
        Ok(body) => wallet::top_up(State(state.clone()), page.user.clone(), ApiJson(body)).await,
        Err(error) => Err(error),
    };
    page.settle(
        result,
        "top_up",
        values,
        ("/dashboard", "Money added to your wallet."),
        |refused| top_up_page(&state, &page, Some(refused)),
    )
    .await
}

async fn limits_page(state: &AppState, page: &Customer, refused: Option<Refused>) -> Response {
    let board = match dashboard_of(state, page.user_id()).await {
        Ok(board) => board,
        Err(error) => return page.failed(error),
    };
    let mut context = page.context("Limits");
    context.insert("currency", &board.currency);
    context.insert("limits", &limit_bars(&board.limits));
    context.insert("categories", &CATEGORIES);
    page.render_with("limits.html", context, refused)
}

/// `GET /limits`.
pub async fn limits(State(state): State<AppState>, page: Customer) -> Response {
    limits_page(&state, &page, None).await
}

/// `POST /limits`: sets or changes one.
pub async fn set_limit(
    State(state): State<AppState>,
    page: Customer,
    Form(values): Form<Values>,
) -> Response {
    // The form offers a first day for monthly limits only; a weekly one ignores it.
    let mut sent = values.clone();
    if sent.get("period").is_some_and(|p| p.trim() == "weekly") {
        sent.remove("first_day");
    }
    let result = match forms::body(&sent, &[("first_day", 255)]) {
        Ok(body) => wallet::set_limit(State(state.clone()), page.user.clone(), ApiJson(body)).await,
        Err(error) => Err(error),
    };
    page.settle(
        result,
        "limit",
        values,
        ("/limits", "Limit set."),
        |refused| limits_page(&state, &page, Some(refused)),
    )
    .await
}

/// `POST /limits/remove`.
pub async fn remove_limit(
    State(state): State<AppState>,
    page: Customer,
    Form(values): Form<Values>,
) -> Response {
    let result = match forms::body(&values, &[("first_day", 255)]) {
        Ok(body) => {
            wallet::remove_limit(State(state.clone()), page.user.clone(), ApiJson(body)).await
        }
        Err(error) => Err(error),
    };
    page.settle(
        result,
        "remove_limit",
        values,
        ("/limits", "Limit removed."),
        |refused| limits_page(&state, &page, Some(refused)),
    )
    .await
}

async fn savings_page(state: &AppState, page: &Customer, refused: Option<Refused>) -> Response {
    let board = match dashboard_of(state, page.user_id()).await {
        Ok(board) => board,
        Err(error) => return page.failed(error),
    };
    let mut context = page.context("Savings goals");
    context.insert("board", &board);
    context.insert("today", &state.now().date_naive().to_string());
    page.render_with("savings.html", context, refused)
}

/// `GET /savings`.
pub async fn savings(State(state): State<AppState>, page: Customer) -> Response {
    savings_page(&state, &page, None).await
}

/// `POST /savings`: a new goal.
pub async fn create_goal(
    State(state): State<AppState>,
    page: Customer,
    Form(values): Form<Values>,
) -> Response {
    let result = match forms::body(&values, &[]) {
        Ok(body) => {
            wallet::create_goal(State(state.clone()), page.user.clone(), ApiJson(body)).await
        }
        Err(error) => Err(error),
    };
    page.settle(
        result,
        "goal",
        values,
        ("/savings", "Savings goal created."),
        |refused| savings_page(&state, &page, Some(refused)),
    )
    .await
}

/// `POST /savings/{id}/contribute` and `/withdraw`.
pub async fn move_savings(
    State(state): State<AppState>,
    page: Customer,
    Path((goal, direction)): Path<(String, String)>,
    Form(values): Form<Values>,
) -> Response {
    let result = match (id(&goal), forms::body(&values, &[])) {
        (Ok(goal), Ok(body)) => match direction.as_str() {
            "contribute" => {
                wallet::contribute(
                    State(state.clone()),
                    page.user.clone(),
                    ApiPath(goal),
                    ApiJson(body),
                )
                .await
            }
            "withdraw" => {
                wallet::withdraw(
                    State(state.clone()),
                    page.user.clone(),
                    ApiPath(goal),
                    ApiJson(body),
                )
                .await
            }
            _ => Err(ApiError::NotFound),
        },
        (Err(error), _) | (_, Err(error)) => Err(error),
    };
    let notice = if direction == "contribute" {
        "Moved into the goal."
    } else {
        "Moved back to your balance."
    };
    page.settle(result, "move", values, ("/savings", notice), |refused| {
        savings_page(&state, &page, Some(refused))
    })
    .await
}

async fn reminders_page(state: &AppState, page: &Customer, refused: Option<Refused>) -> Response {
    let reminders = schedule::list_reminders(State(state.clone()), page.user.clone()).await;
    let payments = schedule::list_payments(State(state.clone()), page.user.clone()).await;
    let (Json(reminders), Json(payments)) = match (reminders, payments) {
        (Ok(reminders), Ok(payments)) => (reminders, payments),
        (Err(error), _) | (_, Err(error)) => return page.failed(error),
    };
    let mut context = page.context("Reminders and recurring payments");
    context.insert("reminders", &reminders);
    context.insert("payments", &payments);
    context.insert("categories", &CATEGORIES);
    context.insert("today", &state.now().date_naive().to_string());
    page.render_with("reminders.html", context, refused)
}

/// `GET /reminders`: reminders and recurring payments.
pub async fn reminders(State(state): State<AppState>, page: Customer) -> Response {
    reminders_page(&state, &page, None).await
}

/// `POST /reminders`.
pub async fn set_reminder(
    State(state): State<AppState>,
    page: Customer,
    Form(values): Form<Values>,
) -> Response {
    let result = match forms::body(&values, &[]) {
        Ok(body) => {
            schedule::set_reminder(State(state.clone()), page.user.clone(), ApiJson(body)).await
        }
        Err(error) => Err(error),
    };
    page.settle(
        result,
        "reminder",
        values,
        ("/reminders", "Reminder set."),
        |refused| reminders_page(&state, &page, Some(refused)),
    )
    .await
}

/// `POST /recurring-payments`.
pub async fn schedule_payment(
    State(state): State<AppState>,
    page: Customer,
    Form(values): Form<Values>,
) -> Response {
    let result = match forms::body(&values, &[("remind_days_before", 65_535)]) {
        Ok(body) => {
            schedule::schedule_payment(State(state.clone()), page.user.clone(), ApiJson(body)).await
        }
        Err(error) => Err(error),
    };
    page.settle(
        result,
        "payment",
        values,
        ("/reminders", "Recurring payment scheduled."),
        |refused| reminders_page(&state, &page, Some(refused)),
    )
    .await
}

/// `POST /reminders/{id}/cancel` and `POST /recurring-payments/{id}/cancel`.
pub async fn cancel_reminder(
    State(state): State<AppState>,
    page: Customer,
    Path(reminder): Path<String>,
) -> Response {
    let result = match id(&reminder) {
        Ok(reminder) => {
            schedule::cancel_reminder(State(state.clone()), page.user.clone(), ApiPath(reminder))
                .await
        }
        Err(error) => Err(error),
    };
    page.settle(
        result,
        "cancel",
        Values::new(),
        ("/reminders", "Reminder cancelled."),
        |refused| reminders_page(&state, &page, Some(refused)),
    )
    .await
}

/// `POST /recurring-payments/{id}/cancel`.
pub async fn cancel_payment(
    State(state): State<AppState>,
    page: Customer,
    Path(payment): Path<String>,
) -> Response {
    let result = match id(&payment) {
        Ok(payment) => {
            schedule::cancel_payment(State(state.clone()), page.user.clone(), ApiPath(payment))
                .await
        }
        Err(error) => Err(error),
    };
    page.settle(
        result,
        "cancel",
        Values::new(),
        ("/reminders", "Recurring payment cancelled."),
        |refused| reminders_page(&state, &page, Some(refused)),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_named() {
        assert_eq!(month_name("2026-03"), "Mar 2026");
        assert_eq!(month_name("bad"), "bad");
    }

    #[test]
    fn spreadsheet_formulas_are_written_as_text() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("-2+3"), "'-2+3");
        assert_eq!(cell("Lunch"), "Lunch");
    }

    #[test]
    fn empty_filters_are_left_out_of_links() {
        let filters: Values = [
            ("from", "2026-01-01"),
            ("to", ""),
            ("category", "Food & drink"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let query = filter_query(&filters);
        assert!(query.contains("from=2026-01-01"));
        assert!(query.contains("category=Food+%26+drink"));
        assert!(!query.contains("to="));
    }
}
