//! Proving the log untampered (ADR 0018): chaining events stored before the chain existed,
//! sealing the chain's head, and verifying every stored row against the chain and the seals.
//!
//! The chain itself is written by the event store's committer with every append (see
//! [`crate::event_store::chain`]); this module reads it back.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::database::{Database, on_pool};
use crate::encoding::hex;
use crate::event_store::StoreError;
use crate::event_store::chain::{self, GENESIS, Hash, StoredColumns};

/// Rows read per round trip while walking the log.
const PAGE: i64 = 10_000;

/// One stored event with everything its chain value covers.
#[derive(Debug, sqlx::FromRow)]
struct ChainRow {
    position: i64,
    stream_id: String,
    version: i64,
    event_id: Uuid,
    event_type: String,
    schema_version: i32,
    command_id: Uuid,
    recorded_at_us: i64,
    payload: String,
    metadata: String,
    chain: Option<Vec<u8>>,
}

impl ChainRow {
    fn content(&self) -> Hash {
        StoredColumns {
            stream_id: &self.stream_id,
            event_id: self.event_id,
            event_type: &self.event_type,
            schema_version: i64::from(self.schema_version),
            command_id: self.command_id,
            recorded_at_us: self.recorded_at_us,
            payload: &self.payload,
            metadata: &self.metadata,
        }
        .digest()
    }

    fn link(&self, previous: &Hash) -> Hash {
        chain::link(
            previous,
            u64::try_from(self.position).unwrap_or(0),
            u64::try_from(self.version).unwrap_or(0),
            &self.content(),
        )
    }
}

const CHAIN_PAGE: &str = "SELECT position, stream_id, version, event_id, event_type, schema_version, \
     command_id, recorded_at_us, CAST(payload AS TEXT) AS payload, CAST(metadata AS TEXT) AS metadata, chain \
     FROM events WHERE position > $1 ORDER BY position LIMIT $2";

async fn chain_page(database: &Database, after: i64) -> Result<Vec<ChainRow>, StoreError> {
    on_pool!(database, pool => sqlx::query_as(CHAIN_PAGE).bind(after).bind(PAGE).fetch_all(pool).await)
        .map_err(|e| StoreError::new("reading the log to check its chain", e))
}

/// The chain values of a page of rows, each linked to the one before, from `previous`
/// (left at the page's last value).
fn relink<'a>(
    previous: &'a mut Hash,
    page: &'a [ChainRow],
) -> impl Iterator<Item = (i64, Hash)> + 'a {
    page.iter().map(move |row| {
        *previous = row.link(previous);
        (row.position, *previous)
    })
}

/// Gives every event stored before the chain existed its chain value, in position order.
/// Runs only while no event at all is chained: once the chain has started, an unchained row
/// is damage for [`verify`] to report, never something to paper over. Returns how many
/// events it chained.
///
/// # Errors
/// [`StoreError`] when the log cannot be read or written.
pub async fn chain_earlier_events(database: &Database) -> Result<u64, StoreError> {
    let fail = |e: sqlx::Error| StoreError::new("chaining events stored before the chain", e);
    const STARTED: &str =
        "SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE chain IS NOT NULL LIMIT 1) AS chained";
    const WAITING: &str =
        "SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE chain IS NULL LIMIT 1) AS unchained";
    let (started, waiting): (i64, i64) = on_pool!(database, pool => {
        let started = sqlx::query_scalar(STARTED).fetch_one(pool).await.map_err(fail)?;
        let waiting = sqlx::query_scalar(WAITING).fetch_one(pool).await.map_err(fail)?;
        (started, waiting)
    });
    if started > 0 || waiting == 0 {
        return Ok(0);
    }
    tracing::info!("chaining the events stored before tamper evidence existed");
    let mut chained = 0;
    let mut previous = GENESIS;
    let mut after = 0;
    match database {
        Database::Sqlite(sqlite) => {
            let mut tx = sqlite.pool().begin().await.map_err(fail)?;
            loop {
                let page: Vec<ChainRow> = sqlx::query_as(CHAIN_PAGE)
                    .bind(after)
                    .bind(PAGE)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(fail)?;
                let Some(last) = page.last() else { break };
                after = last.position;
                let links: Vec<(i64, String)> = relink(&mut previous, &page)
                    .map(|(position, link)| (position, hex(&link)))
                    .collect();
                chained += page.len() as u64;
                sqlx::query(
                    "UPDATE events SET chain = v.chain \
                     FROM (SELECT value ->> 0 AS position, unhex(value ->> 1) AS chain FROM json_each(?1)) AS v \
                     WHERE events.position = v.position AND events.chain IS NULL",
                )
                .bind(serde_json::to_string(&links).unwrap_or_default())
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
            }
            tx.commit().await.map_err(fail)?;
        }
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await.map_err(fail)?;
            // Appends wait; an instance that started first and chained already is seen here.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(crate::event_store::POSTGRES_APPEND_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
            let started: i64 = sqlx::query_scalar(STARTED)
                .fetch_one(&mut *tx)
                .await
                .map_err(fail)?;
            if started == 0 {
                loop {
                    let page: Vec<ChainRow> = sqlx::query_as(CHAIN_PAGE)
                        .bind(after)
                        .bind(PAGE)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(fail)?;
                    let Some(last) = page.last() else { break };
                    after = last.position;
                    let (positions, links): (Vec<i64>, Vec<Vec<u8>>) = relink(&mut previous, &page)
                        .map(|(position, link)| (position, link.to_vec()))
                        .unzip();
                    chained += page.len() as u64;
                    sqlx::query(
                        "UPDATE events AS e SET chain = v.chain \
                         FROM unnest($1::bigint[], $2::bytea[]) AS v(position, chain) \
                         WHERE e.position = v.position AND e.chain IS NULL",
                    )
                    .bind(&positions)
                    .bind(&links)
                    .execute(&mut *tx)
                    .await
                    .map_err(fail)?;
                }
            }
            tx.commit().await.map_err(fail)?;
        }
    }
    tracing::info!(events = chained, "earlier events chained");
    Ok(chained)
}

