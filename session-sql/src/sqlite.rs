//! SQLite: statements and operations.
//!
//! Times are stored as `INTEGER` microseconds since the Unix epoch (UTC): exact, compact
//! and compared as plain integers.
//!
//! Writes go through one writer connection (a pool of size one), reads through a pool of
//! readers. In WAL mode readers never block the writer nor each other, and writers queue
//! in the process instead of fighting over SQLite's write lock with sleeps and retries.

use std::sync::Arc;

use session_core::chrono::{DateTime, Utc};
use session_core::{Error, Record, Result, SessionKey};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::SqlStr;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::common::{now, sql, Settings};
use crate::error::{column, corrupt, map_err, version_from_db, version_to_db};
use crate::table::{Table, TableLayout};

#[derive(Debug)]
struct Queries {
    create: SqlStr,
    load: SqlStr,
    update: SqlStr,
    exists: SqlStr,
    touch: SqlStr,
    delete: SqlStr,
    delete_expired: SqlStr,
    list_for_user: SqlStr,
    delete_for_user: SqlStr,
    delete_for_user_except: SqlStr,
    migrate: Vec<SqlStr>,
}

const COLUMNS: &str =
    "data, expires_at, version, user_id, created_at, last_active_at, user_agent, ip";

impl Queries {
    fn new(table: &Table) -> Self {
        match table.layout {
            TableLayout::Native => Self::native(table),
        }
    }

    fn native(table: &Table) -> Self {
        let t = table.quoted('"');
        Self {
            // Upsert that only replaces an expired row; a live row leaves 0 changes.
            create: sql(format!(
                "INSERT INTO {t} (session_key, {COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT (session_key) DO UPDATE SET \
                 data = excluded.data, expires_at = excluded.expires_at, \
                 version = excluded.version, user_id = excluded.user_id, \
                 created_at = excluded.created_at, last_active_at = excluded.last_active_at, \
                 user_agent = excluded.user_agent, ip = excluded.ip \
                 WHERE {t}.expires_at <= ?10"
            )),
            load: sql(format!(
                "SELECT {COLUMNS} FROM {t} WHERE session_key = ?1 AND expires_at > ?2"
            )),
            update: sql(format!(
                "UPDATE {t} SET data = ?1, expires_at = ?2, version = version + 1, \
                 user_id = ?3, last_active_at = ?4, user_agent = ?5, ip = ?6 \
                 WHERE session_key = ?7 AND version = ?8 AND expires_at > ?9"
            )),
            exists: sql(format!(
                "SELECT 1 FROM {t} WHERE session_key = ?1 AND expires_at > ?2"
            )),
            touch: sql(format!(
                "UPDATE {t} SET expires_at = ?1, last_active_at = ?2 \
                 WHERE session_key = ?3 AND expires_at > ?2"
            )),
            delete: sql(format!(
                "DELETE FROM {t} WHERE session_key = ?1 RETURNING expires_at > ?2"
            )),
            delete_expired: sql(format!(
                "DELETE FROM {t} WHERE rowid IN \
                 (SELECT rowid FROM {t} WHERE expires_at <= ?1 LIMIT ?2)"
            )),
            list_for_user: sql(format!(
                "SELECT {COLUMNS}, session_key FROM {t} \
                 WHERE user_id = ?1 AND expires_at > ?2 ORDER BY created_at, session_key"
            )),
            delete_for_user: sql(format!(
                "DELETE FROM {t} WHERE user_id = ?1 AND expires_at > ?2"
            )),
            delete_for_user_except: sql(format!(
                "DELETE FROM {t} WHERE user_id = ?1 AND expires_at > ?2 AND session_key <> ?3"
            )),
            migrate: vec![
                sql(format!(
                    "CREATE TABLE IF NOT EXISTS {t} (\
                     session_key TEXT PRIMARY KEY NOT NULL, \
                     data TEXT NOT NULL, \
                     expires_at INTEGER NOT NULL, \
                     version INTEGER NOT NULL, \
                     user_id TEXT, \
                     created_at INTEGER NOT NULL, \
                     last_active_at INTEGER, \
                     user_agent TEXT, \
                     ip TEXT)"
                )),
                sql(format!(
                    "CREATE INDEX IF NOT EXISTS {} ON {t} (expires_at)",
                    table.index("expires_at_idx", '"')
                )),
                sql(format!(
                    "CREATE INDEX IF NOT EXISTS {} ON {t} (user_id) WHERE user_id IS NOT NULL",
                    table.index("user_id_idx", '"')
                )),
            ],
        }
    }
}

