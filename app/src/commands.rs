//! The command side: load an aggregate from its stream, let it decide, append what it
//! decided with the version it decided against. A conflict means someone else appended in
//! between; the command is then decided again on the newer state, a bounded number of
//! times, with the same command id so that a retry can never apply it twice.

use std::any::Any;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::{Aggregate, DomainEvent};
use infrastructure::event_codec::{decode_payload, encode};
use infrastructure::event_store::{
    AppendError, AppendOutcome, AppendRequest, EventMetadata, EventStore, ExpectedVersion,
    NewEvent, OutboxMessage, StreamId, UniqueClaim,
};
use infrastructure::metrics::{CommandOutcome, Metrics, command_name};
use infrastructure::personal_data::PersonalDataVault;
use lru::LruCache;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;
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
    /// The HTTP request that issued it, if one did (goes into the events' metadata).
    pub request_id: Option<String>,
}

impl CommandContext {
    /// A command started by an outside request.
    #[must_use]
    pub fn new(actor: impl Into<String>, now: DateTime<Utc>) -> Self {
        Self::with_command_id(actor, now, crate::repeatable_ids::new_id())
    }

    /// A command a request makes only when it finds it not made yet (opening the wallet
    /// the request needs). Its id is random, not drawn from the request's repeatable ids:
    /// a retry that finds the work done skips the command, and would otherwise draw every
    /// later id one place early and so not make the first attempt's ids (ADR 0023).
    #[must_use]
    pub fn once_only(actor: impl Into<String>, now: DateTime<Utc>) -> Self {
        Self::with_command_id(actor, now, Uuid::now_v7())
    }

    fn with_command_id(actor: impl Into<String>, now: DateTime<Utc>, command_id: Uuid) -> Self {
        Self {
            command_id,
            correlation_id: command_id,
            causation_id: None,
            actor: actor.into(),
            now,
            request_id: crate::http::observe::current_request_id(),
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

/// How many aggregates' states this process keeps decoded.
const CACHED_STATES: usize = 10_000;

/// A decoded aggregate and the stream version it reflects.
#[derive(Clone)]
struct CachedState {
    state: Arc<dyn Any + Send + Sync>,
    version: u64,
}

/// The most recently used aggregates' states. A hit is never trusted blindly: the events
/// appended after its version (by this or another instance) are read and applied, so the
/// cache saves decoding a stream's history, never a read of its tail.
struct StateCache(std::sync::Mutex<LruCache<StreamId, CachedState>>);

impl std::fmt::Debug for StateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateCache").finish_non_exhaustive()
    }
}

impl StateCache {
    fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self(std::sync::Mutex::new(LruCache::new(capacity)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<StreamId, CachedState>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get<A: Clone + 'static>(&self, stream: &StreamId) -> Option<(A, u64)> {
        let cached = self.lock().get(stream).cloned()?;
        let state = cached.state.downcast_ref::<A>()?.clone();
        Some((state, cached.version))
    }

    fn put<A: Send + Sync + 'static>(&self, stream: StreamId, state: A, version: u64) {
        let mut cache = self.lock();
        // A slower reader must not replace a newer state with its older one.
        if cache.peek(&stream).is_some_and(|c| c.version > version) {
            return;
        }
        let state = Arc::new(state);
        cache.put(stream, CachedState { state, version });
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
    /// Decoded states, so that a command reads only the events it has not seen.
    states: Arc<StateCache>,
    /// Commands by type and outcome, for `/metrics`.
    metrics: Arc<Metrics>,
}

impl CommandService {
    /// Commands against `store`; personal data in events is sealed with `vault`.
    #[must_use]
    pub fn new(store: Arc<dyn EventStore>, vault: Arc<PersonalDataVault>) -> Self {
        Self {
            store,
            vault,
            in_flight: Arc::default(),
            states: Arc::new(StateCache::new(CACHED_STATES)),
            metrics: Arc::default(),
        }
    }