/// The chain's value at a position: kept outside the database, it proves later that the log
/// up to there is unchanged and still there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seal {
    /// The position sealed.
    pub position: u64,
    /// The chain value there.
    pub chain: Hash,
}

impl fmt::Display for Seal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.position, hex(&self.chain))
    }
}

/// A seal that does not read as `POSITION:64 hex digits`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "a seal reads POSITION:CHAIN, the chain as 64 hex digits (as `expense-tracker seal` prints it)"
)]
pub struct InvalidSeal;

impl FromStr for Seal {
    type Err = InvalidSeal;
    fn from_str(text: &str) -> Result<Self, InvalidSeal> {
        let (position, chain) = text.trim().split_once(':').ok_or(InvalidSeal)?;
        let position = position.parse().map_err(|_| InvalidSeal)?;
        if chain.len() != 64 || !chain.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(InvalidSeal);
        }
        let mut bytes = [0_u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(chain.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| InvalidSeal)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| InvalidSeal)?;
        }
        Ok(Self {
            position,
            chain: bytes,
        })
    }
}

/// Seals the chain at the current head, unless the head is already sealed or the log is
/// empty; answers the seal at the head either way (`None` for an empty log).
///
/// # Errors
/// [`StoreError`] when the database fails.
pub async fn seal(database: &Database, now: DateTime<Utc>) -> Result<Option<Seal>, StoreError> {
    let fail = |e: sqlx::Error| StoreError::new("sealing the chain", e);
    let head: Option<(i64, Option<Vec<u8>>)> = on_pool!(database, pool => {
        sqlx::query_as("SELECT position, chain FROM events ORDER BY position DESC LIMIT 1")
            .fetch_optional(pool)
            .await
            .map_err(fail)?
    });
    let Some((position, Some(stored))) = head else {
        return Ok(None);
    };
    let chain = chain::from_stored(&stored)
        .ok_or_else(|| StoreError::message("the newest event's chain value is damaged"))?;
    on_pool!(database, pool => {
        sqlx::query(
            "INSERT INTO seals (position, chain, sealed_at_us) VALUES ($1, $2, $3) \
             ON CONFLICT (position) DO NOTHING",
        )
        .bind(position)
        .bind(chain.as_slice())
        .bind(now.timestamp_micros())
        .execute(pool)
        .await
        .map_err(fail)
        .map(drop)?
    });
    Ok(Some(Seal {
        position: u64::try_from(position).unwrap_or(0),
        chain,
    }))
}

