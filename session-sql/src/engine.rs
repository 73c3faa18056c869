//! The private dialect abstraction the layouts run on.
//!
//! A layout written once (see [`crate::layout`]) describes each operation as statements
//! with `$n` placeholders and dialect-neutral values ([`Arg`]), and says what it wants back
//! ([`Want`]). Each dialect implements [`Engine`] (where reads and writes run, how a value
//! binds and how a time decodes) and [`Tx`] (a transaction for a compare-and-swap); that is
//! all a dialect contributes, so what the dialects share lives once.
//!
//! [`Stmt`] turns `$n` placeholders into the dialect's own: kept on PostgreSQL, `?n` on
//! SQLite, and plain `?` on MySQL with the bind order recorded, so one statement text serves
//! the three dialects whatever order its parameters appear in. A statement also records
//! how its layout stores times ([`Clock`]); [`Shape`] states the rest of what differs in
//! the SQL text (quoting, upsert, `RETURNING`, the row lock, the batch `DELETE`).

use std::future::Future;

#[cfg(any(feature = "postgres", feature = "mysql"))]
use session_core::chrono::Timelike;
use session_core::chrono::{DateTime, Utc};
use session_core::{StoreError, StoreResult};
use sqlx::SqlStr;

use crate::common::sql;
use crate::error::column;
#[cfg(any(feature = "postgres", feature = "mysql"))]
use crate::error::map_err;
use crate::Dialect;

/// A value bound to a statement.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    /// Text or NULL.
    OptText(Option<String>),
    /// Bound as the dialect and the statement's [`Clock`] store times (microsecond
    /// precision).
    Time(DateTime<Utc>),
    /// A time or NULL.
    OptTime(Option<DateTime<Utc>>),
    Int(i64),
}

/// How a layout stores times, where the dialects leave a choice: the native layout stores
/// SQLite times as integer microseconds, the interop layouts as Django's text. (The server
/// dialects store every layout's times in their own time types.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clock {
    Native,
    Interop,
}

/// The type of a column a [`Want::Row`] statement reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    Text,
    OptText,
    Int,
    Time,
    OptTime,
}

/// A column read by [`Want::Row`] / [`Want::All`].
#[derive(Debug)]
pub(crate) enum Value {
    Text(Option<String>),
    Int(i64),
    Time(Option<DateTime<Utc>>),
}

impl Value {
    pub(crate) fn text(self) -> Option<String> {
        match self {
            Value::Text(v) => v,
            _ => None,
        }
    }

    pub(crate) fn int(&self) -> i64 {
        match self {
            Value::Int(n) => *n,
            _ => 0,
        }
    }

    pub(crate) fn time(&self) -> Option<DateTime<Utc>> {
        match self {
            Value::Time(t) => *t,
            _ => None,
        }
    }
}

/// What a statement should answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// The number of rows changed.
    Rows,
    /// As `Rows`, for an `INSERT`: a duplicate key is [`StoreError::KeyExists`].
    Insert,
    /// Whether a row came back.
    Present,
    /// The text in the first column of the row, if one came back.
    Text,
    /// The boolean in the first column of the row, if one came back.
    Flag,
    /// Session data, expiry and (with `created`) creation time, if a row came back.
    Found { created: bool },
    /// The columns of the row, if one came back, read as the given types.
    Row(&'static [Col]),
    /// The columns of every row.
    All(&'static [Col]),
}

impl Want {
    pub(crate) fn fetches(self) -> bool {
        !matches!(self, Want::Rows | Want::Insert)
    }

    pub(crate) fn fetches_all(self) -> bool {
        matches!(self, Want::All(_))
    }
}

/// A stored session row of a layout without a version column.
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) data: String,
    pub(crate) expires_at: DateTime<Utc>,
    pub(crate) created_at: Option<DateTime<Utc>>,
}

/// What a statement answered (the shape its [`Want`] asked for).
#[derive(Debug)]
pub(crate) enum Out {
    Rows(u64),
    Text(Option<String>),
    Flag(Option<bool>),
    Found(Option<Found>),
    Row(Option<Vec<Value>>),
    All(Vec<Vec<Value>>),
}

