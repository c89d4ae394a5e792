//! The outbox table: messages written with the events that cause them (see
//! [`crate::event_store::OutboxMessage`]), handed to a dispatcher, retried with growing
//! delays when sending fails, and parked for an admin once they keep failing.
//!
//! A dispatcher leases due messages by pushing their next attempt into the future, so two
//! dispatchers (two instances) never hold the same message; on PostgreSQL the lease also
//! skips rows another dispatcher is leasing at that instant.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::database::{Database, on_pool};
use crate::encoding::{micros, span_us};

/// How failures are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Delay after the first failure; doubled after each further one.
    pub first_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// After this many failed attempts the message is parked.
    pub max_attempts: u32,
    /// How long a dispatcher may hold a message before another may take it.
    pub lease: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(60 * 60),
            max_attempts: 8,
            lease: Duration::from_secs(60),
        }
    }
}

/// A message leased for sending.
#[derive(Debug, Clone)]
pub struct DueMessage {
    /// Its id.
    pub message_id: Uuid,
    /// What to render.
    pub kind: String,
    /// What the template needs.
    pub payload: serde_json::Value,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// A message that kept failing.
#[derive(Debug, Clone)]
pub struct ParkedMessage {
    /// Its id.
    pub message_id: Uuid,
    /// What it was.
    pub kind: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure.
    pub last_error: Option<String>,
}

/// The outbox failed.
#[derive(Debug, thiserror::Error)]
#[error("outbox failure: {0}")]
pub struct OutboxError(#[from] sqlx::Error);

/// The outbox table.
#[derive(Debug, Clone)]
pub struct Outbox {
    database: Database,
    policy: RetryPolicy,
}

type DueRow = (Uuid, String, String, i32);

impl Outbox {
    /// The outbox of `database` (migrated).
    #[must_use]
    pub fn new(database: Database, policy: RetryPolicy) -> Self {
        Self { database, policy }
    }

    /// Puts `message` in line on its own, once: a message with the same id (derived by the
    /// caller from what causes it) is never queued twice. True when it was queued now.
    /// For mail that no event is appended with; mail caused by a command goes in the
    /// command's own append.
    ///
    /// # Errors
    /// [`OutboxError`] when the database fails.
    pub async fn enqueue_once(
        &self,
        message: &crate::event_store::OutboxMessage,
        now: DateTime<Utc>,
    ) -> Result<bool, OutboxError> {
        let sql = "INSERT INTO outbox (message_id, kind, payload, created_at_us, next_attempt_at_us) \
                   VALUES ($1, $2, $3, $4, $4) ON CONFLICT (message_id) DO NOTHING";
        let payload = message.payload.to_string();
        let queued = on_pool!(&self.database, pool => sqlx::query(sql)
            .bind(message.message_id)
            .bind(message.kind.as_str())
            .bind(payload.as_str())
            .bind(micros(now))
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(queued == 1)
    }

    /// Leases up to `limit` due messages, oldest first.
    ///
    /// # Errors
    /// [`OutboxError`] when the database fails.
    pub async fn lease_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueMessage>, OutboxError> {
        let lease_until = micros(now).saturating_add(span_us(self.policy.lease));
        let rows: Vec<DueRow> = match &self.database {
            // One writer at a time on SQLite: nobody can lease between the read and the write.
            Database::Sqlite(sqlite) => {
                sqlx::query_as(
                    "UPDATE outbox SET next_attempt_at_us = $1 WHERE message_id IN (
                         SELECT message_id FROM outbox
                          WHERE sent_at_us IS NULL AND parked_at_us IS NULL AND next_attempt_at_us <= $2
                          ORDER BY created_at_us LIMIT $3)
                     RETURNING message_id, kind, payload, attempts",
                )
                .bind(lease_until)
                .bind(micros(now))
                .bind(i64::from(limit))
                .fetch_all(sqlite.pool())
                .await?
            }
            Database::Postgres(pool) => {
                sqlx::query_as(
                    "UPDATE outbox SET next_attempt_at_us = $1 WHERE message_id IN (
                         SELECT message_id FROM outbox
                          WHERE sent_at_us IS NULL AND parked_at_us IS NULL AND next_attempt_at_us <= $2
                          ORDER BY created_at_us LIMIT $3 FOR UPDATE SKIP LOCKED)
                     RETURNING message_id, kind, payload, attempts",
                )
                .bind(lease_until)
                .bind(micros(now))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|(message_id, kind, payload, attempts)| DueMessage {
                message_id,
                kind,
                payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
                attempts: u32::try_from(attempts).unwrap_or(0),
            })
            .collect())
    }

    /// Makes due now every unsent message whose next attempt is at most one lease away:
    /// what a dispatcher that just took over calls first. Such a message is either leased
    /// by the dispatcher before it, which is gone (its process died, or it lost its lease
    /// and stops), or waiting for a retry that may as well come now. Without this, mail
    /// leased by a dead dispatcher would wait out the whole lease. Returns how many.
    ///
    /// # Errors
    /// [`OutboxError`] when the database fails.
    pub async fn reclaim_leases(&self, now: DateTime<Utc>) -> Result<u64, OutboxError> {
        let lease_until = micros(now).saturating_add(span_us(self.policy.lease));
        let sql = "UPDATE outbox SET next_attempt_at_us = $1 \
                   WHERE sent_at_us IS NULL AND parked_at_us IS NULL \
                     AND next_attempt_at_us > $1 AND next_attempt_at_us <= $2";
        let reclaimed = on_pool!(&self.database, pool => sqlx::query(sql)
            .bind(micros(now))
            .bind(lease_until)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(reclaimed)
    }

    /// Records a message as sent, and empties its payload (it may hold a one-time link).
    ///
    /// # Errors
    /// [`OutboxError`] when the database fails.
    pub async fn mark_sent(&self, message_id: Uuid, now: DateTime<Utc>) -> Result<(), OutboxError> {
        let sql = "UPDATE outbox SET sent_at_us = $2, payload = '{}', last_error = NULL WHERE message_id = $1";
        on_pool!(&self.database, pool => sqlx::query(sql).bind(message_id).bind(micros(now)).execute(pool).await.map(drop))?;
        Ok(())
    }

    /// Records a failed attempt: retried later, or parked after too many.
    ///
    /// # Errors
    /// [`OutboxError`] when the database fails.
    pub async fn mark_failed(
        &self,
        message: &DueMessage,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), OutboxError> {
        let attempts = message.attempts.saturating_add(1);
        let parked = (attempts >= self.policy.max_attempts).then_some(micros(now));
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
        let delay = self
            .policy
            .first_delay
            .saturating_mul(factor)
            .min(self.policy.max_delay);
        let sql = "UPDATE outbox SET attempts = $2, next_attempt_at_us = $3, parked_at_us = $4, last_error = $5 \
                   WHERE message_id = $1";
        on_pool!(&self.database, pool => sqlx::query(sql)
            .bind(message.message_id)
            .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
            .bind(micros(now).saturating_add(span_us(delay)))
            .bind(parked)
            .bind(error)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Parks a message at once: sending it can never succeed (a bad address, a template
    /// that cannot render), so retrying would only delay telling an admin.
    ///
    /// # Errors
    /// [`OutboxError`] when the database fails.
    pub async fn park(
        &self,
        message: &DueMessage,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), OutboxError> {
        let sql = "UPDATE outbox SET attempts = attempts + 1, parked_at_us = $2, last_error = $3 WHERE message_id = $1";
        on_pool!(&self.database, pool => sqlx::query(sql)
            .bind(message.message_id)
            .bind(micros(now))
            .bind(error)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Messages that kept failing, newest first.
    ///
    /// # Errors
    /// [`OutboxError`] when the database fails.
    pub async fn parked(&self) -> Result<Vec<ParkedMessage>, OutboxError> {
        let sql = "SELECT message_id, kind, attempts, last_error FROM outbox \
                   WHERE parked_at_us IS NOT NULL ORDER BY parked_at_us DESC";
        let rows: Vec<(Uuid, String, i32, Option<String>)> =
            on_pool!(&self.database, pool => sqlx::query_as(sql).fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .map(|(message_id, kind, attempts, last_error)| ParkedMessage {
                message_id,
                kind,
                attempts: u32::try_from(attempts).unwrap_or(0),
                last_error,
            })
            .collect())
    }

    /// Puts a parked message back in line, with a fresh count of attempts. False when no
    /// such message is parked.
    ///
    /// # Errors
    /// [`OutboxError`] when the database fails.
    pub async fn retry_parked(
        &self,
        message_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, OutboxError> {
        let sql = "UPDATE outbox SET parked_at_us = NULL, attempts = 0, next_attempt_at_us = $2 \
                   WHERE message_id = $1 AND parked_at_us IS NOT NULL";
        let changed = on_pool!(&self.database, pool => sqlx::query(sql)
            .bind(message_id)
            .bind(micros(now))
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(changed > 0)
    }

    /// Messages given up on after their retries (parked), until an admin retries them.
    ///
    /// # Errors
    /// [`OutboxError`] when the database fails.
    pub async fn parked_count(&self) -> Result<i64, OutboxError> {
        let sql = "SELECT COUNT(*) FROM outbox WHERE parked_at_us IS NOT NULL";
        Ok(on_pool!(&self.database, pool => sqlx::query_scalar(sql).fetch_one(pool).await)?)
    }

    /// Messages waiting to be sent (not sent, not parked).
    ///
    /// # Errors
    /// [`OutboxError`] when the database fails.
    pub async fn depth(&self) -> Result<i64, OutboxError> {
        let sql = "SELECT COUNT(*) FROM outbox WHERE sent_at_us IS NULL AND parked_at_us IS NULL";
        Ok(on_pool!(&self.database, pool => sqlx::query_scalar(sql).fetch_one(pool).await)?)
    }
}
