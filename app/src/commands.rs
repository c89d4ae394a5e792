//! The command side: let an aggregate decide on its state, append what it decided with the
//! version it decided against. A conflict means someone else appended in between; the
//! command is then decided again on a fresh read of the stream, a bounded number of times,
//! with the same command id so that a retry can never apply it twice.
//!
//! Commands on one aggregate take turns in this process, and each decides on the state the
//! previous one left, kept decoded in memory: nothing is read from the store to accept a
//! command, and the turn passes as soon as the append is queued (ADR 0026). Optimistic
//! concurrency is what makes trusting that state safe: an append decided on a state that is
//! not the stream's is refused, and so is every append decided after it. A refusal is only
//! given on a state freshly read from the store.

use std::any::Any;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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
use tokio::sync::watch;
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

/// How many streams this process keeps decoded.
const CACHED_STATES: usize = 10_000;

/// A stream's state as this process decided it last.
struct Decoded {
    state: Box<dyn Any + Send + Sync>,
    /// The stream version the state reflects, counting appends still queued.
    version: u64,
    /// The last command whose events the state includes and whose append is not known to
    /// be written yet: the next append follows it.
    tip: Option<Uuid>,
    /// Identifies the chain of decisions that started from one read of the store.
    generation: u64,
}

/// One stream in this process: the turn its commands take (which owns the decoded
/// state), and its appends that are queued but not answered yet.
struct Slot {
    turn: tokio::sync::Mutex<Option<Decoded>>,
    pending: watch::Sender<usize>,
    /// Every chain of decisions up to this generation is dead: one of its appends was not
    /// written, so the state it left is not the stream's.
    dead_up_to: AtomicU64,
}

impl Slot {
    fn new() -> Self {
        Self {
            turn: tokio::sync::Mutex::new(None),
            pending: watch::Sender::new(0),
            dead_up_to: AtomicU64::new(0),
        }
    }

    /// The decoded state, unless its chain died.
    fn live(&self, decoded: &Option<Decoded>) -> bool {
        decoded
            .as_ref()
            .is_some_and(|d| d.generation > self.dead_up_to.load(Ordering::Acquire))
    }

    /// Returns once every append of this process on the stream is answered. Called with
    /// the turn held, so that no new one is queued meanwhile.
    async fn settled(&self) {
        let mut pending = self.pending.subscribe();
        // The sender lives in `self`: the wait cannot fail.
        let _ = pending.wait_for(|queued| *queued == 0).await;
    }
}

/// An append queued on a slot's stream, until its answer is known. Dropped unanswered (its
/// caller stopped waiting), it kills the chain it belongs to, since nobody will learn
/// whether it was written.
struct Queued {
    slot: Arc<Slot>,
    generation: u64,
    answered: bool,
}

impl Queued {
    fn new(slot: Arc<Slot>, generation: u64) -> Self {
        slot.pending.send_modify(|queued| *queued += 1);
        Self {
            slot,
            generation,
            answered: false,
        }
    }

    /// Records the answer: the chain dies unless the append was written.
    fn answered(mut self, written: bool) {
        self.answered = true;
        if !written {
            self.slot
                .dead_up_to
                .fetch_max(self.generation, Ordering::AcqRel);
        }
        // Last, so that whoever waits for the stream to settle finds the chain marked.
        self.slot.pending.send_modify(|queued| *queued -= 1);
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        if !self.answered {
            self.slot
                .dead_up_to
                .fetch_max(self.generation, Ordering::AcqRel);
            self.slot.pending.send_modify(|queued| *queued -= 1);
        }
    }
}

/// The slots of the most recently used streams.
struct Slots(std::sync::Mutex<LruCache<StreamId, Arc<Slot>>>);

impl std::fmt::Debug for Slots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slots").finish_non_exhaustive()
    }
}

impl Slots {
    fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self(std::sync::Mutex::new(LruCache::new(capacity)))
    }

    /// The stream's slot. A slot forgotten while in use is harmless: a new one starts from
    /// a read of the store, and the expected versions keep the two apart.
    fn of(&self, stream: &StreamId) -> Arc<Slot> {
        let mut slots = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(slot) = slots.get(stream) {
            return Arc::clone(slot);
        }
        let slot = Arc::new(Slot::new());
        slots.put(stream.clone(), Arc::clone(&slot));
        slot
    }
}

