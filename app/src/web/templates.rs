//! The pages' templates, compiled into the binary so that it runs from any directory.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

const TEMPLATES: [(&str, &str); 7] = [
    ("base.html", include_str!("../../templates/pages/base.html")),
    (
        "login.html",
        include_str!("../../templates/pages/login.html"),
    ),
    (
        "signup.html",
        include_str!("../../templates/pages/signup.html"),
    ),
    ("home.html", include_str!("../../templates/pages/home.html")),
    (
        "problem.html",
        include_str!("../../templates/pages/problem.html"),
    ),
    (
        "forgot_password.html",
        include_str!("../../templates/pages/forgot_password.html"),
    ),
    (
        "reset_password.html",
        include_str!("../../templates/pages/reset_password.html"),
    ),
];

/// The parsed templates; HTML is escaped in every value.
#[derive(Debug)]
pub struct PageTemplates(tera::Tera);

impl PageTemplates {
    /// Parses the embedded templates.
    ///
    /// # Errors
    /// When one does not parse.
    pub fn load() -> anyhow::Result<Self> {
        let mut tera = tera::Tera::default();
        tera.add_raw_templates(TEMPLATES)?;
        Ok(Self(tera))
    }

    /// `name` rendered with `context`, answered with `status`; a rendering failure is logged
    /// and answered with a plain 500.
    pub fn page(&self, status: StatusCode, name: &str, context: &tera::Context) -> Response {
        match self.0.render(name, context) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(error) => {
                tracing::error!(
                    error = format!("{error:?}"),
                    name,
                    "a page failed to render"
                );
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on our side; it has been logged.",
                )
                    .into_response()
            }
        }
    }

    /// A page that says what went wrong.
    pub fn problem(&self, status: StatusCode, detail: &str, signed_in: bool) -> Response {
        let mut context = tera::Context::new();
        context.insert("title", status.canonical_reason().unwrap_or("Error"));
        context.insert("detail", detail);
        context.insert("signed_in", &signed_in);
        self.page(status, "problem.html", &context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_renders_and_escapes_what_it_is_given() {
        let templates = PageTemplates::load().expect("the templates parse");
        let mut context = tera::Context::new();
        context.insert("signed_in", &true);
        context.insert("name", "<script>alert(1)</script>");
        context.insert("role", "customer");
        context.insert("message", "");
        context.insert("email", "");
        context.insert("next", "");
        context.insert(
            "form",
            &serde_json::json!({ "name": "", "email": "", "mobile": "" }),
        );
        context.insert("errors", &serde_json::json!({}));
        context.insert("title", "Not Found");
        context.insert("detail", "x");
        context.insert("sent", &false);
        context.insert("error", "");
        context.insert("token", "abc");
        for (name, _) in TEMPLATES.iter().filter(|(name, _)| *name != "base.html") {
            let html = templates
                .0
                .render(name, &context)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert!(!html.contains("<script>alert"), "{name} escapes values");
        }
    }
}
