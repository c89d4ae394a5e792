//! The customer's wallet over the JSON API: top-ups, expenses, voids and limits. Amounts
//! travel as strings (`"12.50"`) in the wallet's currency, dates as `YYYY-MM-DD`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::money::{Currency, Money};
use domain::user::UserId;
use domain::wallet::{
    Category, Description, LimitKey, OpenWallet, Period, Wallet, WalletCommand, WalletRejection,
    spent_on,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::command_error;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, ApiPath, ApiQuery, Authorized, Customers};
use super::fields::{Fields, day, day_within, optional};
use super::openapi::PeriodSchema;
use crate::commands::{CommandContext, CommandError};
use crate::state::AppState;
use crate::wallet_views::{
    self, Cursor, DEFAULT_PAGE, Dashboard, ExpenseFilter, ExpensePage, MAX_PAGE, VoidedFilter,
    WalletRow, expense_page,
};

type Customer = Authorized<Customers>;

/// The currency of the customer's wallet, opened now in the default currency if it never
/// was.
pub(crate) async fn wallet_of(state: &AppState, owner: UserId) -> Result<Currency, ApiError> {
    let open = |wallet: &Wallet| match wallet {
        Wallet::Open(wallet) => Some(wallet.currency),
        Wallet::Unopened => None,
    };
    if let Some(currency) = state.commands.peek::<Wallet, _>(owner.0, open).await? {
        return Ok(currency);
    }
    let command = WalletCommand::Open {
        owner,
        currency: state.default_currency,
    };
    // Only when not opened yet: its id must not shift the ids the request draws after it.
    let context = CommandContext::once_only(format!("user:{owner}"), state.now());
    match run(state, owner, &command, &context, |wallet| wallet.currency).await {
        // Opened by a concurrent request, or another instance, meanwhile.
        Err(CommandError::Rejected(WalletRejection::AlreadyOpen)) => state
            .commands
            .peek::<Wallet, _>(owner.0, open)
            .await?
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("an open wallet is unopened"))),
        done => done.map_err(wallet_error),
    }
}

fn wallet_error(error: CommandError<WalletRejection>) -> ApiError {
    match error {
        CommandError::Rejected(
            WalletRejection::UnknownExpense
            | WalletRejection::UnknownGoal
            | WalletRejection::UnknownLimit,
        ) => ApiError::NotFound,
        other => command_error(other),
    }
}

/// Runs a command on `owner`'s wallet, answering with what `view` sees of it afterwards.
async fn run<R>(
    state: &AppState,
    owner: UserId,
    command: &WalletCommand,
    context: &CommandContext,
    view: impl Fn(&OpenWallet) -> R,
) -> Result<R, CommandError<WalletRejection>> {
    let done =
        state
            .commands
            .execute_then::<Wallet, _>(owner.0, command, context, Vec::new(), |wallet| match wallet
            {
                Wallet::Open(wallet) => Some(view(wallet)),
                Wallet::Unopened => None,
            })
            .await?;
    done.state
        .ok_or_else(|| CommandError::Failed(anyhow::anyhow!("a command left a wallet unopened")))
}

async fn execute<R>(
    state: &AppState,
    customer: &Customer,
    command: WalletCommand,
    view: impl Fn(&OpenWallet) -> R,
) -> Result<R, ApiError> {
    let owner = customer.user.user_id;
    let context = CommandContext::new(format!("user:{owner}"), state.now());
    run(state, owner, &command, &context, view)
        .await
        .map_err(wallet_error)
}

/// The balance after a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct Balance {
    balance: String,
    currency: String,
}

fn balance_of(wallet: &OpenWallet) -> Balance {
    let mut balance: Decimal = wallet.balance;
    balance.rescale(wallet.currency.minor_units());
    Balance {
        balance: balance.to_string(),
        currency: wallet.currency.code().to_owned(),
    }
}

/// `GET /api/v1/wallet`: the balance (which may be negative) and currency.
///
/// # Errors
/// 401/403 for anyone but a customer.
#[utoipa::path(get, path = "/wallet", tag = "wallet", security(("bearer" = [])),
    responses((status = 200, description = "Balance and currency.", body = Balance)))]
pub async fn show(
    State(state): State<AppState>,
    customer: Customer,
) -> Result<Json<Balance>, ApiError> {
    let wallet = read_wallet(&state, customer.user.user_id).await?;
    Ok(Json(Balance {
        balance: wallet_views::amount_text(wallet.balance_milli, wallet.minor_units),
        currency: wallet.currency,
    }))
}

