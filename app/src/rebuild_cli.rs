//! `expense-tracker rebuild [NAME]`: rebuilds with a progress bar (events done, events per
//! second, time left) and a closing line per read model.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::state::AppState;

/// Rebuilds every read model of `names` in one pass over the log, showing progress on the
/// terminal, then a line per read model.
///
/// # Errors
/// When a rebuild fails (the read models are then left as they were).
pub async fn rebuild_all(state: &AppState, names: &[String]) -> anyhow::Result<()> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{bar:40}] {pos}/{len} events, {per_sec}, {eta} left",
        )?
        .progress_chars("=> "),
    );
    bar.set_prefix(names.join(", "));
    bar.enable_steady_tick(Duration::from_millis(200));
    let reports = state
        .rebuilds
        .run(names, &mut |progress| {
            bar.set_length(progress.head.0);
            bar.set_position(progress.position.0);
        })
        .await;
    bar.finish_and_clear();
    for report in reports? {
        let differences = report.differences();
        let phases: Vec<String> = report
            .phases
            .iter()
            .map(|(phase, took)| format!("{phase} {:.1} s", took.as_secs_f64()))
            .collect();
        println!(
            "rebuilt {}: {} events in {:.1} s ({}), {:.0} events/s; {}",
            report.name,
            report.events,
            report.elapsed.as_secs_f64(),
            phases.join(", "),
            report.events_per_second(),
            if differences.is_empty() {
                "identical to the live tables it replaced".to_owned()
            } else {
                let tables: Vec<String> = differences
                    .iter()
                    .map(|t| {
                        format!(
                            "{} ({} rows live, {} rebuilt)",
                            t.table, t.live_rows, t.rebuilt_rows
                        )
                    })
                    .collect();
                format!("differed from the live tables in {}", tables.join(", "))
            }
        );
    }
    Ok(())
}