/// Loads, decides and appends.
#[derive(Debug, Clone)]
pub struct CommandService {
    store: Arc<dyn EventStore>,
    vault: Arc<PersonalDataVault>,
    /// Recently used streams, each with its turn and decoded state: commands on one
    /// aggregate take turns in this process instead of racing to conflicts, and decide on
    /// the state the previous one left without reading the store (ADR 0026).
    slots: Arc<Slots>,
    /// Numbers the chains of decisions, across streams.
    generations: Arc<AtomicU64>,
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
            slots: Arc::new(Slots::new(CACHED_STATES)),
            generations: Arc::default(),
            metrics: Arc::default(),
        }
    }

    /// Counts commands into `metrics` (the process's set) instead of a set of its own.
    #[must_use]
    pub fn with_metrics(self, metrics: Arc<Metrics>) -> Self {
        Self { metrics, ..self }
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

    /// Brings `decoded` up to the store: waits until every append of this process on the
    /// stream is answered, then applies what was stored after the live state it holds (or
    /// the whole stream). The turn must be held.
    async fn refresh<A>(
        &self,
        slot: &Slot,
        decoded: &mut Option<Decoded>,
        stream: &StreamId,
    ) -> anyhow::Result<()>
    where
        A: Aggregate + Send + Sync + 'static,
        A::Event: DeserializeOwned,
    {
        slot.settled().await;
        let (mut state, mut version) = match decoded.take() {
            Some(d) if d.generation > slot.dead_up_to.load(Ordering::Acquire) => {
                match d.state.downcast::<A>() {
                    Ok(state) => (*state, d.version),
                    Err(_) => (A::default(), 0),
                }
            }
            _ => (A::default(), 0),
        };
        for event in &self.store.read_stream(stream, version + 1).await? {
            let payload = self.vault.unseal(&event.payload).await?;
            state = state.evolve(&decode_payload::<A::Event>(event, &payload)?);
            version = event.version;
        }
        *decoded = Some(Decoded {
            state: Box::new(state),
            version,
            tip: None,
            generation: self.generations.fetch_add(1, Ordering::Relaxed) + 1,
        });
        Ok(())
    }

    /// The aggregate's state as stored, including what other instances appended: waits for
    /// this process's queued appends on it to be answered, then reads what is new.
    ///
    /// # Errors
    /// When the stream cannot be read or decoded.
    pub async fn load<A>(&self, id: Uuid) -> anyhow::Result<(A, u64)>
    where
        A: Aggregate + Clone + Send + Sync + 'static,
        A::Event: DeserializeOwned,
    {
        let stream = Self::stream_of::<A>(id);
        let slot = self.slots.of(&stream);
        let mut decoded = slot.turn.lock().await;
        self.refresh::<A>(&slot, &mut decoded, &stream).await?;
        let d = decoded
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("a refreshed state went missing"))?;
        Ok((state_in::<A>(d)?.clone(), d.version))
    }

    /// What `view` sees of the aggregate's state as this process last decided it, without
    /// reading the store unless it has no live state of it: fit to accept a request on,
    /// not to refuse one (another instance may have moved the aggregate since).
    ///
    /// # Errors
    /// When the stream must be read and cannot be, or cannot be decoded.
    pub async fn peek<A, R>(&self, id: Uuid, view: impl FnOnce(&A) -> R) -> anyhow::Result<R>
    where
        A: Aggregate + Send + Sync + 'static,
        A::Event: DeserializeOwned,
    {
        let stream = Self::stream_of::<A>(id);
        let slot = self.slots.of(&stream);
        let mut decoded = slot.turn.lock().await;
        if !slot.live(&decoded) {
            self.refresh::<A>(&slot, &mut decoded, &stream).await?;
        }
        let d = decoded
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("a refreshed state went missing"))?;
        Ok(view(state_in::<A>(d)?))
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
        self.execute_then(id, command, context, Vec::new(), A::clone)
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
        self.execute_then(id, command, context, outbox, A::clone)
            .await
    }

    /// As [`CommandService::execute_with_outbox`], answering with what `view` sees of the
    /// state after the command instead of a copy of the whole state (a wallet holds every
    /// expense).
    ///
    /// # Errors
    /// As [`CommandService::execute`].
    pub async fn execute_then<A, R>(
        &self,
        id: Uuid,
        command: &A::Command,
        context: &CommandContext,
        outbox: Vec<OutboxMessage>,
        view: impl Fn(&A) -> R,
    ) -> Result<Executed<R>, CommandError<A::Rejection>>
    where
        A: Aggregate + Send + Sync + 'static,
        A::Event: Serialize + DeserializeOwned,
    {
        let name = command_name(command);
        let span = tracing::info_span!("command", command = %name, aggregate = A::CATEGORY, %id);
        let result = self
            .decide_and_append(id, command, context, outbox, view)
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

    /// The turn is held from deciding until the append is queued, not until it is answered:
    /// the next command on the stream decides on the state this one leaves, and its append
    /// follows this one's, so a hot aggregate's commands share group commits instead of
    /// waiting for a disk sync each. An append that is not written kills the chain of
    /// states decided after it (their appends are refused too), and the command is decided
    /// again on a fresh read.
    async fn decide_and_append<A, R>(
        &self,
        id: Uuid,
        command: &A::Command,
        context: &CommandContext,
        outbox: Vec<OutboxMessage>,
        view: impl Fn(&A) -> R,
    ) -> Result<Executed<R>, CommandError<A::Rejection>>
    where
        A: Aggregate + Send + Sync + 'static,
        A::Event: Serialize + DeserializeOwned,
    {
        let stream = Self::stream_of::<A>(id);
        let slot = self.slots.of(&stream);
        let mut decoded = slot.turn.lock().await;
        // The earlier attempt may still be alive, its append queued: only once it is
        // answered does the stream tell whether it landed.
        if crate::repeatable_ids::earlier_attempt_may_have_landed()
            && let Some(outcome) = {
                slot.settled().await;
                self.stored_outcome(&stream, context.command_id).await?
            }
        {
            // An earlier attempt of this request stored this command before it died: answer
            // as it would have, rather than deciding again on a state that already holds it
            // (where it may even be refused, e.g. an account that now exists).
            self.refresh::<A>(&slot, &mut decoded, &stream).await?;
            return Ok(Executed {
                state: view(state_of::<A>(&decoded)?),
                outcome: Some(outcome),
            });
        }
        let mut conflicts = 0;
        // True once the state decided on was read from the store with nothing of this
        // process queued on the stream: only then is a refusal final.
        let mut fresh = false;
        loop {
            if !slot.live(&decoded) {
                self.refresh::<A>(&slot, &mut decoded, &stream).await?;
                fresh = true;
            }
            let d = decoded
                .as_mut()
                .ok_or_else(|| anyhow::anyhow!("a refreshed state went missing"))?;
            let state = state_in::<A>(d)?;
            let events = match state.decide(command) {
                Ok(events) if !events.is_empty() => events,
                decided if !fresh => {
                    // Refused, or nothing to do, on a state that may be behind the store:
                    // make sure on a fresh one.
                    drop(decided);
                    self.refresh::<A>(&slot, &mut decoded, &stream).await?;
                    fresh = true;
                    continue;
                }
                Ok(_) => {
                    return Ok(Executed {
                        state: view(state),
                        outcome: None,
                    });
                }
                Err(rejection) => return Err(CommandError::Rejected(rejection)),
            };
            let values = state.unique_values(&events);
            let mut request = AppendRequest::new(
                stream.clone(),
                if d.version == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(d.version)
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
            )
            .following(d.tip);
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
            let appending = self.store.submit(request).await.map_err(|e| {
                // Nothing was queued: the state stays as it was.
                CommandError::Failed(e.into())
            })?;
            let queued = Queued::new(Arc::clone(&slot), d.generation);
            // The state after the command, for the next one to decide on.
            let state = d
                .state
                .downcast_mut::<A>()
                .ok_or_else(|| anyhow::anyhow!("a stream holds another aggregate's state"))?;
            let after = events.iter().fold(std::mem::take(state), A::evolve);
            let answer = view(&after);
            *state = after;
            d.version += events.len() as u64;
            d.tip = Some(context.command_id);
            drop(decoded);

            let outcome = appending.outcome().await;
            queued.answered(matches!(&outcome, Ok(o) if !o.already_stored));
            match outcome {
                Ok(outcome) if !outcome.already_stored => {
                    return Ok(Executed {
                        state: answer,
                        outcome: Some(outcome),
                    });
                }
                Ok(outcome) => {
                    // Applied by an earlier attempt of this very command: report today's state.
                    decoded = slot.turn.lock().await;
                    self.refresh::<A>(&slot, &mut decoded, &stream).await?;
                    return Ok(Executed {
                        state: view(state_of::<A>(&decoded)?),
                        outcome: Some(outcome),
                    });
                }
                Err(AppendError::Conflict { .. }) => {
                    conflicts += 1;
                    if conflicts == ATTEMPTS {
                        return Err(CommandError::Conflict(stream));
                    }
                    decoded = slot.turn.lock().await;
                    // Others may have queued appends on the stream while the turn was free.
                    fresh = false;
                }
                Err(AppendError::ClaimTaken { scope, .. }) => {
                    return Err(CommandError::ValueTaken { scope });
                }
                Err(other) => return Err(CommandError::Failed(other.into())),
            }
        }
    }
}

