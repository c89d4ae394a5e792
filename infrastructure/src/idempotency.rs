//! Remembered answers for requests that carry an `Idempotency-Key`: the first request with
//! a key claims it, its answer is stored, and every retry with the same key and the same
//! request gets that answer back without the work being done again.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::database::{Database, on_pool};

/// How long a key is remembered.
pub const KEY_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// How long a claim may stay unanswered before it is taken to be abandoned, unless told
/// otherwise ([`IdempotencyKeys::abandoned_after`]): its request died with its instance, or
/// failed while the database was away and could not let the key go.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(30);

/// A stored answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// HTTP status.
    pub status: u16,
    /// Its content type, if any.
    pub content_type: Option<String>,
    /// Its body.
    pub body: Vec<u8>,
}

/// A key this request now holds: do the work, then store the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// When the key was first claimed. A request that takes over an abandoned claim gets
    /// the first holder's instant, so that whatever it derives from the key and this
    /// instant (its command ids) comes out as the first holder's did.
    pub first_claimed_at: DateTime<Utc>,
    /// True when an earlier holder of this claim died or failed without an answer: its
    /// work may have landed in part or in full.
    pub taken_over: bool,
}

/// What a key means for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// The key is now this request's.
    Claimed(Claim),
    /// The key was used for this same request and answered: send that answer again.
    Answered(StoredAnswer),
    /// The key is being used by the same request right now.
    InProgress,
    /// The key was used for a different request.
    Mismatch,
}

/// The key table failed.
#[derive(Debug, thiserror::Error)]
#[error("idempotency key store failure: {0}")]
pub struct IdempotencyError(#[from] sqlx::Error);

/// The key table.
#[derive(Debug, Clone)]
pub struct IdempotencyKeys {
    database: Database,
    abandoned_after: Duration,
}

type Row = (Vec<u8>, Option<i32>, Option<String>, Option<Vec<u8>>, i64);

impl IdempotencyKeys {
    /// The key table of `database` (migrated).
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self {
            database,
            abandoned_after: ABANDONED_AFTER,
        }
    }

    /// The same table, taking a claim left unanswered for `after` to be abandoned. It must
    /// be longer than any request may run, or a live request would be overtaken by its own
    /// retry: the server stops every request at its timeout, so that plus a margin for the
    /// instances' clocks is enough.
    #[must_use]
    pub fn abandoned_after(self, after: Duration) -> Self {
        Self {
            abandoned_after: after,
            ..self
        }
    }

    /// Claims `key` for a request whose digest is `request_hash`, or says what it is already.
    ///
    /// # Errors
    /// [`IdempotencyError`] when the database fails.
    pub async fn claim(
        &self,
        scope: &str,
        key: &str,
        request_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<KeyState, IdempotencyError> {
        let expired_before =
            now.timestamp_micros() - i64::try_from(KEY_LIFETIME.as_micros()).unwrap_or(i64::MAX);
        let abandoned_before = now.timestamp_micros()
            - i64::try_from(self.abandoned_after.as_micros()).unwrap_or(i64::MAX);
        // An expired key is free again.
        let forget =
            "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND created_at_us < $3";
        on_pool!(&self.database, pool => sqlx::query(forget)
            .bind(scope)
            .bind(key)
            .bind(expired_before)
            .execute(pool)
            .await
            .map(drop))?;
        let claim = "INSERT INTO idempotency_keys (scope, key, request_hash, created_at_us) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (scope, key) DO NOTHING";
        let claimed = on_pool!(&self.database, pool => sqlx::query(claim)
            .bind(scope)
            .bind(key)
            .bind(request_hash)
            .bind(now.timestamp_micros())
            .execute(pool)
            .await
            .map(|done| done.rows_affected() == 1))?;
        if claimed {
            return Ok(KeyState::Claimed(Claim {
                first_claimed_at: now,
                taken_over: false,
            }));
        }
        let read = "SELECT request_hash, status, content_type, body, created_at_us FROM idempotency_keys \
                    WHERE scope = $1 AND key = $2";
        let row: Option<Row> = on_pool!(&self.database, pool => sqlx::query_as(read).bind(scope).bind(key).fetch_optional(pool).await)?;
        let Some((hash, status, content_type, body, created_at_us)) = row else {
            // Answered and expired in between, by another instance: a moment later it is new.
            return Ok(KeyState::InProgress);
        };
        if hash != request_hash {
            return Ok(KeyState::Mismatch);
        }
        if let Some(status) = status {
            return Ok(KeyState::Answered(StoredAnswer {
                status: u16::try_from(status).unwrap_or(500),
                content_type,
                body: body.unwrap_or_default(),
            }));
        }
        // Unanswered: taken over when its holder is clearly gone, by one retry only (the
        // update is conditional, so two retries at once cannot both win it).
        let take_over = "UPDATE idempotency_keys SET claimed_at_us = $3 \
                         WHERE scope = $1 AND key = $2 AND status IS NULL \
                         AND COALESCE(claimed_at_us, created_at_us) < $4";
        let taken = on_pool!(&self.database, pool => sqlx::query(take_over)
            .bind(scope)
            .bind(key)
            .bind(now.timestamp_micros())
            .bind(abandoned_before)
            .execute(pool)
            .await
            .map(|done| done.rows_affected() == 1))?;
        if !taken {
            return Ok(KeyState::InProgress);
        }
        Ok(KeyState::Claimed(Claim {
            first_claimed_at: DateTime::from_timestamp_micros(created_at_us).unwrap_or(now),
            taken_over: true,
        }))
    }

    /// Stores the answer to a claimed key.
    ///
    /// # Errors
    /// [`IdempotencyError`] when the database fails.
    pub async fn answer(
        &self,
        scope: &str,
        key: &str,
        answer: &StoredAnswer,
    ) -> Result<(), IdempotencyError> {
        let sql = "UPDATE idempotency_keys SET status = $3, content_type = $4, body = $5 WHERE scope = $1 AND key = $2";
        on_pool!(&self.database, pool => sqlx::query(sql)
            .bind(scope)
            .bind(key)
            .bind(i32::from(answer.status))
            .bind(answer.content_type.as_deref())
            .bind(answer.body.as_slice())
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Gives up a claimed key whose request failed on the server's side, so that the next
    /// retry takes it over at once and does the work. The claim is kept, not deleted: the
    /// failure may have come after the work landed, and the retry must derive the same
    /// command ids to find that out.
    ///
    /// # Errors
    /// [`IdempotencyError`] when the database fails.
    pub async fn release(&self, scope: &str, key: &str) -> Result<(), IdempotencyError> {
        let sql = "UPDATE idempotency_keys SET claimed_at_us = 0 WHERE scope = $1 AND key = $2 AND status IS NULL";
        on_pool!(&self.database, pool => sqlx::query(sql).bind(scope).bind(key).execute(pool).await.map(drop))?;
        Ok(())
    }
}
