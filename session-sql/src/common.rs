//! Pieces shared by the dialect modules.

use session_core::chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

/// Turns statement text built once at construction into a cheaply clonable [`SqlStr`].
///
/// Only called with text assembled from constant fragments and a validated
/// [`TableName`](crate::TableName); values always travel as bind parameters.
pub(crate) fn sql(text: String) -> SqlStr {
    AssertSqlSafe(text).into_sql_str()
}

/// The application's clock. Every "is it expired" comparison binds this value, so all
/// three databases judge expiry by the same clock (not the database server's).
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

/// Connections idle for longer than this are pinged before use, so connections left over
/// from before a database restart are dropped instead of failing a request. Busy
/// connections are never pinged (no extra round trip on the hot path).
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) const PING_IF_IDLE_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// Pool options for servers (PostgreSQL, MySQL): bounded acquire, no per-acquire ping,
/// but a ping for connections that sat idle (see [`PING_IF_IDLE_FOR`]).
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn server_pool_options<DB: sqlx::Database>(
    max_connections: u32,
    acquire_timeout: std::time::Duration,
) -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for < PING_IF_IDLE_FOR {
                    return Ok(true);
                }
                // A failed ping closes this connection; the pool opens a fresh one.
                Ok(sqlx::Connection::ping(conn).await.is_ok())
            })
        })
}
