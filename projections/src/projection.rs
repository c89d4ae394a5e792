//! What a projection is: a named, versioned reader of the log that writes its own tables.

use infrastructure::event_store::Position;

use crate::facts::Fact;
use crate::sql::WriteTx;

/// Why a batch was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// This event cannot be applied (it does not decode, or breaks what the projection
    /// expects): the projection stops here and says so, it never skips it silently.
    #[error("event at position {position}: {reason}")]
    Event {
        /// Where.
        position: Position,
        /// Why.
        reason: String,
    },
    /// The database failed; the whole batch is tried again later.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A table's rows as a rebuild compares them: every column, in a fixed order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRows {
    /// The table.
    pub table: String,
    /// Its columns, all of them.
    pub columns: &'static [&'static str],
}

/// The columns of a table, as a projection declares them. Rows are compared whatever
/// their order (see `rebuild::checksum`), so no key is needed.
pub type TableShape = &'static [&'static str];

/// `tables` as the projection writing with `suffix` names them (`""` for the live ones).
#[must_use]
pub fn suffixed_tables(tables: &[&str], suffix: &str) -> Vec<String> {
    tables.iter().map(|t| format!("{t}{suffix}")).collect()
}

/// Each of `tables` with the columns of the shape at the same place in `shapes`.
#[must_use]
pub fn table_rows(tables: Vec<String>, shapes: &[TableShape]) -> Vec<TableRows> {
    tables
        .into_iter()
        .zip(shapes)
        .map(|(table, &columns)| TableRows { table, columns })
        .collect()
}

/// A page's writes, prepared from its events without the database (see
/// [`Projection::prepare`]).
#[async_trait::async_trait]
pub trait PreparedWrites: Send {
    /// Writes them inside the runner's transaction, as [`Projection::apply`] would have.
    ///
    /// # Errors
    /// [`ApplyError`]: the events are as the projection's `apply` would find them.
    async fn write(self: Box<Self>, tx: &mut WriteTx) -> Result<(), ApplyError>;
}

/// A page's writes as prepared, or why one of its events cannot be applied.
pub type Preparation = Result<Box<dyn PreparedWrites>, ApplyError>;

/// What [`Projection::prepare`] gives: `None` for a projection that only applies.
pub type Prepared = Option<Preparation>;

/// A read model's writer.
#[async_trait::async_trait]
pub trait Projection: Send + Sync + std::fmt::Debug {
    /// Its stable name, e.g. `"wallets"`; also the name of its checkpoint.
    fn name(&self) -> &str;

    /// The tables it writes, in a fixed order.
    fn tables(&self) -> Vec<String>;

    /// Each of its tables with the columns that make a row and the order that makes the
    /// table, as [`Self::tables`] names them: what a rebuild counts and checksums to compare
    /// the rebuilt tables with the live ones.
    fn rows(&self) -> Vec<TableRows>;

    /// The same projection writing to the tables named `<table><suffix>` under the name
    /// `<name><suffix>`: what a rebuild fills while the live tables keep serving.
    fn twin(&self, suffix: &str) -> std::sync::Arc<dyn Projection>;

    /// The version of its code and tables; bumping it means the read model must be rebuilt.
    fn version(&self) -> i64;

    /// Whether it writes anything for `fact` (or stops on it): a page without such a fact
    /// only moves its checkpoint, without a statement of its own.
    fn reads(&self, _fact: &Fact) -> bool {
        true
    }

    /// Applies `facts` (in position order, all after the projection's checkpoint) inside
    /// the runner's transaction, which also moves the checkpoint.
    ///
    /// # Errors
    /// [`ApplyError`].
    async fn apply(&self, tx: &mut WriteTx, facts: &[&Fact]) -> Result<(), ApplyError>;

    /// What [`Self::apply`] would write for `facts`, worked out without the database, for
    /// PostgreSQL (`postgres`) or SQLite: a rebuild prepares the next page on one core
    /// while the database stores this one. `Some(Err(..))` when an event cannot be applied.
    /// `None` (the default) for a projection whose writes depend on what it reads as it
    /// goes, or that writes too little for it to matter: it is only applied.
    fn prepare(&self, facts: &[&Fact], postgres: bool) -> Prepared {
        let _ = (facts, postgres);
        None
    }
}
