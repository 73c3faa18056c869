//! PostgreSQL: statements and operations.

use session_core::chrono::{DateTime, Utc};
use session_core::{Record, SessionKey, StoreError, StoreResult};
use sqlx::postgres::{PgPool, PgRow};
use sqlx::SqlStr;

use crate::common::{now, sql, Settings};
use crate::engine::{micro, Arg};
use crate::error::{column, corrupt, map_err, version_from_db, version_to_db};
use crate::table::{Table, TableName};

/// Every statement the store runs, built once for a table and layout.
#[derive(Debug)]
struct Queries {
    create: SqlStr,
    load: SqlStr,
    update: SqlStr,
    exists: SqlStr,
    touch: SqlStr,
    delete: SqlStr,
    delete_at_version: SqlStr,
    delete_expired: SqlStr,
    list_for_user: SqlStr,
    delete_for_user: SqlStr,
    delete_for_user_except: SqlStr,
    migrate: Vec<SqlStr>,
}

/// Width of the indexed expiry bucket (`expires_bucket`, seconds since the epoch divided
/// by this): an update changes an indexed value only when the expiry crosses into
/// another hour, so almost every update is HOT (heap-only: no index entry written).
pub(crate) const EXPIRY_BUCKET_SECONDS: i64 = 3_600;

/// Free space left in each heap page for HOT updates of its rows.
const FILLFACTOR: u32 = 70;

/// The record columns in the order [`decode`] reads them; `session_key` comes last so
/// `load` can leave it out.
const COLUMNS: &str =
    "data, expires_at, version, user_id, created_at, last_active_at, user_agent, ip";

/// The statements `migrate` runs for `table`, as text.
pub(crate) fn migration(table: &Table) -> Vec<String> {
    let q = Queries::new(table);
    q.migrate.iter().map(|s| s.as_str().to_owned()).collect()
}

impl Queries {
    /// The native statements (the interop layouts have theirs in [`crate::layout`]).
    fn new(table: &Table) -> Self {
        Self::native(table)
    }

