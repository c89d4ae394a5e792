//! The background workers of an instance, and which of them it runs: what
//! `serve --role web|worker|all` chooses (ADR 0019).
//!
//! Every worker runs under a lease ([`Leadership`]), so that across any number of
//! instances each one runs exactly once; an instance that does not hold the projections'
//! lease still follows their progress, so reads it serves wait for writes it served.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use infrastructure::leadership::{Leadership, LedWorker};
use projections::ProjectionRunner;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::audit::sealer::Sealer;
use crate::mail::MailDispatcher;
use crate::scheduler::Scheduler;
use crate::state::AppState;
use crate::support::SupportProcess;

/// What an instance does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Role {
    /// Serves requests only; the workers run on other instances.
    Web,
    /// Runs the background workers only (and `/healthz`, `/readyz`, `/metrics`).
    Worker,
    /// Both (the default, and the only choice that makes sense on SQLite).
    #[default]
    All,
}

impl Role {
    /// True when this instance answers the API and the pages.
    #[must_use]
    pub fn serves_requests(self) -> bool {
        matches!(self, Self::Web | Self::All)
    }

    /// True when this instance may run background workers.
    #[must_use]
    pub fn runs_workers(self) -> bool {
        matches!(self, Self::Worker | Self::All)
    }
}

/// The names of the leases, as `/metrics` shows them.
pub const PROJECTIONS: &str = "projections";
/// The support process manager (tickets from crossed limits).
pub const SUPPORT: &str = "support";
/// Reminders and recurring payments.
pub const SCHEDULER: &str = "scheduler";
/// The mail dispatcher.
pub const MAIL: &str = "mail";
/// The sealer of the log's head.
pub const SEALER: &str = "sealer";

struct Projections {
    runner: Arc<ProjectionRunner>,
    state: AppState,
}

#[async_trait]
impl LedWorker for Projections {
    async fn lead(&self, stop: watch::Receiver<bool>) {
        // A read model whose code changed since it was built is rebuilt by whoever runs the
        // projections, once.
        if let Err(error) = self.state.rebuilds.start_outdated().await {
            tracing::error!(
                error = format!("{error:#}"),
                "cannot check the read models' versions"
            );
        }
        self.runner.run(stop).await;
    }

    async fn follow(&self, stop: watch::Receiver<bool>) {
        self.runner.follow(stop).await;
    }
}

struct Support(AppState);

#[async_trait]
impl LedWorker for Support {
    async fn lead(&self, stop: watch::Receiver<bool>) {
        SupportProcess::new(self.0.clone()).run(stop).await;
    }
}

struct Schedule(AppState);

#[async_trait]
impl LedWorker for Schedule {
    async fn lead(&self, stop: watch::Receiver<bool>) {
        Scheduler::new(self.0.clone()).run(stop).await;
    }
}

struct Mail(MailDispatcher);

#[async_trait]
impl LedWorker for Mail {
    async fn lead(&self, stop: watch::Receiver<bool>) {
        self.0.clone().run(stop).await;
    }
}

struct Seal {
    state: AppState,
    every: Duration,
}

#[async_trait]
impl LedWorker for Seal {
    async fn lead(&self, stop: watch::Receiver<bool>) {
        Sealer::new(self.state.clone(), self.every).run(stop).await;
    }
}

/// The workers of one instance, started by [`Workers::start`] and stopped together.
#[derive(Debug)]
pub struct Workers {
    tasks: JoinSet<()>,
    stop: watch::Sender<bool>,
}

/// What the workers need.
#[derive(Debug)]
pub struct WorkerParts {
    /// The application's state.
    pub state: AppState,
    /// The projection runner of this instance.
    pub projections: Arc<ProjectionRunner>,
    /// The mail dispatcher.
    pub dispatcher: MailDispatcher,
    /// How often the sealer seals.
    pub seal_every: Duration,
}

impl Workers {
    /// Starts what `role` asks for under `leadership`: every worker for `worker` and `all`;
    /// for `web`, only the following of the read models' progress.
    #[must_use]
    pub fn start(role: Role, leadership: &Leadership, parts: WorkerParts) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let projections = Projections {
            runner: Arc::clone(&parts.projections),
            state: parts.state.clone(),
        };
        if !role.runs_workers() {
            tasks.spawn(async move { projections.follow(stopped).await });
            return Self { tasks, stop };
        }
        let workers: Vec<(&'static str, Arc<dyn LedWorker>)> = vec![
            (PROJECTIONS, Arc::new(projections)),
            (SUPPORT, Arc::new(Support(parts.state.clone()))),
            (SCHEDULER, Arc::new(Schedule(parts.state.clone()))),
            (MAIL, Arc::new(Mail(parts.dispatcher))),
            (
                SEALER,
                Arc::new(Seal {
                    state: parts.state,
                    every: parts.seal_every,
                }),
            ),
        ];
        for (name, worker) in workers {
            let leadership = leadership.clone();
            let stopped = stopped.clone();
            tasks.spawn(async move { leadership.run(name, worker, stopped).await });
        }
        Self { tasks, stop }
    }

    /// Stops every worker at its next safe point and gives its lease back.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while let Some(ended) = self.tasks.join_next().await {
            if let Err(error) = ended {
                tracing::error!(%error, "a worker ended abnormally");
            }
        }
    }
}
