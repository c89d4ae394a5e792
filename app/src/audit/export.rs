//! Exporting a customer's history or the whole log as CSV or JSON Lines, a page at a time,
//! so that neither the server nor the CLI ever holds more than one page.

use infrastructure::event_store::search::{self, EventQuery};
use infrastructure::event_store::{Position, RecordedEvent};
use uuid::Uuid;

use super::browser::{EventView, view};
use crate::state::AppState;

/// Events rendered per page.
const PAGE: u32 = 1_000;

/// How each event is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// A header, then one row per event; the payload as JSON text in its own column.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

impl ExportFormat {
    /// `csv` or `jsonl`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "csv" => Some(Self::Csv),
            "jsonl" | "ndjson" => Some(Self::JsonLines),
            _ => None,
        }
    }

    /// The answer's media type.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::JsonLines => "application/x-ndjson",
        }
    }

    /// The usual file name ending.
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::JsonLines => "jsonl",
        }
    }
}

const CSV_HEADER: [&str; 12] = [
    "position",
    "recorded_at",
    "stream",
    "version",
    "event_type",
    "schema_version",
    "event_id",
    "command_id",
    "correlation_id",
    "causation_id",
    "actor",
    "payload",
];

/// An export under way: each call to [`Export::next_chunk`] renders the next page.
#[derive(Debug)]
pub struct Export {
    state: AppState,
    streams: Option<Vec<String>>,
    format: ExportFormat,
    after: Position,
    header_written: bool,
    done: bool,
}

impl Export {
    /// An export of one customer's streams, or of the whole log.
    ///
    /// # Errors
    /// When the customer's ticket streams cannot be found.
    pub async fn start(
        state: &AppState,
        customer: Option<Uuid>,
        format: ExportFormat,
    ) -> anyhow::Result<Self> {
        let streams = match customer {
            Some(customer) => Some(super::streams_of_customer(&state.database, customer).await?),
            None => None,
        };
        Ok(Self {
            state: state.clone(),
            streams,
            format,
            after: Position::START,
            header_written: false,
            done: false,
        })
    }

    /// The next rendered page and how many events it holds; `None` once everything is out.
    ///
    /// # Errors
    /// When the log cannot be read or rendered.
    pub async fn next_chunk(&mut self) -> anyhow::Result<Option<(Vec<u8>, u64)>> {
        if self.done {
            return Ok(None);
        }
        let events: Vec<RecordedEvent> = match &self.streams {
            None => self.state.events.read_all(self.after, PAGE).await?,
            Some(streams) => {
                search::search(
                    &self.state.database,
                    &EventQuery {
                        streams: Some(streams.clone()),
                        after: self.after,
                        limit: PAGE,
                        ..EventQuery::default()
                    },
                )
                .await?
            }
        };
        let mut views = Vec::with_capacity(events.len());
        for event in &events {
            views.push(view(&self.state, event).await?);
        }
        let header = !std::mem::replace(&mut self.header_written, true);
        let mut out = Vec::new();
        match self.format {
            ExportFormat::Csv => {
                let mut writer = csv::Writer::from_writer(&mut out);
                if header {
                    writer.write_record(CSV_HEADER)?;
                }
                for view in &views {
                    writer.write_record(csv_row(view))?;
                }
                writer.flush()?;
            }
            ExportFormat::JsonLines => {
                for view in &views {
                    serde_json::to_writer(&mut out, view)?;
                    out.push(b'\n');
                }
            }
        }
        let Some(last) = events.last() else {
            self.done = true;
            return Ok((!out.is_empty()).then_some((out, 0)));
        };
        self.after = last.position;
        Ok(Some((out, events.len() as u64)))
    }
}

fn csv_row(view: &EventView) -> [String; 12] {
    [
        view.position.to_string(),
        view.recorded_at.to_rfc3339(),
        view.stream.clone(),
        view.version.to_string(),
        view.event_type.clone(),
        view.schema_version.to_string(),
        view.event_id.to_string(),
        view.command_id.to_string(),
        view.correlation_id.to_string(),
        view.causation_id.map(|c| c.to_string()).unwrap_or_default(),
        view.actor.clone(),
        view.payload.to_string(),
    ]
}
