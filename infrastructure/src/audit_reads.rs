//! Every read an auditor makes of someone's history is itself recorded: who looked, at
//! what, whose, when. Admins see the record; nobody can change it (the table is
//! append-only, migration 0017).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::database::{Database, on_pool};

/// One recorded read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRead {
    /// The auditor.
    pub auditor_id: Uuid,
    /// What they read, e.g. `state as of 2026-11-01T00:00:00Z`.
    pub what: String,
    /// Whose history, when it was one person's.
    pub customer_id: Option<Uuid>,
    /// When.
    pub read_at: DateTime<Utc>,
}

/// The record could not be written or read.
#[derive(Debug, thiserror::Error)]
#[error("the record of auditors' reads failed: {0}")]
pub struct AuditReadsError(#[from] sqlx::Error);

/// The record of auditors' reads, on the product's database.
#[derive(Debug, Clone)]
pub struct AuditReads {
    database: Database,
}

impl AuditReads {
    /// The record on `database`.
    #[must_use]
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Records a read. Called before the answer is given: a read that cannot be recorded is
    /// not served.
    ///
    /// # Errors
    /// [`AuditReadsError`] when the record cannot be written.
    pub async fn record(
        &self,
        auditor: Uuid,
        what: &str,
        customer: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<(), AuditReadsError> {
        on_pool!(&self.database, pool => {
            sqlx::query(
                "INSERT INTO audit_reads (read_id, auditor_id, what, customer_id, read_at_us) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(Uuid::now_v7().to_string())
            .bind(auditor.to_string())
            .bind(what)
            .bind(customer.map(|c| c.to_string()))
            .bind(now.timestamp_micros())
            .execute(pool)
            .await
            .map(drop)?
        });
        Ok(())
    }

    /// The newest reads first, optionally only those of one customer's history.
    ///
    /// # Errors
    /// [`AuditReadsError`] when the record cannot be read.
    pub async fn recent(
        &self,
        customer: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<AuditRead>, AuditReadsError> {
        let limit = i64::from(limit.clamp(1, 500));
        let customer = customer.map(|c| c.to_string());
        let rows: Vec<(String, String, Option<String>, i64)> = on_pool!(&self.database, pool => {
            sqlx::query_as(
                "SELECT auditor_id, what, customer_id, read_at_us FROM audit_reads \
                 WHERE ($1 IS NULL OR customer_id = $1) \
                 ORDER BY read_at_us DESC, read_id DESC LIMIT $2",
            )
            .bind(customer.clone())
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(auditor, what, customer, at_us)| AuditRead {
                auditor_id: Uuid::parse_str(&auditor).unwrap_or_default(),
                what,
                customer_id: customer.and_then(|c| Uuid::parse_str(&c).ok()),
                read_at: DateTime::from_timestamp_micros(at_us).unwrap_or_default(),
            })
            .collect())
    }
}
