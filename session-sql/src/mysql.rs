//! MySQL and MariaDB: statements and operations.
//!
//! Times are `DATETIME(6)` holding UTC (microseconds), bound as naive UTC values so the
//! connection's `time_zone` never shifts them. The table is `utf8mb4` with a binary
//! collation: any Unicode round-trips and user ids compare exactly.

use session_core::chrono::{DateTime, NaiveDateTime, Utc};
use session_core::{Record, SessionKey, StoreError, StoreResult};
use sqlx::mysql::{MySqlPool, MySqlRow};
use sqlx::SqlStr;

use crate::common::{now, sql, Settings};
use crate::engine::{micro, Arg};
use crate::error::{column, corrupt, map_err, version_from_db, version_to_db};
use crate::table::{Table, TableName};

#[derive(Debug)]
struct Queries {
    insert: SqlStr,
    delete_if_expired: SqlStr,
    load: SqlStr,
    update: SqlStr,
    exists: SqlStr,
    touch: SqlStr,
    delete_live: SqlStr,
    delete_any: SqlStr,
    delete_at_version: SqlStr,
    delete_expired: SqlStr,
    list_for_user: SqlStr,
    delete_for_user: SqlStr,
    delete_for_user_except: SqlStr,
    migrate: SqlStr,
}

const COLUMNS: &str =
    "data, expires_at, version, user_id, created_at, last_active_at, user_agent, ip";

/// The statements `migrate` runs for `table`, as text.
pub(crate) fn migration(table: &Table) -> Vec<String> {
    let q = Queries::new(table);
    vec![q.migrate.as_str().to_owned()]
}

impl Queries {
    /// The native statements (the interop layouts have theirs in [`crate::layout`]).
    fn new(table: &Table) -> Self {
        Self::native(table)
    }

