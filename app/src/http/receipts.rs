//! Receipts over the JSON API: a customer uploads one (multipart, field `file`) and names
//! its id when recording an expense; it is shown to its owner, to the agents who work the
//! owner's tickets, and to auditors.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::user::Role;
use infrastructure::receipts::{ReceiptError, StoredReceipt};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, FieldError, Problem};
use super::extract::{ApiPath, Authorized, CurrentUser, Customers};
use crate::state::AppState;
use crate::ticket_views;

/// The stored receipt.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptStored {
    /// Name it as `receipt_id` when recording the expense.
    pub receipt_id: Uuid,
    /// `image/jpeg`, `image/png` or `application/pdf`, as the file's content says.
    pub content_type: &'static str,
    /// Its size in bytes.
    pub size: u64,
}

/// Keeps a file as the customer's receipt, refusing what is not a JPEG, PNG or PDF.
///
/// # Errors
/// 422 naming `file` for an empty, too large or wrong kind of file; a failure otherwise.
pub async fn keep(state: &AppState, owner: Uuid, file: Bytes) -> Result<ReceiptStored, ApiError> {
    match state.receipts.store(owner, file, state.now()).await {
        Ok(StoredReceipt {
            receipt_id,
            kind,
            size,
            ..
        }) => Ok(ReceiptStored {
            receipt_id,
            content_type: kind.content_type(),
            size,
        }),
        Err(
            refused @ (ReceiptError::Empty | ReceiptError::TooLarge | ReceiptError::NotAllowed),
        ) => Err(ApiError::Validation(vec![FieldError::new(
            "file",
            refused.to_string(),
        )])),
        Err(other) => Err(ApiError::Internal(other.into())),
    }
}

/// `POST /api/v1/receipts`: a multipart form whose `file` field is the receipt. 201.
///
/// # Errors
/// 422 naming `file` when it is missing, empty, larger than 5 MB or not a JPEG, PNG or PDF
/// (judged by its content); 401/403 for anyone but a customer.
#[utoipa::path(post, path = "/receipts", tag = "expenses", security(("bearer" = [])),
    request_body(content_type = "multipart/form-data", description = "`file`: the receipt, JPEG, PNG or PDF, at most 5 MB."),
    responses(
        (status = 201, description = "Kept; name its id when recording the expense.", body = ReceiptStored),
        (status = 422, description = "No file, or not one that is taken.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn upload(
    State(state): State<AppState>,
    customer: Authorized<Customers>,
    request: Request,
) -> Result<(StatusCode, Json<ReceiptStored>), ApiError> {
    // Not an extractor argument: its rejection would be plain text, not a problem.
    let mut form = Multipart::from_request(request, &state)
        .await
        .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let missing = || ApiError::Validation(vec![FieldError::new("file", "must be sent")]);
    let unreadable =
        |e: axum::extract::multipart::MultipartError| ApiError::BadRequest(e.body_text());
    while let Some(field) = form.next_field().await.map_err(unreadable)? {
        if field.name() == Some("file") {
            let bytes = field.bytes().await.map_err(unreadable)?;
            let stored = keep(&state, customer.user.user_id.0, bytes).await?;
            return Ok((StatusCode::CREATED, Json(stored)));
        }
    }
    Err(missing())
}

/// Whether `viewer` may see `receipt`: its owner, auditors, and the staff who work (or
/// worked) a ticket of its owner.
///
/// # Errors
/// When the tickets read model cannot be read.
pub async fn may_see(
    state: &AppState,
    viewer: &CurrentUser,
    receipt: &StoredReceipt,
) -> Result<bool, ApiError> {
    Ok(match viewer.role {
        Role::Customer => viewer.user_id.0 == receipt.owner,
        Role::Auditor => true,
        Role::Agent | Role::Admin => {
            ticket_views::works_for(&state.database, viewer.user_id.0, receipt.owner).await?
        }
    })
}

/// A receipt for `viewer`, as a download that cannot run anything in the browser; 404 for
/// one that does not exist or that they may not see alike.
///
/// # Errors
/// 404 as above; a failure of the store.
pub async fn show(
    state: &AppState,
    viewer: &CurrentUser,
    receipt_id: Uuid,
) -> Result<Response, ApiError> {
    let Some(receipt) = state
        .receipts
        .find(receipt_id)
        .await
        .map_err(anyhow::Error::from)?
    else {
        return Err(ApiError::NotFound);
    };
    if !may_see(state, viewer, &receipt).await? {
        return Err(ApiError::NotFound);
    }
    let bytes = state
        .receipts
        .read(&receipt)
        .await
        .map_err(anyhow::Error::from)?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(receipt.kind.content_type()),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    // Shown inline, but sandboxed: a crafted PDF or image runs nothing on this site.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; img-src 'self'; plugin-types application/pdf; sandbox",
        ),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    Ok(response)
}

/// `GET /api/v1/receipts/{id}`: the file.
///
/// # Errors
/// 404 for a receipt that does not exist or is not the caller's to see; 401 when not
/// signed in.
#[utoipa::path(get, path = "/receipts/{receipt_id}", tag = "receipts", security(("bearer" = [])),
    params(("receipt_id" = Uuid, Path, description = "The receipt.")),
    responses(
        (status = 200, description = "The file: image/jpeg, image/png or application/pdf.", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 404, description = "No such receipt you may see.", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn download(
    State(state): State<AppState>,
    viewer: CurrentUser,
    ApiPath(receipt_id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    show(&state, &viewer, receipt_id).await
}