/// A store over one SQLite table.
#[derive(Debug)]
pub struct SqliteBackend {
    read: SqlitePool,
    write: SqlitePool,
    /// Serialises writes when `write` is a shared pool of several connections (a pool the
    /// caller gave us). `None` when `write` is our own single-connection pool.
    gate: Option<Arc<Semaphore>>,
    settings: Settings,
    q: Queries,
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(v: i64, what: &str) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| corrupt(format!("{what} out of range: {v}")))
}

fn decode(row: &SqliteRow, key: Option<SessionKey>) -> Result<Record> {
    let key = match key {
        Some(key) => key,
        None => {
            let raw: String = column(row, 8, "session_key")?;
            SessionKey::try_from(raw).map_err(|e| corrupt(format!("session_key: {e}")))?
        }
    };
    let last_active_at: Option<i64> = column(row, 5, "last_active_at")?;
    Ok(Record {
        key,
        data: column(row, 0, "data")?,
        expires_at: from_micros(column(row, 1, "expires_at")?, "expires_at")?,
        version: version_from_db(column(row, 2, "version")?)?,
        user_id: column(row, 3, "user_id")?,
        created_at: from_micros(column(row, 4, "created_at")?, "created_at")?,
        last_active_at: last_active_at
            .map(|v| from_micros(v, "last_active_at"))
            .transpose()?,
        user_agent: column(row, 6, "user_agent")?,
        ip: column(row, 7, "ip")?,
    })
}

impl SqliteBackend {
    /// `read` and `write` are the same pool with `shared = true` (writes then pass a
    /// one-permit gate), or a reader pool and a single-connection writer pool.
    pub(crate) fn new(
        read: SqlitePool,
        write: SqlitePool,
        shared: bool,
        settings: Settings,
    ) -> Self {
        let q = Queries::new(&settings.table);
        Self {
            read,
            write,
            gate: shared.then(|| Arc::new(Semaphore::new(1))),
            settings,
            q,
        }
    }

    pub(crate) fn read_pool(&self) -> &SqlitePool {
        &self.read
    }

    pub(crate) fn write_pool(&self) -> &SqlitePool {
        &self.write
    }

