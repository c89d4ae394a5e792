//! Seals the chain's head now and then (ADR 0018), so that removing the newest events is
//! detected. Each seal also goes to the log (`tracing`), which usually lives outside the
//! database and so keeps a copy an attacker of the database does not reach.

use std::time::Duration;

use infrastructure::tamper_evidence::{self, Seal};
use tokio::sync::watch;

use crate::state::AppState;

/// The background sealer.
#[derive(Debug)]
pub struct Sealer {
    state: AppState,
    every: Duration,
}

impl Sealer {
    /// Seals every `every`, and once more when stopped.
    #[must_use]
    pub fn new(state: AppState, every: Duration) -> Self {
        Self { state, every }
    }

    /// Seals the head if it moved since the last seal; answers the seal at the head.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn seal_once(&self) -> anyhow::Result<Option<Seal>> {
        let seal = tamper_evidence::seal(&self.state.database, self.state.now()).await?;
        if let Some(seal) = seal {
            tracing::info!(seal = %seal, "sealed the event log");
        }
        Ok(seal)
    }

    /// Seals until `stop` turns true, then seals the final head.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.every) => {}
                _ = stop.wait_for(|stopped| *stopped) => break,
            }
            if let Err(error) = self.seal_once().await {
                tracing::warn!(error = format!("{error:#}"), "cannot seal the event log");
            }
        }
        if let Err(error) = self.seal_once().await {
            tracing::warn!(
                error = format!("{error:#}"),
                "cannot seal the event log at shutdown"
            );
        }
    }
}