impl Out {
    pub(crate) fn rows(&self) -> u64 {
        match self {
            Out::Rows(n) => *n,
            Out::Text(v) => u64::from(v.is_some()),
            Out::Flag(v) => u64::from(v.is_some()),
            Out::Found(v) => u64::from(v.is_some()),
            Out::Row(v) => u64::from(v.is_some()),
            Out::All(v) => v.len() as u64,
        }
    }

    pub(crate) fn row(self) -> Option<Vec<Value>> {
        match self {
            Out::Row(v) => v,
            _ => None,
        }
    }

    pub(crate) fn all(self) -> Vec<Vec<Value>> {
        match self {
            Out::All(v) => v,
            _ => Vec::new(),
        }
    }

    pub(crate) fn text(self) -> Option<String> {
        match self {
            Out::Text(v) => v,
            _ => None,
        }
    }

    pub(crate) fn flag(&self) -> Option<bool> {
        match self {
            Out::Flag(v) => *v,
            _ => None,
        }
    }

    pub(crate) fn found(self) -> Option<Found> {
        match self {
            Out::Found(v) => v,
            _ => None,
        }
    }
}

/// A statement in the dialect's placeholder style, built once.
#[derive(Debug, Clone)]
pub(crate) struct Stmt {
    pub(crate) sql: SqlStr,
    /// MySQL: for each `?` in the text, the index of the argument it takes.
    order: Option<Box<[usize]>>,
    /// How the statement's times bind and decode.
    pub(crate) clock: Clock,
    /// Prepared once per connection and kept (sqlx's statement cache); otherwise parsed
    /// and planned on every run ([`Stmt::one_shot`]).
    pub(crate) persistent: bool,
}

impl Stmt {
    /// Rewrites the `$n` placeholders of `text` for `dialect`.
    pub(crate) fn new(dialect: Dialect, clock: Clock, text: String) -> Self {
        match dialect {
            Dialect::Postgres => Self {
                sql: sql(text),
                order: None,
                clock,
                persistent: true,
            },
            Dialect::Sqlite => Self {
                sql: sql(text.replace('$', "?")),
                order: None,
                clock,
                persistent: true,
            },
            Dialect::MySql => {
                let mut out = String::with_capacity(text.len());
                let mut order = Vec::new();
                let mut chars = text.chars().peekable();
                while let Some(c) = chars.next() {
                    if c != '$' {
                        out.push(c);
                        continue;
                    }
                    let mut n = 0usize;
                    while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                        n = n * 10 + d as usize;
                        chars.next();
                    }
                    out.push('?');
                    order.push(n.saturating_sub(1));
                }
                Self {
                    sql: sql(out),
                    order: Some(order.into()),
                    clock,
                    persistent: true,
                }
            }
        }
    }

    /// The statement run unprepared: parsed and planned for its values on every run (one
    /// more round trip). PostgreSQL plans a statement kept prepared on a connection for
    /// its values five times, then may switch to a generic plan made without them; for a
    /// range condition with a `LIMIT` that plan can be a sequential scan (see
    /// [`crate::ops::Common`]'s cleanup).
    pub(crate) fn one_shot(mut self) -> Self {
        self.persistent = false;
        self
    }

    /// The arguments in the order the statement's placeholders take them.
    #[cfg(test)]
    pub(crate) fn ordered<'a>(&'a self, args: &'a [Arg]) -> impl Iterator<Item = &'a Arg> + 'a {
        let order = self.order.as_deref();
        let count = order.map_or(args.len(), <[usize]>::len);
        (0..count).filter_map(move |i| args.get(order.map_or(i, |o| o[i])))
    }

    /// Binds `args` to `query` with `bind`, in the order the placeholders take them; the
    /// arguments move into the query unless a placeholder repeats one (MySQL).
    pub(crate) fn bind_all<Q>(&self, query: Q, args: Vec<Arg>, bind: fn(Q, Arg, Clock) -> Q) -> Q {
        match self.order.as_deref() {
            None => args
                .into_iter()
                .fold(query, |query, arg| bind(query, arg, self.clock)),
            Some(order) => order.iter().fold(query, |query, &i| match args.get(i) {
                Some(arg) => bind(query, arg.clone(), self.clock),
                None => query,
            }),
        }
    }
}