/// The state `decoded` holds, as the aggregate `A`.
fn state_in<A: 'static>(decoded: &Decoded) -> anyhow::Result<&A> {
    decoded
        .state
        .downcast_ref::<A>()
        .ok_or_else(|| anyhow::anyhow!("a stream holds another aggregate's state"))
}

/// The state of a turn that was just refreshed.
fn state_of<A: 'static>(decoded: &Option<Decoded>) -> anyhow::Result<&A> {
    state_in::<A>(
        decoded
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("a refreshed state went missing"))?,
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use domain::money::{Currency, Money};
    use domain::user::UserId;
    use domain::wallet::{Description, Wallet, WalletCommand, WalletRejection};
    use infrastructure::event_store::{
        Appending, GroupCommitSettings, Position, RecordedEvent, SqlEventStore, StoreError,
    };
    use infrastructure::testing::TestDatabase;
    use rust_decimal::Decimal;
    use tokio::sync::oneshot;

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
        async fn submit(&self, request: AppendRequest) -> Result<Appending, AppendError> {
            self.inner.submit(request).await
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
    async fn a_decoded_state_is_trusted_until_the_store_refuses_it_then_the_stream_is_read_again() {
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
            vec![0],
            "the first command reads the (empty) stream; the next ones decide on what it left"
        );

        other_instance
            .execute::<Wallet>(owner.0, &top_up("7"), &context())
            .await
            .expect("the other instance decodes the whole stream once");
        assert_eq!(there.take_reads(), vec![6]);

        let done = this_instance
            .execute::<Wallet>(owner.0, &top_up("1"), &context())
            .await
            .expect("refused by the store for a stale state, then decided again");
        assert_eq!(
            here.take_reads(),
            vec![7],
            "refused once for a stale version: the state it was decided on is dropped, and \
             the stream read again"
        );
        assert_eq!(balance(&done.state), Decimal::from(58));
        assert_eq!(done.outcome.expect("appended").last_version, 8);
    }

    /// Where a held append's outcome goes.
    type Reply = oneshot::Sender<Result<AppendOutcome, AppendError>>;

    /// Passes appends to a real store only when told to, in the order they were submitted,
    /// so that a test can see what is queued before anything is answered.
    #[derive(Debug)]
    struct HeldStore {
        inner: SqlEventStore,
        held: Mutex<Vec<(AppendRequest, Reply)>>,
        count: watch::Sender<usize>,
    }

    impl HeldStore {
        fn new(inner: SqlEventStore) -> Arc<Self> {
            Arc::new(Self {
                inner,
                held: Mutex::default(),
                count: watch::Sender::new(0),
            })
        }

        /// Waits until `n` appends are held, none answered.
        async fn holding(&self, n: usize) {
            let mut count = self.count.subscribe();
            tokio::time::timeout(
                std::time::Duration::from_secs(5),
                count.wait_for(|held| *held >= n),
            )
            .await
            .expect("in time")
            .expect("counted");
        }

        fn requests(&self) -> Vec<AppendRequest> {
            let held = self.held.lock().expect("lock");
            held.iter().map(|(request, _)| request.clone()).collect()
        }

        /// Submits every held append to the real store in order, then answers each.
        async fn release(&self) {
            let held = std::mem::take(&mut *self.held.lock().expect("lock"));
            self.count.send_replace(0);
            let mut queued = Vec::new();
            for (request, reply) in held {
                queued.push((self.inner.submit(request).await, reply));
            }
            for (appending, reply) in queued {
                let outcome = match appending {
                    Ok(appending) => appending.outcome().await,
                    Err(error) => Err(error),
                };
                let _ = reply.send(outcome);
            }
        }
    }

    #[async_trait]
    impl EventStore for HeldStore {
        async fn submit(&self, request: AppendRequest) -> Result<Appending, AppendError> {
            let (reply, answer) = oneshot::channel();
            self.held.lock().expect("lock").push((request, reply));
            self.count.send_modify(|held| *held += 1);
            Ok(answer.into())
        }
        async fn read_stream(
            &self,
            stream: &StreamId,
            from_version: u64,
        ) -> Result<Vec<RecordedEvent>, StoreError> {
            self.inner.read_stream(stream, from_version).await
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

    fn record(expense_id: Uuid) -> WalletCommand {
        WalletCommand::RecordExpense {
            expense_id,
            amount: Money::parse("4", eur()).expect("amount"),
            category: domain::wallet::Category::parse("Food").expect("category"),
            description: Description::parse("tea").expect("description"),
            spent_on: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).expect("a day"),
            receipt_id: None,
        }
    }

    fn void(expense_id: Uuid) -> WalletCommand {
        WalletCommand::VoidExpense {
            expense_id,
            reason: Description::parse("twice").expect("reason"),
        }
    }

    /// Two instances' command services on one store, the first one's appends held, and a
    /// wallet opened through the second.
    struct TwoInstances {
        _database: TestDatabase,
        held: Arc<HeldStore>,
        here: CommandService,
        other: CommandService,
        owner: UserId,
    }

    impl TwoInstances {
        async fn new() -> Self {
            let database = TestDatabase::sqlite();
            let connected = database.connect().await;
            let store = SqlEventStore::open(connected.clone(), GroupCommitSettings::default())
                .await
                .expect("store");
            let held = HeldStore::new(store.clone());
            let vault = Arc::new(PersonalDataVault::new(connected));
            let here = CommandService::new(held.clone(), Arc::clone(&vault));
            let other = CommandService::new(Arc::new(store), vault);
            let owner = UserId(Uuid::now_v7());
            let open = WalletCommand::Open {
                owner,
                currency: eur(),
            };
            other
                .execute::<Wallet>(owner.0, &open, &context())
                .await
                .expect("opened");
            Self {
                _database: database,
                held,
                here,
                other,
                owner,
            }
        }

        /// `command` on the wallet by this instance, on a task of its own.
        fn spawn_here(
            &self,
            command: WalletCommand,
        ) -> tokio::task::JoinHandle<Result<Executed<Wallet>, CommandError<WalletRejection>>>
        {
            let (here, owner) = (self.here.clone(), self.owner);
            tokio::spawn(async move { here.execute::<Wallet>(owner.0, &command, &context()).await })
        }
    }

    #[tokio::test]
    async fn the_next_command_on_a_stream_is_queued_before_the_previous_one_is_answered() {
        let two = TwoInstances::new().await;
        let first = two.spawn_here(top_up("10"));
        two.held.holding(1).await;
        let second = two.spawn_here(top_up("5"));
        two.held.holding(2).await;

        let requests = two.held.requests();
        assert_eq!(requests[0].expected, ExpectedVersion::Exact(1));
        assert_eq!(requests[0].follows, None, "decided on the stream as read");
        assert_eq!(
            (requests[1].expected, requests[1].follows),
            (
                ExpectedVersion::Exact(2),
                Some(requests[0].metadata.command_id)
            ),
            "decided on the state the first leaves, before its outcome is known"
        );
        two.held.release().await;
        let first = first.await.expect("joined").expect("written");
        let second = second.await.expect("joined").expect("written");
        assert_eq!(balance(&first.state), Decimal::from(10));
        assert_eq!(balance(&second.state), Decimal::from(15));
        assert_eq!(second.outcome.expect("appended").last_version, 3);
    }

    #[tokio::test]
    async fn a_command_decided_after_one_that_is_refused_is_refused_too_and_decided_again() {
        let two = TwoInstances::new().await;
        let expense = Uuid::now_v7();
        let recorded = two.spawn_here(record(expense));
        two.held.holding(1).await;
        let voided = two.spawn_here(void(expense));
        two.held.holding(2).await;
        // Another instance takes the stream to the very version the void expects.
        two.other
            .execute::<Wallet>(two.owner.0, &top_up("7"), &context())
            .await
            .expect("topped up elsewhere");

        // The record conflicts; the void, whose version fits, is refused for following it.
        // Both are decided again on a fresh read, and held again.
        two.held.release().await;
        two.held.holding(2).await;
        two.held.release().await;
        recorded.await.expect("joined").expect("recorded");
        let voided = voided.await.expect("joined").expect("voided");

        let kinds: Vec<String> = two
            .held
            .inner
            .read_stream(&CommandService::stream_of::<Wallet>(two.owner.0), 1)
            .await
            .expect("read")
            .into_iter()
            .map(|event| event.event_type)
            .collect();
        assert_eq!(
            kinds,
            [
                "WalletOpened",
                "WalletToppedUp",
                "ExpenseRecorded",
                "ExpenseVoided"
            ],
            "the void was never stored before the expense it takes back"
        );
        assert_eq!(balance(&voided.state), Decimal::from(7));
    }

    #[tokio::test]
    async fn a_refusal_is_only_given_on_the_stream_as_stored() {
        let two = TwoInstances::new().await;
        // The instance that holds nothing back knows the wallet as it was opened...
        let expense = Uuid::now_v7();
        let unknown_there = two
            .other
            .peek::<Wallet, _>(two.owner.0, |wallet| wallet.decide(&void(expense)).is_err())
            .await
            .expect("decoded");
        assert!(unknown_there);
        // ...when the other one records an expense it has not seen.
        let recorded = two.spawn_here(record(expense));
        two.held.holding(1).await;
        two.held.release().await;
        recorded.await.expect("joined").expect("recorded");

        let voided = two
            .other
            .execute::<Wallet>(two.owner.0, &void(expense), &context())
            .await
            .expect("voided on the stream as stored, not refused on the state it held");
        assert_eq!(balance(&voided.state), Decimal::ZERO);
    }

    #[tokio::test]
    async fn a_retry_that_took_over_waits_for_the_first_attempts_append_instead_of_deciding_again()
    {
        let two = TwoInstances::new().await;
        let first_attempt = context();
        let first = tokio::spawn({
            let (here, owner, context) = (two.here.clone(), two.owner, first_attempt.clone());
            async move {
                here.execute::<Wallet>(owner.0, &top_up("10"), &context)
                    .await
            }
        });
        two.held.holding(1).await;
        // The first attempt is alive but slow; its key's claim is taken over by a retry,
        // which makes the same command id.
        let retry = tokio::spawn({
            let (here, owner, context) = (two.here.clone(), two.owner, first_attempt);
            async move {
                crate::repeatable_ids::RepeatableIds::for_key("user:a", "k", Utc::now(), true)
                    .scope(here.execute::<Wallet>(owner.0, &top_up("10"), &context))
                    .await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(
            two.held.requests().len(),
            1,
            "the retry queued the command again before learning whether it landed"
        );
        two.held.release().await;
        first.await.expect("joined").expect("written");
        let retried = retry.await.expect("joined").expect("answered");
        assert!(retried.outcome.expect("stored").already_stored);
        assert_eq!(balance(&retried.state), Decimal::from(10));
        assert!(two.held.requests().is_empty());
    }
}