    fn native(table: &Table) -> Self {
        let t = table.quoted('`');
        Self {
            // A plain insert: the duplicate-key error tells a taken key. (MySQL has no
            // conditional upsert whose affected-row count can tell "replaced an expired
            // row" from "left a live row alone" under the FOUND_ROWS flag sqlx sets.)
            insert: sql(format!(
                "INSERT INTO {t} (session_key, {COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )),
            delete_if_expired: sql(format!(
                "DELETE FROM {t} WHERE session_key = ? AND expires_at <= ?"
            )),
            load: sql(format!(
                "SELECT {COLUMNS} FROM {t} WHERE session_key = ? AND expires_at > ?"
            )),
            update: sql(format!(
                "UPDATE {t} SET data = ?, expires_at = ?, version = version + 1, \
                 user_id = ?, last_active_at = ?, user_agent = ?, ip = ? \
                 WHERE session_key = ? AND version = ? AND expires_at > ?"
            )),
            exists: sql(format!(
                "SELECT 1 FROM {t} WHERE session_key = ? AND expires_at > ?"
            )),
            touch: sql(format!(
                "UPDATE {t} SET expires_at = ?, last_active_at = ? \
                 WHERE session_key = ? AND expires_at > ?"
            )),
            delete_live: sql(format!(
                "DELETE FROM {t} WHERE session_key = ? AND expires_at > ?"
            )),
            delete_any: sql(format!("DELETE FROM {t} WHERE session_key = ?")),
            // Compare-and-delete of a live row (key rotation); a miss is told apart by
            // `exists`.
            delete_at_version: sql(format!(
                "DELETE FROM {t} WHERE session_key = ? AND version = ? AND expires_at > ?"
            )),
            delete_expired: sql(format!(
                "DELETE FROM {t} WHERE expires_at <= ? ORDER BY expires_at LIMIT ?"
            )),
            list_for_user: sql(format!(
                "SELECT {COLUMNS}, session_key FROM {t} \
                 WHERE user_id = ? AND expires_at > ? ORDER BY created_at, session_key"
            )),
            delete_for_user: sql(format!(
                "DELETE FROM {t} WHERE user_id = ? AND expires_at > ?"
            )),
            delete_for_user_except: sql(format!(
                "DELETE FROM {t} WHERE user_id = ? AND expires_at > ? AND session_key <> ?"
            )),
            // One statement, indexes included: MySQL has no CREATE INDEX IF NOT EXISTS.
            migrate: sql(format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 session_key VARCHAR(64) NOT NULL, \
                 data LONGTEXT NOT NULL, \
                 expires_at DATETIME(6) NOT NULL, \
                 version BIGINT NOT NULL, \
                 user_id VARCHAR(255) NULL, \
                 created_at DATETIME(6) NOT NULL, \
                 last_active_at DATETIME(6) NULL, \
                 user_agent TEXT NULL, \
                 ip VARCHAR(255) NULL, \
                 PRIMARY KEY (session_key), \
                 INDEX {} (expires_at), \
                 INDEX {} (user_id)\
                 ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
                table.index("expires_at_idx", '`'),
                table.index("user_id_idx", '`'),
            )),
        }
    }
}

/// A store over one MySQL / MariaDB table.
#[derive(Debug)]
pub struct MySqlBackend {
    pool: MySqlPool,
    settings: Settings,
    q: Queries,
}

fn naive(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

fn decode(row: &MySqlRow, key: Option<SessionKey>) -> StoreResult<Record> {
    let key = match key {
        Some(key) => key,
        None => {
            let raw: String = column(row, 8, "session_key")?;
            SessionKey::try_from(raw).map_err(|e| corrupt(format!("session_key: {e}")))?
        }
    };
    let expires_at: NaiveDateTime = column(row, 1, "expires_at")?;
    let created_at: NaiveDateTime = column(row, 4, "created_at")?;
    let last_active_at: Option<NaiveDateTime> = column(row, 5, "last_active_at")?;
    let mut record = Record::new(key, column(row, 0, "data")?, expires_at.and_utc());
    record.version = version_from_db(column(row, 2, "version")?)?;
    record.user_id = column(row, 3, "user_id")?;
    record.created_at = created_at.and_utc();
    record.last_active_at = last_active_at.map(|t| t.and_utc());
    record.user_agent = column(row, 6, "user_agent")?;
    record.ip = column(row, 7, "ip")?;
    Ok(record)
}

/// Refuses values the MySQL columns cannot hold whole (a server not in strict mode would
/// silently truncate them, which would break the user index).
fn check_lengths(r: &Record) -> StoreResult<()> {
    fn too_long(what: &str, limit: &str) -> StoreError {
        StoreError::backend(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{what} is longer than the MySQL column allows ({limit})"),
        ))
    }
    if r.user_id.as_ref().is_some_and(|u| u.chars().count() > 255) {
        return Err(too_long("user_id", "255 characters"));
    }
    if r.ip.as_ref().is_some_and(|ip| ip.chars().count() > 255) {
        return Err(too_long("ip", "255 characters"));
    }
    if r.user_agent.as_ref().is_some_and(|ua| ua.len() > 65_535) {
        return Err(too_long("user_agent", "65,535 bytes"));
    }
    Ok(())
}

fn is_duplicate_key(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// InnoDB chose this statement as a deadlock victim (SQLSTATE 40001, error 1213) and rolled
/// it back: racing creates over one expired row can do that. The statement is safe to run
/// again.
fn is_deadlock(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("40001"))
}

/// How many times `create` runs again after being chosen as a deadlock victim.
const CREATE_DEADLOCK_RETRIES: u32 = 8;

impl MySqlBackend {
    pub(crate) fn new(pool: MySqlPool, settings: Settings) -> Self {
        let q = Queries::new(&settings.table);
        Self { pool, settings, q }
    }