/// What a dialect's SQL looks like, for the layouts' statement texts.
pub(crate) struct Shape {
    pub(crate) dialect: Dialect,
    /// `INSERT .. ON CONFLICT .. DO UPDATE .. WHERE` and `RETURNING` exist.
    pub(crate) upsert: bool,
    /// Appended to the `SELECT` that locks the row for a compare-and-swap.
    pub(crate) lock: &'static str,
}

impl Shape {
    pub(crate) fn of(dialect: Dialect) -> Self {
        Self {
            dialect,
            upsert: dialect != Dialect::MySql,
            lock: if dialect == Dialect::Sqlite {
                ""
            } else {
                " FOR UPDATE"
            },
        }
    }

    pub(crate) fn quote_char(&self) -> char {
        match self.dialect {
            Dialect::MySql => '`',
            _ => '"',
        }
    }

    pub(crate) fn quote(&self, name: &str) -> String {
        let q = self.quote_char();
        format!("{q}{name}{q}")
    }

    /// One bounded batch of `DELETE` for rows matching `cond` (which binds `$1`); the
    /// batch size is `$2`, taken in the order of the expiry `e` on MySQL. `find` (defaulting to `cond`) is the condition the batch is
    /// looked up by, for a layout whose index is on another column.
    pub(crate) fn batch_delete(&self, t: &str, e: &str, cond: &str, find: Option<&str>) -> String {
        let find = find.unwrap_or(cond);
        match self.dialect {
            // Rows other transactions hold are skipped (they are being replaced); the
            // outer condition is re-checked against the row's latest version.
            Dialect::Postgres => format!(
                "DELETE FROM {t} WHERE ctid = ANY(ARRAY(\
                 SELECT ctid FROM {t} WHERE {find} LIMIT $2 FOR UPDATE SKIP LOCKED)) AND {cond}"
            ),
            Dialect::Sqlite => {
                format!(
                    "DELETE FROM {t} WHERE rowid IN (SELECT rowid FROM {t} WHERE {find} LIMIT $2)"
                )
            }
            Dialect::MySql => format!("DELETE FROM {t} WHERE {find} ORDER BY {e} LIMIT $2"),
        }
    }
}

/// Microsecond precision, as the server dialects store times.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn micro(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(t.timestamp_subsec_micros() * 1000)
        .unwrap_or(t)
}

/// What a statement gave before decoding.
pub(crate) enum Raw<R> {
    Rows(u64),
    Row(Option<R>),
    All(Vec<R>),
}

/// Maps a statement's failure: a duplicate key on an `INSERT` is `KeyExists`; a deadlock
/// victim (which the caller may run again, see [`crate::error::is_deadlock`]) is logged
/// quietly.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn fail(err: sqlx::Error, want: Want) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if want == Want::Insert && db.is_unique_violation() => {
            StoreError::KeyExists
        }
        sqlx::Error::Database(db) if db.code().as_deref() == Some("40001") => {
            tracing::debug!(error = %err, "statement was a deadlock victim");
            StoreError::backend(err)
        }
        _ => map_err(err),
    }
}

/// Reads a time column as the dialect and `clock` store it; `None` for NULL.
pub(crate) type TimeOf<R> = fn(&R, usize, &str, Clock) -> StoreResult<Option<DateTime<Utc>>>;

fn required(t: Option<DateTime<Utc>>, name: &str) -> StoreResult<DateTime<Utc>> {
    t.ok_or_else(|| crate::error::corrupt(format!("column {name} is NULL")))
}

fn values<R>(row: &R, cols: &[Col], clock: Clock, time: TimeOf<R>) -> StoreResult<Vec<Value>>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    // Allocated once at its size (collecting `Result`s would grow it from a guess).
    let mut values = Vec::with_capacity(cols.len());
    for (i, col) in cols.iter().enumerate() {
        values.push(match col {
            Col::Text | Col::OptText => {
                let v: Option<String> = column(row, i, "text")?;
                if *col == Col::Text && v.is_none() {
                    return Err(crate::error::corrupt(format!("column {i} is NULL")));
                }
                Value::Text(v)
            }
            Col::Int => Value::Int(column(row, i, "integer")?),
            Col::Time => Value::Time(Some(required(time(row, i, "time", clock)?, "time")?)),
            Col::OptTime => Value::Time(time(row, i, "time", clock)?),
        });
    }
    Ok(values)
}

