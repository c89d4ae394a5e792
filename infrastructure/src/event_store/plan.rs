//! Deciding a group commit, without touching the database.
//!
//! The group committer holds the only right to write (see ADR 0003), reads the current
//! state of the streams a batch touches, and then this pure function decides, request by
//! request and in arrival order, which ones are written, which are idempotent replays and
//! which conflict. Requests for the same stream in one batch see each other's effect, so a
//! hot stream behaves exactly as if its appends had been committed one by one. A request
//! that [follows](AppendRequest::following) another is refused unless that one's events are
//! the last of the stream, here or as stored.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::chain::{self, Hash, StoredColumns};
use super::model::{
    AppendError, AppendOutcome, AppendRequest, NewEvent, OutboxMessage, Position, StreamId,
    UniqueClaim,
};

/// What the store holds right now for the streams and commands of a batch.
#[derive(Debug, Default)]
pub(crate) struct StoredState {
    /// The position of the newest stored event (0 when the log is empty).
    pub head: Position,
    /// The chain value at `head` ([`chain::GENESIS`] when the log is empty).
    pub head_chain: Hash,
    /// Current version of each touched stream that exists.
    pub versions: HashMap<StreamId, u64>,
    /// The command that appended the last event of each touched stream that exists.
    pub last_commands: HashMap<StreamId, Uuid>,
    /// Outcome of each (stream, command id) of the batch that is already stored, by
    /// command id (a command id is rarely reused across streams, so the list is short).
    pub commands: HashMap<Uuid, Vec<(StreamId, AppendOutcome)>>,
    /// The owner of each claim or release of the batch that is currently taken.
    pub claims: HashMap<UniqueClaim, StreamId>,
}

/// An append request with what the writer needs of it already worked out, on the caller's
/// task rather than on the single committer's.
#[derive(Debug)]
pub(crate) struct PreparedAppend {
    pub request: AppendRequest,
    /// `request.metadata` as stored.
    pub metadata_json: String,
    /// `request.metadata.recorded_at` in microseconds since the Unix epoch.
    pub recorded_at_us: i64,
    /// The content digest of each event (see [`chain`]), in order.
    pub contents: Vec<Hash>,
}

impl PreparedAppend {
    pub(crate) fn new(request: AppendRequest) -> Result<Self, serde_json::Error> {
        let metadata_json = serde_json::to_string(&request.metadata)?;
        let recorded_at_us = request.metadata.recorded_at.timestamp_micros();
        let contents = request
            .events
            .iter()
            .map(|event| {
                StoredColumns {
                    stream_id: request.stream.as_str(),
                    event_id: event.event_id,
                    event_type: &event.event_type,
                    schema_version: i64::from(event.schema_version),
                    command_id: request.metadata.command_id,
                    recorded_at_us,
                    payload: event.payload.get(),
                    metadata: &metadata_json,
                }
                .digest()
            })
            .collect();
        Ok(Self {
            metadata_json,
            recorded_at_us,
            contents,
            request,
        })
    }
}

/// One row to insert.
#[derive(Debug)]
pub(crate) struct PlannedRow<'a> {
    pub position: Position,
    pub version: u64,
    pub append: &'a PreparedAppend,
    pub event: &'a NewEvent,
    /// Its chain value, linked to the row before it.
    pub chain: Hash,
}

/// The answer a request will get once the batch is committed.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Its events are among the rows to insert.
    Write(AppendOutcome),
    /// Already stored earlier (or earlier in this batch): nothing to write.
    Replay(AppendOutcome),
    /// Refused; nothing of it is written.
    Reject(AppendError),
}

/// A change to the claims table, to apply in this order after the rows.
#[derive(Debug)]
pub(crate) enum ClaimChange<'a> {
    Take {
        claim: &'a UniqueClaim,
        stream: &'a StreamId,
    },
    Release {
        claim: &'a UniqueClaim,
        stream: &'a StreamId,
    },
}

#[derive(Debug)]
pub(crate) struct Plan<'a> {
    pub rows: Vec<PlannedRow<'a>>,
    pub claim_changes: Vec<ClaimChange<'a>>,
    /// Outbox messages of the written requests, with their request's instant.
    pub outbox: Vec<(&'a OutboxMessage, i64)>,
    pub decisions: Vec<Decision>,
}

