//! The vocabulary of the event store: what goes in, what comes out, and what can go wrong.
//!
//! These types are shared by both backends and by every caller (the command side, the
//! projections, the process managers), so they say nothing about SQL.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

/// The name of one event stream, e.g. `wallet-0190f3c4-...`.
///
/// Printable ASCII without spaces, 1 to 200 characters, so that it reads well in logs and
/// exports and can never be confused with SQL or a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId(String);

/// Why a string is not a valid [`StreamId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidStreamId {
    /// The name is empty.
    #[error("a stream id must not be empty")]
    Empty,
    /// The name is longer than [`StreamId::MAX_LEN`].
    #[error("a stream id must be at most {max} characters", max = StreamId::MAX_LEN)]
    TooLong,
    /// The name holds a space, a control character or a non-ASCII character.
    #[error("a stream id may only hold printable ASCII characters without spaces")]
    BadCharacter,
}

impl StreamId {
    /// The longest stream id accepted.
    pub const MAX_LEN: usize = 200;

    /// Parses a stream id.
    ///
    /// # Errors
    /// [`InvalidStreamId`] when the name is empty, too long or holds a character other than
    /// printable ASCII without spaces.
    pub fn parse(name: impl Into<String>) -> Result<Self, InvalidStreamId> {
        let name = name.into();
        if name.is_empty() {
            return Err(InvalidStreamId::Empty);
        }
        if name.len() > Self::MAX_LEN {
            return Err(InvalidStreamId::TooLong);
        }
        if !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidStreamId::BadCharacter);
        }
        Ok(Self(name))
    }

    /// The stream of one aggregate instance: `"{category}-{id}"`.
    #[must_use]
    pub fn for_aggregate(category: &str, id: Uuid) -> Self {
        Self(format!("{category}-{id}"))
    }

    /// The name as stored.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for StreamId {
    type Error = InvalidStreamId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<StreamId> for String {
    fn from(value: StreamId) -> Self {
        value.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A place in the global log. Position 0 is "before the first event"; the first event
/// stored has position 1 and every later one the next number, with no gaps.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Position(pub u64);

impl Position {
    /// Before the first event.
    pub const START: Self = Self(0);
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What the writer believes the stream's version to be. The version of a stream is the
/// number of events in it: 0 for a stream that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version (`Exact(0)` is the same as `NoStream`).
    Exact(u64),
    /// Append whatever the version; used by writers that cannot conflict by construction.
    Any,
}

impl ExpectedVersion {
    /// Whether a stream currently at `actual` satisfies this expectation.
    #[must_use]
    pub fn admits(self, actual: u64) -> bool {
        match self {
            Self::NoStream => actual == 0,
            Self::Exact(expected) => expected == actual,
            Self::Any => true,
        }
    }
}

/// Who did something and why, stored with every event of a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// The command that produced the events; appending the same command to the same stream
    /// twice writes nothing the second time.
    pub command_id: Uuid,
    /// Shared by everything that one outside request set in motion.
    pub correlation_id: Uuid,
    /// The event or command that directly caused this one, if any.
    pub causation_id: Option<Uuid>,
    /// Who issued the command, e.g. `user:0190...` or `system:limit-process-manager`.
    pub actor: String,
    /// When the command was decided, from the command's clock (never the database's).
    pub recorded_at: DateTime<Utc>,
    /// The HTTP request that issued the command (its `x-request-id`), so that a log line
    /// and an event can be matched; absent for background work and older events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// One event to append. The store assigns its stream version and global position.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Unique across the whole log.
    pub event_id: Uuid,
    /// Stable name of the event, e.g. `ExpenseRecorded`.
    pub event_type: String,
    /// Version of the payload's shape, for upcasting old events.
    pub schema_version: u16,
    /// The serialised payload; stored byte for byte.
    pub payload: Box<RawValue>,
}

/// A value that must belong to one stream only, e.g. an email address across accounts.
/// Only a SHA-256 digest of the value is kept, never the value itself.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UniqueClaim {
    scope: String,
    digest: [u8; 32],
}

impl UniqueClaim {
    /// A claim on `value` within `scope` (e.g. `"email"`). Normalise the value first: the
    /// claim compares digests, so `A@x.com` and `a@x.com` are different values here.
    #[must_use]
    pub fn new(scope: &str, value: &str) -> Self {
        use sha2::Digest as _;
        Self {
            scope: scope.to_owned(),
            digest: sha2::Sha256::digest(value.as_bytes()).into(),
        }
    }

    /// What kind of value.
    #[must_use]
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The digest stored for the value.
    #[must_use]
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    pub(crate) fn from_stored(scope: String, digest: &[u8]) -> Option<Self> {
        Some(Self {
            scope,
            digest: digest.try_into().ok()?,
        })
    }
}

