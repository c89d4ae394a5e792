//! The auditors' commands: `verify`, `seal`, `replay` and `export`, with progress bars.

use std::io::Write;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use infrastructure::tamper_evidence::{self, Seal};
use uuid::Uuid;

use super::export::{Export, ExportFormat};
use crate::state::AppState;

fn bar(length: u64, what: &str) -> anyhow::Result<ProgressBar> {
    let bar = ProgressBar::new(length);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>8} [{bar:40}] {pos}/{len} events, {per_sec}, {eta} left",
        )?
        .progress_chars("=> "),
    );
    bar.set_prefix(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    Ok(bar)
}

/// Verifies the whole log against its chain, the stored seals and `outside` ones; prints
/// the report as JSON and a line with the events/s. Answers whether the log is intact.
///
/// # Errors
/// When the database fails.
pub async fn verify(state: &AppState, outside: &[Seal]) -> anyhow::Result<bool> {
    let head = state.events.head().await?;
    let bar = bar(head.0, "verify")?;
    let started = Instant::now();
    let report = tamper_evidence::verify(&state.database, outside, |checked| {
        bar.set_position(checked);
    })
    .await;
    bar.finish_and_clear();
    let report = report?;
    let elapsed = started.elapsed().as_secs_f64();
    println!("{}", serde_json::to_string_pretty(&report)?);
    eprintln!(
        "checked {} events and {} seals in {elapsed:.1} s ({:.0} events/s): {}",
        report.checked,
        report.seals_checked,
        report.checked as f64 / elapsed.max(1e-9),
        if report.ok { "intact" } else { "TAMPERED" }
    );
    Ok(report.ok)
}

/// Seals the head and prints the seal, to be kept outside the database.
///
/// # Errors
/// When the database fails.
pub async fn seal(state: &AppState) -> anyhow::Result<()> {
    match tamper_evidence::seal(&state.database, state.now()).await? {
        Some(seal) => {
            println!("{seal}");
            eprintln!(
                "keep this line outside the database; `expense-tracker verify --seal {seal}` \
                 proves later that the log up to position {} is unchanged and still there",
                seal.position
            );
        }
        None => eprintln!("the log is empty: nothing to seal"),
    }
    Ok(())
}

/// Prints a customer's state as of an instant, as JSON.
///
/// # Errors
/// When there is no such customer or the log cannot be read.
pub async fn replay(state: &AppState, customer: Uuid, as_of: DateTime<Utc>) -> anyhow::Result<()> {
    let Some(at) = super::as_of::customer_state(state, customer, as_of).await? else {
        anyhow::bail!("no account had the id {customer} at {as_of}");
    };
    println!("{}", serde_json::to_string_pretty(&at)?);
    Ok(())
}

/// Writes a customer's history, or the whole log, to `output` (standard output when `None`).
///
/// # Errors
/// When the log cannot be read or the output written.
pub async fn export(
    state: &AppState,
    customer: Option<Uuid>,
    format: ExportFormat,
    output: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let mut sink: Box<dyn Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let total = match customer {
        Some(_) => 0,
        None => state.events.head().await?.0,
    };
    let bar = bar(total, "export")?;
    let started = Instant::now();
    let mut export = Export::start(state, customer, format).await?;
    let mut written = 0;
    while let Some((chunk, events)) = export.next_chunk().await? {
        sink.write_all(&chunk)?;
        written += events;
        bar.set_position(written);
    }
    sink.flush()?;
    bar.finish_and_clear();
    eprintln!(
        "exported {written} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
