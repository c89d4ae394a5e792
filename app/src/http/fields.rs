//! Parsing a request's fields and query parameters, naming every one that fails.

use chrono::NaiveDate;

use super::error::{ApiError, FieldError};

/// Collects field errors while parsing a body.
#[derive(Default)]
pub(crate) struct Fields(Vec<FieldError>);

impl Fields {
    pub(crate) fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        parsed: Result<T, E>,
    ) -> Option<T> {
        parsed
            .map_err(|e| self.0.push(FieldError::new(field, e.to_string())))
            .ok()
    }

    /// The parsed values, or a 422 naming every field that did not parse. `values` is
    /// `Some` exactly when no field failed, so the internal error cannot happen.
    pub(crate) fn finish<T>(self, values: Option<T>) -> Result<T, ApiError> {
        match values {
            Some(values) if self.0.is_empty() => Ok(values),
            _ if !self.0.is_empty() => Err(ApiError::Validation(self.0)),
            _ => Err(ApiError::Internal(anyhow::anyhow!(
                "a field failed without saying why"
            ))),
        }
    }
}

/// A day written `YYYY-MM-DD`.
pub(crate) fn day(raw: &str) -> Result<NaiveDate, &'static str> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| "must be a date YYYY-MM-DD")
}

/// A day written `YYYY-MM-DD` that `rule` (a domain check, e.g. the range it must lie in)
/// accepts.
pub(crate) fn day_within<E: std::fmt::Display>(
    raw: &str,
    rule: impl FnOnce(NaiveDate) -> Result<NaiveDate, E>,
) -> Result<NaiveDate, String> {
    rule(day(raw)?).map_err(|e| e.to_string())
}

/// An optional parameter: absent or blank is `Some(None)`; one that does not parse is
/// noted in `fields` and gives `None`.
pub(crate) fn optional<T, E>(
    fields: &mut Fields,
    field: &str,
    raw: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Option<Option<T>>
where
    E: std::fmt::Display,
{
    match raw.map(str::trim).filter(|raw| !raw.is_empty()) {
        Some(raw) => fields.check(field, parse(raw)).map(Some),
        None => Some(None),
    }
}