impl fmt::Debug for UniqueClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UniqueClaim({}:", self.scope)?;
        for byte in &self.digest[..4] {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("…)")
    }
}

/// A side effect to carry out because of an append (a mail, say), stored in the outbox in
/// the same transaction as the events, and only if they are stored.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    /// Unique; the dispatcher sends each message once.
    pub message_id: Uuid,
    /// What to do, e.g. `password_reset`.
    pub kind: String,
    /// What doing it needs.
    pub payload: serde_json::Value,
}

/// A batch of events from one command for one stream, appended atomically, with the
/// unique values it claims or gives up and the outbox messages it causes, in the same
/// transaction.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    /// The stream to append to.
    pub stream: StreamId,
    /// The version the writer decided against.
    pub expected: ExpectedVersion,
    /// Shared by every event of the batch.
    pub metadata: EventMetadata,
    /// At least one event.
    pub events: Vec<NewEvent>,
    /// Values the stream takes; if another stream owns one, the whole append is refused
    /// with [`AppendError::ClaimTaken`]. Claiming a value the stream already owns is a no-op.
    pub claims: Vec<UniqueClaim>,
    /// Values the stream gives up (ignored where it does not own them).
    pub releases: Vec<UniqueClaim>,
    /// Side effects, stored only if the events are (not for a refused or replayed append).
    pub outbox: Vec<OutboxMessage>,
    /// The command whose append this one was decided after, before that one's outcome was
    /// known (see [`AppendRequest::following`]). `None` for a decision on stored events.
    pub follows: Option<Uuid>,
}

impl AppendRequest {
    /// A request without claims.
    #[must_use]
    pub fn new(
        stream: StreamId,
        expected: ExpectedVersion,
        metadata: EventMetadata,
        events: Vec<NewEvent>,
    ) -> Self {
        Self {
            stream,
            expected,
            metadata,
            events,
            claims: Vec::new(),
            releases: Vec::new(),
            outbox: Vec::new(),
            follows: None,
        }
    }

    /// The same request, decided on the state that the append of `command_id` (to the same
    /// stream, submitted earlier) would leave. It is refused as a [`AppendError::Conflict`]
    /// unless that append was written: its expected version alone cannot tell, since
    /// another writer may have taken the stream to that very version with other events.
    #[must_use]
    pub fn following(mut self, command_id: Option<Uuid>) -> Self {
        self.follows = command_id;
        self
    }
}

/// Where an appended batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendOutcome {
    /// Stream version of the batch's first event.
    pub first_version: u64,
    /// Stream version of the batch's last event: the stream's version after the append.
    pub last_version: u64,
    /// Global position of the batch's first event.
    pub first_position: Position,
    /// Global position of the batch's last event.
    pub last_position: Position,
    /// True when the command had already been appended and nothing was written this time.
    pub already_stored: bool,
}

/// One event as stored.
#[derive(Debug, Clone)]
pub struct RecordedEvent {
    /// Place in the global log.
    pub position: Position,
    /// The stream it belongs to.
    pub stream: StreamId,
    /// Its version within the stream (1 for the first event).
    pub version: u64,
    /// Unique across the whole log.
    pub event_id: Uuid,
    /// Stable name of the event.
    pub event_type: String,
    /// Version of the payload's shape.
    pub schema_version: u16,
    /// The payload, byte for byte as appended.
    pub payload: Box<RawValue>,
    /// Who, when and why.
    pub metadata: EventMetadata,
}

/// The storage itself failed: the database is unreachable, a query broke, or a stored row
/// cannot be read back. Never a fault of the caller's request.
#[derive(Debug, thiserror::Error)]
#[error("event store failure: {context}")]
pub struct StoreError {
    context: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    pub(crate) fn new(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    pub(crate) fn message(context: impl Into<String>) -> Self {
        Self {
            context: context.into(),
            source: None,
        }
    }
}

/// Why an append was refused. Only [`AppendError::Store`] is an infrastructure failure; the
/// other variants are answers about the request.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The stream is not at the expected version: someone else appended first.
    #[error("stream {stream} is at version {actual}, expected {expected:?}")]
    Conflict {
        /// The stream appended to.
        stream: StreamId,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// The version the stream is at.
        actual: u64,
    },
    /// An event id of the batch is already stored (or used twice in the batch).
    #[error("event id {event_id} is already stored")]
    DuplicateEventId {
        /// The offending id.
        event_id: Uuid,
    },
    /// A value the append claims belongs to another stream.
    #[error("the {scope} is already taken")]
    ClaimTaken {
        /// What kind of value, e.g. `"email"`.
        scope: String,
        /// The stream that owns it.
        owner: StreamId,
    },
    /// The batch holds no event.
    #[error("an append must carry at least one event")]
    EmptyBatch,
    /// The storage failed; nothing of the batch was written.
    #[error(transparent)]
    Store(#[from] StoreError),
}
