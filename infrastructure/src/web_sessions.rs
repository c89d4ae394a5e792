//! The store behind the web pages' sessions (tower-sessions). The browser holds a random
//! session id in an HttpOnly cookie; the database keeps only its SHA-256, the session's
//! values and two deadlines: the idle one, which moves forward with use, and an absolute
//! one set at creation that nothing extends. Any instance sharing the database honours any
//! session, and a person's sessions can all be revoked at once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{self, SessionStore};
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::database::{Database, on_pool};
use crate::encoding::{micros, sha256, span_us};

/// The session value that names the signed-in user; it is copied into its own column.
pub const USER_ID_KEY: &str = "user_id";

/// How often `create` picks a new id when the random one is taken (it never should be).
const ID_ATTEMPTS: usize = 4;

/// The session table.
#[derive(Clone)]
pub struct WebSessions {
    database: Database,
    absolute: std::time::Duration,
    clock: SharedClock,
}

impl std::fmt::Debug for WebSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSessions")
            .field("database", &self.database)
            .field("absolute", &self.absolute)
            .finish_non_exhaustive()
    }
}

fn backend(error: sqlx::Error) -> session_store::Error {
    session_store::Error::Backend(format!("web session store: {error}"))
}

fn id_hash(id: &Id) -> Vec<u8> {
    sha256(id.to_string().as_bytes())
}

fn expiry_us(record: &Record) -> i64 {
    i64::try_from(record.expiry_date.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

fn user_of(record: &Record) -> Option<String> {
    record
        .data
        .get(USER_ID_KEY)
        .and_then(|value| value.as_str())
        .and_then(|id| Uuid::parse_str(id).ok())
        .map(|id| id.to_string())
}

fn encode(record: &Record) -> session_store::Result<String> {
    serde_json::to_string(&record.data).map_err(|e| session_store::Error::Encode(e.to_string()))
}

impl WebSessions {
    /// The session table of `database` (migrated); no session lives longer than `absolute`.
    #[must_use]
    pub fn new(database: Database, absolute: std::time::Duration) -> Self {
        Self {
            database,
            absolute,
            clock: SharedClock::default(),
        }
    }

    /// The same store reading the time from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Ends every session of a user (logout everywhere, password changed, account closed).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn revoke_all_for(&self, user_id: Uuid) -> Result<(), sqlx::Error> {
        let sql = "DELETE FROM web_sessions WHERE user_id = $1";
        on_pool!(&self.database, pool => sqlx::query(sql).bind(user_id.to_string()).execute(pool).await.map(drop))
    }

    /// How many live sessions a user has.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn count_for(&self, user_id: Uuid) -> Result<i64, sqlx::Error> {
        let sql = "SELECT COUNT(*) FROM web_sessions \
                   WHERE user_id = $1 AND expires_at_us > $2 AND ends_at_us > $2";
        on_pool!(&self.database, pool => sqlx::query_scalar(sql)
            .bind(user_id.to_string())
            .bind(micros(self.now()))
            .fetch_one(pool)
            .await)
    }

    async fn sweep_expired(&self, now_us: i64) -> Result<(), sqlx::Error> {
        let sql = "DELETE FROM web_sessions WHERE expires_at_us <= $1 OR ends_at_us <= $1";
        on_pool!(&self.database, pool => sqlx::query(sql).bind(now_us).execute(pool).await.map(drop))
    }
}

#[async_trait]
impl SessionStore for WebSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let now_us = micros(self.now());
        // Dead sessions are removed as new ones are made, so the table holds live ones.
        self.sweep_expired(now_us).await.map_err(backend)?;
        let data = encode(record)?;
        let ends_at_us = now_us.saturating_add(span_us(self.absolute));
        let sql = "INSERT INTO web_sessions (id_hash, user_id, data, expires_at_us, ends_at_us) \
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id_hash) DO NOTHING";
        for _ in 0..ID_ATTEMPTS {
            let inserted = on_pool!(&self.database, pool => sqlx::query(sql)
                .bind(id_hash(&record.id))
                .bind(user_of(record))
                .bind(&data)
                .bind(expiry_us(record).min(ends_at_us))
                .bind(ends_at_us)
                .execute(pool)
                .await
                .map(|done| done.rows_affected()))
            .map_err(backend)?;
            if inserted == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
        Err(session_store::Error::Backend(
            "no free session id after several random picks".into(),
        ))
    }

    /// Updates a live session. A session that was revoked or has expired meanwhile stays
    /// gone: saving never brings it back.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let sql = "UPDATE web_sessions SET user_id = $2, data = $3, \
                   expires_at_us = CASE WHEN $4 < ends_at_us THEN $4 ELSE ends_at_us END \
                   WHERE id_hash = $1 AND expires_at_us > $5 AND ends_at_us > $5";
        let data = encode(record)?;
        on_pool!(&self.database, pool => sqlx::query(sql)
            .bind(id_hash(&record.id))
            .bind(user_of(record))
            .bind(&data)
            .bind(expiry_us(record))
            .bind(micros(self.now()))
            .execute(pool)
            .await
            .map(drop))
        .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let sql = "SELECT data, expires_at_us FROM web_sessions \
                   WHERE id_hash = $1 AND expires_at_us > $2 AND ends_at_us > $2";
        let found: Option<(String, i64)> = on_pool!(&self.database, pool => sqlx::query_as(sql)
            .bind(id_hash(id))
            .bind(micros(self.now()))
            .fetch_optional(pool)
            .await)
        .map_err(backend)?;
        let Some((data, expires_at_us)) = found else {
            return Ok(None);
        };
        let data =
            serde_json::from_str(&data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date =
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(expires_at_us) * 1_000)
                .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let sql = "DELETE FROM web_sessions WHERE id_hash = $1";
        on_pool!(&self.database, pool => sqlx::query(sql).bind(id_hash(id)).execute(pool).await.map(drop))
            .map_err(backend)
    }
}
