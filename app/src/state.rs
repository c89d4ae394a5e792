//! What every handler can reach.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::money::Currency;
use infrastructure::access_tokens::AccessTokens;
use infrastructure::audit_reads::AuditReads;
use infrastructure::clock::SharedClock;
use infrastructure::database::Database;
use infrastructure::event_store::EventStore;
use infrastructure::idempotency::IdempotencyKeys;
use infrastructure::login_throttle::LoginThrottle;
use infrastructure::outbox::Outbox;
use infrastructure::password_resets::PasswordResets;
use infrastructure::passwords::PasswordHasher;
use infrastructure::personal_data::PersonalDataVault;
use infrastructure::receipts::Receipts;
use infrastructure::web_sessions::WebSessions;
use tokio::sync::Notify;

use crate::commands::CommandService;
use crate::read_models::ReadModels;
use crate::rebuilds::Rebuilds;

/// Shared by all requests; cloned for each (axum's `State`, the middlewares), so it is one
/// reference count: copying its services' handles one by one showed in profiles under load.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

impl AppState {
    /// The state of `services`.
    #[must_use]
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }

    /// The same services, but reporting the worker leases of `leases`.
    #[must_use]
    pub fn with_leases(self, leases: infrastructure::leadership::Leases) -> Self {
        let mut services = Arc::unwrap_or_clone(self.0);
        services.leases = leases;
        Self::new(services)
    }
}

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct Services {
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
    /// Per-person keys of personal data (crypto-shredding).
    pub vault: Arc<PersonalDataVault>,
    /// One-time reset links.
    pub password_resets: PasswordResets,
    /// Mail waiting to be sent; written with the events that cause it.
    pub outbox: Outbox,
    /// Wakes the mail dispatcher after a command put mail in the outbox.
    pub mail_wake: Arc<Notify>,
    /// Where users reach the product, for links in mail.
    pub base_url: String,
    /// Remembered answers to POSTs with an `Idempotency-Key`.
    pub idempotency: IdempotencyKeys,
    /// The currency of new wallets.
    pub default_currency: Currency,
    /// The web pages' sessions.
    pub web_sessions: WebSessions,
    /// This process's counters (requests, commands, append batches, mail failures).
    pub metrics: Arc<infrastructure::metrics::Metrics>,
    /// The worker leases this instance holds (for `/metrics`).
    pub leases: infrastructure::leadership::Leases,
    /// How far the read models are, for read-your-writes.
    pub read_models: ReadModels,
    /// Read-model rebuilds under way in this process.
    pub rebuilds: Rebuilds,
    /// The time: the system's, or a test's fake one.
    pub clock: SharedClock,
    /// Receipt files and whose they are.
    pub receipts: Receipts,
    /// The record of auditors' reads.
    pub audit_reads: AuditReads,
    /// How many requests are taken at once, and for how long.
    pub limits: crate::http::limits::RequestLimits,
}

impl Services {
    /// The current instant, for commands and token checks.
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}
