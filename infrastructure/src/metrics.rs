//! What `/metrics` counts in this process, besides what it reads from the database:
//! request latency per route, commands by type and outcome, event-store append batch sizes,
//! mail failures. Plain atomics and a small histogram written out in Prometheus text format
//! by [`Metrics::render`]: one format, the one `/metrics` already speaks.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds: 0.25 ms to about 4 s.
const LATENCY_BUCKETS: [f64; 15] = [
    0.000_25, 0.000_5, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024,
    2.048, 4.096,
];

/// Upper bounds of the append batch sizes (events per committed batch).
const BATCH_BUCKETS: [f64; 12] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

/// A cumulative histogram with fixed bucket bounds.
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    // In millionths of the unit, so that it stays an integer.
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// A histogram over `bounds` (ascending upper bounds; `+Inf` is implied).
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Counts one observation of `value`.
    fn observe(&self, value: f64) {
        if let Some(bucket) = self.bounds.iter().position(|bound| value <= *bound) {
            self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        }
        // Rounded to millionths: the sum is for averages, not for exact accounting.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let micros = (value * 1e6).round().max(0.0) as u64;
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes the histogram as `name{labels,le="..."}` lines.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        #[allow(clippy::cast_precision_loss)]
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// How a command ended, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CommandOutcome {
    /// Decided and stored (or found stored already).
    Accepted,
    /// Refused by the aggregate or a unique value.
    Rejected,
    /// Lost every race for its stream.
    Conflict,
    /// The store failed.
    Failed,
}

impl CommandOutcome {
    const ALL: [Self; 4] = [Self::Accepted, Self::Rejected, Self::Conflict, Self::Failed];

    fn label(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Conflict => "conflict",
            Self::Failed => "failed",
        }
    }
}

/// Request latencies by route pattern, method and status: nested, so that a series is
/// found by borrowed strings without making a key.
type RequestSeries = BTreeMap<String, BTreeMap<String, BTreeMap<u16, Histogram>>>;

