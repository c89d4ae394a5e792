//! The `users` projection: the directory of accounts admins see (table `rm_users`): role,
//! the sealed profile, whether the account is active, whether the person was erased, who
//! registered it and when.
//!
//! The profile is copied sealed, exactly as the registration stored it: nothing personal
//! is ever written in clear (ADR 0006). The directory opens it with the person's key when
//! an admin reads it; erasing the person clears it here (ADR 0013).

use std::sync::Arc;

use domain::Aggregate;
use domain::user::{Registrar, Role, User, UserEvent};
use infrastructure::event_codec::decode_payload;
use infrastructure::event_store::RecordedEvent;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::facts::{Fact, What};
use crate::projection::{ApplyError, Projection, TableRows, table_rows};
use crate::sql::{Value, WriteTx};

/// The read model's table.
pub const TABLE: &str = "rm_users";

const COLUMNS: &[&str] = &[
    "user_id",
    "role",
    "profile",
    "active",
    "erased",
    "registered_by",
    "registered_by_id",
    "registered_at_us",
    "registered_at",
    "password_changed_at_us",
];

/// The name a role has in the directory (and in the API).
fn role_name(role: Role) -> &'static str {
    match role {
        Role::Customer => "customer",
        Role::Agent => "agent",
        Role::Admin => "admin",
        Role::Auditor => "auditor",
    }
}

/// Values per registration row: the columns of `Sql::register`.
const REGISTRATION_WIDTH: usize = 9;

/// The statements, for one table (the live one, or a rebuild's).
#[derive(Debug, Clone)]
struct Sql {
    register: String,
    set_active: String,
    erase: String,
    password_changed: String,
}

impl Sql {
    fn for_table(table: &str) -> Self {
        Self {
            // Where new accounts go: copied in on PostgreSQL, multi-row inserts on SQLite.
            register: format!(
                "{table} (user_id, role, profile, active, erased, registered_by, \
                 registered_by_id, registered_at_us, registered_at)"
            ),
            set_active: format!("UPDATE {table} SET active = $2 WHERE user_id = $1"),
            erase: format!("UPDATE {table} SET profile = NULL, erased = 1 WHERE user_id = $1"),
            password_changed: format!(
                "UPDATE {table} SET password_changed_at_us = $2 WHERE user_id = $1"
            ),
        }
    }
}

/// The projection, writing to the live table or (for a rebuild) to a suffixed twin.
#[derive(Debug, Clone)]
pub struct UsersProjection {
    name: String,
    table: String,
    sql: Sql,
}

impl Default for UsersProjection {
    fn default() -> Self {
        Self::with_suffix("")
    }
}

/// A registration as stored: the profile still sealed (or `null` when it was registered
/// without one).
#[derive(Deserialize)]
struct StoredRegistration {
    role: Role,
    profile: Option<Box<RawValue>>,
    registered_by: Registrar,
}

/// An account event as the directory reads it.
enum Change {
    Registered(StoredRegistration),
    Other(UserEvent),
}

impl UsersProjection {
    fn with_suffix(suffix: &str) -> Self {
        let table = format!("{TABLE}{suffix}");
        Self {
            name: format!("users{suffix}"),
            sql: Sql::for_table(&table),
            table,
        }
    }

    fn read(fact: &Fact, recorded: &RecordedEvent) -> Result<Change, ApplyError> {
        let bad = |reason: String| ApplyError::Event {
            position: fact.position,
            reason,
        };
        if recorded.event_type == "UserRegistered" {
            serde_json::from_str(recorded.payload.get())
                .map(Change::Registered)
                .map_err(|e| bad(format!("cannot read the registration: {e}")))
        } else {
            decode_payload(recorded, &recorded.payload)
                .map(Change::Other)
                .map_err(|e| bad(e.to_string()))
        }
    }

    /// Writes the registrations gathered so far, many rows per statement.
    async fn register_gathered(
        &self,
        tx: &mut WriteTx,
        registrations: &mut Vec<Value>,
    ) -> Result<(), ApplyError> {
        let rows = std::mem::take(registrations);
        tx.copy_rows(&self.sql.register, REGISTRATION_WIDTH, rows)
            .await?;
        Ok(())
    }

    /// Applies one change; registrations are gathered in `registrations` and written
    /// before any other statement, so the table changes in the log's order.
    async fn apply_one(
        &self,
        tx: &mut WriteTx,
        fact: &Fact,
        change: Change,
        registrations: &mut Vec<Value>,
    ) -> Result<(), ApplyError> {
        let user = fact.subject.to_string();
        let micros = fact.recorded_at.timestamp_micros();
        let event = match change {
            Change::Registered(StoredRegistration {
                role,
                profile,
                registered_by,
            }) => {
                let (by, by_id) = match registered_by {
                    Registrar::SelfSignUp => ("self_sign_up", None),
                    Registrar::Admin(admin) => ("admin", Some(admin.to_string())),
                    Registrar::Operator => ("operator", None),
                };
                let erased = i64::from(profile.is_none());
                registrations.extend([
                    user.into(),
                    role_name(role).into(),
                    profile.map(|sealed| sealed.get().to_owned()).into(),
                    Value::Int(1),
                    erased.into(),
                    by.into(),
                    by_id.into(),
                    micros.into(),
                    i64::try_from(fact.position.0).unwrap_or(i64::MAX).into(),
                ]);
                return Ok(());
            }
            Change::Other(event) => event,
        };
        let (statement, args) = match event {
            // Read from the stored payload above.
            UserEvent::UserRegistered { .. } | UserEvent::PasswordResetRequested {} => {
                return Ok(());
            }
            UserEvent::PasswordChanged { .. } => {
                (&self.sql.password_changed, vec![user.into(), micros.into()])
            }
            UserEvent::UserDeactivated { .. } => {
                (&self.sql.set_active, vec![user.into(), Value::Int(0)])
            }
            UserEvent::UserReactivated { .. } => {
                (&self.sql.set_active, vec![user.into(), Value::Int(1)])
            }
            UserEvent::PersonalDataErased { .. } => (&self.sql.erase, vec![user.into()]),
        };
        // The rows this statement may change must exist first.
        self.register_gathered(tx, registrations).await?;
        tx.execute(statement, &args).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Projection for UsersProjection {
    fn name(&self) -> &str {
        &self.name
    }

    fn tables(&self) -> Vec<String> {
        vec![self.table.clone()]
    }

    fn rows(&self) -> Vec<TableRows> {
        table_rows(self.tables(), &[COLUMNS])
    }

    fn twin(&self, suffix: &str) -> Arc<dyn Projection> {
        Arc::new(Self::with_suffix(suffix))
    }

    fn reads(&self, fact: &Fact) -> bool {
        fact.is_of(User::CATEGORY)
    }

    fn version(&self) -> i64 {
        1
    }

    async fn apply(&self, tx: &mut WriteTx, facts: &[&Fact]) -> Result<(), ApplyError> {
        let mut registrations = Vec::new();
        for fact in facts {
            if let What::User(recorded) = &fact.what {
                let change = Self::read(fact, recorded)?;
                self.apply_one(tx, fact, change, &mut registrations).await?;
            }
        }
        self.register_gathered(tx, &mut registrations).await
    }
}
