//! Dialect-neutral access for projections: the same SQL text (with `$1`-style parameters,
//! which both SQLite and PostgreSQL accept) runs in a transaction on either database.

use chrono::NaiveDate;
use infrastructure::database::Database;
use sqlx::{Postgres, Sqlite, Transaction};

/// A parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An integer.
    Int(i64),
    /// A text.
    Text(String),
    /// NULL in an integer column.
    NullInt,
    /// NULL in a text column.
    NullText,
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<Option<String>> for Value {
    fn from(value: Option<String>) -> Self {
        value.map_or(Self::NullText, Self::Text)
    }
}

impl From<Option<i64>> for Value {
    fn from(value: Option<i64>) -> Self {
        value.map_or(Self::NullInt, Self::Int)
    }
}

/// A day is stored as `YYYY-MM-DD` text, so that text order is date order.
impl From<NaiveDate> for Value {
    fn from(day: NaiveDate) -> Self {
        Self::Text(iso_day(day))
    }
}

/// `day` as `YYYY-MM-DD`. `format("%Y-%m-%d")` parses its pattern on every call, which was
/// a tenth of what a rebuild spent preparing an expense's row; `format!` is compiled.
fn iso_day(day: NaiveDate) -> String {
    use chrono::Datelike;
    let year = day.year();
    if !(0..=9999).contains(&year) {
        // Outside four digits the pattern's own rules (a sign, more digits) apply.
        return day.format("%Y-%m-%d").to_string();
    }
    format!("{year:04}-{:02}-{:02}", day.month(), day.day())
}

impl From<Option<NaiveDate>> for Value {
    fn from(day: Option<NaiveDate>) -> Self {
        day.map_or(Self::NullText, Self::from)
    }
}

/// How SQL writes the expense read model's ids and days, which PostgreSQL stores as `uuid`
/// and `date` (migration 0021: its index builds in half the time) and SQLite as text.
/// Parameters are bound as text on both, so on PostgreSQL they are cast to the column's
/// type, and the columns are read back as text; on SQLite every method returns its
/// argument as it is.
#[derive(Debug, Clone, Copy)]
pub struct ExpenseKeys {
    postgres: bool,
}

impl ExpenseKeys {
    /// The keys as PostgreSQL (`true`) or SQLite stores them.
    #[must_use]
    pub fn on_postgres(postgres: bool) -> Self {
        Self { postgres }
    }

    fn cast(self, value: &str, to: &str) -> String {
        if self.postgres {
            format!("CAST({value} AS {to})")
        } else {
            value.to_owned()
        }
    }

    /// A text `value` (a parameter, a column of `VALUES`) compared with an id column.
    #[must_use]
    pub fn id(self, value: &str) -> String {
        self.cast(value, "UUID")
    }

    /// A text `value` compared with a day column.
    #[must_use]
    pub fn day(self, value: &str) -> String {
        self.cast(value, "DATE")
    }

    /// A text parameter that is `''` when absent, compared with an id column: no id on
    /// PostgreSQL is `''`, so the absent one becomes `NULL` there, which matches nothing.
    #[must_use]
    pub fn optional_id(self, parameter: &str) -> String {
        self.optional(parameter, "UUID")
    }

    /// As [`Self::optional_id`], for a day.
    #[must_use]
    pub fn optional_day(self, parameter: &str) -> String {
        self.optional(parameter, "DATE")
    }

    fn optional(self, parameter: &str, to: &str) -> String {
        if self.postgres {
            format!("CAST(NULLIF({parameter}, '') AS {to})")
        } else {
            parameter.to_owned()
        }
    }

    /// An id `column` read as text.
    #[must_use]
    pub fn id_text(self, column: &str) -> String {
        self.cast(column, "TEXT")
    }

    /// A day `column` read as `YYYY-MM-DD`, whatever the server's date style.
    #[must_use]
    pub fn day_text(self, column: &str) -> String {
        if self.postgres {
            format!("to_char({column}, 'YYYY-MM-DD')")
        } else {
            column.to_owned()
        }
    }

    /// The month of a day `column`, as `YYYY-MM`.
    #[must_use]
    pub fn month_text(self, column: &str) -> String {
        if self.postgres {
            format!("to_char({column}, 'YYYY-MM')")
        } else {
            format!("substr({column}, 1, 7)")
        }
    }
}

macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Value::Int(value) => query.bind(*value),
                Value::Text(value) => query.bind(value.as_str()),
                Value::NullInt => query.bind(None::<i64>),
                Value::NullText => query.bind(None::<String>),
            };
        }
        query
    }};
}

