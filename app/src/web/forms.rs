//! A posted form becomes the same request body the JSON API takes, so a page and an API
//! client go through one parser and one set of rules.

use std::collections::HashMap;
use std::future::Future;

use axum::body::Bytes;
use axum::extract::{Form, FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::csrf;
use crate::http::error::{ApiError, FieldError};
use crate::http::extract::ApiJson;

/// A form's fields as sent.
pub type Values = HashMap<String, String>;

/// The API body `T` from a form: empty fields count as not sent (so optional fields take
/// their default), the fields named in `numbers` are whole numbers up to the largest given
/// with each, and a required field left empty is named as such.
///
/// # Errors
/// `Validation` naming each field that is missing or not a number; `BadRequest` for a form
/// this product's pages do not send.
pub fn body<T: DeserializeOwned>(values: &Values, numbers: &[(&str, u64)]) -> Result<T, ApiError> {
    let mut object = Map::new();
    let mut problems = Vec::new();
    for (name, value) in values {
        let value = value.trim();
        if name == csrf::FIELD || value.is_empty() {
            continue;
        }
        if let Some((_, largest)) = numbers.iter().find(|(number, _)| number == name) {
            match value.parse::<u64>() {
                Ok(number) if number <= *largest => {
                    object.insert(name.clone(), Value::from(number));
                }
                _ => problems.push(FieldError::new(
                    name.clone(),
                    format!("must be a whole number from 0 to {largest}"),
                )),
            }
        } else {
            object.insert(name.clone(), Value::from(value));
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    serde_json::from_value(Value::Object(object)).map_err(|error| {
        let text = error.to_string();
        match text
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            Some(field) => ApiError::Validation(vec![FieldError::new(field, "must be filled in")]),
            None => match text
                .strip_prefix("invalid value: ")
                .or(text.strip_prefix("unknown variant"))
            {
                Some(_) => ApiError::BadRequest(format!(
                    "A field has a value this form does not offer: {text}."
                )),
                None => {
                    ApiError::BadRequest(format!("This form is not one of this site's: {text}."))
                }
            },
        }
    })
}

/// Runs an API `handler` with the body made from `values` (see [`body`]).
///
/// # Errors
/// The body's problems, or the handler's.
pub async fn submit<B, T, Answer>(
    values: &Values,
    numbers: &[(&str, u64)],
    handler: impl FnOnce(ApiJson<B>) -> Answer,
) -> Result<T, ApiError>
where
    B: DeserializeOwned,
    Answer: Future<Output = Result<T, ApiError>>,
{
    handler(ApiJson(body(values, numbers)?)).await
}

/// An id in a page's path; one that is not an id is simply not found.
///
/// # Errors
/// `NotFound` for anything but a UUID.
pub fn path_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

/// A posted form, url-encoded or multipart (a page with a file field), with its one file
/// if it had a non-empty one.
#[derive(Debug, Default)]
pub struct Posted {
    /// The text fields.
    pub values: Values,
    /// The file's bytes.
    pub file: Option<Bytes>,
}

impl<S: Send + Sync> FromRequest<S> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let unreadable = |detail: String| (StatusCode::BAD_REQUEST, detail).into_response();
        let multipart = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data"));
        if !multipart {
            let Form(values) = Form::<Values>::from_request(request, state)
                .await
                .map_err(|e| unreadable(e.body_text()))?;
            return Ok(Self { values, file: None });
        }
        let mut form = Multipart::from_request(request, state)
            .await
            .map_err(|e| unreadable(e.body_text()))?;
        let mut posted = Self::default();
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| unreadable(e.body_text()))?
        {
            let name = field.name().unwrap_or_default().to_owned();
            if field.file_name().is_some() {
                let bytes = field.bytes().await.map_err(|e| unreadable(e.body_text()))?;
                // A file input left empty still sends a part, with no bytes.
                if !bytes.is_empty() {
                    posted.file = Some(bytes);
                }
            } else {
                let text = field.text().await.map_err(|e| unreadable(e.body_text()))?;
                posted.values.insert(name, text);
            }
        }
        Ok(posted)
    }
}

/// An optional query value: absent when left empty in a filter form.
pub fn given(value: Option<&String>) -> Option<String> {
    value
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Example {
        amount: String,
        #[serde(default)]
        note: Option<String>,
        #[serde(default)]
        day: Option<u8>,
    }

    fn values(pairs: &[(&str, &str)]) -> Values {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn empty_fields_are_absent_and_numbers_are_numbers() {
        let example: Example = body(
            &values(&[
                ("amount", " 12.50 "),
                ("note", ""),
                ("day", "3"),
                ("csrf_token", "t"),
            ]),
            &[("day", 28)],
        )
        .expect("a body");
        assert_eq!(example.amount, "12.50");
        assert_eq!(example.note, None);
        assert_eq!(example.day, Some(3));
    }

    #[test]
    fn a_missing_required_field_and_a_bad_number_are_named() {
        let Err(ApiError::Validation(errors)) = body::<Example>(&values(&[("amount", "")]), &[])
        else {
            panic!("refused");
        };
        assert_eq!(errors, vec![FieldError::new("amount", "must be filled in")]);
        let Err(ApiError::Validation(errors)) =
            body::<Example>(&values(&[("amount", "1"), ("day", "x")]), &[("day", 28)])
        else {
            panic!("refused");
        };
        assert_eq!(
            errors,
            vec![FieldError::new(
                "day",
                "must be a whole number from 0 to 28"
            )]
        );
    }

    #[test]
    fn a_field_no_page_sends_is_a_bad_request() {
        assert!(matches!(
            body::<Example>(&values(&[("amount", "1"), ("admin", "yes")]), &[]),
            Err(ApiError::BadRequest(_))
        ));
    }
}
