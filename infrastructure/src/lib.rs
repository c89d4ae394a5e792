//! Adapters of the expense tracker: everything that touches the outside world.
//!
//! Today: the database (SQLite by default, PostgreSQL to scale out, both through sqlx), the
//! event store on it, the codec between domain events and stored events, the outbox and the
//! mailer, password hashing, the API's access tokens and the login throttle. Rules: storage errors are translated here into the types of
//! [`event_store`] and [`database`]; nothing above this crate sees a `sqlx::Error`. Nothing
//! here decides business rules: that is the domain's job.

pub mod access_tokens;
pub mod audit_reads;
pub mod clock;
pub mod database;
mod encoding;
pub mod event_codec;
pub mod event_store;
pub mod idempotency;
pub mod leadership;
pub mod login_throttle;
pub mod mail;
pub mod metrics;
pub mod outbox;
pub mod password_resets;
pub mod passwords;
pub mod personal_data;
pub mod receipts;
pub mod tamper_evidence;
#[cfg(feature = "testing")]
pub mod testing;
pub mod web_sessions;
