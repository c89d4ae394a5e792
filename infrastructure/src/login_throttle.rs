//! Slowing down password guessing: failed logins are counted per account and per client
//! address over a sliding window; past a limit, logins for that subject are refused until
//! the oldest failure in the window ages out. The counts live in the database, so every
//! instance sees the same ones. Subjects are stored as SHA-256 digests.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::database::{Database, on_pool};
use crate::encoding::{micros, sha256, span_us};

/// The limits.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// The sliding window.
    pub window: Duration,
    /// Failures per account within the window before logins to it are refused.
    pub per_account: u32,
    /// Failures per client address within the window before its logins are refused.
    pub per_address: u32,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(15 * 60),
            per_account: 5,
            per_address: 50,
        }
    }
}

/// The throttle's table failed.
#[derive(Debug, thiserror::Error)]
#[error("login throttle failure: {0}")]
pub struct ThrottleError(#[from] sqlx::Error);

/// Counts failed logins.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    database: Database,
    policy: ThrottlePolicy,
}

fn subject(kind: &str, value: &str) -> Vec<u8> {
    sha256(format!("{kind}:{value}").as_bytes())
}

impl LoginThrottle {
    /// The throttle on `database` (migrated).
    #[must_use]
    pub fn new(database: Database, policy: ThrottlePolicy) -> Self {
        Self { database, policy }
    }

    /// `None` when a login for `login` from `address` may be tried now; otherwise how long
    /// until it may.
    ///
    /// # Errors
    /// [`ThrottleError`] when the database fails.
    pub async fn wait_before_trying(
        &self,
        login: &str,
        address: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>, ThrottleError> {
        let account = self
            .wait_for(&subject("account", login), self.policy.per_account, now)
            .await?;
        let address = self
            .wait_for(
                &subject("ip", &address.to_string()),
                self.policy.per_address,
                now,
            )
            .await?;
        Ok(account.max(address))
    }

    async fn wait_for(
        &self,
        subject: &[u8],
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>, ThrottleError> {
        let window_us = span_us(self.policy.window);
        let since = micros(now).saturating_sub(window_us);
        // The limit-th newest failure in the window: while it is inside, the subject waits
        // until it leaves.
        let sql = "SELECT failed_at_us FROM login_failures WHERE subject_hash = $1 AND failed_at_us > $2 \
                   ORDER BY failed_at_us DESC LIMIT 1 OFFSET $3";
        let offset = i64::from(limit.max(1) - 1);
        let blocking: Option<i64> = on_pool!(&self.database, pool => sqlx::query_scalar(sql)
            .bind(subject)
            .bind(since)
            .bind(offset)
            .fetch_optional(pool)
            .await)?;
        Ok(blocking.map(|failed_at| {
            let free_at = failed_at.saturating_add(window_us);
            Duration::from_micros(
                u64::try_from(free_at - micros(now))
                    .unwrap_or(0)
                    .max(1_000_000),
            )
        }))
    }

    /// Records a failed login for the account and the address.
    ///
    /// # Errors
    /// [`ThrottleError`] when the database fails.
    pub async fn record_failure(
        &self,
        login: &str,
        address: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<(), ThrottleError> {
        let sql =
            "INSERT INTO login_failures (subject_hash, failed_at_us) VALUES ($1, $3), ($2, $3)";
        on_pool!(&self.database, pool => sqlx::query(sql)
            .bind(subject("account", login))
            .bind(subject("ip", &address.to_string()))
            .bind(micros(now))
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Forgets the account's failures (after a successful login or a password reset).
    ///
    /// # Errors
    /// [`ThrottleError`] when the database fails.
    pub async fn clear_account(&self, login: &str) -> Result<(), ThrottleError> {
        let sql = "DELETE FROM login_failures WHERE subject_hash = $1";
        on_pool!(&self.database, pool => sqlx::query(sql).bind(subject("account", login)).execute(pool).await.map(drop))?;
        Ok(())
    }
}
