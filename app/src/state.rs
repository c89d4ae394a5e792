//! What every handler can reach.

use std::sync::Arc;

use infrastructure::database::Database;
use infrastructure::event_store::EventStore;

/// Shared by all requests; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The product's database.
    pub database: Database,
    /// The event store on it.
    pub events: Arc<dyn EventStore>,
}