/// A write transaction of data derived from the log, which a crash may lose and the log
/// makes again. On SQLite it is made on one of the two writing connections, and does not
/// wait for the disk: the read models' ([`WriteTx::begin`], see
/// [`infrastructure::database::SqliteDatabase::read_model_writer`]) or the log file's
/// ([`WriteTx::begin_beside_the_log`]).
#[derive(Debug)]
pub enum WriteTx {
    /// On SQLite, on a writing connection (the process's turn to write its file), begun
    /// `IMMEDIATE`: it holds the write lock from the start, so it never fails halfway
    /// trying to upgrade a read lock.
    Sqlite(Transaction<'static, Sqlite>),
    /// On PostgreSQL.
    Postgres(Transaction<'static, Postgres>),
}

impl WriteTx {
    /// Begins a transaction on the read models: their tables and the projections'
    /// checkpoints (on SQLite, in the read models' own file, ADR 0030).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn begin(database: &Database) -> Result<Self, sqlx::Error> {
        Ok(match database {
            Database::Sqlite(sqlite) => Self::Sqlite(
                sqlite
                    .read_model_writer()
                    .begin_with("BEGIN IMMEDIATE")
                    .await?,
            ),
            Database::Postgres(pool) => Self::Postgres(pool.begin().await?),
        })
    }

    /// Begins a transaction on what is derived from the log but kept beside it, in the
    /// log's own file on SQLite: the process managers' checkpoints, which must stay as
    /// long as the log (a process manager that started again from position 0 would act on
    /// every event again), not go with the read models.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn begin_beside_the_log(database: &Database) -> Result<Self, sqlx::Error> {
        Ok(match database {
            Database::Sqlite(sqlite) => {
                Self::Sqlite(sqlite.writer().begin_with("BEGIN IMMEDIATE").await?)
            }
            Database::Postgres(pool) => Self::Postgres(pool.begin().await?),
        })
    }

    /// Runs a statement; the number of rows it touched.
    ///
    /// # Errors
    /// When the statement fails.
    pub async fn execute(&mut self, sql: &str, args: &[Value]) -> Result<u64, sqlx::Error> {
        Ok(match self {
            Self::Sqlite(tx) => bind_all!(sqlx::query(sql), args)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
            Self::Postgres(tx) => bind_all!(sqlx::query(sql), args)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
        })
    }