    /// Counts commands into `metrics` (the process's set) instead of a set of its own.
    #[must_use]
    pub fn with_metrics(self, metrics: Arc<Metrics>) -> Self {
        Self { metrics, ..self }
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
        A: Aggregate + Clone + Send + Sync + 'static,
        A::Event: DeserializeOwned,
    {
        let stream = Self::stream_of::<A>(id);
        let (mut state, mut version) = self.states.get::<A>(&stream).unwrap_or_default();
        let recorded = self.store.read_stream(&stream, version + 1).await?;
        if recorded.is_empty() {
            return Ok((state, version));
        }
        for event in &recorded {
            let payload = self.vault.unseal(&event.payload).await?;
            state = state.evolve(&decode_payload::<A::Event>(event, &payload)?);
            version = event.version;
        }
        self.states.put(stream, state.clone(), version);
        Ok((state, version))
    }

    /// Where `command_id`'s events landed in `stream`, if they did. Reads the whole
    /// stream: only a request that took over a dead attempt's claim asks.
    async fn stored_outcome(
        &self,
        stream: &StreamId,
        command_id: Uuid,
    ) -> anyhow::Result<Option<AppendOutcome>> {
        let recorded = self.store.read_stream(stream, 1).await?;
        let ours: Vec<_> = recorded
            .iter()
            .filter(|event| event.metadata.command_id == command_id)
            .collect();
        let (Some(first), Some(last)) = (ours.first(), ours.last()) else {
            return Ok(None);
        };
        Ok(Some(AppendOutcome {
            first_version: first.version,
            last_version: last.version,
            first_position: first.position,
            last_position: last.position,
            already_stored: true,
        }))
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
        A: Aggregate + Clone + Send + Sync + 'static,
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
        A: Aggregate + Clone + Send + Sync + 'static,
        A::Event: Serialize + DeserializeOwned,
    {
        let name = command_name(command);
        let span = tracing::info_span!("command", command = %name, aggregate = A::CATEGORY, %id);
        let result = self
            .decide_and_append(id, command, context, outbox)
            .instrument(span)
            .await;
        let outcome = match &result {
            Ok(_) => CommandOutcome::Accepted,
            Err(CommandError::Rejected(_) | CommandError::ValueTaken { .. }) => {
                CommandOutcome::Rejected
            }
            Err(CommandError::Conflict(_)) => CommandOutcome::Conflict,
            Err(_) => CommandOutcome::Failed,
        };
        self.metrics.command(&name, outcome);
        result
    }

    async fn decide_and_append<A>(
        &self,
        id: Uuid,
        command: &A::Command,
        context: &CommandContext,
        outbox: Vec<OutboxMessage>,
    ) -> Result<Executed<A>, CommandError<A::Rejection>>
    where
        A: Aggregate + Clone + Send + Sync + 'static,
        A::Event: Serialize + DeserializeOwned,
    {
        let stream = Self::stream_of::<A>(id);
        let _turn = self.turn_on(&stream).await;
        if crate::repeatable_ids::earlier_attempt_may_have_landed()
            && let Some(outcome) = self.stored_outcome(&stream, context.command_id).await?
        {
            // An earlier attempt of this request stored this command before it died: answer
            // as it would have, rather than deciding again on a state that already holds it
            // (where it may even be refused, e.g. an account that now exists).
            let (state, _) = self.load::<A>(id).await?;
            return Ok(Executed {
                state,
                outcome: Some(outcome),
            });
        }
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
                    request_id: context.request_id.clone(),
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
                    self.states
                        .put(stream.clone(), state.clone(), outcome.last_version);
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use domain::money::{Currency, Money};
    use domain::user::UserId;
    use domain::wallet::{Description, Wallet, WalletCommand};
    use infrastructure::event_store::{
        GroupCommitSettings, Position, RecordedEvent, SqlEventStore, StoreError,
    };
    use infrastructure::testing::TestDatabase;
    use rust_decimal::Decimal;
    use tokio::sync::watch;

    use super::*;

    /// Passes everything to a real store and counts the events each `read_stream` returned.
    #[derive(Debug)]
    struct CountingStore {
        inner: SqlEventStore,
        events_read: Mutex<Vec<usize>>,
    }

    impl CountingStore {
        fn take_reads(&self) -> Vec<usize> {
            std::mem::take(&mut *self.events_read.lock().expect("lock"))
        }
    }

    #[async_trait]
    impl EventStore for CountingStore {
        async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, AppendError> {
            self.inner.append(request).await
        }
        async fn read_stream(
            &self,
            stream: &StreamId,
            from_version: u64,
        ) -> Result<Vec<RecordedEvent>, StoreError> {
            let events = self.inner.read_stream(stream, from_version).await?;
            self.events_read.lock().expect("lock").push(events.len());
            Ok(events)
        }
        async fn read_all(
            &self,
            after: Position,
            limit: u32,
        ) -> Result<Vec<RecordedEvent>, StoreError> {
            self.inner.read_all(after, limit).await
        }
        async fn head(&self) -> Result<Position, StoreError> {
            self.inner.head().await
        }
        async fn claim_owner(&self, claim: &UniqueClaim) -> Result<Option<StreamId>, StoreError> {
            self.inner.claim_owner(claim).await
        }
        fn watch_head(&self) -> watch::Receiver<Position> {
            self.inner.watch_head()
        }
    }

    fn eur() -> Currency {
        Currency::parse("EUR").expect("a known currency")
    }

    fn top_up(amount: &str) -> WalletCommand {
        WalletCommand::TopUp {
            amount: Money::parse(amount, eur()).expect("amount"),
            note: Description::parse("").expect("note"),
        }
    }

    fn context() -> CommandContext {
        CommandContext::new("test", Utc::now())
    }

    fn balance(wallet: &Wallet) -> Decimal {
        match wallet {
            Wallet::Open(wallet) => wallet.balance,
            Wallet::Unopened => panic!("the wallet is not open"),
        }
    }

    #[tokio::test]
    async fn a_cached_state_reads_only_the_events_appended_since_even_by_another_instance() {
        let database = TestDatabase::sqlite();
        let connected = database.connect().await;
        let counting = |store| {
            Arc::new(CountingStore {
                inner: store,
                events_read: Mutex::default(),
            })
        };
        let store = SqlEventStore::open(connected.clone(), GroupCommitSettings::default())
            .await
            .expect("store");
        let here = counting(store.clone());
        let there = counting(store);
        let vault = Arc::new(PersonalDataVault::new(connected));
        let this_instance = CommandService::new(here.clone(), Arc::clone(&vault));
        let other_instance = CommandService::new(there.clone(), vault);
        let owner = UserId(Uuid::now_v7());
        let open = WalletCommand::Open {
            owner,
            currency: eur(),
        };

        this_instance
            .execute::<Wallet>(owner.0, &open, &context())
            .await
            .expect("opened");
        for _ in 0..5 {
            this_instance
                .execute::<Wallet>(owner.0, &top_up("10"), &context())
                .await
                .expect("topped up");
        }
        assert_eq!(
            here.take_reads(),
            vec![0; 6],
            "after the first command every load finds the state cached and nothing new"
        );

        other_instance
            .execute::<Wallet>(owner.0, &top_up("7"), &context())
            .await
            .expect("the other instance decodes the whole stream once");
        assert_eq!(there.take_reads(), vec![6]);

        let done = this_instance
            .execute::<Wallet>(owner.0, &top_up("1"), &context())
            .await
            .expect("a stale cache catches up instead of conflicting");
        assert_eq!(
            here.take_reads(),
            vec![1],
            "only the other instance's event"
        );
        assert_eq!(balance(&done.state), Decimal::from(58));
        assert_eq!(done.outcome.expect("appended").last_version, 8);
    }
}