/// The customer's wallet from the read model, opening it first if it never was.
pub(crate) async fn read_wallet(state: &AppState, owner: UserId) -> Result<WalletRow, ApiError> {
    if let Some(wallet) = wallet_views::wallet(&state.database, owner.0).await? {
        return Ok(wallet);
    }
    wallet_of(state, owner).await?;
    // Opened just now: the read model shows it once it has applied that write.
    state.read_models.show_acknowledged_writes().await;
    wallet_views::wallet(&state.database, owner.0)
        .await?
        .ok_or_else(|| ApiError::Unavailable("The wallet is being prepared; try again.".into()))
}

/// `POST /api/v1/wallet/top-ups`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpBody {
    pub(crate) amount: String,
    #[serde(default)]
    pub(crate) note: Option<String>,
}

/// Adds money. 201 with the new balance.
///
/// # Errors
/// 422 naming bad fields; 401/403 for anyone but a customer.
#[utoipa::path(post, path = "/wallet/top-ups", tag = "wallet", security(("bearer" = [])),
    request_body = TopUpBody,
    responses(
        (status = 201, description = "The balance after the top-up.", body = Balance),
        (status = 422, description = "Fields that break the rules, each named.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn top_up(
    State(state): State<AppState>,
    customer: Customer,
    ApiJson(body): ApiJson<TopUpBody>,
) -> Result<(StatusCode, Json<Balance>), ApiError> {
    let currency = wallet_of(&state, customer.user.user_id).await?;
    let mut fields = Fields::default();
    let amount = fields.check("amount", Money::parse(&body.amount, currency));
    let note = fields.check(
        "note",
        Description::parse(body.note.as_deref().unwrap_or("")),
    );
    let (amount, note) = fields.finish(amount.zip(note))?;
    let balance = execute(
        &state,
        &customer,
        WalletCommand::TopUp { amount, note },
        balance_of,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(balance)))
}

/// `POST /api/v1/expenses`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpenseBody {
    pub(crate) amount: String,
    pub(crate) category: String,
    #[serde(default)]
    pub(crate) description: String,
    pub(crate) spent_on: String,
    #[serde(default)]
    pub(crate) receipt_id: Option<Uuid>,
}

/// The new expense's id.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recorded {
    expense_id: Uuid,
}

/// Records an expense. 201 with its id.
///
/// # Errors
/// 422 naming bad fields; 401/403 for anyone but a customer.
#[utoipa::path(post, path = "/expenses", tag = "expenses", security(("bearer" = [])),
    request_body = ExpenseBody,
    responses(
        (status = 201, description = "Recorded.", body = Recorded),
        (status = 422, description = "Fields that break the rules, each named.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn record_expense(
    State(state): State<AppState>,
    customer: Customer,
    ApiJson(body): ApiJson<ExpenseBody>,
) -> Result<(StatusCode, Json<Recorded>), ApiError> {
    let currency = wallet_of(&state, customer.user.user_id).await?;
    let mut fields = Fields::default();
    let amount = fields.check("amount", Money::parse(&body.amount, currency));
    let category = fields.check("category", Category::parse(&body.category));
    let description = fields.check("description", Description::parse(&body.description));
    let today = state.now().date_naive();
    let day = fields.check(
        "spent_on",
        day_within(&body.spent_on, |d| spent_on(d, today)),
    );
    if let Some(receipt_id) = body.receipt_id {
        let receipt = state
            .receipts
            .find(receipt_id)
            .await
            .map_err(anyhow::Error::from)?;
        if receipt.is_none_or(|r| r.owner != customer.user.user_id.0) {
            fields.check::<(), _>("receipt_id", Err("is not a receipt of yours"));
        }
    }
    let (((amount, category), description), spent_on) =
        fields.finish(amount.zip(category).zip(description).zip(day))?;
    let expense_id = crate::repeatable_ids::new_id();
    let command = WalletCommand::RecordExpense {
        expense_id,
        amount,
        category,
        description,
        spent_on,
        receipt_id: body.receipt_id,
    };
    execute(&state, &customer, command, |_| ()).await?;
    Ok((StatusCode::CREATED, Json(Recorded { expense_id })))
}

/// `GET /api/v1/expenses`: every parameter is optional. `from`/`to` are days
/// (inclusive), `category` matches without regard to case, `status` is `all` (default),
/// `live` or `voided`, `limit` is 1 to 200 (default 50), `cursor` is an earlier page's
/// `next_cursor`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExpenseQuery {
    /// Spent on or after this day, `YYYY-MM-DD`.
    pub(crate) from: Option<String>,
    /// Spent on or before this day, `YYYY-MM-DD`.
    pub(crate) to: Option<String>,
    /// One category; case does not matter.
    pub(crate) category: Option<String>,
    /// `all` (default), `live` or `voided`.
    pub(crate) status: Option<String>,
    /// 1 to 200; 50 when absent.
    pub(crate) limit: Option<String>,
    /// The `next_cursor` of the page before.
    pub(crate) cursor: Option<String>,
}