/// Decodes what a statement gave into the shape `want` asked for; `time` reads a time
/// column as the dialect and the statement's `clock` store it.
pub(crate) fn decode<R>(raw: Raw<R>, want: Want, clock: Clock, time: TimeOf<R>) -> StoreResult<Out>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let row = match raw {
        Raw::Rows(n) => return Ok(Out::Rows(n)),
        Raw::All(rows) => {
            let Want::All(cols) = want else {
                return Ok(Out::Rows(rows.len() as u64));
            };
            return rows
                .iter()
                .map(|r| values(r, cols, clock, time))
                .collect::<StoreResult<_>>()
                .map(Out::All);
        }
        Raw::Row(row) => row,
    };
    Ok(match want {
        Want::Rows | Want::Insert | Want::Present => Out::Rows(u64::from(row.is_some())),
        Want::Text => Out::Text(row.map(|r| column(&r, 0, "session_data")).transpose()?),
        Want::Flag => Out::Flag(row.map(|r| column(&r, 0, "flag")).transpose()?),
        Want::Found { created } => Out::Found(
            row.map(|r| {
                Ok::<_, StoreError>(Found {
                    data: column(&r, 0, "session_data")?,
                    expires_at: required(time(&r, 1, "expiry", clock)?, "expiry")?,
                    created_at: if created {
                        Some(required(time(&r, 2, "created_at", clock)?, "created_at")?)
                    } else {
                        None
                    },
                })
            })
            .transpose()?,
        ),
        Want::Row(cols) => Out::Row(row.map(|r| values(&r, cols, clock, time)).transpose()?),
        Want::All(_) => Out::All(Vec::new()),
    })
}

/// Binds `stmt`'s arguments with `$bind` and runs it on `$exec`: `fetch_all` or
/// `fetch_optional` when `$want` fetches, `execute` otherwise. Gives
/// `Result<Raw<Row>, sqlx::Error>`.
macro_rules! run_on {
    ($exec:expr, $stmt:expr, $args:expr, $want:expr, $bind:path) => {{
        let query = $stmt.bind_all(
            sqlx::query($stmt.sql.clone()).persistent($stmt.persistent),
            $args,
            $bind,
        );
        if $want.fetches_all() {
            query.fetch_all($exec).await.map(crate::engine::Raw::All)
        } else if $want.fetches() {
            query
                .fetch_optional($exec)
                .await
                .map(crate::engine::Raw::Row)
        } else {
            query
                .execute($exec)
                .await
                .map(|done| crate::engine::Raw::Rows(done.rows_affected()))
        }
    }};
}
pub(crate) use run_on;

/// Where a layout's statements run on one dialect.
pub(crate) trait Engine: Send + Sync {
    type Tx<'a>: Tx
    where
        Self: 'a;

    /// Runs a statement that changes nothing.
    fn read(
        &self,
        stmt: &Stmt,
        args: Vec<Arg>,
        want: Want,
    ) -> impl Future<Output = StoreResult<Out>> + Send;

    /// Runs a statement that writes (on SQLite: through the single writer).
    fn write(
        &self,
        stmt: &Stmt,
        args: Vec<Arg>,
        want: Want,
    ) -> impl Future<Output = StoreResult<Out>> + Send;

    /// Starts a transaction that takes row (or, on SQLite, database) write locks.
    fn begin(&self) -> impl Future<Output = StoreResult<Self::Tx<'_>>> + Send;
}

/// A transaction. Dropped without [`commit`](Tx::commit) it rolls back.
pub(crate) trait Tx: Send {
    fn run(
        &mut self,
        stmt: &Stmt,
        args: Vec<Arg>,
        want: Want,
    ) -> impl Future<Output = StoreResult<Out>> + Send;

    fn commit(self) -> impl Future<Output = StoreResult<()>> + Send;

    fn rollback(self) -> impl Future<Output = ()> + Send;
}

