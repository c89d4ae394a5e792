//! Building and running the application: the binary and the black-box tests go through the
//! same two calls, [`Application::build`] and [`Application::run_until_stopped`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use infrastructure::access_tokens::{AccessTokens, TokenPolicy};
use infrastructure::audit_reads::AuditReads;
use infrastructure::database::{Database, PoolSettings, redact};
use infrastructure::event_store::{EventStore, GroupCommitSettings, SqlEventStore};
use infrastructure::idempotency::IdempotencyKeys;
use infrastructure::leadership::{InstanceGuard, Leadership, Leases};
use infrastructure::login_throttle::{LoginThrottle, ThrottlePolicy};
use infrastructure::mail::mailer_from_settings;
use infrastructure::outbox::{Outbox, RetryPolicy};
use infrastructure::password_resets::PasswordResets;
use infrastructure::passwords::PasswordHasher;
use infrastructure::personal_data::PersonalDataVault;
use infrastructure::receipts::Receipts;
use infrastructure::web_sessions::WebSessions;
use projections::ProjectionRunner;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use domain::money::Currency;

use crate::accounts::{AdminSetup, ensure_admin};
use crate::commands::CommandService;
use crate::config::Config;
use crate::http;
use crate::http::limits::RequestLimits;
use crate::mail::{MailDispatcher, MailTemplates};
use crate::read_models::ReadModels;
use crate::rebuilds::Rebuilds;
use crate::state::{AppState, Services};
use crate::web::PageTemplates;
use crate::workers::{Role, WorkerParts, Workers};

/// A migrated database, an open event store, and a bound listener, ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
    dispatcher: MailDispatcher,
    projections: ProjectionRunner,
    seal_every_seconds: u64,
    pages: Arc<PageTemplates>,
    role: Role,
    leadership: Leadership,
    // Held while serving: one instance per SQLite file.
    _instance: Option<InstanceGuard>,
}

/// Connects to the database the configuration names (creating a SQLite file on first run)
/// and applies pending migrations.
///
/// # Errors
/// When the database cannot be reached or migrated.
pub async fn open_database(config: &Config) -> anyhow::Result<Database> {
    let url = config.database_url();
    let settings = PoolSettings {
        max_connections: config.database_max_connections,
        ..PoolSettings::default()
    };
    let database = Database::connect(&url, settings)
        .await
        .with_context(|| format!("opening the database at {}", redact(&url)))?;
    database.migrate().await.context(
        "migrating the database (where the application's role may not change the schema, \
         run `expense-tracker migrate` with the owner role's DATABASE_URL first: deploy/README.md)",
    )?;
    Ok(database)
}

impl Application {
    /// Opens and migrates the database, opens the event store and binds the listener.
    ///
    /// # Errors
    /// When the database cannot be opened or migrated, or the address cannot be bound.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        // Before anything opens the file: a second instance stops here with the reason.
        let instance = match sqlite_file(&config.database_url()) {
            Some(file) => {
                // Web instances wait for read models only a worker instance feeds, and a
                // worker instance has nobody to serve: on one file, one instance does both.
                anyhow::ensure!(
                    config.role == Role::All,
                    "ROLE={:?} needs PostgreSQL (DATABASE_URL=postgres://...): on SQLite one instance serves and runs the workers",
                    config.role
                );
                Some(InstanceGuard::take(&file)?)
            }
            None => None,
        };
        let (state, projections) = build_parts(config).await?;
        if instance.is_some() {
            catch_up_before_serving(&projections).await?;
        }
        if let (Some(email), Some(password)) = (&config.admin_email, &config.admin_password) {
            let outcome = ensure_admin(&state, "Administrator", email, password).await;
            match outcome {
                Ok(AdminSetup::Created(user_id)) => {
                    tracing::info!(%user_id, "created the first admin from ADMIN_EMAIL")
                }
                Ok(AdminSetup::AlreadyThere) => {
                    tracing::debug!("the ADMIN_EMAIL account exists already")
                }
                Err(error) => anyhow::bail!(
                    "cannot create the admin from ADMIN_EMAIL/ADMIN_PASSWORD: {error:?}"
                ),
            }
        }
        let mailer = mailer_from_settings(
            config.smtp_url.as_deref(),
            config.data_dir.join("mail"),
            &config.mail_from,
        )?;
        let templates = Arc::new(MailTemplates::load()?);
        let dispatcher = MailDispatcher::new(
            state.outbox.clone(),
            mailer,
            templates,
            Arc::clone(&state.mail_wake),
            state.clock.clone(),
        )
        .with_metrics(Arc::clone(&state.metrics));
        let leadership = Leadership::new(state.database.clone());
        let state = state.with_leases(leadership.leases());
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("binding {}", config.listen_addr))?;
        Ok(Self {
            listener,
            state,
            dispatcher,
            projections,
            seal_every_seconds: config.seal_every_seconds,
            pages: Arc::new(PageTemplates::load().context("parsing the page templates")?),
            role: config.role,
            leadership,
            _instance: instance,
        })
    }
}

/// On SQLite the read models have a file of their own (ADR 0030), which is new after an
/// upgrade from before it, or once deleted: the workers decide on what the read models say
/// (whom a ticket goes to, which reminders are due), and a read gives up waiting for them
/// after a few seconds, so nothing starts until they have caught up with the log. With
/// the read models up to date this is one read that finds nothing new.
async fn catch_up_before_serving(projections: &ProjectionRunner) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let applied = projections
        .catch_up()
        .await
        .context("bringing the read models up to date with the log")?;
    if applied > 0 {
        tracing::info!(
            events = applied,
            took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "read models caught up with the log before serving"
        );
    }
    Ok(())
}

