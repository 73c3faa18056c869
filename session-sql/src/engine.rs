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
//! the three dialects whatever order its parameters appear in.

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
    /// Bound as the dialect and layout store times (microsecond precision).
    Time(DateTime<Utc>),
    Int(i64),
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
}

impl Want {
    pub(crate) fn fetches(self) -> bool {
        !matches!(self, Want::Rows | Want::Insert)
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
}

impl Out {
    pub(crate) fn rows(&self) -> u64 {
        match self {
            Out::Rows(n) => *n,
            Out::Text(v) => u64::from(v.is_some()),
            Out::Flag(v) => u64::from(v.is_some()),
            Out::Found(v) => u64::from(v.is_some()),
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
}

impl Stmt {
    /// Rewrites the `$n` placeholders of `text` for `dialect`.
    pub(crate) fn new(dialect: Dialect, text: String) -> Self {
        match dialect {
            Dialect::Postgres => Self {
                sql: sql(text),
                order: None,
            },
            Dialect::Sqlite => Self {
                sql: sql(text.replace('$', "?")),
                order: None,
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
                }
            }
        }
    }

    /// The arguments in the order the statement's placeholders take them.
    pub(crate) fn ordered<'a>(&'a self, args: &'a [Arg]) -> impl Iterator<Item = &'a Arg> + 'a {
        let order = self.order.as_deref();
        let count = order.map_or(args.len(), <[usize]>::len);
        (0..count).filter_map(move |i| args.get(order.map_or(i, |o| o[i])))
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
}

/// Maps a statement's failure: a duplicate key on an `INSERT` is `KeyExists`.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn fail(err: sqlx::Error, want: Want) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if want == Want::Insert && db.is_unique_violation() => {
            StoreError::KeyExists
        }
        _ => map_err(err),
    }
}

/// Decodes what a statement gave into the shape `want` asked for; `time` reads a time
/// column as the dialect and layout store it.
pub(crate) fn decode<R>(
    raw: Raw<R>,
    want: Want,
    time: fn(&R, usize, &str) -> StoreResult<DateTime<Utc>>,
) -> StoreResult<Out>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let row = match raw {
        Raw::Rows(n) => return Ok(Out::Rows(n)),
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
                    expires_at: time(&r, 1, "expiry")?,
                    created_at: if created {
                        Some(time(&r, 2, "created_at")?)
                    } else {
                        None
                    },
                })
            })
            .transpose()?,
        ),
    })
}

/// Binds `stmt`'s arguments with `$bind` and runs it on `$exec`: `fetch_optional` when
/// `$want` fetches, `execute` otherwise. Gives `Result<Raw<Row>, sqlx::Error>`.
macro_rules! run_on {
    ($exec:expr, $stmt:expr, $args:expr, $want:expr, $bind:path) => {{
        let mut query = sqlx::query($stmt.sql.clone());
        for arg in $stmt.ordered($args) {
            query = $bind(query, arg);
        }
        if $want.fetches() {
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

/// [`Engine`] and [`Tx`] for a server dialect whose backend has `pool()`: `$bind` binds an
/// [`Arg`], `$time` reads a time column.
#[cfg(any(feature = "postgres", feature = "mysql"))]
macro_rules! server_engine {
    ($backend:ty, $db:ty, $bind:path, $time:path) => {
        impl crate::engine::Engine for $backend {
            type Tx<'a> = crate::engine::ServerTx<$db>;

            async fn read(
                &self,
                stmt: &crate::engine::Stmt,
                args: Vec<crate::engine::Arg>,
                want: crate::engine::Want,
            ) -> session_core::StoreResult<crate::engine::Out> {
                let raw = crate::engine::run_on!(self.pool(), stmt, &args, want, $bind)
                    .map_err(|e| crate::engine::fail(e, want))?;
                crate::engine::decode(raw, want, $time)
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
                let raw = crate::engine::run_on!(&mut *self.0, stmt, &args, want, $bind)
                    .map_err(|e| crate::engine::fail(e, want))?;
                crate::engine::decode(raw, want, $time)
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
        let s = Stmt::new(Dialect::Sqlite, "SELECT $1, $2".into());
        assert_eq!(s.sql.as_str(), "SELECT ?1, ?2");
        assert_eq!(s.ordered(&args[..2]).count(), 2);
    }
}