/// Lists the customer's expenses, newest first, a page at a time.
///
/// # Errors
/// 422 naming bad parameters (also `from` after `to`); 400 for unknown ones; 401/403 for
/// anyone but a customer.
#[utoipa::path(get, path = "/expenses", tag = "expenses", security(("bearer" = [])),
    params(ExpenseQuery),
    responses(
        (status = 200, description = "A page of expenses, newest first.", body = ExpensePage),
        (status = 422, description = "Parameters that do not parse, each named.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_expenses(
    State(state): State<AppState>,
    customer: Customer,
    ApiQuery(query): ApiQuery<ExpenseQuery>,
) -> Result<Json<ExpensePage>, ApiError> {
    let mut fields = Fields::default();
    let from = optional(&mut fields, "from", query.from.as_deref(), day);
    let to = optional(&mut fields, "to", query.to.as_deref(), day);
    let category = optional(
        &mut fields,
        "category",
        query.category.as_deref(),
        Category::parse,
    );
    let voided = optional(
        &mut fields,
        "status",
        query.status.as_deref(),
        |raw| match raw {
            "all" => Ok(VoidedFilter::All),
            "live" => Ok(VoidedFilter::Live),
            "voided" => Ok(VoidedFilter::Voided),
            _ => Err("must be all, live or voided"),
        },
    );
    let limit = optional(&mut fields, "limit", query.limit.as_deref(), |raw| {
        raw.parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or("must be a whole number from 1 to 200")
    });
    let cursor = optional(
        &mut fields,
        "cursor",
        query.cursor.as_deref(),
        Cursor::parse,
    );
    if let (Some(Some(from)), Some(Some(to))) = (from, to)
        && from > to
    {
        fields.check::<(), _>("to", Err("must not be before from"));
    }
    let (((((from, to), category), voided), limit), cursor) = fields.finish(
        from.zip(to)
            .zip(category)
            .zip(voided)
            .zip(limit)
            .zip(cursor),
    )?;
    let filter = ExpenseFilter {
        from,
        to,
        category,
        voided: voided.unwrap_or_default(),
    };
    let owner = customer.user.user_id;
    let wallet = read_wallet(&state, owner).await?;
    let page = expense_page(
        &state.database,
        owner.0,
        wallet.minor_units,
        &filter,
        cursor,
        limit.unwrap_or(DEFAULT_PAGE),
    )
    .await?;
    Ok(Json(page))
}

/// The customer's dashboard: balance, this month's spending, limits, recent expenses and
/// savings goals.
///
/// # Errors
/// 401/403 for anyone but a customer.
#[utoipa::path(get, path = "/dashboard", tag = "wallet", security(("bearer" = [])),
    responses((status = 200, description = "The customer's overview.", body = Dashboard)))]
pub async fn dashboard(
    State(state): State<AppState>,
    customer: Customer,
) -> Result<Json<Dashboard>, ApiError> {
    dashboard_of(&state, customer.user.user_id).await.map(Json)
}

/// The customer's dashboard from the read model, opening the wallet first if it never was.
pub(crate) async fn dashboard_of(state: &AppState, owner: UserId) -> Result<Dashboard, ApiError> {
    let today = state.now().date_naive();
    if let Some(board) = wallet_views::dashboard(&state.database, owner.0, today).await? {
        return Ok(board);
    }
    wallet_of(state, owner).await?;
    state.read_models.show_acknowledged_writes().await;
    wallet_views::dashboard(&state.database, owner.0, today)
        .await?
        .ok_or_else(|| ApiError::Unavailable("The wallet is being prepared; try again.".into()))
}

/// `POST /api/v1/expenses/{id}/void`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidBody {
    pub(crate) reason: String,
}

