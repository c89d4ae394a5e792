//! Bearer tokens for the JSON API: issued at login, checked on every request, revoked at
//! logout or when the password changes.
//!
//! A token is 32 random bytes shown to the client once; the database keeps only their
//! SHA-256, so a copy of the database lets nobody in. A token dies when revoked, after
//! [`TokenPolicy::idle`] without use, and at [`TokenPolicy::absolute`] after its issue,
//! whichever comes first. Any instance sharing the database honours any token.
//!
//! A token found alive is trusted without asking the database again for
//! [`TokenPolicy::trusted_for`] (a second): a request then costs no round trip for its
//! token. Revoking on this instance forgets it at once; a revocation on another instance
//! (another process on the same SQLite file, or another server on PostgreSQL) is seen here
//! within that second.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lru::LruCache;

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
    /// A token found alive is not looked up again for this long.
    pub trusted_for: Duration,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(2 * 60 * 60),
            absolute: Duration::from_secs(7 * 24 * 60 * 60),
            trusted_for: Duration::from_secs(1),
        }
    }
}

/// How many tokens found alive are remembered at most.
const REMEMBERED_TOKENS: usize = 65_536;

/// A token found alive in the table.
#[derive(Debug, Clone, Copy)]
struct Alive {
    user_id: Uuid,
    expires_at_us: i64,
    /// When it was last used, as far as this process knows.
    last_used_us: i64,
    /// When the table last said it was alive.
    checked_at_us: i64,
}

/// Tokens found alive recently, by digest, and how many revocations this process has made:
/// a lookup that a revocation overtook must not remember what it found.
struct Remembered {
    alive: LruCache<Vec<u8>, Alive>,
    revocations: u64,
}

/// What this process remembers of the token table.
#[derive(Clone)]
struct AliveTokens(Arc<Mutex<Remembered>>);

impl std::fmt::Debug for AliveTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AliveTokens").finish_non_exhaustive()
    }
}

impl AliveTokens {
    fn new() -> Self {
        let capacity = NonZeroUsize::new(REMEMBERED_TOKENS).unwrap_or(NonZeroUsize::MIN);
        Self(Arc::new(Mutex::new(Remembered {
            alive: LruCache::new(capacity),
            revocations: 0,
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Remembered> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets the tokens `which` picks, and counts a revocation.
    fn revoke(&self, which: impl Fn(&[u8], &Alive) -> bool) {
        let mut remembered = self.lock();
        let gone: Vec<Vec<u8>> = remembered
            .alive
            .iter()
            .filter(|(hash, token)| which(hash, token))
            .map(|(hash, _)| hash.clone())
            .collect();
        for hash in gone {
            remembered.alive.pop(&hash);
        }
        remembered.revocations += 1;
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
    alive: AliveTokens,
}

impl AccessTokens {
    /// The token table of `database` (migrated).
    #[must_use]
    pub fn new(database: Database, policy: TokenPolicy) -> Self {
        Self {
            database,
            policy,
            alive: AliveTokens::new(),
        }
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
        let now_us = micros(now);
        let idle_us = span_us(self.policy.idle);
        let revocations_before = {
            let mut remembered = self.alive.lock();
            if let Some(alive) = remembered.alive.get_mut(&hash) {
                let trusted = now_us.saturating_sub(alive.checked_at_us)
                    < span_us(self.policy.trusted_for)
                    && now_us >= alive.checked_at_us;
                if trusted && alive.expires_at_us > now_us && now_us - alive.last_used_us < idle_us
                {
                    alive.last_used_us = alive.last_used_us.max(now_us);
                    return Ok(Some(alive.user_id));
                }
            }
            remembered.revocations
        };
        let found = self.look_up(&hash, now).await?;
        let mut remembered = self.alive.lock();
        match found {
            // A revocation that ran meanwhile may have come too late for the lookup: this
            // answer stands, but it is not trusted for later requests.
            Some(found) if remembered.revocations == revocations_before => {
                remembered.alive.put(hash, found);
                Ok(Some(found.user_id))
            }
            Some(found) => Ok(Some(found.user_id)),
            None => {
                remembered.alive.pop(&hash);
                Ok(None)
            }
        }
    }

    /// The token as the table holds it, if alive; refreshes its idle clock there.
    async fn look_up(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<Alive>, TokenStoreError> {
        let sql = "SELECT user_id, last_used_us, expires_at_us FROM access_tokens \
                   WHERE token_hash = $1 AND revoked_at_us IS NULL AND expires_at_us > $2 AND last_used_us > $3";
        let idle_since = micros(now).saturating_sub(span_us(self.policy.idle));
        let found: Option<(String, i64, i64)> = on_pool!(&self.database, pool => sqlx::query_as(sql)
            .bind(hash)
            .bind(micros(now))
            .bind(idle_since)
            .fetch_optional(pool)
            .await)?;
        let Some((user_id, last_used_us, expires_at_us)) = found else {
            return Ok(None);
        };
        if micros(now) - last_used_us > TOUCH_EVERY_US {
            let touch = "UPDATE access_tokens SET last_used_us = $2 WHERE token_hash = $1 AND last_used_us < $2";
            on_pool!(&self.database, pool => sqlx::query(touch).bind(hash).bind(micros(now)).execute(pool).await.map(drop))?;
        }
        Ok(Uuid::parse_str(&user_id).ok().map(|user_id| Alive {
            user_id,
            expires_at_us,
            last_used_us: last_used_us.max(micros(now)),
            checked_at_us: micros(now),
        }))
    }

    /// Revokes one token (logout). Revoking an unknown or dead token is not an error.
    ///
    /// # Errors
    /// [`TokenStoreError`] when the database fails.
    pub async fn revoke(&self, token: &str, now: DateTime<Utc>) -> Result<(), TokenStoreError> {
        let hash = sha256(token.as_bytes());
        let sql = "UPDATE access_tokens SET revoked_at_us = $2 WHERE token_hash = $1 AND revoked_at_us IS NULL";
        on_pool!(&self.database, pool => sqlx::query(sql).bind(&hash).bind(micros(now)).execute(pool).await.map(drop))?;
        self.alive.revoke(|revoked, _| revoked == hash.as_slice());
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
        self.alive.revoke(|_, token| token.user_id == user_id);
        Ok(())
    }
}