/// A transaction on a server's pool (PostgreSQL, MySQL).
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) struct ServerTx<DB: sqlx::Database>(pub(crate) sqlx::Transaction<'static, DB>);

/// [`Engine`] and [`Tx`] for a server dialect whose backend has `pool()`. The server
/// dialects store every layout's times in one column type, `$stored`: `$to_db` turns a
/// time into it (microsecond precision) and `$from_db` back.
#[cfg(any(feature = "postgres", feature = "mysql"))]
macro_rules! server_engine {
    ($backend:ty, $db:ty, $stored:ty, $to_db:expr, $from_db:expr) => {
        type Query = sqlx::query::Query<'static, $db, <$db as sqlx::Database>::Arguments>;

        /// Binds a layout's value.
        fn bind(query: Query, arg: crate::engine::Arg, _clock: crate::engine::Clock) -> Query {
            use crate::engine::Arg;
            match arg {
                Arg::Text(s) => query.bind(s),
                Arg::OptText(s) => query.bind(s),
                Arg::Time(t) => query.bind($to_db(t)),
                Arg::OptTime(t) => query.bind(t.map($to_db)),
                Arg::Int(n) => query.bind(n),
            }
        }

        /// Reads a time column (NULL as `None`).
        fn time(
            row: &<$db as sqlx::Database>::Row,
            index: usize,
            name: &str,
            _clock: crate::engine::Clock,
        ) -> session_core::StoreResult<Option<session_core::chrono::DateTime<session_core::chrono::Utc>>> {
            crate::error::column::<_, Option<$stored>>(row, index, name)
                .map(|t| t.map($from_db))
        }

        impl crate::engine::Engine for $backend {
            type Tx<'a> = crate::engine::ServerTx<$db>;

            async fn read(
                &self,
                stmt: &crate::engine::Stmt,
                args: Vec<crate::engine::Arg>,
                want: crate::engine::Want,
            ) -> session_core::StoreResult<crate::engine::Out> {
                let raw = crate::engine::run_on!(self.pool(), stmt, args, want, bind)
                    .map_err(|e| crate::engine::fail(e, want))?;
                crate::engine::decode(raw, want, stmt.clock, time)
            }

            async fn write(
                &self,
                stmt: &crate::engine::Stmt,
                args: Vec<crate::engine::Arg>,
                want: crate::engine::Want,
            ) -> session_core::StoreResult<crate::engine::Out> {
                self.read(stmt, args, want).await
            }

            async fn begin(&self) -> session_core::StoreResult<Self::Tx<'_>> {
                self.pool()
                    .begin()
                    .await
                    .map(crate::engine::ServerTx)
                    .map_err(crate::error::map_err)
            }
        }

        impl crate::engine::Tx for crate::engine::ServerTx<$db> {
            async fn run(
                &mut self,
                stmt: &crate::engine::Stmt,
                args: Vec<crate::engine::Arg>,
                want: crate::engine::Want,
            ) -> session_core::StoreResult<crate::engine::Out> {
                let raw = crate::engine::run_on!(&mut *self.0, stmt, args, want, bind)
                    .map_err(|e| crate::engine::fail(e, want))?;
                crate::engine::decode(raw, want, stmt.clock, time)
            }

            async fn commit(self) -> session_core::StoreResult<()> {
                self.0.commit().await.map_err(crate::error::map_err)
            }

            async fn rollback(self) {
                if let Err(e) = self.0.rollback().await {
                    tracing::debug!(error = %e, "rollback failed; the connection is dropped");
                }
            }
        }
    };
}
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) use server_engine;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_placeholders_follow_the_text() {
        let s = Stmt::new(
            Dialect::MySql,
            Clock::Native,
            "UPDATE t SET a = $2 WHERE k = $10 AND e > $1".into(),
        );
        assert_eq!(s.sql.as_str(), "UPDATE t SET a = ? WHERE k = ? AND e > ?");
        let args: Vec<Arg> = (0..10).map(Arg::Int).collect();
        let got: Vec<i64> = s
            .ordered(&args)
            .map(|a| match a {
                Arg::Int(n) => *n,
                _ => -1,
            })
            .collect();
        assert_eq!(got, vec![1, 9, 0]);
        let s = Stmt::new(Dialect::Sqlite, Clock::Native, "SELECT $1, $2".into());
        assert_eq!(s.sql.as_str(), "SELECT ?1, ?2");
        assert_eq!(s.ordered(&args[..2]).count(), 2);
    }
}
