//! The admin's pages: people (create agents and auditors, find anyone, deactivate and
//! reactivate), the read models (position, head, lag, status, a rebuild button whose
//! progress follows live) and parked mail (see, retry).

use axum::Form;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::Response;

use super::forms::{Values, given, path_id, submit};
use super::page::{Page, Refused};
use crate::http::admin;
use crate::http::error::ApiError;
use crate::http::extract::{Admins, ApiPath, ApiQuery};
use crate::state::AppState;

type Admin = Page<Admins>;

async fn people_page(
    state: &AppState,
    page: &Admin,
    filters: Values,
    refused: Option<Refused>,
) -> Response {
    let filters = &filters;
    let query = admin::DirectoryQuery {
        role: given(filters.get("role")),
        status: given(filters.get("status")),
        q: given(filters.get("q")),
        limit: None,
        cursor: given(filters.get("cursor")),
    };
    let mut refused = refused;
    let listed = admin::directory(State(state.clone()), page.user.clone(), ApiQuery(query))
        .await
        .map(|Json(people)| people);
    let people = match page.listed(listed, filters, &mut refused) {
        Ok(people) => people,
        Err(response) => return response,
    };
    let mut context = page.context("People");
    context.insert("people", &people);
    context.insert("filters", filters);
    context.insert("me", &page.user_id().0);
    page.render_with("admin_people.html", context, refused)
}

/// `GET /admin`: people.
pub async fn people(
    State(state): State<AppState>,
    page: Admin,
    Query(filters): Query<Values>,
) -> Response {
    people_page(&state, &page, filters, None).await
}

/// `POST /admin/agents` and `POST /admin/auditors`.
pub async fn create(
    State(state): State<AppState>,
    page: Admin,
    Path(kind): Path<String>,
    Form(values): Form<Values>,
) -> Response {
    let (api, user) = (State(state.clone()), page.user.clone());
    let result = match kind.as_str() {
        "agents" => submit(&values, &[], |body| admin::create_agent(api, user, body))
            .await
            .map(drop),
        "auditors" => submit(&values, &[], |body| admin::create_auditor(api, user, body))
            .await
            .map(drop),
        _ => Err(ApiError::NotFound),
    };
    let (form, notice) = if kind == "agents" {
        ("agent", "Agent created.")
    } else {
        ("auditor", "Auditor created.")
    };
    page.settle(result, form, values, ("/admin", notice), |refused| {
        people_page(&state, &page, Values::new(), Some(refused))
    })
    .await
}

/// `POST /admin/people/{id}/deactivate` and `.../reactivate`.
pub async fn activation(
    State(state): State<AppState>,
    page: Admin,
    Path((person, change)): Path<(String, String)>,
) -> Response {
    let result = async {
        let person = ApiPath(path_id(&person)?);
        let (state, user) = (State(state.clone()), page.user.clone());
        match change.as_str() {
            "deactivate" => admin::deactivate(state, user, person).await,
            "reactivate" => admin::reactivate(state, user, person).await,
            _ => Err(ApiError::NotFound),
        }
    }
    .await;
    let notice = if change == "deactivate" {
        "Account deactivated; its sessions have ended."
    } else {
        "Account reactivated."
    };
    page.settle(
        result,
        "activation",
        Values::new(),
        ("/admin", notice),
        |refused| people_page(&state, &page, Values::new(), Some(refused)),
    )
    .await
}

async fn read_models_page(state: &AppState, page: &Admin, refused: Option<Refused>) -> Response {
    match admin::projections(State(state.clone()), page.user.clone()).await {
        Ok(Json(list)) => {
            let mut context = page.context("Read models");
            context.insert("rebuilding", &list.items.iter().any(|p| p.rebuilding));
            context.insert("models", &list);
            page.render_with("admin_read_models.html", context, refused)
        }
        Err(error) => page.failed(error),
    }
}

/// `GET /admin/read-models`.
pub async fn read_models(State(state): State<AppState>, page: Admin) -> Response {
    read_models_page(&state, &page, None).await
}

/// `POST /admin/read-models/{name}/rebuild`.
pub async fn rebuild(
    State(state): State<AppState>,
    page: Admin,
    Path(name): Path<String>,
) -> Response {
    let result = admin::rebuild_projection(
        State(state.clone()),
        page.user.clone(),
        ApiPath(name.clone()),
    )
    .await;
    let notice = format!(
        "Rebuilding {name}: the live read model keeps serving until the new one is swapped in."
    );
    page.settle(
        result,
        "rebuild",
        Values::new(),
        ("/admin/read-models", &notice),
        |refused| read_models_page(&state, &page, Some(refused)),
    )
    .await
}

async fn mail_page(state: &AppState, page: &Admin, refused: Option<Refused>) -> Response {
    match admin::parked_mail(State(state.clone()), page.user.clone()).await {
        Ok(Json(list)) => {
            let mut context = page.context("Parked mail");
            context.insert("mail", &list);
            page.render_with("admin_mail.html", context, refused)
        }
        Err(error) => page.failed(error),
    }
}

/// `GET /admin/mail`.
pub async fn mail(State(state): State<AppState>, page: Admin) -> Response {
    mail_page(&state, &page, None).await
}

/// `POST /admin/mail/{id}/retry`.
pub async fn retry_mail(
    State(state): State<AppState>,
    page: Admin,
    Path(message): Path<String>,
) -> Response {
    let result = async {
        let message = ApiPath(path_id(&message)?);
        admin::retry_mail(State(state.clone()), page.user.clone(), message).await
    }
    .await;
    page.settle(
        result,
        "retry",
        Values::new(),
        ("/admin/mail", "The mail goes out again."),
        |refused| mail_page(&state, &page, Some(refused)),
    )
    .await
}
