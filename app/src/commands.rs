//! The command side: load an aggregate from its stream, let it decide, append what it
//! decided with the version it decided against. A conflict means someone else appended in
//! between; the command is then decided again on the newer state, a bounded number of
//! times, with the same command id so that a retry can never apply it twice.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::{Aggregate, DomainEvent};
use infrastructure::event_codec::{decode_payload, encode};
use infrastructure::event_store::{
    AppendError, AppendOutcome, AppendRequest, EventMetadata, EventStore, ExpectedVersion,
    NewEvent, OutboxMessage, StreamId, UniqueClaim,
};
use infrastructure::personal_data::PersonalDataVault;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// How often a command is decided again after losing a race.
const ATTEMPTS: usize = 3;

/// Who asks and why: becomes the events' metadata.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// Identifies this command; a retry with the same id is applied once.
    pub command_id: Uuid,
    /// Shared by everything one outside request set in motion.
    pub correlation_id: Uuid,
    /// The event or command that caused this one, if any.
    pub causation_id: Option<Uuid>,
    /// e.g. `user:<id>`, `anonymous`, `operator`.
    pub actor: String,
    /// The command's instant.
    pub now: DateTime<Utc>,
}

impl CommandContext {
    /// A command started by an outside request.
    #[must_use]
    pub fn new(actor: impl Into<String>, now: DateTime<Utc>) -> Self {
        let command_id = Uuid::now_v7();
        Self {
            command_id,
            correlation_id: command_id,
            causation_id: None,
            actor: actor.into(),
            now,
        }
    }
}

/// Why a command did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<R> {
    /// The aggregate refused it (a 4xx for the caller).
    #[error("rejected: {0}")]
    Rejected(R),
    /// A unique value it needs belongs to another aggregate.
    #[error("the {scope} is already taken")]
    ValueTaken {
        /// What kind of value, e.g. `"email"`.
        scope: String,
    },
    /// Others kept appending to the same stream; every attempt lost the race.
    #[error("the {0} changed concurrently too often")]
    Conflict(StreamId),
    /// The infrastructure failed.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// What a command did.
#[derive(Debug)]
pub struct Executed<A> {
    /// The aggregate after the command.
    pub state: A,
    /// Where its events landed (`None` when it decided nothing).
    pub outcome: Option<AppendOutcome>,
}

/// A turn on one stream; dropping it lets the next command in, and forgets the stream's
/// lock when nobody else waits for it.
struct StreamTurn {
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    stream: StreamId,
    in_flight: Arc<std::sync::Mutex<HashMap<StreamId, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Drop for StreamTurn {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Only the map holds it now: nobody is waiting.
        if in_flight
            .get(&self.stream)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            in_flight.remove(&self.stream);
        }
    }
}

/// Loads, decides and appends.
#[derive(Debug, Clone)]
pub struct CommandService {
    store: Arc<dyn EventStore>,
    vault: Arc<PersonalDataVault>,
    /// One lock per stream with a command in flight: commands on one aggregate take turns in
    /// this process instead of racing to conflicts (a hot wallet would otherwise thrash).
    in_flight: Arc<std::sync::Mutex<HashMap<StreamId, Arc<tokio::sync::Mutex<()>>>>>,
}

impl CommandService {
    /// Commands against `store`; personal data in events is sealed with `vault`.
    #[must_use]
    pub fn new(store: Arc<dyn EventStore>, vault: Arc<PersonalDataVault>) -> Self {
        Self {
            store,
            vault,
            in_flight: Arc::default(),
        }
    }

    /// Waits for this process's turn on `stream`; the turn ends when the guard drops.
    async fn turn_on(&self, stream: &StreamId) -> StreamTurn {
        let lock = {
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(in_flight.entry(stream.clone()).or_default())
        };
        StreamTurn {
            guard: Some(lock.lock_owned().await),
            stream: stream.clone(),
            in_flight: Arc::clone(&self.in_flight),
        }
    }

    /// The stream of one aggregate instance.
    #[must_use]
    pub fn stream_of<A: Aggregate>(id: Uuid) -> StreamId {
        StreamId::for_aggregate(A::CATEGORY, id)
    }