    /// Waits for the write gate (if any), bounded by the pool's acquire timeout.
    async fn gate(&self) -> Result<Option<SemaphorePermit<'_>>> {
        let Some(gate) = &self.gate else {
            return Ok(None);
        };
        let timeout = self.write.options().get_acquire_timeout();
        match tokio::time::timeout(timeout, gate.acquire()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            Ok(Err(_closed)) => Err(map_err(sqlx::Error::PoolClosed)),
            Err(_elapsed) => Err(map_err(sqlx::Error::PoolTimedOut)),
        }
    }

    pub(crate) async fn migrate(&self) -> Result<()> {
        let _permit = self.gate().await?;
        self.try_migrate().await.map_err(map_err)
    }

    async fn try_migrate(&self) -> Result<(), sqlx::Error> {
        // BEGIN IMMEDIATE takes the write lock up front, so concurrent migrations (other
        // processes) wait on the busy timeout instead of failing on a lock upgrade.
        let mut tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        for statement in &self.q.migrate {
            sqlx::raw_sql(statement.clone()).execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    pub(crate) async fn create(&self, r: &Record) -> Result<()> {
        let query = sqlx::query(self.q.create.clone())
            .bind(r.key.as_str())
            .bind(r.data.as_str())
            .bind(micros(r.expires_at))
            .bind(version_to_db(r.version)?)
            .bind(r.user_id.as_deref())
            .bind(micros(r.created_at))
            .bind(r.last_active_at.map(micros))
            .bind(r.user_agent.as_deref())
            .bind(r.ip.as_deref())
            .bind(micros(now()));
        let _permit = self.gate().await?;
        let affected = query
            .execute(&self.write)
            .await
            .map_err(map_err)?
            .rows_affected();
        if affected == 0 {
            return Err(Error::KeyExists);
        }
        Ok(())
    }

    pub(crate) async fn load(&self, key: &SessionKey) -> Result<Option<Record>> {
        let row = sqlx::query(self.q.load.clone())
            .bind(key.as_str())
            .bind(micros(now()))
            .fetch_optional(&self.read)
            .await
            .map_err(map_err)?;
        row.map(|row| decode(&row, Some(key.clone()))).transpose()
    }

    pub(crate) async fn update(&self, r: &Record) -> Result<u64> {
        let now = now();
        let query = sqlx::query(self.q.update.clone())
            .bind(r.data.as_str())
            .bind(micros(r.expires_at))
            .bind(r.user_id.as_deref())
            .bind(r.last_active_at.map(micros))
            .bind(r.user_agent.as_deref())
            .bind(r.ip.as_deref())
            .bind(r.key.as_str())
            .bind(version_to_db(r.version)?)
            .bind(micros(now));
        let affected = {
            let _permit = self.gate().await?;
            query
                .execute(&self.write)
                .await
                .map_err(map_err)?
                .rows_affected()
        };
        if affected == 1 {
            return Ok(r.version + 1);
        }
        if self.exists_at(&r.key, now).await? {
            Err(Error::Conflict)
        } else {
            Err(Error::NotFound)
        }
    }

    async fn exists_at(&self, key: &SessionKey, now: DateTime<Utc>) -> Result<bool> {
        let row = sqlx::query(self.q.exists.clone())
            .bind(key.as_str())
            .bind(micros(now))
            .fetch_optional(&self.read)
            .await
            .map_err(map_err)?;
        Ok(row.is_some())
    }

    pub(crate) async fn exists(&self, key: &SessionKey) -> Result<bool> {
        self.exists_at(key, now()).await
    }

    pub(crate) async fn touch(&self, key: &SessionKey, expires_at: DateTime<Utc>) -> Result<bool> {
        let query = sqlx::query(self.q.touch.clone())
            .bind(micros(expires_at))
            .bind(micros(now()))
            .bind(key.as_str());
        let _permit = self.gate().await?;
        let affected = query
            .execute(&self.write)
            .await
            .map_err(map_err)?
            .rows_affected();
        Ok(affected > 0)
    }

    pub(crate) async fn delete(&self, key: &SessionKey) -> Result<bool> {
        let query = sqlx::query_scalar::<_, bool>(self.q.delete.clone())
            .bind(key.as_str())
            .bind(micros(now()));
        let _permit = self.gate().await?;
        let was_live = query.fetch_optional(&self.write).await.map_err(map_err)?;
        Ok(was_live.unwrap_or(false))
    }

    pub(crate) async fn delete_expired(&self) -> Result<u64> {
        let now = micros(now());
        let batch = u64::from(self.settings.delete_batch_size);
        let mut total = 0u64;
        loop {
            // One batch per write turn: other writers get the connection in between.
            let removed = {
                let _permit = self.gate().await?;
                sqlx::query(self.q.delete_expired.clone())
                    .bind(now)
                    .bind(i64::from(self.settings.delete_batch_size))
                    .execute(&self.write)
                    .await
                    .map_err(map_err)?
                    .rows_affected()
            };
            total += removed;
            if removed < batch {
                break;
            }
        }
        Ok(total)
    }

    pub(crate) async fn list_for_user(&self, user_id: &str) -> Result<Vec<Record>> {
        let rows = sqlx::query(self.q.list_for_user.clone())
            .bind(user_id)
            .bind(micros(now()))
            .fetch_all(&self.read)
            .await
            .map_err(map_err)?;
        rows.iter().map(|row| decode(row, None)).collect()
    }

    pub(crate) async fn delete_for_user(
        &self,
        user_id: &str,
        except: Option<&SessionKey>,
    ) -> Result<u64> {
        let query = match except {
            None => sqlx::query(self.q.delete_for_user.clone())
                .bind(user_id)
                .bind(micros(now())),
            Some(keep) => sqlx::query(self.q.delete_for_user_except.clone())
                .bind(user_id)
                .bind(micros(now()))
                .bind(keep.as_str()),
        };
        let _permit = self.gate().await?;
        Ok(query
            .execute(&self.write)
            .await
            .map_err(map_err)?
            .rows_affected())
    }
}
