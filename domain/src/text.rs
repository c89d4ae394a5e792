//! Shared plumbing of the text value types (`Email`, `Category`, ...): each is a newtype
//! over a `String` built only by its `parse`, checks its text the same way, and converts the
//! same way.

use crate::user::InvalidValue;

/// Trimmed, not empty, at most `max` characters.
pub(crate) fn trimmed(raw: &str, max: usize) -> Result<&str, InvalidValue> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(InvalidValue::Empty);
    }
    if value.chars().count() > max {
        return Err(InvalidValue::TooLong { max });
    }
    Ok(value)
}

/// Trimmed, `min` to `max` characters, no control characters.
pub(crate) fn bounded_text(raw: &str, min: usize, max: usize) -> Result<String, InvalidValue> {
    let value = raw.trim();
    let length = value.chars().count();
    if length < min {
        return Err(if length == 0 {
            InvalidValue::Empty
        } else {
            InvalidValue::TooShort { min }
        });
    }
    if length > max {
        return Err(InvalidValue::TooLong { max });
    }
    if value.chars().any(char::is_control) {
        return Err(InvalidValue::Malformed(
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// Trimmed free text of at most `max` characters (may be empty): line breaks and tabs are
/// allowed, other control characters are not.
pub(crate) fn free_text(raw: &str, max: usize) -> Result<&str, InvalidValue> {
    let value = raw.trim();
    if value.chars().count() > max {
        return Err(InvalidValue::TooLong { max });
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(InvalidValue::Malformed(
            "must not contain control characters",
        ));
    }
    Ok(value)
}

/// `TryFrom<String>` through `parse` (so serde refuses bad values too), `From<T> for
/// String`, and `Display`, for newtypes `T(String)` with `T::parse(&str) -> Result<T,
/// InvalidValue>`.
macro_rules! string_conversions {
    ($($type:ident),*) => {$(
        impl TryFrom<String> for $type {
            type Error = $crate::user::InvalidValue;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }
        impl From<$type> for String {
            fn from(value: $type) -> Self {
                value.0
            }
        }
        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
pub(crate) use string_conversions;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::fuzz::{check_text_rules, config, text_around};

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn bounded_text_is_the_trimmed_text_when_its_length_fits_and_it_holds_no_control_characters(
            raw in text_around(12),
            min in 1..=4_usize,
        ) {
            let answer = bounded_text(&raw, min, 12);

            check_text_rules(&raw, (min, 12), &[], answer.as_deref())?;
        }

        #[test]
        fn free_text_is_the_trimmed_text_when_short_enough_with_only_line_breaks_and_tabs(
            raw in text_around(12),
        ) {
            let answer = free_text(&raw, 12);

            check_text_rules(&raw, (0, 12), &['\n', '\r', '\t'], answer.as_ref().map(|v| *v))?;
        }

        #[test]
        fn trimmed_text_is_refused_only_when_empty_or_too_long(raw in text_around(12)) {
            let answer = trimmed(&raw, 12);

            // Control characters are the caller's business here: allow them all.
            let all_controls: Vec<char> = raw.chars().filter(|c| c.is_control()).collect();
            check_text_rules(&raw, (1, 12), &all_controls, answer.as_ref().map(|v| *v))?;
        }
    }
}
