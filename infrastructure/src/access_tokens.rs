//! Bearer tokens for the JSON API: issued at login, checked on every request, revoked at
//! logout or when the password changes.
//!
//! A token is 32 random bytes shown to the client once; the database keeps only their
//! SHA-256, so a copy of the database lets nobody in. A token dies when revoked, after
//! [`TokenPolicy::idle`] without use, and at [`TokenPolicy::absolute`] after its issue,
//! whichever comes first. Any instance sharing the database honours any token.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::database::{Database, on_pool};
use crate::encoding::{micros, random_token, sha256, span_us};

/// How long tokens live.
#[derive(Debug, Clone, Copy)]
pub struct TokenPolicy {
    /// A token unused for this long stops working.
    pub idle: Duration,
    /// No token works longer than this after it was issued.
    pub absolute: Duration,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(2 * 60 * 60),
            absolute: Duration::from_secs(7 * 24 * 60 * 60),
        }
    }
}

/// Use refreshes a token's idle clock at most this often, so that reads do not each write.
const TOUCH_EVERY_US: i64 = 60 * 1_000_000;

/// The token store failed.
#[derive(Debug, thiserror::Error)]
#[error("access token store failure: {0}")]
pub struct TokenStoreError(#[from] sqlx::Error);

/// A freshly issued token: the only time the secret exists outside the client.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// What the client sends as `Authorization: Bearer ...`.
    pub token: String,
    /// When it stops working at the latest.
    pub expires_at: DateTime<Utc>,
}

/// The token table.
#[derive(Debug, Clone)]
pub struct AccessTokens {
    database: Database,
    policy: TokenPolicy,
}

impl AccessTokens {
    /// The token table of `database` (migrated).
    #[must_use]
    pub fn new(database: Database, policy: TokenPolicy) -> Self {
        Self { database, policy }
    }

    /// Issues a new token for the user.
    ///
    /// # Errors
    /// [`TokenStoreError`] when the database fails.
    pub async fn issue(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, TokenStoreError> {
        let token = random_token();
        let expires_at_us = micros(now).saturating_add(span_us(self.policy.absolute));
        let sql = "INSERT INTO access_tokens (token_hash, user_id, created_at_us, last_used_us, expires_at_us) \
                   VALUES ($1, $2, $3, $3, $4)";
        on_pool!(&self.database, pool => sqlx::query(sql)
            .bind(sha256(token.as_bytes()))
            .bind(user_id.to_string())
            .bind(micros(now))
            .bind(expires_at_us)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(IssuedToken {
            token,
            expires_at: DateTime::from_timestamp_micros(expires_at_us).unwrap_or(now),
        })
    }

    /// The user a token belongs to, if it is alive; refreshes its idle clock.
    ///
    /// # Errors
    /// [`TokenStoreError`] when the database fails.
    pub async fn authenticate(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, TokenStoreError> {
        let hash = sha256(token.as_bytes());
        let sql = "SELECT user_id, last_used_us FROM access_tokens \
                   WHERE token_hash = $1 AND revoked_at_us IS NULL AND expires_at_us > $2 AND last_used_us > $3";
        let idle_since = micros(now).saturating_sub(span_us(self.policy.idle));
        let found: Option<(String, i64)> = on_pool!(&self.database, pool => sqlx::query_as(sql)
            .bind(&hash)
            .bind(micros(now))
            .bind(idle_since)
            .fetch_optional(pool)
            .await)?;
        let Some((user_id, last_used_us)) = found else {
            return Ok(None);
        };
        if micros(now) - last_used_us > TOUCH_EVERY_US {
            let touch = "UPDATE access_tokens SET last_used_us = $2 WHERE token_hash = $1 AND last_used_us < $2";
            on_pool!(&self.database, pool => sqlx::query(touch).bind(&hash).bind(micros(now)).execute(pool).await.map(drop))?;
        }
        Ok(Uuid::parse_str(&user_id).ok())
    }

    /// Revokes one token (logout). Revoking an unknown or dead token is not an error.
    ///
    /// # Errors
    /// [`TokenStoreError`] when the database fails.
    pub async fn revoke(&self, token: &str, now: DateTime<Utc>) -> Result<(), TokenStoreError> {
        let sql = "UPDATE access_tokens SET revoked_at_us = $2 WHERE token_hash = $1 AND revoked_at_us IS NULL";
        on_pool!(&self.database, pool => sqlx::query(sql).bind(sha256(token.as_bytes())).bind(micros(now)).execute(pool).await.map(drop))?;
        Ok(())
    }

    /// Revokes every token of a user (password changed, account closed).
    ///
    /// # Errors
    /// [`TokenStoreError`] when the database fails.
    pub async fn revoke_all_for(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), TokenStoreError> {
        let sql = "UPDATE access_tokens SET revoked_at_us = $2 WHERE user_id = $1 AND revoked_at_us IS NULL";
        on_pool!(&self.database, pool => sqlx::query(sql).bind(user_id.to_string()).bind(micros(now)).execute(pool).await.map(drop))?;
        Ok(())
    }
}
