//! Shared plumbing of the text value types (`Email`, `Category`, ...): each is a newtype
//! over a `String` built only by its `parse`, and converts the same way.

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
