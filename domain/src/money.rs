//! Money: an exact decimal amount in an ISO 4217 currency. Never floats.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An ISO 4217 currency and the number of decimals its amounts may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency {
    code: [u8; 3],
    minor_units: u8,
}

/// ISO 4217 codes this product accepts, with their minor units (decimals).
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("BDT", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EGP", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("LKR", 2),
    ("MAD", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("NGN", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PEN", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("QAR", 2),
    ("RON", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TND", 3),
    ("TRY", 2),
    ("TWD", 2),
    ("UAH", 2),
    ("USD", 2),
    ("VND", 0),
    ("ZAR", 2),
];

/// A currency code that is not one of [`CURRENCIES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a supported ISO 4217 currency code")]
pub struct UnknownCurrency(pub String);

impl Currency {
    /// Parses a three-letter code, in any case.
    ///
    /// # Errors
    /// [`UnknownCurrency`] for anything else.
    pub fn parse(code: &str) -> Result<Self, UnknownCurrency> {
        let upper = code.trim().to_ascii_uppercase();
        CURRENCIES
            .iter()
            .find(|(known, _)| *known == upper)
            .and_then(|(known, minor_units)| {
                let code: [u8; 3] = known.as_bytes().try_into().ok()?;
                Some(Self {
                    code,
                    minor_units: *minor_units,
                })
            })
            .ok_or(UnknownCurrency(upper))
    }

    /// The code, e.g. `INR`.
    #[must_use]
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).unwrap_or("???")
    }

    /// Decimals an amount may have: 2 for INR, 0 for JPY, 3 for KWD.
    #[must_use]
    pub fn minor_units(&self) -> u32 {
        u32::from(self.minor_units)
    }
}

impl TryFrom<String> for Currency {
    type Error = UnknownCurrency;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.code().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAmount {
    /// Not a decimal number (exponents, spaces inside, letters...).
    #[error("must be a decimal number such as 12.50")]
    NotANumber,
    /// Zero or negative where a positive amount is needed.
    #[error("must be more than zero")]
    NotPositive,
    /// More decimals than the currency has.
    #[error("may have at most {max} decimals in {currency}")]
    TooManyDecimals {
        /// The currency's minor units.
        max: u32,
        /// The currency.
        currency: String,
    },
    /// Above the product's ceiling.
    #[error("must be at most 1000000000000")]
    TooLarge,
}

/// A positive amount of money in a currency, with no more decimals than the currency has
/// and at most 10^12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// The largest amount accepted.
    pub const MAX: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0);

    /// Parses a positive amount written as a plain decimal (`"12.50"`).
    ///
    /// # Errors
    /// [`InvalidAmount`] saying what is wrong.
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, InvalidAmount> {
        let text = amount.trim();
        let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let digits = |part: &str| part.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty()
            || !digits(whole)
            || !digits(fraction)
            || (unsigned.contains('.') && fraction.is_empty())
        {
            return Err(InvalidAmount::NotANumber);
        }
        if whole.trim_start_matches('0').len() > 13 {
            // Larger than 10^13 whatever follows; also keeps the parse below from overflowing.
            return Err(if text.starts_with('-') {
                InvalidAmount::NotPositive
            } else {
                InvalidAmount::TooLarge
            });
        }
        if fraction.trim_end_matches('0').len() > 20 {
            return Err(InvalidAmount::TooManyDecimals {
                max: currency.minor_units(),
                currency: currency.code().to_owned(),
            });
        }
        let value = Decimal::from_str(text).map_err(|_| InvalidAmount::NotANumber)?;
        Self::new(value, currency)
    }

    /// Checks a decimal amount.
    ///
    /// # Errors
    /// [`InvalidAmount`] saying what is wrong.
    pub fn new(amount: Decimal, currency: Currency) -> Result<Self, InvalidAmount> {
        if amount <= Decimal::ZERO {
            return Err(InvalidAmount::NotPositive);
        }
        if amount > Self::MAX {
            return Err(InvalidAmount::TooLarge);
        }
        let normalized = amount.normalize();
        if normalized.scale() > currency.minor_units() {
            return Err(InvalidAmount::TooManyDecimals {
                max: currency.minor_units(),
                currency: currency.code().to_owned(),
            });
        }
        Ok(Self {
            amount: normalized,
            currency,
        })
    }

    /// The amount.
    #[must_use]
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The currency.
    #[must_use]
    pub fn currency(&self) -> Currency {
        self.currency
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.amount;
        shown.rescale(self.currency.minor_units());
        write!(f, "{shown} {}", self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inr() -> Currency {
        Currency::parse("INR").expect("known")
    }

    #[test]
    fn amounts_are_exact_and_keep_no_more_decimals_than_their_currency() {
        let money = Money::parse("12.50", inr()).expect("valid");
        assert_eq!(money.amount(), Decimal::new(125, 1));
        assert_eq!(money.to_string(), "12.50 INR");
        assert_eq!(
            Money::parse("0.001", inr()),
            Err(InvalidAmount::TooManyDecimals {
                max: 2,
                currency: "INR".into()
            })
        );
        assert!(Money::parse("100", Currency::parse("jpy").expect("known")).is_ok());
        assert!(Money::parse("100.5", Currency::parse("JPY").expect("known")).is_err());
        assert!(Money::parse("1.125", Currency::parse("KWD").expect("known")).is_ok());
        assert!(
            Money::parse("12.500", inr()).is_ok(),
            "trailing zeros are not decimals"
        );
    }

    #[test]
    fn amounts_must_be_positive_plain_and_bounded() {
        assert_eq!(Money::parse("0", inr()), Err(InvalidAmount::NotPositive));
        assert_eq!(Money::parse("-5", inr()), Err(InvalidAmount::NotPositive));
        for bad in [
            "", "abc", "1e3", "12,50", "1 000", "NaN", "0x10", "∞", ".5", "5.", "1.2.3", "--1",
        ] {
            assert_eq!(
                Money::parse(bad, inr()),
                Err(InvalidAmount::NotANumber),
                "{bad:?}"
            );
        }
        assert!(Money::parse("1000000000000", inr()).is_ok());
        assert_eq!(
            Money::parse("1000000000000.01", inr()),
            Err(InvalidAmount::TooLarge)
        );
        assert_eq!(
            Money::parse(&"9".repeat(39), inr()),
            Err(InvalidAmount::TooLarge)
        );
    }

    #[test]
    fn currencies_are_iso_codes() {
        assert_eq!(Currency::parse(" usd ").expect("known").code(), "USD");
        assert_eq!(Currency::parse("XYZ"), Err(UnknownCurrency("XYZ".into())));
        let json =
            serde_json::to_string(&Money::parse("3.5", inr()).expect("valid")).expect("json");
        assert_eq!(json, r#"{"amount":"3.5","currency":"INR"}"#);
    }
}