    /// Encodes events, sealing each one's personal data with its owner's key.
    async fn encode_all<E: Serialize + DomainEvent>(
        &self,
        events: &[E],
        context: &CommandContext,
    ) -> anyhow::Result<Vec<NewEvent>> {
        let mut encoded = Vec::with_capacity(events.len());
        for event in events {
            let mut new = encode(event, Uuid::now_v7())?;
            if let Some((subject, fields)) = event.personal_data() {
                new.payload = self
                    .vault
                    .seal_fields(&new.payload, subject, fields, context.now)
                    .await?;
            }
            encoded.push(new);
        }
        Ok(encoded)
    }

    /// The aggregate id inside one of its streams' names.
    #[must_use]
    pub fn id_in<A: Aggregate>(stream: &StreamId) -> Option<Uuid> {
        stream
            .as_str()
            .strip_prefix(A::CATEGORY)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|id| Uuid::parse_str(id).ok())
    }

    /// The aggregate's current state and stream version.
    ///
    /// # Errors
    /// When the stream cannot be read or decoded.
    pub async fn load<A>(&self, id: Uuid) -> anyhow::Result<(A, u64)>
    where
        A: Aggregate,
        A::Event: DeserializeOwned,
    {
        let stream = Self::stream_of::<A>(id);
        let recorded = self.store.read_stream(&stream, 0).await?;
        let version = recorded.last().map_or(0, |e| e.version);
        let mut state = A::default();
        for event in &recorded {
            let payload = self.vault.unseal(&event.payload).await?;
            state = state.evolve(&decode_payload::<A::Event>(event, &payload)?);
        }
        Ok((state, version))
    }

    /// Decides `command` on the aggregate `id` and appends the outcome.
    ///
    /// # Errors
    /// [`CommandError`]: rejected, a unique value taken, lost races, or a failure.
    pub async fn execute<A>(
        &self,
        id: Uuid,
        command: &A::Command,
        context: &CommandContext,
    ) -> Result<Executed<A>, CommandError<A::Rejection>>
    where
        A: Aggregate,
        A::Event: Serialize + DeserializeOwned,
    {
        self.execute_with_outbox(id, command, context, Vec::new())
            .await
    }

    /// As [`CommandService::execute`], and stores `outbox` messages in the same transaction
    /// as the events (not at all when the command is refused or decides nothing).
    ///
    /// # Errors
    /// As [`CommandService::execute`].
    pub async fn execute_with_outbox<A>(
        &self,
        id: Uuid,
        command: &A::Command,
        context: &CommandContext,
        outbox: Vec<OutboxMessage>,
    ) -> Result<Executed<A>, CommandError<A::Rejection>>
    where
        A: Aggregate,
        A::Event: Serialize + DeserializeOwned,
    {
        let stream = Self::stream_of::<A>(id);
        let _turn = self.turn_on(&stream).await;
        for _ in 0..ATTEMPTS {
            let (state, version) = self.load::<A>(id).await?;
            let events = state.decide(command).map_err(CommandError::Rejected)?;
            if events.is_empty() {
                return Ok(Executed {
                    state,
                    outcome: None,
                });
            }
            let values = state.unique_values(&events);
            let mut request = AppendRequest::new(
                stream.clone(),
                if version == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(version)
                },
                EventMetadata {
                    command_id: context.command_id,
                    correlation_id: context.correlation_id,
                    causation_id: context.causation_id,
                    actor: context.actor.clone(),
                    recorded_at: context.now,
                },
                self.encode_all(&events, context).await?,
            );
            request.claims = values
                .claimed
                .iter()
                .map(|v| UniqueClaim::new(v.scope, &v.value))
                .collect();
            request.releases = values
                .released
                .iter()
                .map(|v| UniqueClaim::new(v.scope, &v.value))
                .collect();
            request.outbox.clone_from(&outbox);
            match self.store.append(request).await {
                Ok(outcome) if outcome.already_stored => {
                    // Applied by an earlier attempt of this very command: report today's state.
                    let (state, _) = self.load::<A>(id).await?;
                    return Ok(Executed {
                        state,
                        outcome: Some(outcome),
                    });
                }
                Ok(outcome) => {
                    let state = events.iter().fold(state, A::evolve);
                    return Ok(Executed {
                        state,
                        outcome: Some(outcome),
                    });
                }
                Err(AppendError::Conflict { .. }) => {}
                Err(AppendError::ClaimTaken { scope, .. }) => {
                    return Err(CommandError::ValueTaken { scope });
                }
                Err(other) => return Err(CommandError::Failed(other.into())),
            }
        }
        Err(CommandError::Conflict(stream))
    }
}