/// The counters of one process. Each series is found under a read lock, so requests and
/// commands only count concurrently; the write lock is taken once per new series.
#[derive(Debug)]
pub struct Metrics {
    requests: RwLock<RequestSeries>,
    append_batches: Histogram,
    /// Per command type, one counter per [`CommandOutcome`], in [`CommandOutcome::ALL`]'s order.
    commands: RwLock<BTreeMap<String, [AtomicU64; 4]>>,
    mail_failures: AtomicU64,
    /// Requests turned away because as many as the server takes were in flight.
    requests_shed: AtomicU64,
    /// Requests stopped at the request timeout.
    requests_timed_out: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: RwLock::new(BTreeMap::new()),
            append_batches: Histogram::new(&BATCH_BUCKETS),
            commands: RwLock::new(BTreeMap::new()),
            mail_failures: AtomicU64::new(0),
            requests_shed: AtomicU64::new(0),
            requests_timed_out: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// One request to `route` (the route's pattern, never the raw path: ids would make
    /// every request a series of its own) answered with `status` after `took`.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let seconds = took.as_secs_f64();
        if let Ok(requests) = self.requests.read()
            && let Some(histogram) = requests
                .get(route)
                .and_then(|by_method| by_method.get(method))
                .and_then(|by_status| by_status.get(&status))
        {
            histogram.observe(seconds);
            return;
        }
        if let Ok(mut requests) = self.requests.write() {
            requests
                .entry(route.to_owned())
                .or_default()
                .entry(method.to_owned())
                .or_default()
                .entry(status)
                .or_insert_with(|| Histogram::new(&LATENCY_BUCKETS))
                .observe(seconds);
        }
    }

    /// One command of type `command` that ended as `outcome`.
    pub fn command(&self, command: &str, outcome: CommandOutcome) {
        let at = outcome as usize;
        if let Ok(commands) = self.commands.read()
            && let Some(counters) = commands.get(command)
        {
            counters[at].fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Ok(mut commands) = self.commands.write() {
            commands.entry(command.to_owned()).or_default()[at].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One batch of `events` committed to the event store by the group committer.
    pub fn append_batch(&self, events: usize) {
        #[allow(clippy::cast_precision_loss)]
        self.append_batches.observe(events as f64);
    }

    /// One attempt to send a mail that failed.
    pub fn mail_failed(&self) {
        self.mail_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// A request answered 503 because the server was working on as many as it takes.
    pub fn request_shed(&self) {
        self.requests_shed.fetch_add(1, Ordering::Relaxed);
    }

    /// A request stopped at the request timeout.
    pub fn request_timed_out(&self) {
        self.requests_timed_out.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends everything in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP expense_tracker_http_request_duration_seconds Time to answer a request, by route.\n");
        out.push_str("# TYPE expense_tracker_http_request_duration_seconds histogram\n");
        if let Ok(requests) = self.requests.read() {
            let series = requests.iter().flat_map(|(route, by_method)| {
                by_method.iter().flat_map(move |(method, by_status)| {
                    by_status
                        .iter()
                        .map(move |(status, histogram)| (route, method, status, histogram))
                })
            });
            for (route, method, status, histogram) in series {
                let labels = format!(
                    "method=\"{method}\",route=\"{}\",status=\"{status}\"",
                    escape(route)
                );
                histogram.render(
                    out,
                    "expense_tracker_http_request_duration_seconds",
                    &labels,
                );
            }
        }
        out.push_str(
            "# HELP expense_tracker_commands_total Commands decided, by type and outcome.\n",
        );
        out.push_str("# TYPE expense_tracker_commands_total counter\n");
        if let Ok(commands) = self.commands.read() {
            for (command, counters) in commands.iter() {
                for (outcome, counter) in CommandOutcome::ALL.iter().zip(counters) {
                    let count = counter.load(Ordering::Relaxed);
                    if count > 0 {
                        let _ = writeln!(
                            out,
                            "expense_tracker_commands_total{{command=\"{command}\",outcome=\"{}\"}} {count}",
                            outcome.label()
                        );
                    }
                }
            }
        }
        out.push_str("# HELP expense_tracker_append_batch_events Events per batch the event store committed in one transaction.\n");
        out.push_str("# TYPE expense_tracker_append_batch_events histogram\n");
        self.append_batches
            .render(out, "expense_tracker_append_batch_events", "");
        out.push_str(
            "# HELP expense_tracker_mail_failures_total Attempts to send a mail that failed.\n",
        );
        out.push_str("# TYPE expense_tracker_mail_failures_total counter\n");
        let _ = writeln!(
            out,
            "expense_tracker_mail_failures_total {}",
            self.mail_failures.load(Ordering::Relaxed)
        );
        for (name, help, counter) in [
            (
                "expense_tracker_http_requests_shed_total",
                "Requests answered 503 because as many as the server takes were in flight.",
                &self.requests_shed,
            ),
            (
                "expense_tracker_http_requests_timed_out_total",
                "Requests stopped at the request timeout and answered 503.",
                &self.requests_timed_out,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", counter.load(Ordering::Relaxed));
        }
    }
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The name of a command's variant, from its `Debug` text (`RecordExpense { .. }` gives
/// `RecordExpense`): only the name is kept, never the fields, which may hold personal data.
/// Formatting stops at the end of the name, so the fields are never even written out.
#[must_use]
pub fn command_name(command: &dyn std::fmt::Debug) -> String {
    /// Keeps the leading identifier and fails the formatting as soon as it ends.
    struct Name(String);

    impl std::fmt::Write for Name {
        fn write_str(&mut self, text: &str) -> std::fmt::Result {
            match text.find(|c: char| !(c.is_alphanumeric() || c == '_')) {
                Some(end) => {
                    self.0.push_str(&text[..end]);
                    Err(std::fmt::Error)
                }
                None => {
                    self.0.push_str(text);
                    Ok(())
                }
            }
        }
    }

    let mut name = Name(String::new());
    // The error is ours: it is how the name ends.
    let _ = write!(name, "{command:?}");
    name.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_cumulatively_and_sums() {
        let histogram = Histogram::new(&LATENCY_BUCKETS);
        histogram.observe(0.0003);
        histogram.observe(0.003);
        histogram.observe(10.0);
        let mut out = String::new();
        histogram.render(&mut out, "t", "route=\"/x\"");
        assert!(
            out.contains("t_bucket{route=\"/x\",le=\"0.00025\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("t_bucket{route=\"/x\",le=\"0.0005\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("t_bucket{route=\"/x\",le=\"0.004\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("t_bucket{route=\"/x\",le=\"4.096\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("t_bucket{route=\"/x\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("t_count{route=\"/x\"} 3\n"), "{out}");
        assert!(out.contains("t_sum{route=\"/x\"} 10.0033\n"), "{out}");
    }

    #[test]
    fn requests_and_commands_are_counted_per_series() {
        let metrics = Metrics::default();
        let took = Duration::from_millis(3);
        for _ in 0..2 {
            metrics.request("POST", "/api/v1/expenses", 201, took);
        }
        metrics.request("POST", "/api/v1/expenses", 422, took);
        metrics.request("GET", "/api/v1/expenses", 200, took);
        metrics.command("RecordExpense", CommandOutcome::Accepted);
        metrics.command("RecordExpense", CommandOutcome::Accepted);
        metrics.command("RecordExpense", CommandOutcome::Rejected);
        let mut out = String::new();
        metrics.render(&mut out);
        let name = "expense_tracker_http_request_duration_seconds_count";
        for (labels, count) in [
            (
                "method=\"POST\",route=\"/api/v1/expenses\",status=\"201\"",
                2,
            ),
            (
                "method=\"POST\",route=\"/api/v1/expenses\",status=\"422\"",
                1,
            ),
            (
                "method=\"GET\",route=\"/api/v1/expenses\",status=\"200\"",
                1,
            ),
        ] {
            assert!(
                out.contains(&format!("{name}{{{labels}}} {count}\n")),
                "{out}"
            );
        }
        let commands = "expense_tracker_commands_total{command=\"RecordExpense\"";
        assert!(
            out.contains(&format!("{commands},outcome=\"accepted\"}} 2\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!("{commands},outcome=\"rejected\"}} 1\n")),
            "{out}"
        );
        assert!(!out.contains("outcome=\"conflict\""), "{out}");
    }

    #[test]
    fn a_command_is_named_by_its_variant_alone() {
        #[derive(Debug)]
        #[allow(dead_code)]
        enum Sample {
            RecordExpense { amount: u32, description: String },
            Close(u8),
            Open,
        }
        let record = Sample::RecordExpense {
            amount: 12,
            description: "private".into(),
        };
        assert_eq!(command_name(&record), "RecordExpense");
        assert_eq!(command_name(&Sample::Close(1)), "Close");
        assert_eq!(command_name(&Sample::Open), "Open");
    }
}
