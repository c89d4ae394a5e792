//! Reminders and recurring payments over the JSON API. Dates travel as `YYYY-MM-DD`,
//! amounts as strings in the wallet's currency.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::money::Money;
use domain::schedule::{
    Cadence, RemindBefore, ReminderTitle, Schedule, ScheduleCommand, ScheduleRejection, first_due,
};
use domain::wallet::{Category, Description};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::command_error;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, ApiPath, Authorized, Customers};
use super::fields::{Fields, day_within, optional};
use super::wallet_of;
use crate::commands::{CommandContext, CommandError};
use crate::schedule_views::{self, PaymentView, ReminderView};
use crate::state::AppState;

type Customer = Authorized<Customers>;

/// Runs a command on the customer's schedule.
async fn execute(
    state: &AppState,
    customer: &Customer,
    command: ScheduleCommand,
) -> Result<(), ApiError> {
    let owner = customer.user.user_id;
    let context = CommandContext::new(format!("user:{owner}"), state.now());
    state
        .commands
        .execute::<Schedule>(owner.0, &command, &context)
        .await
        .map(drop)
        .map_err(|error| match error {
            CommandError::Rejected(ScheduleRejection::Unknown) => ApiError::NotFound,
            other => command_error(other),
        })
}

/// `GET /api/v1/reminders`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reminders {
    items: Vec<ReminderView>,
}

/// The customer's reminders: running ones first, by next date.
///
/// # Errors
/// 401/403 for anyone but a customer.
#[utoipa::path(get, path = "/reminders", tag = "reminders", security(("bearer" = [])),
    responses((status = 200, description = "The reminders.", body = Reminders)))]
pub async fn list_reminders(
    State(state): State<AppState>,
    customer: Customer,
) -> Result<Json<Reminders>, ApiError> {
    let items = schedule_views::reminders(&state.database, customer.user.user_id.0).await?;
    Ok(Json(Reminders { items }))
}

/// `POST /api/v1/reminders`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReminderBody {
    /// 1 to 200 characters.
    pub(crate) title: String,
    /// `YYYY-MM-DD`, today or later.
    pub(crate) due: String,
    /// `weekly`, `monthly` or `yearly`; absent for once.
    pub(crate) repeat: Option<String>,
}

/// The new reminder's id.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReminderCreated {
    reminder_id: Uuid,
}