    /// Rows of a query inside the transaction, decoded as [`fetch_all`] decodes them.
    ///
    /// # Errors
    /// When the query fails.
    pub async fn fetch_all<T>(&mut self, sql: &str, args: &[Value]) -> Result<Vec<T>, sqlx::Error>
    where
        T: Send
            + Unpin
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        match self {
            Self::Sqlite(tx) => {
                bind_all!(sqlx::query_as(sql), args)
                    .fetch_all(&mut **tx)
                    .await
            }
            Self::Postgres(tx) => {
                bind_all!(sqlx::query_as(sql), args)
                    .fetch_all(&mut **tx)
                    .await
            }
        }
    }

    /// The first column of the first row, as an integer, if there is a row.
    ///
    /// # Errors
    /// When the query fails.
    pub async fn fetch_int(
        &mut self,
        sql: &str,
        args: &[Value],
    ) -> Result<Option<i64>, sqlx::Error> {
        match self {
            Self::Sqlite(tx) => {
                bind_all!(sqlx::query_scalar(sql), args)
                    .fetch_optional(&mut **tx)
                    .await
            }
            Self::Postgres(tx) => {
                bind_all!(sqlx::query_scalar(sql), args)
                    .fetch_optional(&mut **tx)
                    .await
            }
        }
    }

    /// Writes `rows` (each `width` values) with multi-row statements: each statement is
    /// `head`, then rows as `(?, ?), (?, ?)`, then `tail`. `head` is typically
    /// `INSERT INTO t (columns) VALUES ` (with `tail` an `ON CONFLICT` clause), or
    /// `UPDATE t SET ... FROM (VALUES ` (with `tail` `) AS d WHERE ...`, the rows' columns
    /// being `d.column1`, `d.column2`, ... on both databases). Full chunks share one
    /// statement text, so it is prepared once.
    ///
    /// # Errors
    /// When a statement fails.
    pub async fn write_rows(
        &mut self,
        head: &str,
        tail: &str,
        width: usize,
        rows: Vec<Value>,
    ) -> Result<(), sqlx::Error> {
        for (sql, args) in self.chunked(head, tail, width, rows) {
            self.execute(&sql, &args).await?;
        }
        Ok(())
    }

    /// Inserts `rows` (each `width` values) into `table (columns)` (`into`, e.g.
    /// `rm_expenses (expense_id, owner)`): on PostgreSQL with one `COPY`, several times
    /// quicker than multi-row inserts for a rebuild's hundreds of thousands of rows; on
    /// SQLite, which has no `COPY`, as [`Self::write_rows`] with `INSERT INTO <into> VALUES`.
    ///
    /// # Errors
    /// When the statement fails.
    pub async fn copy_rows(
        &mut self,
        into: &str,
        width: usize,
        rows: Vec<Value>,
    ) -> Result<(), sqlx::Error> {
        let rows = RowsToInsert::new(self.is_postgres(), width, rows);
        self.insert_rows(into, rows).await
    }

    /// Inserts rows made ready by [`RowsToInsert::new`], as [`Self::copy_rows`] does.
    ///
    /// # Errors
    /// When the statement fails.
    pub async fn insert_rows(&mut self, into: &str, rows: RowsToInsert) -> Result<(), sqlx::Error> {
        match (self, rows) {
            (_, RowsToInsert::Nothing) => Ok(()),
            (Self::Postgres(tx), RowsToInsert::Copy(data)) => {
                let mut copy = tx
                    .copy_in_raw(&format!("COPY {into} FROM STDIN (FORMAT text)"))
                    .await?;
                copy.send(data).await?;
                copy.finish().await.map(drop)
            }
            (tx, RowsToInsert::Copy(_)) => Err(sqlx::Error::Protocol(format!(
                "rows for {into} were made ready for PostgreSQL's COPY, not for {tx:?}"
            ))),
            (tx, RowsToInsert::Values { width, values }) => {
                tx.write_rows(&format!("INSERT INTO {into} VALUES "), "", width, values)
                    .await
            }
        }
    }

    /// As [`Self::write_rows`], for statements that return rows (`RETURNING`).
    ///
    /// # Errors
    /// When a statement fails.
    pub async fn write_rows_returning<T>(
        &mut self,
        head: &str,
        tail: &str,
        width: usize,
        rows: Vec<Value>,
    ) -> Result<Vec<T>, sqlx::Error>
    where
        T: Send
            + Unpin
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let mut returned = Vec::new();
        for (sql, args) in self.chunked(head, tail, width, rows) {
            returned.extend(match self {
                Self::Sqlite(tx) => {
                    bind_all!(sqlx::query_as(&sql), &args)
                        .fetch_all(&mut **tx)
                        .await?
                }
                Self::Postgres(tx) => {
                    bind_all!(sqlx::query_as(&sql), &args)
                        .fetch_all(&mut **tx)
                        .await?
                }
            });
        }
        Ok(returned)
    }

    /// The statements of [`Self::write_rows`], with their arguments.
    fn chunked(
        &self,
        head: &str,
        tail: &str,
        width: usize,
        rows: Vec<Value>,
    ) -> Vec<(String, Vec<Value>)> {
        const ROWS_PER_STATEMENT: usize = 200;
        let mut statements = Vec::new();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let args: Vec<Value> = rows.by_ref().take(ROWS_PER_STATEMENT * width).collect();
            let mut sql = String::with_capacity(head.len() + tail.len() + args.len() * 6);
            sql.push_str(head);
            for (index, _) in args.iter().enumerate() {
                let column = index % width;
                if column == 0 {
                    sql.push_str(if index == 0 { "(" } else { "),(" });
                } else {
                    sql.push(',');
                }
                // SQLite binds `$N` by looking each name up among all of the statement's
                // parameters, which is quadratic in a long multi-row statement; `?` binds
                // by position.
                if self.is_postgres() {
                    sql.push('$');
                    sql.push_str(&(index + 1).to_string());
                } else {
                    sql.push('?');
                }
            }
            sql.push(')');
            sql.push_str(tail);
            statements.push((sql, args));
        }
        statements
    }

    /// The first column of every row, as text.
    ///
    /// # Errors
    /// When the query fails.
    pub async fn fetch_texts(
        &mut self,
        sql: &str,
        args: &[Value],
    ) -> Result<Vec<String>, sqlx::Error> {
        match self {
            Self::Sqlite(tx) => {
                bind_all!(sqlx::query_scalar(sql), args)
                    .fetch_all(&mut **tx)
                    .await
            }
            Self::Postgres(tx) => {
                bind_all!(sqlx::query_scalar(sql), args)
                    .fetch_all(&mut **tx)
                    .await
            }
        }
    }

    /// True on PostgreSQL.
    #[must_use]
    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// Makes the writes durable.
    ///
    /// # Errors
    /// When the commit fails (then nothing was written).
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(tx) => tx.commit().await,
            Self::Postgres(tx) => tx.commit().await,
        }
    }
}

