//! What admins do over the JSON API: create agents and auditors, deactivate and
//! reactivate them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::user::{Gender, Registrar, Role, UserCommand};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::command_error;
use super::error::{ApiError, Problem};
use super::extract::{Admins, ApiJson, ApiPath, ApiQuery, Authorized};
use super::fields::{Fields, optional};
use crate::accounts::{Erasure, NewAccount, create_account, erase_person, run_on_account};
use crate::commands::CommandContext;
use crate::directory::{self, DirectoryFilter, DirectoryPage, Standing};
use crate::rebuilds::RebuildError;
use crate::state::AppState;

/// `POST /api/v1/admin/agents`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) mobile: String,
    #[schema(value_type = String, example = "female")]
    pub(crate) gender: Gender,
    pub(crate) username: String,
    pub(crate) password: String,
}

/// `POST /api/v1/admin/auditors`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAuditor {
    pub(crate) name: String,
    pub(crate) email: String,
    pub(crate) password: String,
}

/// The new account's id.
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    user_id: Uuid,
}

fn actor(admin: &Authorized<Admins>) -> String {
    format!("user:{}", admin.user.user_id)
}

/// Creates an agent. 201; 409 when the email or username is taken; 422 per bad field.
///
/// # Errors
/// As above; 401/403 for anyone but an admin.
#[utoipa::path(post, path = "/admin/agents", tag = "admin",
    security(("bearer" = [])), request_body = NewAgent,
    responses(
        (status = 201, description = "The agent can sign in.", body = Created),
        (status = 409, description = "The email or username is taken.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Fields that break the rules, each named.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_agent(
    State(state): State<AppState>,
    admin: Authorized<Admins>,
    ApiJson(body): ApiJson<NewAgent>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let fields = NewAccount {
        name: &body.name,
        email: &body.email,
        mobile: Some(&body.mobile),
        gender: Some(body.gender),
        username: Some(&body.username),
        password: &body.password,
    };
    let registrar = Registrar::Admin(admin.user.user_id);
    let user_id = create_account(&state, Role::Agent, &fields, registrar, &actor(&admin)).await?;
    Ok((StatusCode::CREATED, Json(Created { user_id: user_id.0 })))
}

/// Creates an auditor. 201; 409 when the email is taken; 422 per bad field.
///
/// # Errors
/// As above; 401/403 for anyone but an admin.
#[utoipa::path(post, path = "/admin/auditors", tag = "admin",
    security(("bearer" = [])), request_body = NewAuditor,
    responses(
        (status = 201, description = "The auditor can sign in.", body = Created),
        (status = 409, description = "The email is taken.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Fields that break the rules, each named.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_auditor(
    State(state): State<AppState>,
    admin: Authorized<Admins>,
    ApiJson(body): ApiJson<NewAuditor>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let fields = NewAccount {
        name: &body.name,
        email: &body.email,
        password: &body.password,
        ..NewAccount::default()
    };
    let registrar = Registrar::Admin(admin.user.user_id);
    let user_id = create_account(&state, Role::Auditor, &fields, registrar, &actor(&admin)).await?;
    Ok((StatusCode::CREATED, Json(Created { user_id: user_id.0 })))
}

/// Stops an agent or auditor from signing in; their tokens stop working at once. 204;
/// 404 for an unknown account; 422 for customers and admins.
///
/// # Errors
/// As above; 401/403 for anyone but an admin.
#[utoipa::path(post, path = "/admin/users/{user_id}/deactivate", tag = "admin",
    security(("bearer" = [])), params(("user_id" = Uuid, Path, description = "The account.")),
    responses(
        (status = 204, description = "Deactivated; their tokens stop working."),
        (status = 404, description = "No such account.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Customers and admins cannot be deactivated.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn deactivate(
    State(state): State<AppState>,
    admin: Authorized<Admins>,
    ApiPath(user_id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    change_activation(
        &state,
        &admin,
        user_id,
        UserCommand::Deactivate {
            by: admin.user.user_id,
        },
    )
    .await
}

/// Lets a deactivated agent or auditor sign in again. 204.
///
/// # Errors
/// As [`deactivate`].
#[utoipa::path(post, path = "/admin/users/{user_id}/reactivate", tag = "admin",
    security(("bearer" = [])), params(("user_id" = Uuid, Path, description = "The account.")),
    responses(
        (status = 204, description = "They can sign in again."),
        (status = 404, description = "No such account.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The account is not deactivated.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reactivate(
    State(state): State<AppState>,
    admin: Authorized<Admins>,
    ApiPath(user_id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    change_activation(
        &state,
        &admin,
        user_id,
        UserCommand::Reactivate {
            by: admin.user.user_id,
        },
    )
    .await
}

async fn change_activation(
    state: &AppState,
    admin: &Authorized<Admins>,
    user_id: Uuid,
    command: UserCommand,
) -> Result<StatusCode, ApiError> {
    let context = CommandContext::new(actor(admin), state.now());
    let deactivating = matches!(command, UserCommand::Deactivate { .. });
    match run_on_account(state, user_id, &command, &context).await {
        Ok(_) if deactivating => {
            // Every instance then refuses their tokens within a second (an instance that
            // keeps their account decoded would otherwise not learn of it).
            crate::accounts::end_every_sign_in(state, user_id, context.now).await?;
            Ok(StatusCode::NO_CONTENT)
        }
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(crate::commands::CommandError::Rejected(
            domain::user::UserRejection::NotRegistered,
        )) => Err(ApiError::NotFound),
        Err(error) => Err(command_error(error)),
    }
}

/// Erases a person's personal data for good (crypto-shredding): their events stay, their
/// name, email and mobile can never be read again, and they can no longer sign in. 204;
/// 404 for an unknown account; 422 for the admin's own account.
///
/// # Errors
/// As above; 401/403 for anyone but an admin.
#[utoipa::path(post, path = "/admin/users/{user_id}/erase", tag = "admin",
    security(("bearer" = [])), params(("user_id" = Uuid, Path, description = "The person.")),
    responses(
        (status = 204, description = "Their personal data can never be read again."),
        (status = 404, description = "No such account.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An admin cannot erase their own account.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Erased, but the old copy of the key is still in the database log; erase again to wipe it.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn erase(
    State(state): State<AppState>,
    admin: Authorized<Admins>,
    ApiPath(user_id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    if user_id == admin.user.user_id.0 {
        return Err(ApiError::Rejected(
            "An admin cannot erase their own account.".into(),
        ));
    }
    match erase_person(&state, user_id, Some(admin.user.user_id), &actor(&admin)).await? {
        Erasure::Erased => Ok(StatusCode::NO_CONTENT),
        Erasure::NoSuchPerson => Err(ApiError::NotFound),
        Erasure::NotWipedYet => Err(ApiError::Unavailable(
            "Their personal data can no longer be read and their sign-ins are ended, but the \
             database log still holds the old copy of their key: erase again to wipe it."
                .into(),
        )),
    }
}

/// A mail that kept failing.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParkedMail {
    message_id: Uuid,
    kind: String,
    attempts: u32,
    last_error: Option<String>,
}

/// Parked mail.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParkedMailList {
    items: Vec<ParkedMail>,
}

/// `GET /api/v1/admin/users`: every parameter is optional. `role` is one of `customer`,
/// `agent`, `admin`, `auditor`; `status` is `active`, `deactivated` or `erased`; `q` matches
/// part of the name, email or username in any case; `limit` is 1 to 200 (default 50);
/// `cursor` is an earlier page's `next_cursor`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DirectoryQuery {
    /// One role.
    pub(crate) role: Option<String>,
    /// `active`, `deactivated` or `erased`.
    pub(crate) status: Option<String>,
    /// Part of the name, email or username.
    pub(crate) q: Option<String>,
    /// 1 to 200; 50 when absent.
    pub(crate) limit: Option<String>,
    /// The `next_cursor` of the page before.
    pub(crate) cursor: Option<String>,
}

/// `GET /api/v1/admin/users`: the directory of accounts, newest first, from the `users`
/// read model.
///
/// # Errors
/// 422 naming bad parameters; 400 for unknown ones; 401/403 for anyone but an admin.
#[utoipa::path(get, path = "/admin/users", tag = "admin",
    security(("bearer" = [])), params(DirectoryQuery),
    responses(
        (status = 200, description = "A page of accounts, newest first.", body = DirectoryPage),
        (status = 422, description = "Parameters that do not parse, each named.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn directory(
    State(state): State<AppState>,
    _admin: Authorized<Admins>,
    ApiQuery(query): ApiQuery<DirectoryQuery>,
) -> Result<Json<DirectoryPage>, ApiError> {
    let mut fields = Fields::default();
    let role = optional(&mut fields, "role", query.role.as_deref(), |raw| {
        ["customer", "agent", "admin", "auditor"]
            .into_iter()
            .find(|role| *role == raw)
            .ok_or("must be customer, agent, admin or auditor")
    });
    let standing = optional(
        &mut fields,
        "status",
        query.status.as_deref(),
        |raw| match raw {
            "active" => Ok(Standing::Active),
            "deactivated" => Ok(Standing::Deactivated),
            "erased" => Ok(Standing::Erased),
            _ => Err("must be active, deactivated or erased"),
        },
    );
    let search = optional(&mut fields, "q", query.q.as_deref(), |raw| {
        if raw.chars().count() > 100 {
            Err("must be at most 100 characters")
        } else {
            Ok(raw.to_owned())
        }
    });
    let limit = optional(&mut fields, "limit", query.limit.as_deref(), |raw| {
        raw.parse::<usize>()
            .ok()
            .filter(|n| (1..=directory::MAX_PAGE).contains(n))
            .ok_or("must be a whole number from 1 to 200")
    });
    let cursor = optional(
        &mut fields,
        "cursor",
        query.cursor.as_deref(),
        directory::cursor,
    );
    let ((((role, standing), search), limit), cursor) =
        fields.finish(role.zip(standing).zip(search).zip(limit).zip(cursor))?;
    let filter = DirectoryFilter {
        role,
        standing,
        search,
    };
    let page = directory::page(
        &state.database,
        &state.vault,
        &filter,
        limit.unwrap_or(directory::DEFAULT_PAGE),
        cursor,
    )
    .await?;
    Ok(Json(page))
}

/// `GET /api/v1/admin/mail/parked`: mail that kept failing, newest first.
///
/// # Errors
/// 401/403 for anyone but an admin; 500.
#[utoipa::path(get, path = "/admin/mail/parked", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Mail that kept failing, newest first.", body = ParkedMailList),
    ))]
pub async fn parked_mail(
    State(state): State<AppState>,
    _admin: Authorized<Admins>,
) -> Result<Json<ParkedMailList>, ApiError> {
    let items: Vec<ParkedMail> = state
        .outbox
        .parked()
        .await
        .map_err(anyhow::Error::from)?
        .into_iter()
        .map(|parked| ParkedMail {
            message_id: parked.message_id,
            kind: parked.kind,
            attempts: parked.attempts,
            last_error: parked.last_error,
        })
        .collect();
    Ok(Json(ParkedMailList { items }))
}

/// `POST /api/v1/admin/mail/{id}/retry`: puts a parked mail back in line. 202; 404 when no
/// such mail is parked.
///
/// # Errors
/// As above; 401/403 for anyone but an admin.
#[utoipa::path(post, path = "/admin/mail/{message_id}/retry", tag = "admin",
    security(("bearer" = [])), params(("message_id" = Uuid, Path, description = "The parked mail.")),
    responses(
        (status = 202, description = "Back in line to be sent."),
        (status = 404, description = "No such parked mail.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn retry_mail(
    State(state): State<AppState>,
    _admin: Authorized<Admins>,
    ApiPath(message_id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    if state
        .outbox
        .retry_parked(message_id, state.now())
        .await
        .map_err(anyhow::Error::from)?
    {
        state.mail_wake.notify_one();
        Ok(StatusCode::ACCEPTED)
    } else {
        Err(ApiError::NotFound)
    }
}

/// A read model's standing.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectionView {
    /// The projection's name.
    name: String,
    /// The version of the code that built it.
    version: i64,
    /// The last event it applied.
    position: u64,
    /// The newest event of the log.
    head: u64,
    /// Events it has still to apply.
    behind: u64,
    /// `running`, `failed`, or `paused` (for a moment, while a rebuild compares it with its twin).
    status: &'static str,
    /// Where it stopped, when failed.
    failed_position: Option<u64>,
    /// Why it stopped, when failed.
    error: Option<String>,
    /// A rebuild is under way in this instance.
    pub(crate) rebuilding: bool,
    /// A rebuild under way: the position its twin tables have reached.
    rebuild_position: Option<u64>,
    /// How the last rebuild started on this instance ended.
    last_rebuild: Option<LastRebuild>,
}

/// A finished rebuild.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastRebuild {
    /// Events applied to the rebuilt tables.
    events: u64,
    /// Tables whose rebuilt rows differed from the ones they replaced.
    differing_tables: Vec<String>,
    /// Why it failed; the live tables were then left as they were.
    error: Option<String>,
}

/// Every read model.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectionList {
    pub(crate) items: Vec<ProjectionView>,
}

/// `GET /api/v1/admin/projections`: each read model's position against the log's head, and
/// whether it stopped on an event (with the position and the error).
///
/// # Errors
/// 401/403 for anyone but an admin; 500.
#[utoipa::path(get, path = "/admin/projections", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Each read model's standing.", body = ProjectionList),
    ))]
