//! Crypto-shredding of personal data (ADR 0006).
//!
//! Personal fields of events (a person's name, email and mobile) are stored sealed with
//! XChaCha20-Poly1305 under a key of that person's own, as
//! `{"$subject": "<id>", "$sealed": "<hex nonce + ciphertext>"}`. The person's id is the
//! associated data, so a sealed value cannot be passed off as someone else's. Erasing the
//! person destroys the key: their events stay, byte for byte (so the history still
//! verifies), but the sealed fields read back as `null` for ever.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use serde_json::Value;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::database::{Database, on_pool};
use crate::encoding::{hex, random_bytes};

const SEALED: &str = "$sealed";
const SUBJECT: &str = "$subject";
/// How long a key (or the fact that it is gone) is trusted from memory; bounds how long
/// another instance can still read a person it has not yet heard was erased.
const CACHE_FOR: Duration = Duration::from_secs(60);
const CACHE_MAX: usize = 10_000;

/// The vault failed, or a sealed value is damaged.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The key table failed.
    #[error("personal data key store failure: {0}")]
    Store(#[from] sqlx::Error),
    /// A sealed value does not decrypt with its owner's key: it was altered.
    #[error("a sealed personal value of {0} is damaged")]
    Damaged(Uuid),
    /// Personal data cannot be written for a person who was erased.
    #[error("the personal data of {0} was erased")]
    Erased(Uuid),
    /// The key is destroyed, but the database's log may still hold its old copy: readers
    /// stayed in the log. Erasing again wipes it.
    #[error(
        "the key of {0} is destroyed, but its old copy could not be wiped from the database log yet; erase again"
    )]
    NotWipedYet(Uuid),
    /// A payload is not JSON.
    #[error("malformed payload: {0}")]
    Malformed(#[from] serde_json::Error),
}

type Key = [u8; 32];

/// Per-person keys, and sealing and unsealing with them.
#[derive(Debug)]
pub struct PersonalDataVault {
    database: Database,
    cache: Mutex<HashMap<Uuid, (Option<Key>, Instant)>>,
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl PersonalDataVault {
    /// The vault on `database` (migrated).
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self {
            database,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, subject: Uuid) -> Option<Option<Key>> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(&subject)
            .filter(|(_, at)| at.elapsed() < CACHE_FOR)
            .map(|(key, _)| *key)
    }

