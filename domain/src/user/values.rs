//! The value types of a person's account. Each is built by `parse`, which trims what should
//! be trimmed and refuses what cannot be right, so a value that exists is valid.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::text::{bounded_text, trimmed};

/// Why a piece of personal data was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidValue {
    /// Nothing was given (or only spaces).
    #[error("must not be empty")]
    Empty,
    /// Longer than allowed.
    #[error("must be at most {max} characters")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// Shorter than allowed.
    #[error("must be at least {min} characters")]
    TooShort {
        /// The limit.
        min: usize,
    },
    /// Not of the expected form; the text says which form.
    #[error("{0}")]
    Malformed(&'static str),
}

/// An email address as the person typed it (trimmed). Two addresses are the same account
/// when their [`Email::normalized`] forms are equal: case never matters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// The longest address accepted (RFC 5321's path limit).
    pub const MAX_LEN: usize = 254;

    /// Parses an address: one `@`, a local part of at most 64 bytes, a domain with a
    /// dot, no spaces or control characters.
    ///
    /// # Errors
    /// [`InvalidValue`] saying what is wrong.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let value = trimmed(raw, Self::MAX_LEN)?;
        let malformed = InvalidValue::Malformed("must look like name@example.com");
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(malformed);
        }
        let Some((local, domain)) = value.split_once('@') else {
            return Err(malformed);
        };
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(malformed);
        }
        Ok(Self(value.to_owned()))
    }

    /// The address as typed.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form that decides uniqueness and login: lower case.
    #[must_use]
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A person's name as they want to be addressed: 1 to 100 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonName(String);

impl PersonName {
    /// The longest name accepted.
    pub const MAX_LEN: usize = 100;

    /// # Errors
    /// [`InvalidValue`] when empty, too long or holding control characters.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        bounded_text(raw, 1, Self::MAX_LEN).map(Self)
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A mobile number in international form: an optional `+` and 7 to 15 digits; spaces,
/// dashes, dots and brackets typed for readability are dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Mobile(String);

impl Mobile {
    /// # Errors
    /// [`InvalidValue`] when empty or not a plausible phone number.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let value = trimmed(raw, 32)?;
        let (plus, rest) = match value.strip_prefix('+') {
            Some(rest) => ("+", rest),
            None => ("", value),
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => {
                    return Err(InvalidValue::Malformed(
                        "must be a phone number such as +91 98765 43210",
                    ));
                }
            }
        }
        if !(7..=15).contains(&digits.len()) {
            return Err(InvalidValue::Malformed("must have 7 to 15 digits"));
        }
        Ok(Self(format!("{plus}{digits}")))
    }

    /// The number, digits only (with a leading `+` when given).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An agent's login name: 3 to 32 characters of `a-z`, `0-9`, `.`, `_` and `-`, stored in
/// lower case so that logins ignore case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    /// # Errors
    /// [`InvalidValue`] when too short, too long or holding other characters.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let value = trimmed(raw, 32)?.to_lowercase();
        if value.chars().count() < 3 {
            return Err(InvalidValue::TooShort { min: 3 });
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        {
            return Err(InvalidValue::Malformed(
                "may only hold letters, digits, '.', '_' and '-'",
            ));
        }
        Ok(Self(value))
    }

    /// The username.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password as typed, before hashing: 10 to 128 characters and not only spaces. It
/// never prints its content, not even in debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct NewPassword(String);

impl NewPassword {
    /// The shortest password accepted.
    pub const MIN_LEN: usize = 10;
    /// The longest: hashing cost grows with length, so an unbounded one is a way to burn
    /// the server's CPU.
    pub const MAX_LEN: usize = 128;