pub async fn projections(
    State(state): State<AppState>,
    _admin: Authorized<Admins>,
) -> Result<Json<ProjectionList>, ApiError> {
    let head = state.events.head().await.map_err(anyhow::Error::from)?.0;
    let rebuilding = state.rebuilds.running();
    let finished = state.rebuilds.finished();
    let stored = projections::runner::statuses(&state.database).await?;
    // A rebuild's twin checkpoint is `<name>_r<stamp>`: shown as its projection's progress.
    let twin_of = |name: &str, twin: &str| {
        twin.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix("_r"))
            .is_some_and(|stamp| stamp.chars().all(|c| c.is_ascii_digit()) && !stamp.is_empty())
    };
    let known = state.rebuilds.names();
    let items = stored
        .iter()
        .filter(|status| known.contains(&status.name))
        .cloned()
        .map(|status| ProjectionView {
            rebuilding: rebuilding.contains(&status.name),
            last_rebuild: finished.get(&status.name).map(|f| LastRebuild {
                events: f.events,
                differing_tables: f.differing_tables.clone(),
                error: f.error.clone(),
            }),
            rebuild_position: stored
                .iter()
                .find(|twin| twin_of(&status.name, &twin.name))
                .map(|twin| twin.position.0),
            behind: head.saturating_sub(status.position.0),
            name: status.name,
            version: status.version,
            position: status.position.0,
            head,
            status: if status.failure.is_some() {
                "failed"
            } else if status.paused {
                "paused"
            } else {
                "running"
            },
            failed_position: status.failure.as_ref().map(|(at, _)| at.0),
            error: status.failure.map(|(_, error)| error),
        })
        .collect();
    Ok(Json(ProjectionList { items }))
}

