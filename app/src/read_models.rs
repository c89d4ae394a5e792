//! Read-your-writes: a command that changed a read model answers only once the read model
//! shows the change (or a short wait ran out), so the caller's next read, on any instance,
//! finds it. See ADR 0011.

use std::collections::BTreeMap;
use std::time::Duration;

use infrastructure::event_store::Position;
use projections::ProjectionStatus;
use tokio::sync::watch;

/// The longest a command waits for its read model.
const WAIT: Duration = Duration::from_secs(5);

/// Where each projection stands, as the local runner last saw it.
#[derive(Debug, Clone)]
pub struct ReadModels {
    progress: watch::Receiver<BTreeMap<String, ProjectionStatus>>,
}

impl ReadModels {
    /// Read models whose progress `progress` reports.
    #[must_use]
    pub fn new(progress: watch::Receiver<BTreeMap<String, ProjectionStatus>>) -> Self {
        Self { progress }
    }

    /// Waits until `projection` has applied `position` (true), or stopped on a failure or
    /// the wait ran out (false, logged: the caller answers anyway, its change is stored).
    pub async fn wait_for(&self, projection: &str, position: Position) -> bool {
        let mut progress = self.progress.clone();
        let applied = |statuses: &BTreeMap<String, ProjectionStatus>| {
            statuses
                .get(projection)
                .is_some_and(|s| s.position >= position || s.failure.is_some())
        };
        let waited = tokio::time::timeout(WAIT, progress.wait_for(applied)).await;
        let reached = matches!(waited, Ok(Ok(statuses)) if statuses
            .get(projection)
            .is_some_and(|s| s.position >= position));
        if !reached {
            tracing::warn!(projection, %position, "a read model is behind its writes");
        }
        reached
    }
}