/// Sets a reminder, mailed on its date (and again on each repeat). 201 with its id.
///
/// # Errors
/// 422 naming bad fields; 401/403 for anyone but a customer.
#[utoipa::path(post, path = "/reminders", tag = "reminders", security(("bearer" = [])),
    request_body = ReminderBody,
    responses(
        (status = 201, description = "Set.", body = ReminderCreated),
        (status = 422, description = "Fields that break the rules, each named.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn set_reminder(
    State(state): State<AppState>,
    customer: Customer,
    ApiJson(body): ApiJson<ReminderBody>,
) -> Result<(StatusCode, Json<ReminderCreated>), ApiError> {
    let today = state.now().date_naive();
    let mut fields = Fields::default();
    let title = fields.check("title", ReminderTitle::parse(&body.title));
    let due = fields.check("due", day_within(&body.due, |d| first_due(d, today)));
    let repeat = optional(
        &mut fields,
        "repeat",
        body.repeat.as_deref(),
        Cadence::parse,
    );
    let ((title, due), repeat) = fields.finish(title.zip(due).zip(repeat))?;
    let reminder_id = crate::repeatable_ids::new_id();
    let command = ScheduleCommand::SetReminder {
        reminder_id,
        title,
        due,
        repeat,
    };
    execute(&state, &customer, command).await?;
    Ok((StatusCode::CREATED, Json(ReminderCreated { reminder_id })))
}

/// Stops a reminder. 204; 404 for no such reminder; 422 when it has ended already.
///
/// # Errors
/// As above; 401/403 for anyone but a customer.
#[utoipa::path(post, path = "/reminders/{reminder_id}/cancel", tag = "reminders", security(("bearer" = [])),
    params(("reminder_id" = Uuid, Path, description = "The reminder.")),
    responses(
        (status = 204, description = "Cancelled."),
        (status = 404, description = "No such reminder.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "It has ended already.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel_reminder(
    State(state): State<AppState>,
    customer: Customer,
    ApiPath(reminder_id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    execute(
        &state,
        &customer,
        ScheduleCommand::CancelReminder { reminder_id },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/recurring-payments`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Payments {
    items: Vec<PaymentView>,
}

/// The customer's recurring payments: running ones first, by next date.
///
/// # Errors
/// 401/403 for anyone but a customer.
#[utoipa::path(get, path = "/recurring-payments", tag = "reminders", security(("bearer" = [])),
    responses((status = 200, description = "The recurring payments.", body = Payments)))]
pub async fn list_payments(
    State(state): State<AppState>,
    customer: Customer,
) -> Result<Json<Payments>, ApiError> {
    let items = schedule_views::payments(&state.database, customer.user.user_id.0).await?;
    Ok(Json(Payments { items }))
}

/// `POST /api/v1/recurring-payments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentBody {
    /// Each occurrence's amount, in the wallet's currency.
    pub(crate) amount: String,
    /// The expenses' category.
    pub(crate) category: String,
    /// The expenses' description (may be empty).
    #[serde(default)]
    pub(crate) description: String,
    /// `weekly`, `monthly` or `yearly`.
    pub(crate) cadence: String,
    /// The first date, `YYYY-MM-DD`, today or later.
    pub(crate) first_due: String,
    /// Days before each date to mail a reminder, 0 to 30 (default 3).
    pub(crate) remind_days_before: Option<u16>,
}

/// The new payment's id.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentCreated {
    payment_id: Uuid,
}

/// Schedules a recurring payment: each date, an expense is recorded in the wallet (it
/// counts against limits like any other), with a reminder mailed some days before. 201.
///
/// # Errors
/// 422 naming bad fields; 401/403 for anyone but a customer.
#[utoipa::path(post, path = "/recurring-payments", tag = "reminders", security(("bearer" = [])),
    request_body = PaymentBody,
    responses(
        (status = 201, description = "Scheduled.", body = PaymentCreated),
        (status = 422, description = "Fields that break the rules, each named.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn schedule_payment(
    State(state): State<AppState>,
    customer: Customer,
    ApiJson(body): ApiJson<PaymentBody>,
) -> Result<(StatusCode, Json<PaymentCreated>), ApiError> {
    let currency = wallet_of(&state, customer.user.user_id).await?;
    let today = state.now().date_naive();
    let mut fields = Fields::default();
    let amount = fields.check("amount", Money::parse(&body.amount, currency));
    let category = fields.check("category", Category::parse(&body.category));
    let description = fields.check("description", Description::parse(&body.description));
    let cadence = fields.check("cadence", Cadence::parse(&body.cadence));
    let first = fields.check(
        "first_due",
        day_within(&body.first_due, |d| first_due(d, today)),
    );
    let remind = fields.check(
        "remind_days_before",
        RemindBefore::new(body.remind_days_before.unwrap_or(3)),
    );
    let (((((amount, category), description), cadence), first_due), remind_before) = fields
        .finish(
            amount
                .zip(category)
                .zip(description)
                .zip(cadence)
                .zip(first)
                .zip(remind),
        )?;
    let payment_id = crate::repeatable_ids::new_id();
    let command = ScheduleCommand::ScheduleRecurringPayment {
        payment_id,
        amount,
        category,
        description,
        cadence,
        first_due,
        remind_before,
    };
    execute(&state, &customer, command).await?;
    Ok((StatusCode::CREATED, Json(PaymentCreated { payment_id })))
}

/// Stops a recurring payment; what was recorded stays. 204; 404 for no such payment; 422
/// when it was cancelled already.
///
/// # Errors
/// As above; 401/403 for anyone but a customer.
#[utoipa::path(post, path = "/recurring-payments/{payment_id}/cancel", tag = "reminders", security(("bearer" = [])),
    params(("payment_id" = Uuid, Path, description = "The payment.")),
    responses(
        (status = 204, description = "Cancelled."),
        (status = 404, description = "No such payment.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Cancelled already.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel_payment(
    State(state): State<AppState>,
    customer: Customer,
    ApiPath(payment_id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    execute(
        &state,
        &customer,
        ScheduleCommand::CancelRecurringPayment { payment_id },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