/// The seals recorded in the database, oldest first.
///
/// # Errors
/// [`StoreError`] when the database fails.
pub async fn stored_seals(database: &Database) -> Result<Vec<(Seal, DateTime<Utc>)>, StoreError> {
    let rows: Vec<(i64, Vec<u8>, i64)> = on_pool!(database, pool => {
        sqlx::query_as("SELECT position, chain, sealed_at_us FROM seals ORDER BY position")
            .fetch_all(pool)
            .await
    })
    .map_err(|e| StoreError::new("reading the seals", e))?;
    Ok(rows
        .into_iter()
        .map(|(position, stored, at_us)| {
            // A damaged seal row can match no chain value, so it is reported, not skipped.
            let chain = chain::from_stored(&stored).unwrap_or([0xff; 32]);
            (
                Seal {
                    position: u64::try_from(position).unwrap_or(0),
                    chain,
                },
                DateTime::from_timestamp_micros(at_us).unwrap_or_default(),
            )
        })
        .collect())
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Every row chains and every seal matches.
    pub ok: bool,
    /// Events checked.
    pub checked: u64,
    /// Seals checked (stored ones and those given).
    pub seals_checked: u64,
    /// The first position where the log is not what was written, if any.
    pub first_bad_position: Option<u64>,
    /// The stream of the row there, when there is one.
    pub first_bad_stream: Option<String>,
    /// What is wrong there.
    pub problem: Option<String>,
}

/// Walks the whole log, recomputing each row's chain value from its stored columns, then
/// checks every seal (the stored ones and `outside`, kept elsewhere) against the chain.
/// `progress` hears the events checked so far after each page.
///
/// # Errors
/// [`StoreError`] when the database fails (damage is a report, not an error).
pub async fn verify(
    database: &Database,
    outside: &[Seal],
    mut progress: impl FnMut(u64) + Send,
) -> Result<Verification, StoreError> {
    let mut seals: Vec<Seal> = stored_seals(database)
        .await?
        .into_iter()
        .map(|(seal, _)| seal)
        .chain(outside.iter().copied())
        .collect();
    seals.sort_by_key(|seal| seal.position);
    let sealed: HashMap<u64, Vec<Hash>> = seals.iter().fold(HashMap::new(), |mut map, seal| {
        map.entry(seal.position).or_default().push(seal.chain);
        map
    });
    let mut report = Verification {
        ok: true,
        checked: 0,
        seals_checked: 0,
        first_bad_position: None,
        first_bad_stream: None,
        problem: None,
    };
    let mut previous = GENESIS;
    let mut expected: u64 = 1;
    let mut after = 0;
    'pages: loop {
        let page = chain_page(database, after).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for row in &page {
            let position = u64::try_from(row.position).unwrap_or(0);
            if position != expected {
                report.fail(
                    expected,
                    None,
                    format!("event {expected} is missing (the next stored event is {position})"),
                );
                break 'pages;
            }
            let link = row.link(&previous);
            match row.chain.as_deref().and_then(chain::from_stored) {
                Some(stored) if stored == link => {}
                Some(_) => {
                    report.fail(
                        position,
                        Some(&row.stream_id),
                        "the event does not match its chain value: it was altered, or inserted \
                         behind the application's back"
                            .into(),
                    );
                    break 'pages;
                }
                None => {
                    report.fail(
                        position,
                        Some(&row.stream_id),
                        "the event has no chain value".into(),
                    );
                    break 'pages;
                }
            }
            if let Some(chains) = sealed.get(&position) {
                report.seals_checked += chains.len() as u64;
                if chains.iter().any(|sealed| *sealed != link) {
                    report.fail(
                        position,
                        Some(&row.stream_id),
                        "the chain does not match the seal at this position: the history up to \
                         here was rewritten"
                            .into(),
                    );
                    break 'pages;
                }
            }
            previous = link;
            expected += 1;
            report.checked += 1;
        }
        progress(report.checked);
    }
    if report.ok
        && let Some(beyond) = seals.iter().find(|seal| seal.position >= expected)
    {
        report.fail(
            expected,
            None,
            format!(
                "the log ends at {} but was sealed at {}: its newest events were removed",
                expected - 1,
                beyond.position
            ),
        );
    }
    Ok(report)
}

impl Verification {
    fn fail(&mut self, position: u64, stream: Option<&str>, problem: String) {
        self.ok = false;
        self.first_bad_position = Some(position);
        self.first_bad_stream = stream.map(str::to_owned);
        self.problem = Some(problem);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_reads_back_as_printed() {
        let seal = Seal {
            position: 42,
            chain: [0xab; 32],
        };
        assert_eq!(seal.to_string().parse::<Seal>(), Ok(seal));
        for bad in [
            "",
            "42",
            "x:ab",
            "42:abc",
            &format!("42:{}", "zz".repeat(32)),
        ] {
            assert_eq!(bad.parse::<Seal>(), Err(InvalidSeal), "{bad}");
        }
    }
}