/// Takes back an expense. 204; 404 for an expense that is not the customer's.
///
/// # Errors
/// As above; 422 when already voided; 401/403 for anyone but a customer.
#[utoipa::path(post, path = "/expenses/{expense_id}/void", tag = "expenses", security(("bearer" = [])),
    params(("expense_id" = Uuid, Path, description = "The expense.")),
    request_body = VoidBody,
    responses(
        (status = 204, description = "Voided; the balance is restored."),
        (status = 404, description = "No such expense of this customer.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Already voided, or a bad reason.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn void_expense(
    State(state): State<AppState>,
    customer: Customer,
    ApiPath(expense_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<VoidBody>,
) -> Result<StatusCode, ApiError> {
    let mut fields = Fields::default();
    let reason = fields.check("reason", Description::parse(&body.reason));
    let reason = fields.finish(reason)?;
    wallet_of(&state, customer.user.user_id).await?;
    execute(
        &state,
        &customer,
        WalletCommand::VoidExpense { expense_id, reason },
        |_| (),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/limits`: `period` is `weekly` or `monthly` (with `first_day`, 1 to 28,
/// default 1); no `category` means all spending.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitBody {
    pub(crate) period: String,
    pub(crate) amount: String,
    #[serde(default)]
    pub(crate) category: Option<String>,
    #[serde(default)]
    pub(crate) first_day: Option<u8>,
}

/// The limit as set.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitView {
    #[schema(value_type = PeriodSchema)]
    period: Period,
    category: Option<String>,
    amount: String,
}

/// Sets or changes a limit. 200 with the limit.
///
/// # Errors
/// 422 naming bad fields; 401/403 for anyone but a customer.
#[utoipa::path(put, path = "/limits", tag = "limits", security(("bearer" = [])),
    request_body = LimitBody,
    responses(
        (status = 200, description = "The limit as set.", body = LimitView),
        (status = 422, description = "Fields that break the rules, each named.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_limit(
    State(state): State<AppState>,
    customer: Customer,
    ApiJson(body): ApiJson<LimitBody>,
) -> Result<Json<LimitView>, ApiError> {
    let currency = wallet_of(&state, customer.user.user_id).await?;
    let mut fields = Fields::default();
    let key = limit_key(
        &mut fields,
        &body.period,
        body.first_day,
        body.category.as_deref(),
    );
    let amount = fields.check("amount", Money::parse(&body.amount, currency));
    let (key, amount) = fields.finish(key.zip(amount))?;
    execute(
        &state,
        &customer,
        WalletCommand::SetLimit {
            key: key.clone(),
            amount,
        },
        |_| (),
    )
    .await?;
    Ok(Json(LimitView {
        period: key.period,
        category: key.category.map(|c| c.to_string()),
        amount: amount.amount().to_string(),
    }))
}

/// `DELETE /api/v1/limits`: the period (and category) of the limit to remove.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitKeyBody {
    pub(crate) period: String,
    #[serde(default)]
    pub(crate) category: Option<String>,
    #[serde(default)]
    pub(crate) first_day: Option<u8>,
}

fn limit_key(
    fields: &mut Fields,
    period: &str,
    first_day: Option<u8>,
    category: Option<&str>,
) -> Option<LimitKey> {
    let period = fields.check(
        "period",
        match period.trim() {
            "weekly" if first_day.is_none() => Ok(Period::Weekly),
            "weekly" => Err("a weekly limit has no first_day".to_owned()),
            "monthly" => Period::monthly(first_day.unwrap_or(1)).map_err(|e| e.to_string()),
            _ => Err("must be weekly or monthly".to_owned()),
        },
    );
    let category = match category.map(str::trim).filter(|c| !c.is_empty()) {
        Some(category) => fields
            .check("category", Category::parse(category))
            .map(Some),
        None => Some(None),
    };
    Some(LimitKey {
        period: period?,
        category: category?,
    })
}

/// Removes a limit. 204; 404 when there is no such limit.
///
/// # Errors
/// As above; 422 naming bad fields; 401/403 for anyone but a customer.
#[utoipa::path(delete, path = "/limits", tag = "limits", security(("bearer" = [])),
    request_body = LimitKeyBody,
    responses(
        (status = 204, description = "Removed."),
        (status = 404, description = "No such limit.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Fields that break the rules, each named.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove_limit(
    State(state): State<AppState>,
    customer: Customer,
    ApiJson(body): ApiJson<LimitKeyBody>,
) -> Result<StatusCode, ApiError> {
    let mut fields = Fields::default();
    let key = limit_key(
        &mut fields,
        &body.period,
        body.first_day,
        body.category.as_deref(),
    );
    let key = fields.finish(key)?;
    wallet_of(&state, customer.user.user_id).await?;
    execute(
        &state,
        &customer,
        WalletCommand::RemoveLimit { key },
        |_| (),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/savings-goals`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GoalBody {
    pub(crate) name: String,
    pub(crate) target: String,
    #[serde(default)]
    pub(crate) due: Option<String>,
}

/// The new goal's id.
#[derive(Debug, Serialize, ToSchema)]
pub struct GoalCreated {
    goal_id: Uuid,
}

/// Creates a savings goal. 201 with its id.
///
/// # Errors
/// 422 naming bad fields; 401/403 for anyone but a customer.
#[utoipa::path(post, path = "/savings-goals", tag = "savings", security(("bearer" = [])),
    request_body = GoalBody,
    responses(
        (status = 201, description = "Created.", body = GoalCreated),
        (status = 422, description = "Fields that break the rules, each named.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_goal(
    State(state): State<AppState>,
    customer: Customer,
    ApiJson(body): ApiJson<GoalBody>,
) -> Result<(StatusCode, Json<GoalCreated>), ApiError> {
    let currency = wallet_of(&state, customer.user.user_id).await?;
    let mut fields = Fields::default();
    let name = fields.check("name", domain::wallet::GoalName::parse(&body.name));
    let target = fields.check("target", Money::parse(&body.target, currency));
    let due = match body.due.as_deref() {
        Some(due) => fields
            .check(
                "due",
                day_within(due, |d| spent_on(d, state.now().date_naive())),
            )
            .map(Some),
        None => Some(None),
    };
    let ((name, target), due) = fields.finish(name.zip(target).zip(due))?;
    let goal_id = crate::repeatable_ids::new_id();
    execute(
        &state,
        &customer,
        WalletCommand::CreateSavingsGoal {
            goal_id,
            name,
            target,
            due,
        },
        |_| (),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(GoalCreated { goal_id })))
}

/// `POST /api/v1/savings-goals/{id}/contributions` and `.../withdrawals`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SavingsBody {
    pub(crate) amount: String,
}

/// A goal's savings after a move, and the spendable balance.
#[derive(Debug, Serialize, ToSchema)]
pub struct SavingsMoved {
    saved: String,
    balance: String,
}

async fn move_savings(
    state: &AppState,
    customer: &Customer,
    goal_id: Uuid,
    amount: &str,
    contribute: bool,
) -> Result<Json<SavingsMoved>, ApiError> {
    let currency = wallet_of(state, customer.user.user_id).await?;
    let mut fields = Fields::default();
    let amount = fields.check("amount", Money::parse(amount, currency));
    let amount = fields.finish(amount)?;
    let command = if contribute {
        WalletCommand::ContributeToSavings { goal_id, amount }
    } else {
        WalletCommand::WithdrawFromSavings { goal_id, amount }
    };
    let moved = execute(state, customer, command, |wallet| SavingsMoved {
        saved: wallet
            .goals
            .get(&goal_id)
            .map_or(Decimal::ZERO, |goal| goal.saved)
            .to_string(),
        balance: balance_of(wallet).balance,
    })
    .await?;
    Ok(Json(moved))
}

/// Moves money from the spendable balance into a goal. 200; 404 for no such goal; 422 when
/// the balance cannot fund it.
///
/// # Errors
/// As above; 401/403 for anyone but a customer.
#[utoipa::path(post, path = "/savings-goals/{goal_id}/contributions", tag = "savings", security(("bearer" = [])),
    params(("goal_id" = Uuid, Path, description = "The goal.")),
    request_body = SavingsBody,
    responses(
        (status = 200, description = "Moved into the goal.", body = SavingsMoved),
        (status = 404, description = "No such goal.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The balance cannot fund it, or a bad amount.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn contribute(
    State(state): State<AppState>,
    customer: Customer,
    ApiPath(goal_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<SavingsBody>,
) -> Result<Json<SavingsMoved>, ApiError> {
    move_savings(&state, &customer, goal_id, &body.amount, true).await
}

/// Moves money from a goal back to the spendable balance. 200; 404 for no such goal; 422
/// when the goal holds less.
///
/// # Errors
/// As above; 401/403 for anyone but a customer.
#[utoipa::path(post, path = "/savings-goals/{goal_id}/withdrawals", tag = "savings", security(("bearer" = [])),
    params(("goal_id" = Uuid, Path, description = "The goal.")),
    request_body = SavingsBody,
    responses(
        (status = 200, description = "Moved back to the balance.", body = SavingsMoved),
        (status = 404, description = "No such goal.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The goal holds less, or a bad amount.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn withdraw(
    State(state): State<AppState>,
    customer: Customer,
    ApiPath(goal_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<SavingsBody>,
) -> Result<Json<SavingsMoved>, ApiError> {
    move_savings(&state, &customer, goal_id, &body.amount, false).await
}