/// Rows of a query on the read side, decoded into tuples (or any row type both drivers
/// can decode).
///
/// # Errors
/// When the query fails.
pub async fn fetch_all<T>(
    database: &Database,
    sql: &str,
    args: &[Value],
) -> Result<Vec<T>, sqlx::Error>
where
    T: Send
        + Unpin
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    match database {
        Database::Sqlite(sqlite) => {
            bind_all!(sqlx::query_as(sql), args)
                .fetch_all(sqlite.pool())
                .await
        }
        Database::Postgres(pool) => bind_all!(sqlx::query_as(sql), args).fetch_all(pool).await,
    }
}

/// Rows ready to insert, made before the transaction that inserts them (a rebuild makes
/// the next page's while the current one is written): on PostgreSQL the text a `COPY`
/// sends, elsewhere the values of multi-row `INSERT`s.
#[derive(Debug)]
pub enum RowsToInsert {
    /// No rows.
    Nothing,
    /// `COPY ... FROM STDIN (FORMAT text)` data.
    Copy(Vec<u8>),
    /// Rows of `width` values each.
    Values {
        /// Values per row.
        width: usize,
        /// The rows' values, row after row.
        values: Vec<Value>,
    },
}

impl RowsToInsert {
    /// `rows` (each `width` values) ready for PostgreSQL (`postgres`) or SQLite.
    #[must_use]
    pub fn new(postgres: bool, width: usize, rows: Vec<Value>) -> Self {
        if rows.is_empty() {
            return Self::Nothing;
        }
        if !postgres {
            return Self::Values {
                width,
                values: rows,
            };
        }
        let mut data = String::with_capacity(rows.len() * 16);
        for (index, value) in rows.iter().enumerate() {
            if index % width != 0 {
                data.push('\t');
            }
            copy_text(&mut data, value);
            if index % width == width - 1 {
                data.push('\n');
            }
        }
        Self::Copy(data.into_bytes())
    }
}

/// `value` in the text format of PostgreSQL's `COPY`: `\N` for NULL, and a backslash
/// before what would otherwise end a field or a row.
fn copy_text(data: &mut String, value: &Value) {
    match value {
        Value::Int(number) => {
            use std::fmt::Write as _;
            // Writing into a String cannot fail.
            let _ = write!(data, "{number}");
        }
        Value::NullInt | Value::NullText => data.push_str("\\N"),
        // Most texts hold nothing to escape: copied whole.
        Value::Text(text) if !text.contains(['\\', '\n', '\r', '\t']) => data.push_str(text),
        Value::Text(text) => {
            for c in text.chars() {
                match c {
                    '\\' => data.push_str("\\\\"),
                    '\n' => data.push_str("\\n"),
                    '\r' => data.push_str("\\r"),
                    '\t' => data.push_str("\\t"),
                    c => data.push(c),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_would_end_a_field_or_a_row() {
        let mut data = String::new();
        for value in [
            Value::Text("a\tb\nc\\d\re".into()),
            Value::NullText,
            Value::Int(-7),
            Value::Text("\\N".into()),
        ] {
            copy_text(&mut data, &value);
            data.push('|');
        }
        assert_eq!(data, "a\\tb\\nc\\\\d\\re|\\N|-7|\\\\N|");
    }

    #[test]
    fn copy_text_sends_plain_texts_and_numbers_as_they_are() {
        let mut data = String::new();
        for value in [
            Value::Text("Café au lait, 2 €".into()),
            Value::Int(i64::MIN),
            Value::Text(String::new()),
        ] {
            copy_text(&mut data, &value);
            data.push('|');
        }
        assert_eq!(data, "Café au lait, 2 €|-9223372036854775808||");
    }

    #[test]
    fn days_are_written_as_the_iso_pattern_writes_them() {
        let mut day = NaiveDate::from_ymd_opt(-3, 12, 25).expect("day");
        let last = NaiveDate::from_ymd_opt(10_002, 1, 3).expect("day");
        let mut checked = 0;
        while day <= last {
            assert_eq!(iso_day(day), day.format("%Y-%m-%d").to_string());
            day = day + chrono::Days::new(37);
            checked += 1;
        }
        assert!(checked > 98_000, "{checked}");
        assert_eq!(
            iso_day(NaiveDate::from_ymd_opt(987, 6, 5).expect("day")),
            "0987-06-05"
        );
    }
}
