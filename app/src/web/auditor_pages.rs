//! The auditor's pages.

use axum::response::Response;

use super::page::Page;
use crate::http::extract::Auditors;

/// `GET /audit`: the auditor's start page.
pub async fn home(page: Page<Auditors>) -> Response {
    let context = page.context("Audit");
    page.render("audit.html", &context)
}
