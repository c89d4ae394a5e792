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
use super::forms::{self, Posted, Values, given, path_id, submit};
use super::page::{Page, Refused};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, Customers, Everyone};
use crate::http::{dashboard_of, receipts, schedule, wallet};
use crate::state::AppState;
use crate::wallet_views::{self, ExpenseItem, LimitStatus, MAX_PAGE};

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
            state: charts::limit_state(limit.percent, limit.over),
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

async fn expenses_page(
    state: &AppState,
    page: &Customer,
    filters: Values,
    refused: Option<Refused>,
) -> Response {
    let filters = &filters;
    let query = expense_query(filters, None, given(filters.get("cursor")));
    let mut refused = refused;
    let listed = wallet::list_expenses(State(state.clone()), page.user.clone(), ApiQuery(query))
        .await
        .map(|Json(list)| list);
    let list = match page.listed(listed, filters, &mut refused) {
        Ok(list) => list,
        Err(response) => return response,
    };
    let mut context = page.context("Expenses");
    context.insert("list", &list);
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
        body.receipt_id = Some(
            receipts::keep(state, page.user_id().0, file)
                .await?
                .receipt_id,
        );
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
    let shown = async { receipts::show(&state, &page.user.user, path_id(&receipt)?).await };
    shown.await.unwrap_or_else(|error| page.failed(error))
}

/// `POST /expenses/{id}/void`.
pub async fn void_expense(
    State(state): State<AppState>,
    page: Customer,
    Path(expense): Path<String>,
    Form(values): Form<Values>,
) -> Response {
    let result = async {
        let expense = ApiPath(path_id(&expense)?);
        submit(&values, &[], |body| {
            wallet::void_expense(State(state.clone()), page.user.clone(), expense, body)
        })
        .await
    }
    .await;
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

/// Every expense the filters select, newest first, a page at a time.
async fn all_expenses(
    state: &AppState,
    page: &Customer,
    filters: &Values,
) -> Result<Vec<ExpenseItem>, ApiError> {
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let query = expense_query(filters, Some(MAX_PAGE.to_string()), cursor);
        let Json(list) =
            wallet::list_expenses(State(state.clone()), page.user.clone(), ApiQuery(query)).await?;
        items.extend(list.items);
        match list.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(items),
        }
    }
}

fn csv_of(items: &[ExpenseItem], currency: &str) -> anyhow::Result<Vec<u8>> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record([
        "expense_id",
        "spent_on",
        "amount",
        "currency",
        "category",
        "description",
        "status",
        "void_reason",
        "receipt",
    ])?;
    for item in items {
        csv.write_record([
            item.expense_id.to_string(),
            item.spent_on.to_string(),
            item.amount.clone(),
            currency.to_owned(),
            cell(&item.category),
            cell(&item.description),
            if item.voided { "voided" } else { "live" }.to_owned(),
            cell(item.void_reason.as_deref().unwrap_or_default()),
            item.receipt_id
                .map(|r| format!("/receipts/{r}"))
                .unwrap_or_default(),
        ])?;
    }
    csv.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}