    pub(crate) fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    pub(crate) async fn migrate(&self) -> StoreResult<()> {
        let statements = [self.q.migrate.clone()];
        self.migrate_with(&statements, &self.settings.table.name)
            .await
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

    async fn insert(&self, r: &Record, version: i64) -> Result<(), sqlx::Error> {
        sqlx::query(self.q.insert.clone())
            .bind(r.key.as_str())
            .bind(r.data.as_str())
            .bind(naive(r.expires_at))
            .bind(version)
            .bind(r.user_id.as_deref())
            .bind(naive(r.created_at))
            .bind(r.last_active_at.map(naive))
            .bind(r.user_agent.as_deref())
            .bind(r.ip.as_deref())
            .execute(&self.pool)
            .await
            .map(drop)
    }

    pub(crate) async fn create(&self, r: &Record) -> StoreResult<()> {
        // Happy path: one INSERT. On a duplicate key, remove the row only if it has
        // expired and insert again; each step is atomic, so a racing create either
        // wins the insert or makes ours fail with KeyExists.
        check_lengths(r)?;
        let version = version_to_db(r.version)?;
        let mut attempt = 0;
        loop {
            match self.create_once(r, version).await {
                Err(e) if is_deadlock(&e) && attempt < CREATE_DEADLOCK_RETRIES => {
                    attempt += 1;
                    tracing::debug!(key = %r.key, attempt, "create was a deadlock victim; running it again");
                }
                Err(e) if is_duplicate_key(&e) => return Err(StoreError::KeyExists),
                Err(e) => return Err(map_err(e)),
                Ok(true) => return Ok(()),
                Ok(false) => return Err(StoreError::KeyExists),
            }
        }
    }

    /// One attempt of `create`: `Ok(false)` when a live row holds the key.
    async fn create_once(&self, r: &Record, version: i64) -> Result<bool, sqlx::Error> {
        match self.insert(r, version).await {
            Ok(()) => return Ok(true),
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(e),
        }
        let removed = sqlx::query(self.q.delete_if_expired.clone())
            .bind(r.key.as_str())
            .bind(naive(now()))
            .execute(&self.pool)
            .await?
            .rows_affected();
        if removed == 0 {
            return Ok(false);
        }
        self.insert(r, version).await.map(|()| true)
    }

    pub(crate) async fn load(&self, key: &SessionKey) -> StoreResult<Option<Record>> {
        let row = sqlx::query(self.q.load.clone())
            .bind(key.as_str())
            .bind(naive(now()))
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(|row| decode(&row, Some(key.clone()))).transpose()
    }

    pub(crate) async fn update(&self, r: &Record) -> StoreResult<u64> {
        check_lengths(r)?;
        let now = now();
        // sqlx sets CLIENT_FOUND_ROWS, so a matched row counts even if nothing changed.
        let affected = sqlx::query(self.q.update.clone())
            .bind(r.data.as_str())
            .bind(naive(r.expires_at))
            .bind(r.user_id.as_deref())
            .bind(r.last_active_at.map(naive))
            .bind(r.user_agent.as_deref())
            .bind(r.ip.as_deref())
            .bind(r.key.as_str())
            .bind(version_to_db(r.version)?)
            .bind(naive(now))
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        if affected == 1 {
            return Ok(r.version + 1);
        }
        if self.exists_at(&r.key, now).await? {
            Err(StoreError::Conflict)
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn exists_at(&self, key: &SessionKey, now: DateTime<Utc>) -> StoreResult<bool> {
        let row = sqlx::query(self.q.exists.clone())
            .bind(key.as_str())
            .bind(naive(now))
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
        let now = naive(now());
        let affected = sqlx::query(self.q.touch.clone())
            .bind(naive(expires_at))
            .bind(now)
            .bind(key.as_str())
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        Ok(affected > 0)
    }

    pub(crate) async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        // MySQL has no DELETE .. RETURNING: delete the live row (the usual logout, one
        // statement); on a miss, clear out an expired leftover.
        let live = sqlx::query(self.q.delete_live.clone())
            .bind(key.as_str())
            .bind(naive(now()))
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected();
        if live > 0 {
            return Ok(true);
        }
        sqlx::query(self.q.delete_any.clone())
            .bind(key.as_str())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(false)
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
            .bind(naive(now))
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
        let now = naive(now());
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
            .bind(naive(now()))
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
                .bind(naive(now())),
            Some(keep) => sqlx::query(self.q.delete_for_user_except.clone())
                .bind(user_id)
                .bind(naive(now()))
                .bind(keep.as_str()),
        };
        Ok(query
            .execute(&self.pool)
            .await
            .map_err(map_err)?
            .rows_affected())
    }
}

type MySqlQuery = sqlx::query::Query<'static, sqlx::MySql, sqlx::mysql::MySqlArguments>;

/// Binds a layout's value (times as naive UTC).
fn bind(query: MySqlQuery, arg: &Arg) -> MySqlQuery {
    match arg {
        Arg::Text(s) => query.bind(s.clone()),
        Arg::Time(t) => query.bind(naive(micro(*t))),
        Arg::Int(n) => query.bind(*n),
    }
}

fn time(row: &MySqlRow, index: usize, name: &str) -> StoreResult<DateTime<Utc>> {
    column::<_, NaiveDateTime>(row, index, name).map(|t| t.and_utc())
}

crate::engine::server_engine!(MySqlBackend, sqlx::MySql, bind, time);
