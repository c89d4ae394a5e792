//! One-time password-reset tokens: 32 random bytes mailed as a link, stored as a SHA-256
//! digest, valid once and for a limited time, and all dead once the password changes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::database::{Database, on_pool};
use crate::encoding::{random_token, sha256, span_us};

/// How long a reset link works.
pub const RESET_LINK_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// The reset table failed.
#[derive(Debug, thiserror::Error)]
#[error("password reset store failure: {0}")]
pub struct ResetStoreError(#[from] sqlx::Error);

/// The reset table.
#[derive(Debug, Clone)]
pub struct PasswordResets {
    database: Database,
}

impl PasswordResets {
    /// The reset table of `database` (migrated).
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// A new token for the user; only its digest is kept.
    ///
    /// # Errors
    /// [`ResetStoreError`] when the database fails.
    pub async fn issue(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<String, ResetStoreError> {
        let token = random_token();
        let lifetime = span_us(RESET_LINK_LIFETIME);
        let sql =
            "INSERT INTO password_resets (token_hash, user_id, expires_at_us) VALUES ($1, $2, $3)";
        on_pool!(&self.database, pool => sqlx::query(sql)
            .bind(sha256(token.as_bytes()))
            .bind(user_id.to_string())
            .bind(now.timestamp_micros().saturating_add(lifetime))
            .execute(pool)
            .await
            .map(drop))?;
        Ok(token)
    }

    /// Uses a token up: the user it was issued for, if it was alive; it never works again.
    ///
    /// # Errors
    /// [`ResetStoreError`] when the database fails.
    pub async fn redeem(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, ResetStoreError> {
        let sql = "UPDATE password_resets SET used_at_us = $2 \
                   WHERE token_hash = $1 AND used_at_us IS NULL AND expires_at_us > $2 RETURNING user_id";
        let user: Option<String> = on_pool!(&self.database, pool => sqlx::query_scalar(sql)
            .bind(sha256(token.as_bytes()))
            .bind(now.timestamp_micros())
            .fetch_optional(pool)
            .await)?;
        Ok(user.and_then(|id| Uuid::parse_str(&id).ok()))
    }

    /// Kills every open token of the user (their password just changed).
    ///
    /// # Errors
    /// [`ResetStoreError`] when the database fails.
    pub async fn revoke_all_for(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), ResetStoreError> {
        let sql =
            "UPDATE password_resets SET used_at_us = $2 WHERE user_id = $1 AND used_at_us IS NULL";
        on_pool!(&self.database, pool => sqlx::query(sql)
            .bind(user_id.to_string())
            .bind(now.timestamp_micros())
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }
}
