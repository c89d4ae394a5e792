//! The hash chain that makes the log tamper-evident (ADR 0018).
//!
//! Every stored event carries `chain = SHA-256(previous chain, position, version, content)`,
//! where `content` is a digest of the event's stored columns exactly as stored (the
//! payload's bytes as written, sealed personal data included, so erasing a person's key
//! changes nothing here). The chain runs over the global log: a row that is altered,
//! inserted or removed breaks it at that position, and a seal (the chain at some position,
//! kept outside the database) catches a rewrite or a truncation of the newest events.
//!
//! The content digest is computed on the caller's task, when the append is prepared; the
//! single group committer only links digests, which is one short hash per event.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A 32-byte SHA-256 value.
pub type Hash = [u8; 32];

/// The chain value "before" position 1.
pub const GENESIS: Hash = [0; 32];

/// The stored columns of one event, as they are (or will be) in the table.
#[derive(Debug, Clone, Copy)]
pub struct StoredColumns<'a> {
    /// `stream_id`.
    pub stream_id: &'a str,
    /// `event_id`.
    pub event_id: Uuid,
    /// `event_type`.
    pub event_type: &'a str,
    /// `schema_version`.
    pub schema_version: i64,
    /// `command_id`.
    pub command_id: Uuid,
    /// `recorded_at_us`.
    pub recorded_at_us: i64,
    /// `payload`, byte for byte.
    pub payload: &'a str,
    /// `metadata`, byte for byte.
    pub metadata: &'a str,
}

impl StoredColumns<'_> {
    /// The digest of the columns that do not depend on where the event lands. Texts are
    /// length-prefixed so that no two different rows can give the same input.
    #[must_use]
    pub fn digest(&self) -> Hash {
        let mut hasher = Sha256::new();
        let mut text = |value: &str| {
            hasher.update((value.len() as u64).to_be_bytes());
            hasher.update(value.as_bytes());
        };
        text(self.stream_id);
        text(self.event_type);
        text(self.payload);
        text(self.metadata);
        hasher.update(self.event_id.as_bytes());
        hasher.update(self.command_id.as_bytes());
        hasher.update(self.schema_version.to_be_bytes());
        hasher.update(self.recorded_at_us.to_be_bytes());
        hasher.finalize().into()
    }
}

/// The chain value of the event at `position` (its stream `version`), following `previous`.
#[must_use]
pub fn link(previous: &Hash, position: u64, version: u64, content: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(position.to_be_bytes());
    hasher.update(version.to_be_bytes());
    hasher.update(content);
    hasher.finalize().into()
}

/// A stored chain value as 32 bytes, if it is one.
#[must_use]
pub fn from_stored(bytes: &[u8]) -> Option<Hash> {
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(payload: &str) -> StoredColumns<'_> {
        StoredColumns {
            stream_id: "wallet-1",
            event_id: Uuid::from_u128(1),
            event_type: "WalletToppedUp",
            schema_version: 1,
            command_id: Uuid::from_u128(2),
            recorded_at_us: 1_700_000_000_000_000,
            payload,
            metadata: "{}",
        }
    }

    #[test]
    fn any_change_to_a_stored_column_changes_the_digest() {
        let original = columns(r#"{"amount":"10"}"#);
        let base = original.digest();
        let changed = [
            StoredColumns {
                payload: r#"{"amount":"11"}"#,
                ..original
            },
            StoredColumns {
                stream_id: "wallet-2",
                ..original
            },
            StoredColumns {
                event_type: "ExpenseRecorded",
                ..original
            },
            StoredColumns {
                schema_version: 2,
                ..original
            },
            StoredColumns {
                recorded_at_us: original.recorded_at_us + 1,
                ..original
            },
            StoredColumns {
                command_id: Uuid::from_u128(3),
                ..original
            },
            StoredColumns {
                event_id: Uuid::from_u128(4),
                ..original
            },
            StoredColumns {
                metadata: r#"{"actor":"x"}"#,
                ..original
            },
        ];
        for other in changed {
            assert_ne!(other.digest(), base, "{other:?}");
        }
    }

    #[test]
    fn moving_text_between_columns_changes_the_digest() {
        let a = StoredColumns {
            stream_id: "ab",
            event_type: "c",
            ..columns("{}")
        };
        let b = StoredColumns {
            stream_id: "a",
            event_type: "bc",
            ..columns("{}")
        };
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn a_link_depends_on_everything_before_it() {
        let content = columns("{}").digest();
        let first = link(&GENESIS, 1, 1, &content);
        assert_ne!(link(&first, 2, 1, &content), link(&GENESIS, 2, 1, &content));
        assert_ne!(link(&first, 2, 1, &content), link(&first, 3, 1, &content));
        assert_ne!(link(&first, 2, 1, &content), link(&first, 2, 2, &content));
        assert_eq!(link(&first, 2, 1, &content), link(&first, 2, 1, &content));
    }
}
