//! What every handler can reach.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use infrastructure::access_tokens::AccessTokens;
use infrastructure::database::Database;
use infrastructure::event_store::EventStore;
use infrastructure::login_throttle::LoginThrottle;
use infrastructure::passwords::PasswordHasher;

use crate::commands::CommandService;

/// Shared by all requests; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The product's database.
    pub database: Database,
    /// The event store on it.
    pub events: Arc<dyn EventStore>,
    /// Load, decide, append.
    pub commands: CommandService,
    /// The API's bearer tokens.
    pub tokens: AccessTokens,
    /// argon2id.
    pub passwords: PasswordHasher,
    /// Failed-login counts.
    pub login_throttle: LoginThrottle,
}

impl AppState {
    /// The current instant, for commands and token checks.
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
