//! Durable appends: group commit against one transaction per event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use infrastructure::event_store::{
    AppendRequest, EventMetadata, EventStore, ExpectedVersion, GroupCommitSettings, NewEvent,
    SqlEventStore, StreamId,
};
use infrastructure::testing::{TEST_POSTGRES_URL, TestDatabase};
use serde_json::value::RawValue;
use uuid::Uuid;

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Seconds each measured run lasts.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Runs per scenario; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Concurrent callers.
    #[arg(long, default_value_t = 64)]
    callers: usize,
    /// Run only the scenarios whose name contains this text.
    #[arg(long)]
    only: Option<String>,
    /// PostgreSQL server on which to create throw-away databases; PostgreSQL is skipped
    /// without it.
    #[arg(long, env = TEST_POSTGRES_URL)]
    postgres_url: Option<String>,
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite,
    /// The server's URL.
    Postgres(String),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres(_) => "PostgreSQL",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Scenario {
    name: &'static str,
    callers: usize,
    events_per_append: usize,
    settings: GroupCommitSettings,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let grouped = GroupCommitSettings::default();
    let naive = GroupCommitSettings {
        max_requests: 1,
        ..grouped
    };
    let scenarios = [
        Scenario {
            name: "group commit, 1 event per append",
            callers: options.callers,
            events_per_append: 1,
            settings: grouped,
        },
        Scenario {
            name: "baseline: 1 transaction per append",
            callers: options.callers,
            events_per_append: 1,
            settings: naive,
        },
        Scenario {
            name: "group commit, 100 events per append",
            callers: 16,
            events_per_append: 100,
            settings: grouped,
        },
    ];
    let mut backends = vec![Backend::Sqlite];
    match &options.postgres_url {
        Some(url) => backends.push(Backend::Postgres(url.clone())),
        None => eprintln!("PostgreSQL skipped: pass --postgres-url or set {TEST_POSTGRES_URL}"),
    }

    println!(
        "| backend | scenario | callers | events/s (median of {}) | spread (min..max) |",
        options.runs
    );
    println!("|---|---|---|---|---|");
    for backend in backends {
        let mut medians = Vec::new();
        for scenario in &scenarios {
            if options
                .only
                .as_ref()
                .is_some_and(|only| !scenario.name.contains(only.as_str()))
            {
                continue;
            }
            let mut rates = Vec::new();
            for _ in 0..options.runs {
                rates.push(
                    measure(
                        &backend,
                        *scenario,
                        Duration::from_secs_f64(options.seconds),
                    )
                    .await?,
                );
            }
            rates.sort_by(f64::total_cmp);
            let median = rates[rates.len() / 2];
            medians.push(median);
            println!(
                "| {} | {} | {} | {median:.0} | {:.0}..{:.0} |",
                backend.name(),
                scenario.name,
                scenario.callers,
                rates[0],
                rates[rates.len() - 1]
            );
        }
        if let [grouped, baseline, ..] = medians[..] {
            println!(
                "| {} | group commit / baseline | | {:.1}x | |",
                backend.name(),
                grouped / baseline
            );
        }
    }
    Ok(())
}

async fn measure(backend: &Backend, scenario: Scenario, duration: Duration) -> anyhow::Result<f64> {
    let database = match backend {
        Backend::Sqlite => TestDatabase::sqlite(),
        Backend::Postgres(server_url) => TestDatabase::postgres_on(server_url).await,
    };
    let store = Arc::new(SqlEventStore::open(database.connect().await, scenario.settings).await?);
    let started = Instant::now();
    let deadline = started + duration;
    let callers: Vec<_> = (0..scenario.callers)
        .map(|caller| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let stream = StreamId::for_aggregate("wallet", Uuid::new_v4());
                let mut version = 0u64;
                while Instant::now() < deadline {
                    let outcome = store
                        .append(append(&stream, version, scenario.events_per_append, caller))
                        .await?;
                    version = outcome.last_version;
                }
                anyhow::Ok(version)
            })
        })
        .collect();
    let mut events = 0u64;
    for caller in callers {
        events += caller.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(events as f64 / elapsed)
}

fn append(stream: &StreamId, version: u64, events: usize, caller: usize) -> AppendRequest {
    let command_id = Uuid::now_v7();
    AppendRequest::new(
        stream.clone(),
        ExpectedVersion::Exact(version),
        EventMetadata {
            command_id,
            correlation_id: command_id,
            causation_id: None,
            actor: format!("user:bench-{caller}"),
            recorded_at: Utc::now(), request_id: None,
        },
        (0..events)
            .map(|i| NewEvent {
                event_id: Uuid::now_v7(),
                event_type: "ExpenseRecorded".into(),
                schema_version: 1,
                payload: RawValue::from_string(format!(
                    r#"{{"expense_id":"{}","amount":"{}.{:02}","currency":"INR","category":"groceries","description":"weekly shop","spent_on":"2026-11-2{}"}}"#,
                    Uuid::now_v7(),
                    100 + i,
                    version % 100,
                    caller % 10
                ))
                .expect("the payload is valid JSON"),
            })
            .collect(),
    )
}