    fn remember(&self, subject: Uuid, key: Option<Key>) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(subject, (key, Instant::now()));
        }
    }

    async fn stored_key(&self, subject: Uuid) -> Result<Option<Key>, VaultError> {
        if let Some(key) = self.cached(subject) {
            return Ok(key);
        }
        let sql = "SELECT key FROM personal_data_keys WHERE subject = $1";
        let row: Option<Option<Vec<u8>>> = on_pool!(&self.database, pool => sqlx::query_scalar(sql)
            .bind(subject.to_string())
            .fetch_optional(pool)
            .await)?;
        let key = row
            .flatten()
            .and_then(|bytes| Key::try_from(bytes.as_slice()).ok());
        self.remember(subject, key);
        Ok(key)
    }

    /// The subject's key, made on first use.
    async fn key_for_sealing(&self, subject: Uuid, now: DateTime<Utc>) -> Result<Key, VaultError> {
        if let Some(Some(key)) = self.cached(subject) {
            return Ok(key);
        }
        let fresh = random_bytes::<32>();
        let sql = "INSERT INTO personal_data_keys (subject, key, created_at_us) VALUES ($1, $2, $3) \
                   ON CONFLICT (subject) DO NOTHING";
        on_pool!(&self.database, pool => sqlx::query(sql)
            .bind(subject.to_string())
            .bind(fresh.as_slice())
            .bind(now.timestamp_micros())
            .execute(pool)
            .await
            .map(drop))?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(&subject);
        }
        self.stored_key(subject)
            .await?
            .ok_or(VaultError::Erased(subject))
    }

    /// Seals `value` as personal data of `subject`.
    ///
    /// # Errors
    /// [`VaultError`] when the key store fails or the subject was erased.
    pub async fn seal(
        &self,
        subject: Uuid,
        value: &Value,
        now: DateTime<Utc>,
    ) -> Result<Value, VaultError> {
        let key = self.key_for_sealing(subject, now).await?;
        let nonce = random_bytes::<24>();
        let plain = serde_json::to_vec(value)?;
        let cipher = XChaCha20Poly1305::new(&key.into());
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: subject.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Damaged(subject))?;
        let mut stored = nonce.to_vec();
        stored.extend(sealed);
        Ok(serde_json::json!({ SUBJECT: subject.to_string(), SEALED: hex(&stored) }))
    }

    /// Seals the named top-level fields of a JSON object payload in place.
    ///
    /// # Errors
    /// As [`PersonalDataVault::seal`], or when the payload is not JSON.
    pub async fn seal_fields(
        &self,
        payload: &RawValue,
        subject: Uuid,
        fields: &[&str],
        now: DateTime<Utc>,
    ) -> Result<Box<RawValue>, VaultError> {
        let mut object: Value = serde_json::from_str(payload.get())?;
        for field in fields {
            if let Some(value) = object.get_mut(*field).filter(|v| !v.is_null()) {
                *value = self.seal(subject, value, now).await?;
            }
        }
        Ok(RawValue::from_string(serde_json::to_string(&object)?)?)
    }

    /// The payload with every sealed value opened, or replaced by `null` where its owner
    /// was erased. Payloads without sealed values come back untouched, without parsing.
    ///
    /// # Errors
    /// [`VaultError::Damaged`] when a sealed value was altered; store failures.
    pub async fn unseal(&self, payload: &RawValue) -> Result<Box<RawValue>, VaultError> {
        if !payload.get().contains(SEALED) {
            return Ok(payload.to_owned());
        }
        let mut value: Value = serde_json::from_str(payload.get())?;
        self.unseal_value(&mut value).await?;
        Ok(RawValue::from_string(serde_json::to_string(&value)?)?)
    }

    async fn unseal_value(&self, value: &mut Value) -> Result<(), VaultError> {
        // Iterative walk: sealed values sit at known depths, but nothing limits nesting.
        let mut pending: Vec<&mut Value> = vec![value];
        while let Some(current) = pending.pop() {
            let sealed = current
                .get(SEALED)
                .and_then(Value::as_str)
                .zip(current.get(SUBJECT).and_then(Value::as_str))
                .map(|(sealed, subject)| (sealed.to_owned(), subject.to_owned()));
            if let Some((sealed, subject)) = sealed {
                *current = self.open(&subject, &sealed).await?;
                continue;
            }
            match current {
                Value::Object(map) => pending.extend(map.values_mut()),
                Value::Array(items) => pending.extend(items.iter_mut()),
                _ => {}
            }
        }
        Ok(())
    }

    async fn open(&self, subject: &str, sealed: &str) -> Result<Value, VaultError> {
        let subject = Uuid::parse_str(subject).map_err(|_| VaultError::Damaged(Uuid::nil()))?;
        let Some(key) = self.stored_key(subject).await? else {
            return Ok(Value::Null);
        };
        let bytes = unhex(sealed)
            .filter(|b| b.len() > 24)
            .ok_or(VaultError::Damaged(subject))?;
        let (nonce, ciphertext) = bytes.split_at(24);
        let plain = XChaCha20Poly1305::new(&key.into())
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: subject.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Damaged(subject))?;
        Ok(serde_json::from_slice(&plain)?)
    }

    /// Destroys the subject's key for good and wipes it from the database files. True when a
    /// key was destroyed now, false when there was none (or it was already gone); either way
    /// the files are wiped again, so that erasing again finishes an erasure cut short.
    ///
    /// # Errors
    /// [`VaultError::Store`] when the database fails; [`VaultError::NotWipedYet`] when
    /// readers kept the SQLite log from being wiped.
    pub async fn erase(&self, subject: Uuid, now: DateTime<Utc>) -> Result<bool, VaultError> {
        let sql = "UPDATE personal_data_keys SET key = NULL, erased_at_us = $2 WHERE subject = $1 AND key IS NOT NULL";
        let erased = on_pool!(&self.database, pool => sqlx::query(sql)
            .bind(subject.to_string())
            .bind(now.timestamp_micros())
            .execute(pool)
            .await
            .map(|done| done.rows_affected() > 0))?;
        self.remember(subject, None);
        // The old row version must not survive in the files: SQLite zeroes freed space
        // (secure_delete) once the WAL is checkpointed into the database; PostgreSQL drops
        // dead row versions on VACUUM.
        match &self.database {
            Database::Sqlite(sqlite) => {
                if !sqlite.wipe_log().await? {
                    return Err(VaultError::NotWipedYet(subject));
                }
            }
            Database::Postgres(pool) => {
                sqlx::query("VACUUM personal_data_keys")
                    .execute(pool)
                    .await?;
            }
        }
        Ok(erased)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{ReaderInTheLog, TestDatabase};

    async fn vault() -> (PersonalDataVault, TestDatabase) {
        let database = TestDatabase::sqlite();
        (PersonalDataVault::new(database.connect().await), database)
    }

    fn raw(value: &Value) -> Box<RawValue> {
        RawValue::from_string(value.to_string()).expect("json")
    }

    /// Seals a field for `subject`, which gives them a key.
    async fn give_a_key(vault: &PersonalDataVault, subject: Uuid) {
        vault
            .seal_fields(
                &raw(&json!({ "profile": { "name": "Asha" } })),
                subject,
                &["profile"],
                Utc::now(),
            )
            .await
            .expect("seal");
    }

    fn sqlite(vault: &PersonalDataVault) -> &crate::database::SqliteDatabase {
        let Database::Sqlite(sqlite) = &vault.database else {
            unreachable!("a SQLite test database")
        };
        sqlite
    }

    /// The subject's key as stored (`None` once erased).
    async fn stored_key(vault: &PersonalDataVault, subject: Uuid) -> Option<Vec<u8>> {
        sqlx::query_scalar("SELECT key FROM personal_data_keys WHERE subject = $1")
            .bind(subject.to_string())
            .fetch_one(sqlite(vault).pool())
            .await
            .expect("the key's row")
    }

    /// Which of the database's files hold `bytes`.
    fn files_holding(database: &TestDatabase, bytes: &[u8]) -> Vec<std::path::PathBuf> {
        database
            .sqlite_files()
            .into_iter()
            .filter(|path| {
                let content = std::fs::read(path).unwrap_or_default();
                content.windows(bytes.len()).any(|window| window == bytes)
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_erased_key_leaves_no_trace_in_the_database_files() {
        let (vault, database) = vault().await;
        let asha = Uuid::new_v4();
        give_a_key(&vault, asha).await;
        let key = stored_key(&vault, asha).await.expect("a key");
        assert!(
            !files_holding(&database, &key).is_empty(),
            "the key is stored somewhere"
        );

        assert!(vault.erase(asha, Utc::now()).await.expect("erased"));

        let traces = files_holding(&database, &key);
        assert!(traces.is_empty(), "{traces:?} still hold the erased key");
        // The database is still whole and writable.
        sqlx::query("PRAGMA quick_check")
            .execute(sqlite(&vault).writer())
            .await
            .expect("intact");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_in_the_log_delays_the_wipe_and_erasing_again_finishes_it() {
        let (vault, database) = vault().await;
        let asha = Uuid::new_v4();
        give_a_key(&vault, asha).await;
        let reader = ReaderInTheLog::enter(sqlite(&vault), "personal_data_keys").await;

        let held = vault.erase(asha, Utc::now()).await;
        assert!(
            matches!(held, Err(VaultError::NotWipedYet(subject)) if subject == asha),
            "{held:?}"
        );
        assert_eq!(
            stored_key(&vault, asha).await,
            None,
            "the key itself is destroyed at once"
        );

        reader.leave().await;
        assert!(
            !vault.erase(asha, Utc::now()).await.expect("wiped"),
            "nothing more to destroy, only to wipe"
        );
        assert_eq!(
            std::fs::metadata(database.sqlite_log())
                .map(|m| m.len())
                .unwrap_or(0),
            0,
            "the log is cut to nothing"
        );
    }

    #[tokio::test]
    async fn sealed_fields_hide_their_content_and_open_again() {
        let (vault, _db) = vault().await;
        let asha = Uuid::new_v4();
        let payload = json!({ "user_id": asha, "profile": { "name": "Asha Rao", "email": "asha@example.com" } });

        let sealed = vault
            .seal_fields(&raw(&payload), asha, &["profile"], Utc::now())
            .await
            .expect("seal");
        assert!(
            !sealed.get().contains("Asha") && !sealed.get().contains("asha@"),
            "{}",
            sealed.get()
        );
        assert!(
            sealed.get().contains(&asha.to_string()),
            "the user id itself is not sealed"
        );

        let opened = vault.unseal(&sealed).await.expect("unseal");
        assert_eq!(
            serde_json::from_str::<Value>(opened.get()).expect("json"),
            payload
        );
    }

    #[tokio::test]
    async fn after_erasure_sealed_fields_read_as_null_and_cannot_be_written_again() {
        let (vault, _db) = vault().await;
        let asha = Uuid::new_v4();
        let ravi = Uuid::new_v4();
        let sealed = vault
            .seal_fields(
                &raw(&json!({ "profile": { "name": "Asha" } })),
                asha,
                &["profile"],
                Utc::now(),
            )
            .await
            .expect("seal");
        let other = vault
            .seal_fields(
                &raw(&json!({ "profile": { "name": "Ravi" } })),
                ravi,
                &["profile"],
                Utc::now(),
            )
            .await
            .expect("seal");

        assert!(vault.erase(asha, Utc::now()).await.expect("erase"));
        assert!(!vault.erase(asha, Utc::now()).await.expect("erase again"));

        let opened = vault.unseal(&sealed).await.expect("unseal");
        assert_eq!(
            serde_json::from_str::<Value>(opened.get()).expect("json"),
            json!({ "profile": null })
        );
        let untouched = vault.unseal(&other).await.expect("unseal");
        assert!(
            untouched.get().contains("Ravi"),
            "other people are unaffected"
        );
        assert!(matches!(
            vault.seal(asha, &json!("again"), Utc::now()).await,
            Err(VaultError::Erased(id)) if id == asha
        ));
    }

    #[tokio::test]
    async fn an_altered_or_transplanted_sealed_value_is_refused() {
        let (vault, _db) = vault().await;
        let asha = Uuid::new_v4();
        let ravi = Uuid::new_v4();
        vault
            .seal(ravi, &json!("x"), Utc::now())
            .await
            .expect("ravi has a key");
        let sealed = vault
            .seal(asha, &json!("Asha"), Utc::now())
            .await
            .expect("seal");

        let mut altered = sealed.clone();
        let text = altered[SEALED].as_str().expect("hex").to_owned();
        let flipped = if text.ends_with('0') { "1" } else { "0" };
        altered[SEALED] = json!(format!("{}{flipped}", &text[..text.len() - 1]));
        assert!(matches!(
            vault.unseal(&raw(&altered)).await,
            Err(VaultError::Damaged(_))
        ));

        let mut transplanted = sealed;
        transplanted[SUBJECT] = json!(ravi.to_string());
        assert!(matches!(
            vault.unseal(&raw(&transplanted)).await,
            Err(VaultError::Damaged(_))
        ));
    }

    #[tokio::test]
    async fn payloads_without_personal_data_pass_through_untouched() {
        let (vault, _db) = vault().await;
        let payload =
            RawValue::from_string(r#"{"amount": "12.50",  "note":"x"}"#.into()).expect("json");
        assert_eq!(
            vault.unseal(&payload).await.expect("unseal").get(),
            payload.get()
        );
    }
}