    fn native(table: &Table) -> Self {
        let t = table.quoted('"');
        let bucket = |param: &str| {
            format!(
                "floor(extract(epoch FROM {param}::timestamptz) / {EXPIRY_BUCKET_SECONDS})::bigint"
            )
        };
        let (b3, b2, b1) = (bucket("$3"), bucket("$2"), bucket("$1"));
        Self {
            // One statement: inserts, or replaces the row only if it has expired. A live
            // row makes the WHERE false, so no row is affected and the caller reports
            // KeyExists. Concurrent inserts of one key serialise on the primary key.
            create: sql(format!(
                "INSERT INTO {t} AS s (session_key, {COLUMNS}, expires_bucket) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, {b3}) \
                 ON CONFLICT (session_key) DO UPDATE SET \
                 data = EXCLUDED.data, expires_at = EXCLUDED.expires_at, \
                 expires_bucket = EXCLUDED.expires_bucket, \
                 version = EXCLUDED.version, user_id = EXCLUDED.user_id, \
                 created_at = EXCLUDED.created_at, last_active_at = EXCLUDED.last_active_at, \
                 user_agent = EXCLUDED.user_agent, ip = EXCLUDED.ip \
                 WHERE s.expires_at <= $10"
            )),
            load: sql(format!(
                "SELECT {COLUMNS} FROM {t} WHERE session_key = $1 AND expires_at > $2"
            )),
            // Compare-and-swap on (key, version), refusing expired rows. No indexed value
            // changes unless the expiry moves to another bucket, so the update is HOT.
            update: sql(format!(
                "UPDATE {t} SET data = $1, expires_at = $2, expires_bucket = {b2}, \
                 version = version + 1, \
                 user_id = $3, last_active_at = $4, user_agent = $5, ip = $6 \
                 WHERE session_key = $7 AND version = $8 AND expires_at > $9"
            )),
            exists: sql(format!(
                "SELECT 1 FROM {t} WHERE session_key = $1 AND expires_at > $2"
            )),
            touch: sql(format!(
                "UPDATE {t} SET expires_at = $1, expires_bucket = {b1}, last_active_at = $2 \
                 WHERE session_key = $3 AND expires_at > $2"
            )),
            // Removes the row live or expired, and says which it was.
            delete: sql(format!(
                "DELETE FROM {t} WHERE session_key = $1 RETURNING expires_at > $2"
            )),
            // Compare-and-delete of a live row (key rotation); a miss is told apart by
            // `exists` in a statement of its own, which sees rows committed meanwhile.
            delete_at_version: sql(format!(
                "DELETE FROM {t} WHERE session_key = $1 AND version = $2 AND expires_at > $3"
            )),
            // One bounded batch, found through the bucket index (every expired row is in
            // a bucket at or before now's). Rows another transaction holds are skipped
            // (they are being replaced or updated); the outer condition is re-checked
            // against the row's latest version.
            delete_expired: sql(format!(
                "DELETE FROM {t} WHERE ctid = ANY(ARRAY(\
                 SELECT ctid FROM {t} WHERE expires_bucket <= {b1} AND expires_at <= $1 \
                 LIMIT $2 FOR UPDATE SKIP LOCKED)) AND expires_at <= $1"
            )),
            list_for_user: sql(format!(
                "SELECT {COLUMNS}, session_key FROM {t} \
                 WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at, session_key"
            )),
            delete_for_user: sql(format!(
                "DELETE FROM {t} WHERE user_id = $1 AND expires_at > $2"
            )),
            delete_for_user_except: sql(format!(
                "DELETE FROM {t} WHERE user_id = $1 AND expires_at > $2 AND session_key <> $3"
            )),
            migrate: vec![
                sql(format!(
                    "CREATE TABLE IF NOT EXISTS {t} (\
                     session_key VARCHAR(64) PRIMARY KEY, \
                     data TEXT NOT NULL, \
                     expires_at TIMESTAMPTZ NOT NULL, \
                     version BIGINT NOT NULL, \
                     user_id TEXT, \
                     created_at TIMESTAMPTZ NOT NULL, \
                     last_active_at TIMESTAMPTZ, \
                     user_agent TEXT, \
                     ip TEXT, \
                     expires_bucket BIGINT NOT NULL DEFAULT 0) \
                     WITH (fillfactor = {FILLFACTOR})"
                )),
                // Tables created before the bucket: the column is added without a
                // rewrite; their rows are in bucket 0 (always scanned by the cleanup,
                // which checks the exact expiry) until their next write.
                sql(format!(
                    "ALTER TABLE {t} ADD COLUMN IF NOT EXISTS \
                     expires_bucket BIGINT NOT NULL DEFAULT 0"
                )),
                sql(format!("ALTER TABLE {t} SET (fillfactor = {FILLFACTOR})")),
                sql(format!(
                    "CREATE INDEX IF NOT EXISTS {} ON {t} (expires_bucket)",
                    table.index("exp_bucket_idx", '"')
                )),
                // The exact-expiry index made every update non-HOT.
                sql(format!(
                    "DROP INDEX IF EXISTS {}",
                    table.qualified_index("expires_at_idx", '"')
                )),
                // Partial: most sessions are anonymous, and `user_id = $1` implies NOT NULL.
                sql(format!(
                    "CREATE INDEX IF NOT EXISTS {} ON {t} (user_id) WHERE user_id IS NOT NULL",
                    table.index("user_id_idx", '"')
                )),
            ],
        }
    }
}

/// A store over one PostgreSQL table.
#[derive(Debug)]
pub struct PgBackend {
    pool: PgPool,
    settings: Settings,
    q: Queries,
}

fn decode(row: &PgRow, key: Option<SessionKey>) -> StoreResult<Record> {
    let key = match key {
        Some(key) => key,
        None => {
            let raw: String = column(row, 8, "session_key")?;
            SessionKey::try_from(raw).map_err(|e| corrupt(format!("session_key: {e}")))?
        }
    };
    let mut record = Record::new(key, column(row, 0, "data")?, column(row, 1, "expires_at")?);
    record.version = version_from_db(column(row, 2, "version")?)?;
    record.user_id = column(row, 3, "user_id")?;
    record.created_at = column(row, 4, "created_at")?;
    record.last_active_at = column(row, 5, "last_active_at")?;
    record.user_agent = column(row, 6, "user_agent")?;
    record.ip = column(row, 7, "ip")?;
    Ok(record)
}