    /// # Errors
    /// [`InvalidValue`] when too short, too long or blank.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let length = raw.chars().count();
        if raw.trim().is_empty() {
            return Err(InvalidValue::Empty);
        }
        if length < Self::MIN_LEN {
            return Err(InvalidValue::TooShort { min: Self::MIN_LEN });
        }
        if length > Self::MAX_LEN {
            return Err(InvalidValue::TooLong { max: Self::MAX_LEN });
        }
        Ok(Self(raw.to_owned()))
    }

    /// The password itself, for the hasher only.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

/// An argon2id hash in PHC string form (algorithm, parameters and salt inside). Made by the
/// infrastructure's hasher; the domain only keeps it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string produced by the hasher.
    #[must_use]
    pub fn from_phc(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string.
    #[must_use]
    pub fn as_phc(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(***)")
    }
}

/// How an agent describes their gender (asked when an admin creates one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    /// Female.
    Female,
    /// Male.
    Male,
    /// Non-binary.
    NonBinary,
    /// Another description.
    Other,
    /// Not said.
    PreferNotToSay,
}

/// What a person may do in the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Signs up on their own; keeps a wallet.
    Customer,
    /// Created by an admin; works the ticket queue.
    Agent,
    /// Creates agents and auditors, looks after read models.
    Admin,
    /// Reads the history; changes nothing.
    Auditor,
}

