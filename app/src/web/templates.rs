//! The pages' templates, compiled into the binary so that it runs from any directory, and
//! parsed once at start-up so a broken one stops the server before it serves.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use tera::Value;

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../../templates/pages/", $name)))),*]
    };
}

const TEMPLATES: [(&str, &str); 23] = templates![
    "base.html",
    "forms.html",
    "login.html",
    "signup.html",
    "problem.html",
    "forgot_password.html",
    "reset_password.html",
    "dashboard.html",
    "expenses.html",
    "top_up.html",
    "limits.html",
    "savings.html",
    "reminders.html",
    "tickets.html",
    "queue.html",
    "ticket.html",
    "admin_people.html",
    "admin_read_models.html",
    "admin_mail.html",
    "audit.html",
    "audit_state.html",
    "audit_events.html",
    "audit_why.html",
];

/// `{{ seconds | age }}`: "12 min", "5 h", "3 d".
fn age(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let seconds = value.as_i64().unwrap_or(0).max(0);
    Ok(Value::from(match seconds {
        0..3600 => format!("{} min", seconds / 60),
        3600..86_400 => format!("{} h", seconds / 3600),
        _ => format!("{} d", seconds / 86_400),
    }))
}

/// `{{ done | percent(of=total) }}`: a whole percentage, 0 to 100, 0 of nothing.
fn percent(value: &Value, args: &HashMap<String, Value>) -> tera::Result<Value> {
    let done = value.as_u64().unwrap_or(0);
    let of = args.get("of").and_then(Value::as_u64).unwrap_or(0);
    Ok(Value::from(
        (done.min(of) * 100).checked_div(of).unwrap_or(0),
    ))
}

/// `{{ instant | when }}`: an RFC 3339 instant as "2026-11-21 14:05" (UTC).
fn when(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let text = value.as_str().unwrap_or_default();
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|instant| {
            Value::from(
                instant
                    .with_timezone(&chrono::Utc)
                    .format("%Y-%m-%d %H:%M")
                    .to_string(),
            )
        })
        .map_err(|_| tera::Error::msg(format!("{text:?} is not an RFC 3339 instant")))
}

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
        tera.register_filter("age", age);
        tera.register_filter("percent", percent);
        tera.register_filter("when", when);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        PageTemplates::load().expect("the templates parse");
    }

    #[test]
    fn ages_and_percentages_read_well() {
        let none = HashMap::new();
        assert_eq!(
            age(&Value::from(59), &none).ok(),
            Some(Value::from("0 min"))
        );
        assert_eq!(
            age(&Value::from(7200), &none).ok(),
            Some(Value::from("2 h"))
        );
        assert_eq!(
            age(&Value::from(3 * 86_400 + 5), &none).ok(),
            Some(Value::from("3 d"))
        );
        assert_eq!(
            when(&Value::from("2026-11-21T14:05:09.5+00:00"), &none).ok(),
            Some(Value::from("2026-11-21 14:05"))
        );
        let of = |n: u64| HashMap::from([("of".to_owned(), Value::from(n))]);
        assert_eq!(
            percent(&Value::from(50), &of(200)).ok(),
            Some(Value::from(25))
        );
        assert_eq!(percent(&Value::from(5), &of(0)).ok(), Some(Value::from(0)));
        assert_eq!(
            percent(&Value::from(500), &of(200)).ok(),
            Some(Value::from(100))
        );
    }
}
