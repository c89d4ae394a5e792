//! Parsing a request's fields and query parameters, naming every one that fails.

use chrono::{Datelike, NaiveDate};

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

/// A day written `YYYY-MM-DD`, in the years 0001 to 9999: chrono would also read a year
/// 0000 or a signed one (`-0001`, `+10000`), which PostgreSQL's `date` refuses (ADR 0031):
/// a filter with one would fail there instead of being refused.
pub(crate) fn day(raw: &str) -> Result<NaiveDate, &'static str> {
    const NOT_A_DAY: &str = "must be a date YYYY-MM-DD, in the years 0001 to 9999";
    let raw = raw.trim();
    if !raw.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(NOT_A_DAY);
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .filter(|day| (1..=9999).contains(&day.year()))
        .ok_or(NOT_A_DAY)
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
