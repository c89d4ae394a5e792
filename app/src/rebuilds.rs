//! Rebuilding read models on a running product: from the CLI, from the admin API, and on
//! start when a projection's code is newer than the tables it built. One rebuild per
//! projection at a time in this process; the blue/green mechanics are in
//! `projections::rebuild`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use infrastructure::database::Database;
use infrastructure::event_store::EventStore;
use projections::Projection;
use projections::rebuild::{Progress, RebuildReport, rebuild, rebuild_all};

/// Why a rebuild did not start.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// No projection has this name.
    #[error("there is no read model named {0}")]
    Unknown(String),
    /// One is under way already.
    #[error("the read model {0} is being rebuilt already")]
    AlreadyRunning(String),
    /// The rebuild failed; the live tables are as they were.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// How the last background rebuild of a projection in this process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Events applied to the rebuilt tables.
    pub events: u64,
    /// Tables whose rebuilt rows differed from the ones they replaced.
    pub differing_tables: Vec<String>,
    /// Why it failed, when it did (the live tables are then as they were).
    pub error: Option<String>,
}

/// Starts and tracks rebuilds.
#[derive(Debug, Clone)]
pub struct Rebuilds {
    store: Arc<dyn EventStore>,
    database: Database,
    projections: Vec<Arc<dyn Projection>>,
    running: Arc<Mutex<BTreeSet<String>>>,
    finished: Arc<Mutex<BTreeMap<String, Finished>>>,
}

/// Frees a projection's rebuild slot when the rebuild ends, however it ends.
struct Slot {
    name: String,
    running: Arc<Mutex<BTreeSet<String>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.name);
    }
}

impl Rebuilds {
    /// Rebuilds of `projections` (the live ones) over `store` and `database`.
    #[must_use]
    pub fn new(
        store: Arc<dyn EventStore>,
        database: Database,
        projections: Vec<Arc<dyn Projection>>,
    ) -> Self {
        Self {
            store,
            database,
            projections,
            running: Arc::default(),
            finished: Arc::default(),
        }
    }

    /// The names of every read model, in order.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        self.projections
            .iter()
            .map(|p| p.name().to_owned())
            .collect()
    }

    /// The projection called `name`.
    ///
    /// # Errors
    /// [`RebuildError::Unknown`].
    pub fn projection(&self, name: &str) -> Result<Arc<dyn Projection>, RebuildError> {
        self.projections
            .iter()
            .find(|p| p.name() == name)
            .cloned()
            .ok_or_else(|| RebuildError::Unknown(name.to_owned()))
    }

    /// The names of the projections being rebuilt now.
    #[must_use]
    pub fn running(&self) -> BTreeSet<String> {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How the last background rebuild of each projection ended.
    #[must_use]
    pub fn finished(&self) -> BTreeMap<String, Finished> {
        self.finished
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn claim(&self, name: &str) -> Result<Slot, RebuildError> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if !running.insert(name.to_owned()) {
            return Err(RebuildError::AlreadyRunning(name.to_owned()));
        }
        Ok(Slot {
            name: name.to_owned(),
            running: Arc::clone(&self.running),
        })
    }

    /// Rebuilds every read model of `names` now, in one pass over the log, telling
    /// `on_progress` after every batch.
    ///
    /// # Errors
    /// [`RebuildError`].
    pub async fn run(
        &self,
        names: &[String],
        on_progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Vec<RebuildReport>, RebuildError> {
        let chosen = names
            .iter()
            .map(|name| self.projection(name))
            .collect::<Result<Vec<_>, _>>()?;
        let _slots = names
            .iter()
            .map(|name| self.claim(name))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rebuild_all(
            Arc::clone(&self.store),
            self.database.clone(),
            chosen,
            on_progress,
        )
        .await?)
    }

    /// Starts rebuilding `name` in the background; the outcome is logged and the progress
    /// shows in the projection list.
    ///
    /// # Errors
    /// [`RebuildError::Unknown`] or [`RebuildError::AlreadyRunning`].
    pub fn start(&self, name: &str) -> Result<(), RebuildError> {
        let projection = self.projection(name)?;
        let slot = self.claim(name)?;
        let (store, database) = (Arc::clone(&self.store), self.database.clone());
        let finished = Arc::clone(&self.finished);
        let name = name.to_owned();
        tokio::spawn(async move {
            let outcome = match rebuild(store, database, projection, &mut |_| {}).await {
                Ok(report) => {
                    tracing::info!(
                        projection = %report.name,
                        events = report.events,
                        events_per_second = report.events_per_second() as u64,
                        differences = report.differences().len(),
                        "read model rebuilt and swapped in"
                    );
                    Finished {
                        events: report.events,
                        differing_tables: report
                            .differences()
                            .iter()
                            .map(|t| t.table.clone())
                            .collect(),
                        error: None,
                    }
                }
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "a rebuild failed");
                    Finished {
                        events: 0,
                        differing_tables: Vec::new(),
                        error: Some(format!("{error:#}")),
                    }
                }
            };
            // Recorded before the slot frees, so whoever sees it free sees the outcome.
            finished
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(name, outcome);
            drop(slot);
        });
        Ok(())
    }

    /// Starts a background rebuild of every projection whose tables were built by older
    /// code than this binary's.
    ///
    /// # Errors
    /// When the checkpoints cannot be read.
    pub async fn start_outdated(&self) -> anyhow::Result<Vec<String>> {
        let stored = projections::runner::statuses(&self.database).await?;
        let mut started = Vec::new();
        for projection in &self.projections {
            let outdated = stored
                .iter()
                .any(|s| s.name == projection.name() && s.version < projection.version());
            if outdated && self.start(projection.name()).is_ok() {
                tracing::info!(
                    projection = projection.name(),
                    "rebuilding a read model built by older code"
                );
                started.push(projection.name().to_owned());
            }
        }
        Ok(started)
    }
}
