//! Receipts: the bytes in an object store (local files under `$DATA_DIR/objects` by default,
//! or S3-compatible storage such as IBM Cloud Object Storage, MinIO or AWS by an `s3://`
//! URL), and a row per receipt saying whose it is and what it holds.
//!
//! Only JPEG, PNG and PDF are taken, recognised by their first bytes, never by a name or a
//! declared type; at most 5 MB. Ids are random (UUID v4), so a key cannot be guessed from
//! another one; who may see a receipt is decided by the caller from its owner.

use std::path::Path as FilePath;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::ObjectStore;
use object_store::path::Path;
use uuid::Uuid;

use crate::database::{Database, on_pool};

/// The largest receipt taken.
pub const MAX_RECEIPT_BYTES: usize = 5 * 1024 * 1024;

/// What a receipt holds, as its first bytes tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptKind {
    /// A JPEG image.
    Jpeg,
    /// A PNG image.
    Png,
    /// A PDF document.
    Pdf,
}

impl ReceiptKind {
    /// The kind `bytes` are, if one of the three.
    #[must_use]
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.starts_with(b"%PDF-") {
            Some(Self::Pdf)
        } else {
            None
        }
    }

    /// Its media type.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Pdf => "application/pdf",
        }
    }

    fn from_content_type(content_type: &str) -> Option<Self> {
        [Self::Jpeg, Self::Png, Self::Pdf]
            .into_iter()
            .find(|kind| kind.content_type() == content_type)
    }
}

/// Why a receipt was not taken or read.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// Nothing was sent.
    #[error("the file is empty")]
    Empty,
    /// Over [`MAX_RECEIPT_BYTES`].
    #[error("the file is larger than 5 MB")]
    TooLarge,
    /// Not a JPEG, PNG or PDF.
    #[error("the file is not a JPEG, PNG or PDF")]
    NotAllowed,
    /// The object store failed.
    #[error("the object store failed: {0}")]
    Store(#[from] object_store::Error),
    /// The receipts table failed.
    #[error("the receipts table failed: {0}")]
    Database(#[from] sqlx::Error),
    /// The object store URL is not one this product takes.
    #[error("OBJECT_STORE_URL {0}")]
    BadUrl(String),
}

/// A stored receipt's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReceipt {
    /// Its id.
    pub receipt_id: Uuid,
    /// Whose it is.
    pub owner: Uuid,
    /// What it holds.
    pub kind: ReceiptKind,
    /// Its size.
    pub size: u64,
    /// Where its bytes are in the object store.
    key: String,
}

/// The receipt store.
#[derive(Debug, Clone)]
pub struct Receipts {
    objects: Arc<dyn ObjectStore>,
    database: Database,
}