crate::text::string_conversions!(Email, PersonName, Mobile, Username);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_keep_their_case_but_compare_without_it() {
        let typed = Email::parse("  Asha.Rao@Example.COM ").expect("valid");
        assert_eq!(typed.as_str(), "Asha.Rao@Example.COM");
        assert_eq!(typed.normalized(), "asha.rao@example.com");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "   ",
            "no-at-sign",
            "a@b",
            "@example.com",
            "a@@example.com",
            "a b@example.com",
            "a@example..com",
            "a@.example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let too_long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(
            Email::parse(&too_long),
            Err(InvalidValue::TooLong {
                max: Email::MAX_LEN
            })
        );
    }

    #[test]
    fn mobiles_are_kept_as_digits_with_an_optional_plus() {
        assert_eq!(
            Mobile::parse("+91 98765-43210").expect("valid").as_str(),
            "+919876543210"
        );
        assert_eq!(
            Mobile::parse("(020) 7946 0958").expect("valid").as_str(),
            "02079460958"
        );
        assert!(Mobile::parse("12345").is_err());
        assert!(Mobile::parse("+91 98765 4321x").is_err());
    }

    #[test]
    fn usernames_are_lower_case_and_plain() {
        assert_eq!(
            Username::parse(" Ravi.K ").expect("valid").as_str(),
            "ravi.k"
        );
        assert_eq!(
            Username::parse("ab"),
            Err(InvalidValue::TooShort { min: 3 })
        );
        assert!(Username::parse("ravi k").is_err());
    }

    #[test]
    fn passwords_need_ten_characters_and_never_print() {
        assert_eq!(
            NewPassword::parse("short"),
            Err(InvalidValue::TooShort { min: 10 })
        );
        assert_eq!(NewPassword::parse("          "), Err(InvalidValue::Empty));
        assert!(NewPassword::parse(&"x".repeat(129)).is_err());
        let password = NewPassword::parse("correct horse battery").expect("valid");
        assert_eq!(format!("{password:?}"), "NewPassword(***)");
        assert!(
            !format!(
                "{:?}",
                PasswordHash::from_phc("$argon2id$v=19$secret".into())
            )
            .contains("secret")
        );
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            PersonName::parse("  Asha Rao ").expect("valid").as_str(),
            "Asha Rao"
        );
        assert_eq!(PersonName::parse(""), Err(InvalidValue::Empty));
        assert_eq!(
            PersonName::parse(&"n".repeat(101)),
            Err(InvalidValue::TooLong {
                max: PersonName::MAX_LEN
            })
        );
    }

    mod fuzz {
        use proptest::prelude::*;
        use serde_json::{Value, json};

        use super::super::*;
        use crate::fuzz::{
            any_json, check_json_goes_through_parse, check_reads_back, check_text_rules, config,
            fail, text_around,
        };

        /// Addresses that look right or nearly so, with local parts and totals around
        /// their limits (64 and 254).
        fn email_like() -> impl Strategy<Value = String> {
            let local = prop_oneof![
                "[a-zA-Z0-9._%+-]{0,8}",
                "[a-z]{62,66}",
                "[a-zA-Z0-9._+\\-@ ]{1,8}",
            ];
            let domain = prop_oneof![
                "[a-z0-9-]{1,12}(\\.[a-z0-9-]{1,12}){0,3}",
                "[a-z.]{0,8}",
                "[a-z]{60,64}\\.[a-z]{60,64}\\.[a-z]{60,64}\\.[a-z]{0,64}",
            ];
            (local, domain, prop::sample::select(vec!["", " ", "\n"]))
                .prop_map(|(local, domain, pad)| format!("{pad}{local}@{domain}{pad}"))
        }

        /// An optional `+` and 5 to 17 digits (7 to 15 are allowed), often with the
        /// separators people type, sometimes with a stray character.
        fn phone_like() -> impl Strategy<Value = String> {
            let digit_and_separator = (
                prop::char::range('0', '9'),
                prop_oneof![
                    3 => Just(""),
                    1 => prop::sample::select(vec![" ", "-", ".", "(", ")", "+", "x", "  "]),
                ],
            );
            (
                prop::sample::select(vec!["", "+", " +", "++"]),
                prop::collection::vec(digit_and_separator, 5..=17),
            )
                .prop_map(|(plus, digits)| {
                    let typed: String = digits
                        .into_iter()
                        .map(|(d, sep)| format!("{d}{sep}"))
                        .collect();
                    format!("{plus}{typed}")
                })
        }

        fn username_like() -> impl Strategy<Value = String> {
            "[ ]?[A-Za-z0-9._-]{0,36}[ ]?"
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn an_email_is_accepted_exactly_when_it_has_the_documented_form(
                raw in prop_oneof![email_like(), text_around(Email::MAX_LEN)],
            ) {
                let parsed = Email::parse(&raw);

                let value = raw.trim();
                let one_at = value.matches('@').count() == 1;
                let (local, domain) = value.split_once('@').unwrap_or((value, ""));
                let well_formed = one_at
                    && (1..=64).contains(&local.len())
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
                    && !value.chars().any(|c| c.is_whitespace() || c.is_control());
                let length = value.chars().count();
                match &parsed {
                    Ok(email) => {
                        prop_assert!(well_formed && length <= Email::MAX_LEN, "{raw:?} accepted");
                        prop_assert_eq!(email.as_str(), value);
                        prop_assert_eq!(email.normalized(), value.to_lowercase());
                        check_reads_back(email, Email::parse)?;
                    }
                    Err(InvalidValue::Empty) => prop_assert_eq!(length, 0),
                    Err(InvalidValue::TooLong { max }) => {
                        prop_assert!(*max == Email::MAX_LEN && length > Email::MAX_LEN);
                    }
                    Err(InvalidValue::Malformed(_)) => prop_assert!(!well_formed, "{raw:?} refused"),
                    Err(other) => prop_assert!(false, "{raw:?} gave {other:?}"),
                }
            }

            #[test]
            fn a_person_name_is_trimmed_printable_text_of_1_to_100_characters(
                raw in text_around(PersonName::MAX_LEN),
            ) {
                let parsed = PersonName::parse(&raw);

                let answer = parsed.as_ref().map(PersonName::as_str);
                check_text_rules(&raw, (1, PersonName::MAX_LEN), &[], answer)?;
                if let Ok(name) = &parsed {
                    check_reads_back(name, PersonName::parse)?;
                }
            }

            #[test]
            fn a_mobile_is_accepted_exactly_with_7_to_15_digits_and_kept_as_them(
                raw in prop_oneof![phone_like(), text_around(32)],
            ) {
                let parsed = Mobile::parse(&raw);

                let value = raw.trim();
                let rest = value.strip_prefix('+').unwrap_or(value);
                let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
                let plausible = !value.is_empty()
                    && value.chars().count() <= 32
                    && rest.chars().all(|c| c.is_ascii_digit() || " -.()".contains(c))
                    && (7..=15).contains(&digits.len());
                match &parsed {
                    Ok(mobile) => {
                        prop_assert!(plausible, "{raw:?} accepted");
                        let plus = if value.starts_with('+') { "+" } else { "" };
                        prop_assert_eq!(mobile.as_str(), format!("{plus}{digits}"));
                        check_reads_back(mobile, Mobile::parse)?;
                    }
                    Err(_) => prop_assert!(!plausible, "{raw:?} refused"),
                }
            }

            #[test]
            fn a_username_is_3_to_32_plain_characters_kept_in_lower_case(
                raw in prop_oneof![username_like(), text_around(32)],
            ) {
                let parsed = Username::parse(&raw);

                let value = raw.trim();
                let plain = value.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
                let fits = (3..=32).contains(&value.chars().count());
                match &parsed {
                    Ok(username) => {
                        prop_assert!(plain && fits, "{raw:?} accepted");
                        prop_assert_eq!(username.as_str(), value.to_ascii_lowercase());
                        check_reads_back(username, Username::parse)?;
                    }
                    Err(_) => prop_assert!(!(plain && fits), "{raw:?} refused"),
                }
            }

            #[test]
            fn a_new_password_is_10_to_128_characters_not_all_blank_and_never_printed(
                raw in prop_oneof![text_around(NewPassword::MIN_LEN), text_around(NewPassword::MAX_LEN)],
            ) {
                let parsed = NewPassword::parse(&raw);

                let length = raw.chars().count();
                let fits = !raw.trim().is_empty()
                    && (NewPassword::MIN_LEN..=NewPassword::MAX_LEN).contains(&length);
                match &parsed {
                    Ok(password) => {
                        prop_assert!(fits, "{raw:?} accepted");
                        // Kept as typed: spaces at the ends are part of a password.
                        prop_assert_eq!(password.expose(), raw.as_str());
                        prop_assert_eq!(format!("{password:?}"), "NewPassword(***)");
                    }
                    Err(_) => prop_assert!(!fits, "{raw:?} refused"),
                }
            }

            #[test]
            fn json_becomes_a_user_value_only_through_its_parse(
                json in any_json(&["admin", "agent", "female", "prefer_not_to_say"]),
                text in prop_oneof![
                    Just("admin".to_owned()),
                    Just("non_binary".to_owned()),
                    email_like(),
                    phone_like(),
                    username_like(),
                    text_around(8),
                ],
            ) {
                for json in [json, Value::String(text)] {
                    check_json_goes_through_parse(&json, Email::parse)?;
                    check_json_goes_through_parse(&json, PersonName::parse)?;
                    check_json_goes_through_parse(&json, Mobile::parse)?;
                    check_json_goes_through_parse(&json, Username::parse)?;
                    // Enumerations are read from their name, or serde's map form of it
                    // (`{"admin": null}`), and written as the name.
                    if let Ok(role) = serde_json::from_value::<Role>(json.clone()) {
                        let name = serde_json::to_value(role).map_err(fail)?;
                        let map_form = json!({ name.as_str().unwrap_or_default(): null });
                        prop_assert!(json == name || json == map_form, "{json} gave {role:?}");
                    }
                    if let Ok(gender) = serde_json::from_value::<Gender>(json.clone()) {
                        let name = serde_json::to_value(gender).map_err(fail)?;
                        let map_form = json!({ name.as_str().unwrap_or_default(): null });
                        prop_assert!(json == name || json == map_form, "{json} gave {gender:?}");
                    }
                }
            }
        }
    }
}
