//! Ids a request makes (its command ids, and the ids of the things it creates) that come
//! out the same when the request is made again with the same `Idempotency-Key`.
//!
//! A request that carries a key is answered once and its answer replayed. But its instance
//! can die after its events were stored and before its answer was: the key's claim is then
//! taken over by a retry, which does the work again. Inside such a request ids are derived
//! from the key and the instant it was first claimed, so the retry makes the very command
//! ids the first attempt made; the event store recognises a command id it already holds and
//! stores nothing twice, and the answer names the same expense (or goal, or account) as the
//! lost one would have. Outside such a request ids are plain random UUIDv7.

use std::cell::Cell;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What a request with a claimed key derives its ids from.
#[derive(Debug)]
pub struct RepeatableIds {
    seed: [u8; 32],
    first_claimed_at: DateTime<Utc>,
    taken_over: bool,
    issued: Cell<u32>,
}

tokio::task_local! {
    static CURRENT: RepeatableIds;
}

impl RepeatableIds {
    /// The ids of the request that holds `key` of `scope`, first claimed at
    /// `first_claimed_at`; `taken_over` when an earlier holder may have done its work.
    #[must_use]
    pub fn for_key(
        scope: &str,
        key: &str,
        first_claimed_at: DateTime<Utc>,
        taken_over: bool,
    ) -> Self {
        let mut digest = Sha256::new();
        digest.update(scope.as_bytes());
        digest.update(b"\n");
        digest.update(key.as_bytes());
        digest.update(b"\n");
        // The instant tells this use of the key from a later one after it expired.
        digest.update(first_claimed_at.timestamp_micros().to_be_bytes());
        Self {
            seed: digest.finalize().into(),
            first_claimed_at,
            taken_over,
            issued: Cell::new(0),
        }
    }

    /// Runs `work` with these ids.
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        CURRENT.scope(self, work).await
    }

    /// The next id: the n-th call gives the same id on every attempt of the request, as
    /// long as the request's code asks for its ids in the same order (it does: handlers
    /// are straight-line code before their commands).
    fn next(&self) -> Uuid {
        let n = self.issued.get();
        self.issued.set(n.wrapping_add(1));
        let mut digest = Sha256::new();
        digest.update(self.seed);
        digest.update(n.to_be_bytes());
        let hash = digest.finalize();
        let mut random = [0_u8; 10];
        random.copy_from_slice(&hash[..10]);
        // Still a UUIDv7 with the request's instant, so ids keep sorting by creation time.
        let millis = u64::try_from(self.first_claimed_at.timestamp_millis()).unwrap_or(0);
        uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
    }
}

/// A new id: repeatable inside a request with an `Idempotency-Key`, random otherwise.
#[must_use]
pub fn new_id() -> Uuid {
    CURRENT
        .try_with(RepeatableIds::next)
        .unwrap_or_else(|_| Uuid::now_v7())
}

/// True inside a request that took over the claim of an earlier attempt, which may have
/// stored some of its commands' events before it died.
#[must_use]
pub fn earlier_attempt_may_have_landed() -> bool {
    CURRENT.try_with(|ids| ids.taken_over).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn instant(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, second)
            .single()
            .expect("valid")
    }

    async fn three_ids(ids: RepeatableIds) -> Vec<Uuid> {
        ids.scope(async { vec![new_id(), new_id(), new_id()] })
            .await
    }

    #[tokio::test]
    async fn a_retry_of_the_same_claim_makes_the_same_ids_in_the_same_order() {
        let first = three_ids(RepeatableIds::for_key("user:a", "k", instant(0), false)).await;
        let retry = three_ids(RepeatableIds::for_key("user:a", "k", instant(0), true)).await;
        assert_eq!(first, retry);
        assert_eq!(first.len(), 3);
        assert!(first[0] != first[1] && first[1] != first[2], "{first:?}");
        assert!(first.iter().all(|id| id.get_version_num() == 7));
        assert_eq!(
            first[0].get_timestamp().map(|t| t.to_unix().0),
            Some(u64::try_from(instant(0).timestamp()).expect("positive"))
        );
    }

    #[tokio::test]
    async fn a_command_made_only_once_leaves_the_ids_after_it_as_they_were() {
        // The first attempt opened the wallet it needed; the retry finds it open and skips
        // that: both must make the same ids for what follows.
        let first = RepeatableIds::for_key("user:a", "k", instant(0), false)
            .scope(async {
                let opened = crate::commands::CommandContext::once_only("user:a", instant(0));
                let ids = vec![new_id(), new_id(), new_id()];
                assert!(!ids.contains(&opened.command_id));
                ids
            })
            .await;
        let retry = three_ids(RepeatableIds::for_key("user:a", "k", instant(0), true)).await;
        assert_eq!(first, retry);
    }

    #[tokio::test]
    async fn another_key_scope_or_later_use_of_the_key_makes_other_ids() {
        let first = three_ids(RepeatableIds::for_key("user:a", "k", instant(0), false)).await;
        for other in [
            RepeatableIds::for_key("user:b", "k", instant(0), false),
            RepeatableIds::for_key("user:a", "k2", instant(0), false),
            RepeatableIds::for_key("user:a", "k", instant(1), false),
        ] {
            let ids = three_ids(other).await;
            assert!(ids.iter().all(|id| !first.contains(id)), "{ids:?}");
        }
    }

    #[tokio::test]
    async fn outside_a_request_with_a_key_ids_are_random_and_nothing_was_taken_over() {
        assert_ne!(new_id(), new_id());
        assert!(!earlier_attempt_may_have_landed());
        let taken_over = RepeatableIds::for_key("user:a", "k", instant(0), true)
            .scope(async { earlier_attempt_may_have_landed() })
            .await;
        assert!(taken_over);
    }
}
