//! Money: an exact decimal amount in an ISO 4217 currency. Never floats.

use std::fmt;

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
#[serde(try_from = "UncheckedMoney")]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

/// Money as it arrives in JSON, before [`Money::new`] checks it: serde refuses what `new`
/// refuses (negative, oversized, too precise), so no `Money` breaks its promises.
#[derive(Deserialize)]
struct UncheckedMoney {
    amount: Decimal,
    currency: Currency,
}

impl TryFrom<UncheckedMoney> for Money {
    type Error = InvalidAmount;
    fn try_from(unchecked: UncheckedMoney) -> Result<Self, InvalidAmount> {
        Self::new(unchecked.amount, unchecked.currency)
    }
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
        let negative = text.starts_with('-');
        let whole = whole.trim_start_matches('0');
        let fraction = fraction.trim_end_matches('0');
        if whole.len() > 13 {
            // Larger than 10^13 whatever follows.
            return Err(if negative {
                InvalidAmount::NotPositive
            } else {
                InvalidAmount::TooLarge
            });
        }
        if fraction.len() > 15 {
            // 13 whole digits and 15 decimals are the 28 digits a `Decimal` holds. More would
            // be rounded rather than refused: 1234567890.00000000000000000001 would become a
            // whole number.
            return Err(InvalidAmount::TooManyDecimals {
                max: currency.minor_units(),
                currency: currency.code().to_owned(),
            });
        }
        // Built from the significant digits, which fit: exact, never rounded.
        let digits: i128 = format!("0{whole}{fraction}")
            .parse()
            .map_err(|_| InvalidAmount::NotANumber)?;
        let scale = u32::try_from(fraction.len()).map_err(|_| InvalidAmount::NotANumber)?;
        let value =
            Decimal::try_from_i128_with_scale(if negative { -digits } else { digits }, scale)
                .map_err(|_| InvalidAmount::NotANumber)?;
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
        assert!(
            Money::parse("1234567890.00000000000000000001", inr()).is_err(),
            "decimals past what a Decimal holds are refused, not rounded away"
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

    mod fuzz {
        use proptest::prelude::*;
        use serde_json::{Value, json};

        use super::super::*;
        use crate::fuzz::{any_json, config, text_around};

        fn any_currency() -> impl Strategy<Value = Currency> {
            prop::sample::select(CURRENCIES)
                .prop_map(|(code, _)| Currency::parse(code).expect("listed"))
        }

        /// Digits: random, or all zeros but the last or the first, since leading and
        /// trailing zeros are where a parser counts and rounds.
        fn digits(lengths: impl Strategy<Value = usize>) -> impl Strategy<Value = String> {
            lengths.prop_flat_map(|n| {
                let random = prop::collection::vec(prop::char::range('0', '9'), n)
                    .prop_map(String::from_iter);
                let one = prop::char::range('0', '9');
                prop_oneof![
                    random,
                    one.clone()
                        .prop_map(move |d| format!("{}{d}", "0".repeat(n.saturating_sub(1)))),
                    one.prop_map(move |d| format!("{d}{}", "0".repeat(n.saturating_sub(1)))),
                ]
            })
        }

        /// The pieces of a plain decimal: sign, whole digits and, when a point is written,
        /// the decimals. Lengths cluster on the limits: 13 whole digits (10^12), 20 decimals
        /// and the 28 digits a `Decimal` holds.
        fn decimal_pieces() -> impl Strategy<Value = (&'static str, String, Option<String>)> {
            let whole = prop_oneof![0..=3_usize, 11..=15_usize, 26..=42_usize];
            let decimals = prop_oneof![0..=4_usize, 14..=22_usize, 27..=40_usize];
            (
                prop::sample::select(vec!["", "", "-", "+"]),
                digits(whole),
                prop::option::of(digits(decimals)),
            )
        }

        /// Whether a valid `Money` holds what its type promises.
        fn keeps_its_promises(money: &Money) -> bool {
            money.amount() > Decimal::ZERO
                && money.amount() <= Money::MAX
                && money.amount().normalize().scale() <= money.currency().minor_units()
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_text_is_an_amount_that_keeps_its_promises_or_refused(
                text in prop_oneof![any::<String>(), text_around(20)],
                currency in any_currency(),
            ) {
                if let Ok(money) = Money::parse(&text, currency) {
                    prop_assert!(keeps_its_promises(&money), "{text:?} gave {money:?}");
                }
            }

            /// The expected answer is worked out on the digits themselves, not through
            /// `Decimal`, so that rounding or overflow inside the parser shows.
            #[test]
            fn a_plain_decimal_is_accepted_exactly_when_positive_bounded_and_not_too_precise(
                (sign, whole, decimals) in decimal_pieces(),
                padding in prop::sample::select(vec!["", " ", "\t", " \n"]),
                currency in any_currency(),
            ) {
                let text = match &decimals {
                    Some(decimals) => format!("{padding}{sign}{whole}.{decimals}{padding}"),
                    None => format!("{padding}{sign}{whole}{padding}"),
                };

                let parsed = Money::parse(&text, currency);

                let significant_whole = whole.trim_start_matches('0');
                let significant_decimals = decimals.as_deref().unwrap_or("").trim_end_matches('0');
                let not_a_number = whole.is_empty() || decimals.as_deref() == Some("");
                let zero = significant_whole.is_empty() && significant_decimals.is_empty();
                let not_positive = sign == "-" || zero;
                let too_large = significant_whole.len() > 13
                    || (significant_whole.len() == 13
                        && (significant_whole > "1000000000000" || !significant_decimals.is_empty()));
                let too_precise = significant_decimals.len() > currency.minor_units() as usize;
                match parsed {
                    Ok(money) => {
                        let valid = !not_a_number && !not_positive && !too_large && !too_precise;
                        prop_assert!(valid, "{text:?} gave {money:?}");
                        let exact = if significant_decimals.is_empty() {
                            significant_whole.to_owned()
                        } else {
                            let whole = if significant_whole.is_empty() { "0" } else { significant_whole };
                            format!("{whole}.{significant_decimals}")
                        };
                        prop_assert_eq!(money.amount().to_string(), exact, "{:?}", text);
                        prop_assert_eq!(money.currency(), currency);
                    }
                    Err(InvalidAmount::NotANumber) => prop_assert!(not_a_number, "{text:?} is a number"),
                    Err(InvalidAmount::NotPositive) => {
                        prop_assert!(!not_a_number && not_positive, "{text:?} is positive");
                    }
                    Err(InvalidAmount::TooLarge) => {
                        prop_assert!(!not_a_number && too_large, "{text:?} is not too large");
                    }
                    Err(InvalidAmount::TooManyDecimals { max, currency: code }) => {
                        prop_assert!(!not_a_number && too_precise, "{text:?} is not too precise");
                        prop_assert_eq!((max, code.as_str()), (currency.minor_units(), currency.code()));
                    }
                }
            }

            /// A tail of decimals past the currency's precision is refused however far out
            /// it sits, also past the 28 digits a `Decimal` holds, where it could be rounded
            /// away instead.
            #[test]
            fn a_nonzero_decimal_beyond_the_currency_precision_is_refused_however_far_out(
                whole in 0..=1_000_000_000_000_u64,
                zeros in 0..40_usize,
                last in 1..=9_u8,
                currency in any_currency(),
            ) {
                let text = format!("{whole}.{}{last}", "0".repeat(zeros));

                let parsed = Money::parse(&text, currency);

                if zeros < currency.minor_units() as usize {
                    prop_assert!(parsed.is_ok() || whole == 1_000_000_000_000, "{text:?} gave {parsed:?}");
                } else {
                    prop_assert_eq!(
                        parsed,
                        Err(InvalidAmount::TooManyDecimals {
                            max: currency.minor_units(),
                            currency: currency.code().to_owned(),
                        }),
                        "{:?}", text
                    );
                }
            }

            #[test]
            fn every_valid_amount_reads_back_from_its_display_and_its_json(
                currency in any_currency(),
                minor in prop_oneof![Just(1_u64), Just(u64::MAX), any::<u64>(), 1..1_000_u64],
            ) {
                // From one minor unit up to 10^12, in minor units.
                let most = 10_u64.pow(12 + currency.minor_units());
                let minor = 1 + (minor - 1) % most;
                let amount = Decimal::new(i64::try_from(minor).expect("below 10^15"), currency.minor_units());
                let money = Money::new(amount, currency).expect("in range by construction");

                let shown = money.to_string();
                let (number, code) = shown.split_once(' ').expect("amount and code");
                let from_display = Money::parse(number, Currency::parse(code).expect("a code"));
                let json = serde_json::to_string(&money).expect("serialises");
                let from_json: Money = serde_json::from_str(&json).expect("deserialises");

                prop_assert_eq!(from_display, Ok(money));
                prop_assert_eq!(from_json, money);
                prop_assert_eq!(money.amount(), amount);
            }

            /// Money arrives by JSON too; serde must not build one that `new` would refuse.
            #[test]
            fn json_money_is_refused_unless_new_accepts_it(
                json in prop_oneof![
                    (
                        prop_oneof![
                            "[+-]?[0-9]{1,16}(\\.[0-9]{1,6})?".prop_map(Value::String),
                            any::<i64>().prop_map(Value::from),
                            any::<f64>().prop_map(Value::from),
                            any_json(&["amount"]),
                        ],
                        prop_oneof![
                            any_currency().prop_map(|c| Value::String(c.code().to_lowercase())),
                            any_json(&["currency"]),
                        ],
                    ).prop_map(|(amount, currency)| json!({"amount": amount, "currency": currency})),
                    any_json(&["amount", "currency"]),
                ],
            ) {
                if let Ok(money) = serde_json::from_value::<Money>(json.clone()) {
                    prop_assert!(keeps_its_promises(&money), "{json} gave {money:?}");
                    prop_assert_eq!(Money::new(money.amount(), money.currency()), Ok(money));
                }
            }

            #[test]
            fn a_currency_is_a_listed_code_in_any_case_and_padding_or_refused(
                text in prop_oneof![
                    text_around(3),
                    (any_currency(), "[ \t]{0,2}", any::<u8>()).prop_map(|(c, pad, case)| {
                        let code: String = c.code().chars().enumerate()
                            .map(|(i, ch)| if case >> i & 1 == 1 { ch.to_ascii_lowercase() } else { ch })
                            .collect();
                        format!("{pad}{code}{pad}")
                    }),
                ],
            ) {
                let listed = CURRENCIES.iter().any(|(code, _)| *code == text.trim().to_ascii_uppercase());
                match Currency::parse(&text) {
                    Ok(currency) => {
                        prop_assert!(listed, "{text:?}");
                        prop_assert_eq!(Currency::parse(&currency.to_string()), Ok(currency));
                        let json = serde_json::to_value(currency).expect("serialises");
                        let back: Currency = serde_json::from_value(json).expect("deserialises");
                        prop_assert_eq!(back, currency);
                    }
                    Err(UnknownCurrency(_)) => prop_assert!(!listed, "{text:?} is listed"),
                }
            }
        }
    }
}
