//! PostgreSQL: what the dialect contributes to [`crate::engine`] (how values bind and times
//! decode) and its migration lock. The statements are the layouts'.

use session_core::chrono::{DateTime, Utc};
use session_core::StoreResult;
use sqlx::postgres::PgPool;
use sqlx::SqlStr;

use crate::engine::micro;
use crate::error::map_err;
use crate::table::TableName;

/// PostgreSQL: a pool; every layout's statements run on it through [`crate::engine`].
#[derive(Debug)]
pub struct PgBackend {
    pool: PgPool,
}

impl PgBackend {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs `statements` under the migration lock of `table`.
    pub(crate) async fn migrate_with(
        &self,
        statements: &[SqlStr],
        table: &TableName,
    ) -> StoreResult<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_migrate(statements, table).await {
                Ok(()) => return Ok(()),
                // The advisory lock serialises migrations of this table, but a process
                // running an older schema tool could still race us on the catalog; such
                // a race means the object now exists, so try again.
                Err(e) if attempt < 3 && is_catalog_race(&e) => {
                    tracing::debug!(error = %e, "migrate raced another migration; retrying");
                }
                Err(e) => return Err(map_err(e)),
            }
        }
    }

    async fn try_migrate(
        &self,
        statements: &[SqlStr],
        table: &TableName,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // Held until commit: concurrent migrations of this table wait here.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(table.lock_id())
            .execute(&mut *tx)
            .await?;
        for statement in statements {
            sqlx::raw_sql(statement.clone()).execute(&mut *tx).await?;
        }
        tx.commit().await
    }
}

/// Catalog races of concurrent `CREATE ... IF NOT EXISTS`: unique violation on the
/// catalog (23505) or "already exists" (42P07, 42710).
fn is_catalog_race(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db)
        if db.code().is_some_and(|c| matches!(&*c, "23505" | "42P07" | "42710")))
}

fn stored(t: DateTime<Utc>) -> DateTime<Utc> {
    t
}

crate::engine::server_engine!(PgBackend, sqlx::Postgres, DateTime<Utc>, micro, stored);