impl Receipts {
    /// The store `url` names: `file:///abs/dir` (or `file://./relative`) or `s3://bucket`
    /// (credentials, region and endpoint from the usual `AWS_*` variables: `AWS_ENDPOINT`
    /// for IBM Cloud Object Storage or MinIO, `AWS_ALLOW_HTTP=true` for a plain-HTTP one).
    ///
    /// # Errors
    /// [`ReceiptError::BadUrl`] for another scheme or a directory that cannot be made.
    pub fn open(url: &str, database: Database) -> Result<Self, ReceiptError> {
        let objects: Arc<dyn ObjectStore> = if let Some(dir) = url.strip_prefix("file://") {
            std::fs::create_dir_all(dir)
                .map_err(|e| ReceiptError::BadUrl(format!("cannot make {dir}: {e}")))?;
            Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(FilePath::new(dir))
                    .map_err(|e| ReceiptError::BadUrl(format!("cannot use {dir}: {e}")))?,
            )
        } else if url.starts_with("s3://") {
            Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(|e| ReceiptError::BadUrl(format!("{url}: {e}")))?,
            )
        } else {
            return Err(ReceiptError::BadUrl(format!(
                "{url} is neither file://DIR nor s3://BUCKET"
            )));
        };
        Ok(Self { objects, database })
    }

    /// Keeps `bytes` as `owner`'s receipt and returns its id.
    ///
    /// # Errors
    /// [`ReceiptError::Empty`], [`ReceiptError::TooLarge`] or [`ReceiptError::NotAllowed`]
    /// for a file that is refused (nothing is kept then); a store or database failure.
    pub async fn store(
        &self,
        owner: Uuid,
        bytes: Bytes,
        now: DateTime<Utc>,
    ) -> Result<StoredReceipt, ReceiptError> {
        if bytes.is_empty() {
            return Err(ReceiptError::Empty);
        }
        if bytes.len() > MAX_RECEIPT_BYTES {
            return Err(ReceiptError::TooLarge);
        }
        let kind = ReceiptKind::sniff(&bytes).ok_or(ReceiptError::NotAllowed)?;
        let receipt_id = Uuid::new_v4();
        let key = format!("receipts/{owner}/{receipt_id}");
        let size = bytes.len() as u64;
        self.objects
            .put(&Path::from(key.as_str()), bytes.into())
            .await?;
        // The object first: a failure between the two leaves an unreferenced object, never
        // a row without its bytes.
        let sql = "INSERT INTO receipts \
                   (receipt_id, owner_id, content_type, size_bytes, object_key, stored_at_us) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        on_pool!(&self.database, pool => sqlx::query(sql)
            .bind(receipt_id.to_string())
            .bind(owner.to_string())
            .bind(kind.content_type())
            .bind(i64::try_from(size).unwrap_or(i64::MAX))
            .bind(&key)
            .bind(now.timestamp_micros())
            .execute(pool)
            .await
            .map(drop))?;
        Ok(StoredReceipt {
            receipt_id,
            owner,
            kind,
            size,
            key,
        })
    }

    /// A receipt's facts, if it exists.
    ///
    /// # Errors
    /// A database failure.
    pub async fn find(&self, receipt_id: Uuid) -> Result<Option<StoredReceipt>, ReceiptError> {
        let sql = "SELECT owner_id, content_type, size_bytes, object_key FROM receipts WHERE receipt_id = $1";
        let row: Option<(String, String, i64, String)> = on_pool!(&self.database, pool => sqlx::query_as(sql)
            .bind(receipt_id.to_string())
            .fetch_optional(pool)
            .await)?;
        Ok(row.and_then(|(owner, content_type, size, key)| {
            Some(StoredReceipt {
                receipt_id,
                owner: owner.parse().ok()?,
                kind: ReceiptKind::from_content_type(&content_type)?,
                size: u64::try_from(size).ok()?,
                key,
            })
        }))
    }

    /// Forgets a receipt that was kept for a request that was then refused, so that nothing
    /// of the refused request stays behind.
    ///
    /// # Errors
    /// A store or database failure.
    pub async fn discard(&self, receipt_id: Uuid) -> Result<(), ReceiptError> {
        let Some(receipt) = self.find(receipt_id).await? else {
            return Ok(());
        };
        on_pool!(&self.database, pool => sqlx::query("DELETE FROM receipts WHERE receipt_id = $1")
            .bind(receipt_id.to_string())
            .execute(pool)
            .await
            .map(drop))?;
        match self.objects.delete(&Path::from(receipt.key.as_str())).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// The bytes of a receipt found with [`Receipts::find`].
    ///
    /// # Errors
    /// A store failure.
    pub async fn read(&self, receipt: &StoredReceipt) -> Result<Bytes, ReceiptError> {
        let key = Path::from(receipt.key.as_str());
        Ok(self.objects.get(&key).await?.bytes().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bytes_decide_the_kind() {
        assert_eq!(
            ReceiptKind::sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0]),
            Some(ReceiptKind::Jpeg)
        );
        assert_eq!(
            ReceiptKind::sniff(b"\x89PNG\r\n\x1a\nIHDR"),
            Some(ReceiptKind::Png)
        );
        assert_eq!(ReceiptKind::sniff(b"%PDF-1.7\n"), Some(ReceiptKind::Pdf));
        assert_eq!(ReceiptKind::sniff(b"<html><script>"), None);
        assert_eq!(ReceiptKind::sniff(b"GIF89a"), None);
        assert_eq!(ReceiptKind::sniff(b""), None);
    }
}