/// How far the instances' clocks may be apart, as far as abandoned idempotency claims go.
const CLOCK_MARGIN: Duration = Duration::from_secs(5);

/// The request timeout of `seconds`, which must be a positive, finite number.
fn request_timeout(seconds: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|timeout| !timeout.is_zero())
        .with_context(|| {
            format!("REQUEST_TIMEOUT_SECONDS must be a positive number of seconds, not {seconds}")
        })
}

/// Everything requests and commands need: the migrated database, the event store, the
/// command service, tokens and the password hasher.
///
/// # Errors
/// When the database cannot be opened or migrated.
pub async fn build_state(config: &Config) -> anyhow::Result<AppState> {
    Ok(build_parts(config).await?.0)
}

/// The shared state, and the runner that keeps its read models up to date.
///
/// # Errors
/// When the database cannot be opened or migrated.
pub async fn build_parts(config: &Config) -> anyhow::Result<(AppState, ProjectionRunner)> {
    let request_timeout = request_timeout(config.request_timeout_seconds)?;
    let database = open_database(config).await?;
    let events = SqlEventStore::open(database.clone(), GroupCommitSettings::default())
        .await
        .context("opening the event store")?;
    let metrics = events.metrics();
    let passwords = PasswordHasher::new()
        .await
        .context("preparing the password hasher")?;
    let events: Arc<dyn EventStore> = Arc::new(events);
    let vault = Arc::new(PersonalDataVault::new(database.clone()));
    let read_models = projections::all();
    let projections = ProjectionRunner::new(
        Arc::clone(&events),
        database.clone(),
        read_models.clone(),
        projections::runner::DEFAULT_BATCH,
    )
    .await
    .context("registering the projections")?;
    let limits = RequestLimits::new(
        config.max_in_flight_requests,
        request_timeout,
        Arc::clone(&metrics),
    );
    let state = AppState::new(Services {
        read_models: ReadModels::new(
            projections.watch(),
            read_models.iter().map(|p| p.name().to_owned()),
            Arc::clone(&events),
        ),
        rebuilds: Rebuilds::new(Arc::clone(&events), database.clone(), read_models),
        tokens: AccessTokens::new(database.clone(), TokenPolicy::default()),
        login_throttle: LoginThrottle::new(database.clone(), ThrottlePolicy::default()),
        password_resets: PasswordResets::new(database.clone()),
        outbox: Outbox::new(database.clone(), RetryPolicy::default()),
        mail_wake: Arc::new(Notify::new()),
        base_url: config.base_url(),
        // Every request is stopped at its timeout: a claim older than that (and a margin
        // for the instances' clocks) belongs to a request that is gone.
        idempotency: IdempotencyKeys::new(database.clone())
            .abandoned_after(request_timeout + CLOCK_MARGIN),
        default_currency: Currency::parse(&config.default_currency).context("DEFAULT_CURRENCY")?,
        commands: CommandService::new(Arc::clone(&events), Arc::clone(&vault))
            .with_metrics(Arc::clone(&metrics)),
        metrics,
        web_sessions: WebSessions::new(database.clone(), TokenPolicy::default().absolute)
            .with_clock(config.clock.clone()),
        clock: config.clock.clone(),
        receipts: Receipts::open(&config.object_store_url(), database.clone())
            .context("opening the receipt store (OBJECT_STORE_URL)")?,
        audit_reads: AuditReads::new(database.clone()),
        limits,
        leases: Leases::default(),
        vault,
        database,
        events,
        passwords,
    });
    Ok((state, projections))
}

impl Application {
    /// The address actually bound (the real port when port 0 was asked for).
    ///
    /// # Errors
    /// When the socket cannot tell its address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish and closes
    /// the database.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let database = self.state.database.clone();
        let router = if self.role.serves_requests() {
            http::router(self.state.clone(), self.pages)
        } else {
            http::operations_router(self.state.clone())
        };
        let workers = Workers::start(
            self.role,
            &self.leadership,
            WorkerParts {
                state: self.state,
                projections: Arc::new(self.projections),
                dispatcher: self.dispatcher,
                seal_every: Duration::from_secs(self.seal_every_seconds.max(1)),
            },
        );
        axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        // Requests are drained; each worker stops at its next safe point and gives its
        // lease back, so another instance takes it over at once.
        workers.stop().await;
        database.close().await;
        Ok(())
    }
}

/// The file a `sqlite://` URL names, if it does.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

/// Completes on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database whose read models' file is gone (deleted, or from before ADR 0030) is
    /// served only once the read models are made again from the log: before any worker
    /// starts, and before the first request.
    #[tokio::test]
    async fn a_missing_read_models_file_is_made_again_before_anything_is_served() {
        let data = tempfile::tempdir().expect("a data directory");
        let config = Config::for_tests(data.path().to_path_buf(), None);
        let (state, runner) = build_parts(&config).await.expect("state");
        crate::demo_data::generate(&state, 2, 300, &mut |_| {})
            .await
            .expect("a history");
        runner.catch_up().await.expect("projected");
        let head = state.events.head().await.expect("head");
        state.database.close().await;
        drop((state, runner));

        let file = data.path().join("expense-tracker.db");
        let beside = infrastructure::database::read_models_file(&file).expect("beside");
        std::fs::remove_file(&beside).expect("the read models' file removed");

        let app = Application::build(&config).await.expect("built");
        for status in app.projections.statuses().await.expect("statuses") {
            assert_eq!(
                (status.position, status.failure),
                (head, None),
                "{} before serving",
                status.name
            );
        }
        app.state.database.close().await;
    }
}