/// A rebuild that was started.
#[derive(Debug, Serialize, ToSchema)]
pub struct RebuildStarted {
    /// The read model.
    projection: String,
    /// Where to follow it.
    progress: &'static str,
}

/// `POST /api/v1/admin/projections/{name}/rebuild`: rebuilds a read model from the log
/// beside the live one, which keeps serving, then swaps it in. 202 at once; the progress
/// shows in `GET /api/v1/admin/projections` (`rebuild_position` against `head`).
///
/// # Errors
/// 404 for an unknown read model; 409 while it is being rebuilt; 401/403 for anyone but an
/// admin.
#[utoipa::path(post, path = "/admin/projections/{name}/rebuild", tag = "admin",
    security(("bearer" = [])), params(("name" = String, Path, description = "The read model, e.g. `wallets`.")),
    responses(
        (status = 202, description = "Started.", body = RebuildStarted),
        (status = 404, description = "No such read model.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A rebuild of it is under way.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rebuild_projection(
    State(state): State<AppState>,
    admin: Authorized<Admins>,
    ApiPath(name): ApiPath<String>,
) -> Result<(StatusCode, Json<RebuildStarted>), ApiError> {
    match state.rebuilds.start(&name) {
        Ok(()) => {
            tracing::info!(projection = %name, admin = %admin.user.user_id, "rebuild started");
            Ok((
                StatusCode::ACCEPTED,
                Json(RebuildStarted {
                    projection: name,
                    progress: "/api/v1/admin/projections",
                }),
            ))
        }
        Err(RebuildError::Unknown(_)) => Err(ApiError::NotFound),
        Err(error @ RebuildError::AlreadyRunning(_)) => Err(ApiError::Conflict(error.to_string())),
        Err(RebuildError::Failed(error)) => Err(ApiError::Internal(error)),
    }
}