/// `GET /expenses.csv`: every expense the filters select, newest first.
pub async fn expenses_csv(
    State(state): State<AppState>,
    page: Customer,
    Query(filters): Query<Values>,
) -> Response {
    let listed = async {
        let wallet = wallet::read_wallet(&state, page.user_id()).await?;
        Ok::<_, ApiError>((
            all_expenses(&state, &page, &filters).await?,
            wallet.currency,
        ))
    };
    let (items, currency) = match listed.await {
        Ok(listed) => listed,
        Err(error) => return page.failed(error),
    };
    let bytes = match csv_of(&items, &currency) {
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

/// The customer's wallet as a page shows it: balance and currency, in the wallet's units.
#[derive(Debug, Serialize)]
struct WalletView {
    balance: String,
    currency: String,
}

/// The customer's wallet row (opening the wallet if it never was) and its view.
async fn wallet_view(
    state: &AppState,
    page: &Customer,
) -> Result<(wallet_views::WalletRow, WalletView), ApiError> {
    let row = wallet::read_wallet(state, page.user_id()).await?;
    let view = WalletView {
        balance: wallet_views::amount_text(row.balance_milli, row.minor_units),
        currency: row.currency.clone(),
    };
    Ok((row, view))
}

async fn top_up_page(state: &AppState, page: &Customer, refused: Option<Refused>) -> Response {
    let (_, wallet) = match wallet_view(state, page).await {
        Ok(wallet) => wallet,
        Err(error) => return page.failed(error),
    };
    let mut context = page.context("Top up");
    context.insert("wallet", &wallet);
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
    let result = submit(&values, &[], |body| {
        wallet::top_up(State(state.clone()), page.user.clone(), body)
    })
    .await;
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
    let read = async {
        let (row, _) = wallet_view(state, page).await?;
        let today = state.now().date_naive();
        let limits =
            wallet_views::limit_statuses(&state.database, page.user_id().0, row.minor_units, today)
                .await?;
        Ok::<_, ApiError>((row.currency, limits))
    };
    let (currency, limits) = match read.await {
        Ok(read) => read,
        Err(error) => return page.failed(error),
    };
    let mut context = page.context("Limits");
    context.insert("currency", &currency);
    context.insert("limits", &limit_bars(&limits));
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
    let result = submit(&values, &[("first_day", 255)], |body| {
        wallet::set_limit(State(state.clone()), page.user.clone(), body)
    })
    .await;
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
    let result = submit(&values, &[("first_day", 255)], |body| {
        wallet::remove_limit(State(state.clone()), page.user.clone(), body)
    })
    .await;
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
    let read = async {
        let (row, wallet) = wallet_view(state, page).await?;
        let goals =
            wallet_views::savings_goals(&state.database, page.user_id().0, row.minor_units).await?;
        Ok::<_, ApiError>((wallet, goals))
    };
    let (wallet, goals) = match read.await {
        Ok(read) => read,
        Err(error) => return page.failed(error),
    };
    let mut context = page.context("Savings goals");
    context.insert("wallet", &wallet);
    context.insert("goals", &goals);
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
    let result = submit(&values, &[], |body| {
        wallet::create_goal(State(state.clone()), page.user.clone(), body)
    })
    .await;
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
    let result = async {
        let goal = ApiPath(path_id(&goal)?);
        let (state, user) = (State(state.clone()), page.user.clone());
        match direction.as_str() {
            "contribute" => {
                submit(&values, &[], |body| {
                    wallet::contribute(state, user, goal, body)
                })
                .await
            }
            "withdraw" => {
                submit(&values, &[], |body| {
                    wallet::withdraw(state, user, goal, body)
                })
                .await
            }
            _ => Err(ApiError::NotFound),
        }
    }
    .await;
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
    let result = submit(&values, &[], |body| {
        schedule::set_reminder(State(state.clone()), page.user.clone(), body)
    })
    .await;
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
    let result = submit(&values, &[("remind_days_before", 65_535)], |body| {
        schedule::schedule_payment(State(state.clone()), page.user.clone(), body)
    })
    .await;
    page.settle(
        result,
        "payment",
        values,
        ("/reminders", "Recurring payment scheduled."),
        |refused| reminders_page(&state, &page, Some(refused)),
    )
    .await
}

/// What a cancel button stops.
#[derive(Debug, Clone, Copy)]
enum Series {
    Reminder,
    Payment,
}

async fn cancel(state: &AppState, page: &Customer, series: Series, id: &str) -> Response {
    let result = async {
        let id = ApiPath(path_id(id)?);
        let (state, user) = (State(state.clone()), page.user.clone());
        match series {
            Series::Reminder => schedule::cancel_reminder(state, user, id).await,
            Series::Payment => schedule::cancel_payment(state, user, id).await,
        }
    }
    .await;
    let notice = match series {
        Series::Reminder => "Reminder cancelled.",
        Series::Payment => "Recurring payment cancelled.",
    };
    page.settle(
        result,
        "cancel",
        Values::new(),
        ("/reminders", notice),
        |refused| reminders_page(state, page, Some(refused)),
    )
    .await
}

/// `POST /reminders/{id}/cancel`.
pub async fn cancel_reminder(
    State(state): State<AppState>,
    page: Customer,
    Path(reminder): Path<String>,
) -> Response {
    cancel(&state, &page, Series::Reminder, &reminder).await
}

/// `POST /recurring-payments/{id}/cancel`.
pub async fn cancel_payment(
    State(state): State<AppState>,
    page: Customer,
    Path(payment): Path<String>,
) -> Response {
    cancel(&state, &page, Series::Payment, &payment).await
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
