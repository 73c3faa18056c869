//! MySQL and MariaDB: what the dialect contributes to [`crate::engine`] (how values bind
//! and times decode) and its migration lock. The statements are the layouts'.
//!
//! Times are `DATETIME(6)` holding UTC (microseconds), bound as naive UTC values so the
//! connection's `time_zone` never shifts them.

use session_core::chrono::{DateTime, NaiveDateTime, Utc};
use session_core::{StoreError, StoreResult};
use sqlx::mysql::MySqlPool;
use sqlx::SqlStr;

use crate::engine::micro;
use crate::error::map_err;
use crate::table::TableName;

/// MySQL / MariaDB: a pool; every layout's statements run on it through
/// [`crate::engine`].
#[derive(Debug)]
pub struct MySqlBackend {
    pool: MySqlPool,
}

impl MySqlBackend {
    pub(crate) fn new(pool: MySqlPool) -> Self {
        Self { pool }
    }

    pub(crate) fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// Runs `statements` under the migration lock of `table`.
    pub(crate) async fn migrate_with(
        &self,
        statements: &[SqlStr],
        table: &TableName,
    ) -> StoreResult<()> {
        // A named server lock serialises concurrent migrations of this table, on one
        // connection (GET_LOCK belongs to the session that took it).
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        let lock = format!("session-sql:{:016x}", table.lock_id());
        let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 60)")
            .bind(&lock)
            .fetch_one(&mut *conn)
            .await
            .map_err(map_err)?;
        if got != Some(1) {
            return Err(StoreError::unavailable(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "timed out waiting for the migration lock",
            )));
        }
        let mut created = Ok(());
        for statement in statements {
            created = sqlx::raw_sql(statement.clone())
                .execute(&mut *conn)
                .await
                .map(drop)
                .map_err(map_err);
            if created.is_err() {
                break;
            }
        }
        let released = sqlx::query("SELECT RELEASE_LOCK(?)")
            .bind(&lock)
            .execute(&mut *conn)
            .await
            .map_err(map_err);
        created?;
        released?;
        Ok(())
    }
}

/// Times as naive UTC `DATETIME(6)`, so the connection's `time_zone` never shifts them.
fn to_db(t: DateTime<Utc>) -> NaiveDateTime {
    micro(t).naive_utc()
}

crate::engine::server_engine!(
    MySqlBackend,
    sqlx::MySql,
    NaiveDateTime,
    to_db,
    |t: NaiveDateTime| t.and_utc()
);