impl PgBackend {
    pub(crate) fn new(pool: PgPool, settings: Settings) -> Self {
        let q = Queries::new(&settings.table);
        Self { pool, settings, q }
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) async fn migrate(&self) -> StoreResult<()> {
        self.migrate_with(&self.q.migrate, &self.settings.table.name)
            .await
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

    pub(crate) async fn create(&self, r: &Record) -> StoreResult<()> {
        let affected = sqlx::query(self.q.create.clone())
            .bind(r.key.as_str())
            .bind(r.data.as_str())
            .bind(r.expires_at)
            .bind(version_to_db(r.version)?)
            .bind(r.user_id.as_deref())
            .bind(r.created_at)
            .bind(r.last_active_at)
            .bind(r.user_agent.as_deref())
            .bind(r.ip.as_deref())
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        if affected == 0 {
            return Err(StoreError::KeyExists);
        }
        Ok(())
    }

    pub(crate) async fn load(&self, key: &SessionKey) -> StoreResult<Option<Record>> {
        let row = sqlx::query(self.q.load.clone())
            .bind(key.as_str())
            .bind(now())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(|row| decode(&row, Some(key.clone()))).transpose()
    }

    pub(crate) async fn update(&self, r: &Record) -> StoreResult<u64> {
        let now = now();
        let affected = sqlx::query(self.q.update.clone())
            .bind(r.data.as_str())
            .bind(r.expires_at)
            .bind(r.user_id.as_deref())
            .bind(r.last_active_at)
            .bind(r.user_agent.as_deref())
            .bind(r.ip.as_deref())
            .bind(r.key.as_str())
            .bind(version_to_db(r.version)?)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        if affected == 1 {
            return Ok(r.version + 1);
        }
        // Missed: tell a vanished row from a moved version.
        if self.exists_at(&r.key, now).await? {
            Err(StoreError::Conflict)
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn exists_at(&self, key: &SessionKey, now: DateTime<Utc>) -> StoreResult<bool> {
        let row = sqlx::query(self.q.exists.clone())
            .bind(key.as_str())
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(row.is_some())
    }

    pub(crate) async fn exists(&self, key: &SessionKey) -> StoreResult<bool> {
        self.exists_at(key, now()).await
    }

    pub(crate) async fn touch(
        &self,
        key: &SessionKey,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let affected = sqlx::query(self.q.touch.clone())
            .bind(expires_at)
            .bind(now())
            .bind(key.as_str())
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        Ok(affected > 0)
    }

    pub(crate) async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        let was_live: Option<bool> = sqlx::query_scalar(self.q.delete.clone())
            .bind(key.as_str())
            .bind(now())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(was_live.unwrap_or(false))
    }

    pub(crate) async fn delete_at_version(
        &self,
        key: &SessionKey,
        version: u64,
    ) -> StoreResult<()> {
        let now = now();
        let affected = sqlx::query(self.q.delete_at_version.clone())
            .bind(key.as_str())
            .bind(version_to_db(version)?)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        if affected > 0 {
            return Ok(());
        }
        Err(crate::error::stale(self.exists_at(key, now).await?))
    }

    pub(crate) async fn delete_expired(&self) -> StoreResult<u64> {
        let now = now();
        let batch = u64::from(self.settings.delete_batch_size);
        let mut total = 0u64;
        loop {
            let removed = sqlx::query(self.q.delete_expired.clone())
                .bind(now)
                .bind(i64::from(self.settings.delete_batch_size))
                .execute(&self.pool)
                .await
                .map_err(map_err)?
                .rows_affected();
            total += removed;
            if removed < batch {
                break;
            }
        }
        Ok(total)
    }

    pub(crate) async fn list_for_user(&self, user_id: &str) -> StoreResult<Vec<Record>> {
        let rows = sqlx::query(self.q.list_for_user.clone())
            .bind(user_id)
            .bind(now())
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(|row| decode(row, None)).collect()
    }

    pub(crate) async fn delete_for_user(
        &self,
        user_id: &str,
        except: Option<&SessionKey>,
    ) -> StoreResult<u64> {
        let query = match except {
            None => sqlx::query(self.q.delete_for_user.clone())
                .bind(user_id)
                .bind(now()),
            Some(keep) => sqlx::query(self.q.delete_for_user_except.clone())
                .bind(user_id)
                .bind(now())
                .bind(keep.as_str()),
        };
        Ok(query
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected())
    }
}

/// Catalog races of concurrent `CREATE ... IF NOT EXISTS`: unique violation on the
/// catalog (23505) or "already exists" (42P07, 42710).
fn is_catalog_race(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db)
        if db.code().is_some_and(|c| matches!(&*c, "23505" | "42P07" | "42710")))
}

type PgQuery = sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds a layout's value.
fn bind(query: PgQuery, arg: &Arg) -> PgQuery {
    match arg {
        Arg::Text(s) => query.bind(s.clone()),
        Arg::Time(t) => query.bind(micro(*t)),
        Arg::Int(n) => query.bind(*n),
    }
}

fn time(row: &PgRow, index: usize, name: &str) -> StoreResult<DateTime<Utc>> {
    column(row, index, name)
}

crate::engine::server_engine!(PgBackend, sqlx::Postgres, bind, time);