/// Decides every request of a batch against the stored state.
pub(crate) fn plan_batch<'a>(appends: &[&'a PreparedAppend], stored: &StoredState) -> Plan<'a> {
    let mut head = stored.head.0;
    let mut chain = stored.head_chain;
    let mut versions: HashMap<&StreamId, u64> = HashMap::new();
    let mut last_commands: HashMap<&StreamId, Uuid> = HashMap::new();
    let mut commands: HashMap<(&StreamId, Uuid), AppendOutcome> = HashMap::new();
    let mut event_ids: HashSet<Uuid> = HashSet::new();
    // Claims changed earlier in this batch: `Some(owner)` taken, `None` released.
    let mut claims: HashMap<&UniqueClaim, Option<&StreamId>> = HashMap::new();
    let mut claim_changes = Vec::new();
    let mut outbox = Vec::new();
    let mut rows = Vec::new();
    let mut decisions = Vec::with_capacity(appends.len());
    for append in appends {
        let request = &append.request;
        let stream = &request.stream;
        let command_id = request.metadata.command_id;
        let replay = commands.get(&(stream, command_id)).or_else(|| {
            stored.commands.get(&command_id).and_then(|stored| {
                stored
                    .iter()
                    .find(|(s, _)| s == stream)
                    .map(|(_, outcome)| outcome)
            })
        });
        if let Some(original) = replay {
            decisions.push(Decision::Replay(AppendOutcome {
                already_stored: true,
                ..*original
            }));
            continue;
        }

        let actual = versions
            .get(stream)
            .copied()
            .unwrap_or_else(|| stored.versions.get(stream).copied().unwrap_or(0));
        // Decided on the state `follows` leaves: right only if its events end the stream (a
        // version alone cannot tell: another writer may have reached it with other events).
        let last_command = last_commands
            .get(stream)
            .or_else(|| stored.last_commands.get(stream));
        let predecessor_lost = request
            .follows
            .is_some_and(|before| last_command != Some(&before));
        if predecessor_lost || !request.expected.admits(actual) {
            decisions.push(Decision::Reject(AppendError::Conflict {
                stream: stream.clone(),
                expected: request.expected,
                actual,
            }));
            continue;
        }
        if let Some(duplicate) = request
            .events
            .iter()
            .find(|e| event_ids.contains(&e.event_id))
        {
            decisions.push(Decision::Reject(AppendError::DuplicateEventId {
                event_id: duplicate.event_id,
            }));
            continue;
        }
        let mut seen_in_request = HashSet::new();
        if let Some(duplicate) = request
            .events
            .iter()
            .find(|e| !seen_in_request.insert(e.event_id))
        {
            decisions.push(Decision::Reject(AppendError::DuplicateEventId {
                event_id: duplicate.event_id,
            }));
            continue;
        }

        let owner_of = |claim: &UniqueClaim| match claims.get(claim) {
            Some(owner) => *owner,
            None => stored.claims.get(claim),
        };
        if let Some((claim, owner)) = request.claims.iter().find_map(|claim| {
            owner_of(claim)
                .filter(|owner| *owner != stream)
                .map(|owner| (claim, owner))
        }) {
            decisions.push(Decision::Reject(AppendError::ClaimTaken {
                scope: claim.scope().to_owned(),
                owner: owner.clone(),
            }));
            continue;
        }
        let mut changes = Vec::new();
        for claim in &request.releases {
            if owner_of(claim) == Some(stream) {
                changes.push((claim, None));
            }
        }
        for claim in &request.claims {
            if owner_of(claim).is_none() || changes.iter().any(|(c, _)| *c == claim) {
                changes.push((claim, Some(stream)));
            }
        }
        for (claim, owner) in changes {
            claims.insert(claim, owner);
            claim_changes.push(match owner {
                Some(stream) => ClaimChange::Take { claim, stream },
                None => ClaimChange::Release { claim, stream },
            });
        }

        let count = request.events.len() as u64;
        let outcome = AppendOutcome {
            first_version: actual + 1,
            last_version: actual + count,
            first_position: Position(head + 1),
            last_position: Position(head + count),
            already_stored: false,
        };
        for ((offset, event), content) in (1..).zip(&request.events).zip(&append.contents) {
            event_ids.insert(event.event_id);
            let (position, version) = (head + offset, actual + offset);
            chain = chain::link(&chain, position, version, content);
            rows.push(PlannedRow {
                position: Position(position),
                version,
                append,
                event,
                chain,
            });
        }
        outbox.extend(
            request
                .outbox
                .iter()
                .map(|message| (message, append.recorded_at_us)),
        );
        head += count;
        versions.insert(stream, outcome.last_version);
        last_commands.insert(stream, command_id);
        commands.insert((stream, command_id), outcome);
        decisions.push(Decision::Write(outcome));
    }
    Plan {
        rows,
        claim_changes,
        outbox,
        decisions,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::value::RawValue;

    use super::*;
    use crate::event_store::model::{EventMetadata, ExpectedVersion};

    fn request(
        stream: &str,
        expected: ExpectedVersion,
        command: Uuid,
        events: usize,
    ) -> PreparedAppend {
        PreparedAppend::new(AppendRequest {
            claims: Vec::new(),
            releases: Vec::new(),
            outbox: Vec::new(),
            follows: None,
            stream: StreamId::parse(stream).expect("valid stream"),
            expected,
            metadata: EventMetadata {
                command_id: command,
                correlation_id: command,
                causation_id: None,
                actor: "test".into(),
                recorded_at: Utc::now(),
                request_id: None,
            },
            events: (0..events)
                .map(|_| NewEvent {
                    event_id: Uuid::new_v4(),
                    event_type: "Happened".into(),
                    schema_version: 1,
                    payload: RawValue::from_string("{}".into()).expect("json"),
                })
                .collect(),
        })
        .expect("metadata serialises")
    }

    fn stored(head: u64, versions: &[(&str, u64)]) -> StoredState {
        StoredState {
            head: Position(head),
            head_chain: chain::GENESIS,
            versions: versions
                .iter()
                .map(|(s, v)| (StreamId::parse(*s).expect("valid"), *v))
                .collect(),
            last_commands: HashMap::new(),
            commands: HashMap::new(),
            claims: HashMap::new(),
        }
    }

    /// `state`, whose stream `stream` ends with events of `command`.
    fn ending_with(mut state: StoredState, stream: &str, command: Uuid) -> StoredState {
        state
            .last_commands
            .insert(StreamId::parse(stream).expect("valid"), command);
        state
    }

    fn outcome(decision: &Decision) -> AppendOutcome {
        match decision {
            Decision::Write(o) | Decision::Replay(o) => *o,
            Decision::Reject(e) => panic!("expected an outcome, got {e:?}"),
        }
    }

    #[test]
    fn requests_on_distinct_streams_get_consecutive_positions() {
        let a = request("a", ExpectedVersion::NoStream, Uuid::new_v4(), 2);
        let b = request("b", ExpectedVersion::Exact(3), Uuid::new_v4(), 1);
        let plan = plan_batch(&[&a, &b], &stored(10, &[("b", 3)]));

        assert_eq!(plan.rows.len(), 3);
        let positions: Vec<u64> = plan.rows.iter().map(|r| r.position.0).collect();
        assert_eq!(positions, vec![11, 12, 13]);
        let a_outcome = outcome(&plan.decisions[0]);
        assert_eq!((a_outcome.first_version, a_outcome.last_version), (1, 2));
        let b_outcome = outcome(&plan.decisions[1]);
        assert_eq!(
            (b_outcome.first_version, b_outcome.first_position),
            (4, Position(13))
        );
    }

    #[test]
    fn a_second_request_on_the_same_stream_sees_the_first() {
        let first = request("s", ExpectedVersion::Exact(1), Uuid::new_v4(), 1);
        let stale = request("s", ExpectedVersion::Exact(1), Uuid::new_v4(), 1);
        let next = request("s", ExpectedVersion::Exact(2), Uuid::new_v4(), 1);
        let plan = plan_batch(&[&first, &stale, &next], &stored(5, &[("s", 1)]));

        assert!(matches!(plan.decisions[0], Decision::Write(_)));
        assert!(matches!(
            plan.decisions[1],
            Decision::Reject(AppendError::Conflict { actual: 2, .. })
        ));
        assert_eq!(outcome(&plan.decisions[2]).last_version, 3);
        assert_eq!(plan.rows.len(), 2);
    }

    #[test]
    fn a_stored_command_is_replayed_without_rows_even_with_a_stale_expectation() {
        let command = Uuid::new_v4();
        let retry = request("s", ExpectedVersion::NoStream, command, 1);
        let mut state = stored(7, &[("s", 1)]);
        let original = AppendOutcome {
            first_version: 1,
            last_version: 1,
            first_position: Position(7),
            last_position: Position(7),
            already_stored: false,
        };
        state
            .commands
            .insert(command, vec![(retry.request.stream.clone(), original)]);

        let plan = plan_batch(&[&retry], &state);

        assert!(plan.rows.is_empty());
        assert!(
            matches!(plan.decisions[0], Decision::Replay(o) if o == AppendOutcome { already_stored: true, ..original })
        );
    }

    #[test]
    fn the_same_command_twice_in_one_batch_is_written_once() {
        let command = Uuid::new_v4();
        let first = request("s", ExpectedVersion::NoStream, command, 1);
        let retry = request("s", ExpectedVersion::NoStream, command, 1);
        let plan = plan_batch(&[&first, &retry], &stored(0, &[]));

        assert_eq!(plan.rows.len(), 1);
        assert!(
            matches!(plan.decisions[1], Decision::Replay(o) if o.first_position == Position(1))
        );
    }

    #[test]
    fn an_event_id_used_twice_rejects_only_the_later_request() {
        let first = request("a", ExpectedVersion::Any, Uuid::new_v4(), 1);
        let mut second = request("b", ExpectedVersion::Any, Uuid::new_v4(), 1);
        second.request.events[0].event_id = first.request.events[0].event_id;
        let plan = plan_batch(&[&first, &second], &stored(0, &[]));

        assert!(matches!(plan.decisions[0], Decision::Write(_)));
        assert!(matches!(
            plan.decisions[1],
            Decision::Reject(AppendError::DuplicateEventId { .. })
        ));
        assert_eq!(plan.rows.len(), 1);
    }

    fn claiming(mut append: PreparedAppend, claims: &[&str], releases: &[&str]) -> PreparedAppend {
        append.request.claims = claims
            .iter()
            .map(|v| UniqueClaim::new("email", v))
            .collect();
        append.request.releases = releases
            .iter()
            .map(|v| UniqueClaim::new("email", v))
            .collect();
        append
    }

    #[test]
    fn a_value_owned_by_another_stream_refuses_the_whole_append() {
        let taken = claiming(
            request("user-b", ExpectedVersion::NoStream, Uuid::new_v4(), 1),
            &["a@x.com"],
            &[],
        );
        let mut state = stored(4, &[]);
        state.claims.insert(
            UniqueClaim::new("email", "a@x.com"),
            StreamId::parse("user-a").expect("valid"),
        );

        let plan = plan_batch(&[&taken], &state);

        assert!(plan.rows.is_empty() && plan.claim_changes.is_empty());
        assert!(matches!(
            &plan.decisions[0],
            Decision::Reject(AppendError::ClaimTaken { scope, owner }) if scope == "email" && owner.as_str() == "user-a"
        ));
    }

    #[test]
    fn two_sign_ups_with_one_address_in_one_batch_let_only_the_first_through() {
        let first = claiming(
            request("user-a", ExpectedVersion::NoStream, Uuid::new_v4(), 1),
            &["a@x.com"],
            &[],
        );
        let second = claiming(
            request("user-b", ExpectedVersion::NoStream, Uuid::new_v4(), 1),
            &["a@x.com"],
            &[],
        );
        let plan = plan_batch(&[&first, &second], &stored(0, &[]));

        assert!(matches!(plan.decisions[0], Decision::Write(_)));
        assert!(matches!(
            plan.decisions[1],
            Decision::Reject(AppendError::ClaimTaken { .. })
        ));
        assert!(
            matches!(plan.claim_changes[..], [ClaimChange::Take { stream, .. }] if stream.as_str() == "user-a")
        );
    }

    #[test]
    fn a_released_value_can_be_taken_by_another_stream_later_in_the_batch() {
        let mut state = stored(2, &[("user-a", 1)]);
        state.claims.insert(
            UniqueClaim::new("email", "a@x.com"),
            StreamId::parse("user-a").expect("valid"),
        );
        let release = claiming(
            request("user-a", ExpectedVersion::Exact(1), Uuid::new_v4(), 1),
            &[],
            &["a@x.com"],
        );
        let take = claiming(
            request("user-b", ExpectedVersion::NoStream, Uuid::new_v4(), 1),
            &["a@x.com"],
            &[],
        );

        let plan = plan_batch(&[&release, &take], &state);

        assert!(
            plan.decisions
                .iter()
                .all(|d| matches!(d, Decision::Write(_)))
        );
        assert!(matches!(
            plan.claim_changes[..],
            [ClaimChange::Release { .. }, ClaimChange::Take { stream, .. }] if stream.as_str() == "user-b"
        ));
    }

    #[test]
    fn claiming_what_the_stream_already_owns_changes_nothing() {
        let mut state = stored(2, &[("user-a", 1)]);
        state.claims.insert(
            UniqueClaim::new("email", "a@x.com"),
            StreamId::parse("user-a").expect("valid"),
        );
        let again = claiming(
            request("user-a", ExpectedVersion::Exact(1), Uuid::new_v4(), 1),
            &["a@x.com"],
            &[],
        );

        let plan = plan_batch(&[&again], &state);

        assert!(matches!(plan.decisions[0], Decision::Write(_)));
        assert!(plan.claim_changes.is_empty());
    }

    #[test]
    fn each_row_links_to_the_one_before_it_from_the_stored_head() {
        let a = request("a", ExpectedVersion::NoStream, Uuid::new_v4(), 2);
        let refused = request("b", ExpectedVersion::Exact(9), Uuid::new_v4(), 1);
        let c = request("c", ExpectedVersion::Any, Uuid::new_v4(), 1);
        let mut state = stored(3, &[]);
        state.head_chain = [7; 32];

        let plan = plan_batch(&[&a, &refused, &c], &state);

        let first = chain::link(&[7; 32], 4, 1, &a.contents[0]);
        let second = chain::link(&first, 5, 2, &a.contents[1]);
        let third = chain::link(&second, 6, 1, &c.contents[0]);
        let chains: Vec<Hash> = plan.rows.iter().map(|r| r.chain).collect();
        assert_eq!(chains, vec![first, second, third]);
    }

    /// A request on stream `s` expecting `version`, decided after `follows`.
    fn following(version: u64, follows: Uuid) -> PreparedAppend {
        PreparedAppend::new(AppendRequest {
            follows: Some(follows),
            ..request("s", ExpectedVersion::Exact(version), Uuid::new_v4(), 1).request
        })
        .expect("metadata serialises")
    }

    #[test]
    fn a_request_that_follows_a_refused_one_is_refused_even_where_its_version_fits() {
        let lost = request("s", ExpectedVersion::Exact(1), Uuid::new_v4(), 1);
        // Decided on the state `lost` would leave; another writer took the stream to that
        // very version meanwhile.
        let follower = following(2, lost.request.metadata.command_id);
        let next = following(3, follower.request.metadata.command_id);
        let unrelated = request("s", ExpectedVersion::Exact(2), Uuid::new_v4(), 1);
        let state = ending_with(stored(9, &[("s", 2)]), "s", Uuid::new_v4());

        let plan = plan_batch(&[&lost, &follower, &next, &unrelated], &state);

        let conflicts = plan
            .decisions
            .iter()
            .take(3)
            .all(|d| matches!(d, Decision::Reject(AppendError::Conflict { actual: 2, .. })));
        assert!(conflicts, "{:?}", plan.decisions);
        assert!(matches!(plan.decisions[3], Decision::Write(_)));
    }

    #[test]
    fn a_request_that_follows_one_of_an_earlier_batch_is_written_only_if_that_one_ends_the_stream()
    {
        let earlier = Uuid::new_v4();
        let follower = following(2, earlier);
        let state = stored(9, &[("s", 2)]);

        let after_it = plan_batch(
            &[&follower],
            &ending_with(stored(9, &[("s", 2)]), "s", earlier),
        );
        let after_another = plan_batch(&[&follower], &ending_with(state, "s", Uuid::new_v4()));

        assert!(matches!(after_it.decisions[0], Decision::Write(_)));
        assert!(matches!(
            after_another.decisions[0],
            Decision::Reject(AppendError::Conflict { .. })
        ));
        assert!(after_another.rows.is_empty());
    }

    #[test]
    fn a_request_that_follows_the_written_retry_of_a_refused_command_is_written() {
        let command = Uuid::new_v4();
        let refused = request("s", ExpectedVersion::Exact(1), command, 1);
        let retry = request("s", ExpectedVersion::Exact(2), command, 1);
        let follower = following(3, command);
        let state = ending_with(stored(9, &[("s", 2)]), "s", Uuid::new_v4());

        let plan = plan_batch(&[&refused, &retry, &follower], &state);

        assert!(matches!(plan.decisions[0], Decision::Reject(_)));
        assert!(
            plan.decisions[1..]
                .iter()
                .all(|d| matches!(d, Decision::Write(_))),
            "{:?}",
            plan.decisions
        );
    }

    #[test]
    fn a_conflict_leaves_no_gap_in_positions() {
        let refused = request("a", ExpectedVersion::Exact(9), Uuid::new_v4(), 1);
        let accepted = request("b", ExpectedVersion::Any, Uuid::new_v4(), 1);
        let plan = plan_batch(&[&refused, &accepted], &stored(3, &[("a", 1)]));

        assert_eq!(plan.rows[0].position, Position(4));
        assert!(matches!(
            plan.decisions[0],
            Decision::Reject(AppendError::Conflict { actual: 1, .. })
        ));
    }
}
