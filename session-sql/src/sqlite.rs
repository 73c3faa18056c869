//! SQLite: statements and operations.
//!
//! Times are stored as `INTEGER` microseconds since the Unix epoch (UTC): exact, compact
//! and compared as plain integers.
//!
//! Writes go through one writer connection that the store owns (behind a FIFO mutex),
//! committed in groups (see the `group` module), reads through a pool of readers. In WAL mode readers never block the writer nor each
//! other, and writers queue in the process instead of fighting over SQLite's write lock
//! with sleeps and retries.
//!
//! Checkpoints: the writer does not checkpoint the WAL after its commits (that would
//! stall every queued write behind a copy and an fsync). Every [`CHECKPOINT_EVERY`]
//! writes, a reader connection runs a passive checkpoint concurrently with the writer.
//! Under a steady stream of writes such a checkpoint never catches up with the end of
//! the WAL, so the WAL could never restart from its beginning and would grow without
//! bound; when it holds more than [`WAL_RESET_FRAMES`] frames, the checkpoint task also
//! takes one turn on the writer and finishes the (by then short) remaining copy there,
//! after which the next write restarts the WAL. `journal_size_limit` then truncates the
//! file.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use session_core::chrono::{DateTime, Utc};
use session_core::{Record, SessionKey, StoreError, StoreResult};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{ConnectOptions, SqlStr, Sqlite};
use tokio::sync::{Mutex, MutexGuard, Semaphore, SemaphorePermit};

/// How many writes pass between two passive WAL checkpoints (run off the writer).
pub(crate) const CHECKPOINT_EVERY: u32 = 1_000;

/// WAL length (frames, i.e. pages) above which a checkpoint finishes on the writer's
/// turn so that the WAL restarts: 4,096 frames are 16 MiB with 4 KiB pages.
pub(crate) const WAL_RESET_FRAMES: i64 = 4_096;

mod group;

use crate::common::{now, sql, Settings};
use crate::engine::{decode as decode_out, run_on, Arg, Out, Want};
use crate::error::{column, corrupt, map_err, version_from_db, version_to_db};
use crate::table::Table;

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
            // Compare-and-delete of a live row; a miss is told apart by `exists`.
            delete_at_version: sql(format!(
                "DELETE FROM {t} WHERE session_key = ?1 AND version = ?2 AND expires_at > ?3"
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

/// Where writes run.
#[derive(Debug)]
enum Writer {
    /// The store's own connection. `None` after it broke; reopened on the next write.
    Dedicated {
        conn: Arc<Mutex<Option<SqliteConnection>>>,
        options: Box<SqliteConnectOptions>,
        timeout: Duration,
    },
    /// A caller's pool: writes are serialised by a one-permit gate.
    Pool { pool: SqlitePool, gate: Semaphore },
}

/// Where reads run.
#[derive(Debug)]
enum Reader {
    Pool(SqlitePool),
    /// In-memory databases live on the writer's single connection.
    Writer,
}

/// A connection checked out for one statement.
enum Conn<'a> {
    Dedicated(MutexGuard<'a, Option<SqliteConnection>>),
    /// Fields drop in order: the connection goes back to the pool before the write
    /// gate's permit is released.
    Pooled {
        conn: PoolConnection<Sqlite>,
        _permit: Option<SemaphorePermit<'a>>,
    },
}

impl Conn<'_> {
    fn get(&mut self) -> StoreResult<&mut SqliteConnection> {
        match self {
            Conn::Dedicated(guard) => guard
                .as_mut()
                .ok_or_else(|| map_err(sqlx::Error::PoolClosed)),
            Conn::Pooled { conn, .. } => Ok(&mut **conn),
        }
    }

    /// Drops the connection (SQLite rolls back what it had open); the dedicated writer is
    /// reopened by the next write.
    fn abandon(&mut self) {
        match self {
            Conn::Dedicated(guard) => **guard = None,
            Conn::Pooled { conn, .. } => conn.close_on_drop(),
        }
    }

    /// Maps a statement's error; a connection that broke is dropped (and, for the
    /// dedicated writer, reopened by the next write).
    fn check<T>(&mut self, result: Result<T, sqlx::Error>) -> StoreResult<T> {
        result.map_err(|err| {
            if matches!(
                err,
                sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed | sqlx::Error::Protocol(_)
            ) {
                match self {
                    Conn::Dedicated(guard) => {
                        tracing::warn!(error = %err, "SQLite writer connection broke; reopening on next write");
                        **guard = None;
                    }
                    Conn::Pooled { conn, .. } => conn.close_on_drop(),
                }
            }
            map_err(err)
        })
    }
}

/// A store over one SQLite table.
#[derive(Debug)]
pub struct SqliteBackend {
    writer: Writer,
    reader: Reader,
    /// Writes since the last checkpoint, when this store checkpoints (own file database).
    writes: Option<AtomicU32>,
    checkpointing: Arc<AtomicBool>,
    /// Set by `close`: the dedicated writer is not reopened any more.
    closed: AtomicBool,
    /// Writes waiting for the dedicated writer (group commit).
    queue: group::Queue,
    settings: Settings,
    q: Queries,
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(v: i64, what: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| corrupt(format!("{what} out of range: {v}")))
}

fn decode(row: &SqliteRow, key: Option<SessionKey>) -> StoreResult<Record> {
    let key = match key {
        Some(key) => key,
        None => {
            let raw: String = column(row, 8, "session_key")?;
            SessionKey::try_from(raw).map_err(|e| corrupt(format!("session_key: {e}")))?
        }
    };
    let last_active_at: Option<i64> = column(row, 5, "last_active_at")?;
    let mut record = Record::new(
        key,
        column(row, 0, "data")?,
        from_micros(column(row, 1, "expires_at")?, "expires_at")?,
    );
    record.version = version_from_db(column(row, 2, "version")?)?;
    record.user_id = column(row, 3, "user_id")?;
    record.created_at = from_micros(column(row, 4, "created_at")?, "created_at")?;
    record.last_active_at = last_active_at
        .map(|v| from_micros(v, "last_active_at"))
        .transpose()?;
    record.user_agent = column(row, 6, "user_agent")?;
    record.ip = column(row, 7, "ip")?;
    Ok(record)
}

impl SqliteBackend {
    /// A file database: the store's own writer connection (opened now; it creates the
    /// file and switches it to WAL) plus a reader pool. The writer leaves checkpoints
    /// to the readers.
    pub(crate) async fn open_file(
        writer_options: SqliteConnectOptions,
        read: SqlitePool,
        timeout: Duration,
        settings: Settings,
    ) -> StoreResult<Self> {
        let writer_options = writer_options.pragma("wal_autocheckpoint", "0");
        let conn = connect(&writer_options, timeout).await?;
        Ok(Self::with(
            Writer::Dedicated {
                conn: Arc::new(Mutex::new(Some(conn))),
                options: Box::new(writer_options),
                timeout,
            },
            Reader::Pool(read),
            true,
            settings,
        ))
    }

    /// An in-memory database: one connection for everything, kept for the store's life.
    pub(crate) async fn open_memory(
        options: SqliteConnectOptions,
        timeout: Duration,
        settings: Settings,
    ) -> StoreResult<Self> {
        let conn = connect(&options, timeout).await?;
        Ok(Self::with(
            Writer::Dedicated {
                conn: Arc::new(Mutex::new(Some(conn))),
                options: Box::new(options),
                timeout,
            },
            Reader::Writer,
            false,
            settings,
        ))
    }

    /// A caller's pool for reads and writes; writes pass a one-permit gate.
    pub(crate) fn from_pool(pool: SqlitePool, settings: Settings) -> Self {
        Self::with(
            Writer::Pool {
                pool: pool.clone(),
                gate: Semaphore::new(1),
            },
            Reader::Pool(pool),
            false,
            settings,
        )
    }

    fn with(writer: Writer, reader: Reader, checkpoints: bool, settings: Settings) -> Self {
        let q = Queries::new(&settings.table);
        Self {
            writer,
            reader,
            writes: checkpoints.then(|| AtomicU32::new(0)),
            checkpointing: Arc::new(AtomicBool::new(false)),
            closed: AtomicBool::new(false),
            queue: group::Queue::default(),
            settings,
            q,
        }
    }

    /// Closes the reader pool and the writer connection.
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Reader::Pool(pool) = &self.reader {
            pool.close().await;
        }
        match &self.writer {
            Writer::Dedicated { conn, .. } => {
                if let Some(conn) = conn.lock().await.take() {
                    if let Err(e) = sqlx::Connection::close(conn).await {
                        tracing::debug!(error = %e, "closing the SQLite writer connection");
                    }
                }
            }
            Writer::Pool { pool, gate } => {
                gate.close();
                pool.close().await;
            }
        }
    }

    /// Checks out the writer, waiting at most the acquire timeout behind other writes.
    async fn write_conn(&self) -> StoreResult<Conn<'_>> {
        match &self.writer {
            Writer::Dedicated {
                conn,
                options,
                timeout,
            } => {
                let mut guard = tokio::time::timeout(*timeout, conn.lock())
                    .await
                    .map_err(|_| map_err(sqlx::Error::PoolTimedOut))?;
                if guard.is_none() {
                    if self.closed.load(Ordering::Acquire) {
                        return Err(map_err(sqlx::Error::PoolClosed));
                    }
                    *guard = Some(connect(options, *timeout).await?);
                }
                Ok(Conn::Dedicated(guard))
            }
            Writer::Pool { pool, gate } => {
                let timeout = pool.options().get_acquire_timeout();
                let permit = match tokio::time::timeout(timeout, gate.acquire()).await {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_closed)) => return Err(map_err(sqlx::Error::PoolClosed)),
                    Err(_elapsed) => return Err(map_err(sqlx::Error::PoolTimedOut)),
                };
                let conn = pool.acquire().await.map_err(map_err)?;
                Ok(Conn::Pooled {
                    conn,
                    _permit: Some(permit),
                })
            }
        }
    }

    /// Runs one write: queued for group commit on the dedicated writer, alone behind
    /// the gate on a caller's pool.
    async fn submit(
        &self,
        build: group::Build,
        shape: group::Shape,
    ) -> StoreResult<group::Outcome> {
        match &self.writer {
            Writer::Dedicated {
                conn,
                options,
                timeout,
            } => {
                let writer = group::Writer {
                    conn,
                    options,
                    timeout: *timeout,
                    closed: self.closed.load(Ordering::Acquire),
                };
                self.queue.submit(writer, build, shape).await
            }
            Writer::Pool { .. } => {
                let mut conn = self.write_conn().await?;
                let result = group::run_alone(conn.get()?, &build, shape).await;
                conn.check(result)
            }
        }
    }

    async fn read_conn(&self) -> StoreResult<Conn<'_>> {
        match &self.reader {
            Reader::Pool(pool) => Ok(Conn::Pooled {
                conn: pool.acquire().await.map_err(map_err)?,
                _permit: None,
            }),
            Reader::Writer => self.write_conn().await,
        }
    }

    /// Counts a committed write and, every [`CHECKPOINT_EVERY`], starts a WAL checkpoint
    /// task (never more than one at a time); see the module documentation.
    fn wrote(&self) {
        let (Some(writes), Reader::Pool(pool)) = (&self.writes, &self.reader) else {
            return;
        };
        let Writer::Dedicated { conn, timeout, .. } = &self.writer else {
            return;
        };
        if writes.fetch_add(1, Ordering::Relaxed) % CHECKPOINT_EVERY != CHECKPOINT_EVERY - 1 {
            return;
        }
        if self.checkpointing.swap(true, Ordering::AcqRel) {
            return;
        }
        let pool = pool.clone();
        let writer = conn.clone();
        let timeout = *timeout;
        let flag = self.checkpointing.clone();
        tokio::spawn(async move {
            checkpoint(&pool, &writer, timeout).await;
            flag.store(false, Ordering::Release);
        });
    }

    pub(crate) async fn migrate(&self) -> StoreResult<()> {
        self.migrate_with(&self.q.migrate, &self.settings.table.name)
            .await
    }

    /// Runs `statements` in one `BEGIN IMMEDIATE` transaction on the writer.
    pub(crate) async fn migrate_with(
        &self,
        statements: &[SqlStr],
        _table: &crate::TableName,
    ) -> StoreResult<()> {
        let mut conn = self.write_conn().await?;
        let result = try_migrate(conn.get()?, statements).await;
        conn.check(result)
    }

    pub(crate) async fn create(&self, r: &Record) -> StoreResult<()> {
        let q = self.q.create.clone();
        let (key, data, user, agent, ip) = (
            r.key.as_str().to_owned(),
            r.data.clone(),
            r.user_id.clone(),
            r.user_agent.clone(),
            r.ip.clone(),
        );
        let (expires, version, created, active, now) = (
            micros(r.expires_at),
            version_to_db(r.version)?,
            micros(r.created_at),
            r.last_active_at.map(micros),
            micros(now()),
        );
        let build: group::Build = Box::new(move || {
            sqlx::query(q.clone())
                .bind(key.clone())
                .bind(data.clone())
                .bind(expires)
                .bind(version)
                .bind(user.clone())
                .bind(created)
                .bind(active)
                .bind(agent.clone())
                .bind(ip.clone())
                .bind(now)
        });
        let affected = self.submit(build, group::Shape::Execute).await?.rows();
        if affected == 0 {
            return Err(StoreError::KeyExists);
        }
        self.wrote();
        Ok(())
    }

    pub(crate) async fn load(&self, key: &SessionKey) -> StoreResult<Option<Record>> {
        let query = sqlx::query(self.q.load.clone())
            .bind(key.as_str())
            .bind(micros(now()));
        let row = {
            let mut conn = self.read_conn().await?;
            let result = query.fetch_optional(conn.get()?).await;
            conn.check(result)?
        };
        row.map(|row| decode(&row, Some(key.clone()))).transpose()
    }

    pub(crate) async fn update(&self, r: &Record) -> StoreResult<u64> {
        let now = now();
        let q = self.q.update.clone();
        let (key, data, user, agent, ip) = (
            r.key.as_str().to_owned(),
            r.data.clone(),
            r.user_id.clone(),
            r.user_agent.clone(),
            r.ip.clone(),
        );
        let (expires, active, version, at) = (
            micros(r.expires_at),
            r.last_active_at.map(micros),
            version_to_db(r.version)?,
            micros(now),
        );
        let build: group::Build = Box::new(move || {
            sqlx::query(q.clone())
                .bind(data.clone())
                .bind(expires)
                .bind(user.clone())
                .bind(active)
                .bind(agent.clone())
                .bind(ip.clone())
                .bind(key.clone())
                .bind(version)
                .bind(at)
        });
        let affected = self.submit(build, group::Shape::Execute).await?.rows();
        if affected == 1 {
            self.wrote();
            return Ok(r.version + 1);
        }
        if self.exists_at(&r.key, now).await? {
            Err(StoreError::Conflict)
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn exists_at(&self, key: &SessionKey, now: DateTime<Utc>) -> StoreResult<bool> {
        let query = sqlx::query(self.q.exists.clone())
            .bind(key.as_str())
            .bind(micros(now));
        let mut conn = self.read_conn().await?;
        let result = query.fetch_optional(conn.get()?).await;
        Ok(conn.check(result)?.is_some())
    }

    pub(crate) async fn exists(&self, key: &SessionKey) -> StoreResult<bool> {
        self.exists_at(key, now()).await
    }

    pub(crate) async fn touch(
        &self,
        key: &SessionKey,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let q = self.q.touch.clone();
        let (key, expires, at) = (key.as_str().to_owned(), micros(expires_at), micros(now()));
        let build: group::Build = Box::new(move || {
            sqlx::query(q.clone())
                .bind(expires)
                .bind(at)
                .bind(key.clone())
        });
        let affected = self.submit(build, group::Shape::Execute).await?.rows();
        if affected > 0 {
            self.wrote();
        }
        Ok(affected > 0)
    }

    pub(crate) async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        let q = self.q.delete.clone();
        let (key, at) = (key.as_str().to_owned(), micros(now()));
        let build: group::Build =
            Box::new(move || sqlx::query(q.clone()).bind(key.clone()).bind(at));
        let was_live = self
            .submit(build, group::Shape::ReturningBool)
            .await?
            .returned();
        if was_live.is_some() {
            self.wrote();
        }
        Ok(was_live.unwrap_or(false))
    }

    pub(crate) async fn delete_at_version(
        &self,
        key: &SessionKey,
        version: u64,
    ) -> StoreResult<()> {
        let now = now();
        let q = self.q.delete_at_version.clone();
        let (owned, version_db, at) = (
            key.as_str().to_owned(),
            version_to_db(version)?,
            micros(now),
        );
        let build: group::Build = Box::new(move || {
            sqlx::query(q.clone())
                .bind(owned.clone())
                .bind(version_db)
                .bind(at)
        });
        let affected = self.submit(build, group::Shape::Execute).await?.rows();
        if affected > 0 {
            self.wrote();
            return Ok(());
        }
        // Missed: tell a vanished row from a moved version.
        Err(crate::error::stale(self.exists_at(key, now).await?))
    }

    pub(crate) async fn delete_expired(&self) -> StoreResult<u64> {
        let now = micros(now());
        let batch = u64::from(self.settings.delete_batch_size);
        let mut total = 0u64;
        loop {
            // One batch per turn on the writer: queued writes run in between.
            let removed = {
                let query = sqlx::query(self.q.delete_expired.clone())
                    .bind(now)
                    .bind(i64::from(self.settings.delete_batch_size));
                let mut conn = self.write_conn().await?;
                let result = query.execute(conn.get()?).await;
                conn.check(result)?.rows_affected()
            };
            total += removed;
            if removed > 0 {
                self.wrote();
            }
            if removed < batch {
                break;
            }
        }
        Ok(total)
    }

    pub(crate) async fn list_for_user(&self, user_id: &str) -> StoreResult<Vec<Record>> {
        let query = sqlx::query(self.q.list_for_user.clone())
            .bind(user_id)
            .bind(micros(now()));
        let rows = {
            let mut conn = self.read_conn().await?;
            let result = query.fetch_all(conn.get()?).await;
            conn.check(result)?
        };
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
                .bind(micros(now())),
            Some(keep) => sqlx::query(self.q.delete_for_user_except.clone())
                .bind(user_id)
                .bind(micros(now()))
                .bind(keep.as_str()),
        };
        let removed = {
            let mut conn = self.write_conn().await?;
            let result = query.execute(conn.get()?).await;
            conn.check(result)?.rows_affected()
        };
        if removed > 0 {
            self.wrote();
        }
        Ok(removed)
    }
}

/// A passive checkpoint on a reader; if the WAL is long, a second one on the writer's
/// turn, which catches up with the WAL's end so that the next write restarts it.
async fn checkpoint(
    readers: &SqlitePool,
    writer: &Mutex<Option<SqliteConnection>>,
    timeout: Duration,
) {
    const SQL: &str = "PRAGMA wal_checkpoint(PASSIVE)";
    let frames = match sqlx::query_as::<_, (i64, i64, i64)>(SQL)
        .fetch_one(readers)
        .await
    {
        Ok((_busy, frames, _copied)) => frames,
        Err(e) => {
            tracing::debug!(error = %e, "passive WAL checkpoint failed; retried later");
            return;
        }
    };
    if frames <= WAL_RESET_FRAMES {
        return;
    }
    let Ok(mut guard) = tokio::time::timeout(timeout, writer.lock()).await else {
        return;
    };
    if let Some(conn) = guard.as_mut() {
        match sqlx::query_as::<_, (i64, i64, i64)>(SQL)
            .fetch_one(conn)
            .await
        {
            Ok((_busy, frames, copied)) => {
                tracing::debug!(frames, copied, "WAL checkpoint finished on the writer");
            }
            Err(e) => tracing::debug!(error = %e, "WAL checkpoint on the writer failed"),
        }
    }
}

/// Opens a connection, bounded by `timeout`.
async fn connect(
    options: &SqliteConnectOptions,
    timeout: Duration,
) -> StoreResult<SqliteConnection> {
    match tokio::time::timeout(timeout, options.connect()).await {
        Ok(result) => result.map_err(map_err),
        Err(_elapsed) => Err(map_err(sqlx::Error::PoolTimedOut)),
    }
}

async fn try_migrate(
    conn: &mut SqliteConnection,
    statements: &[SqlStr],
) -> Result<(), sqlx::Error> {
    // BEGIN IMMEDIATE takes the write lock up front, so concurrent migrations (other
    // processes) wait on the busy timeout instead of failing on a lock upgrade.
    let mut tx = sqlx::Connection::begin_with(conn, "BEGIN IMMEDIATE").await?;
    for statement in statements {
        sqlx::raw_sql(statement.clone()).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// Django's SQLite datetime text: `YYYY-MM-DD HH:MM:SS[.ffffff]`, naive UTC (the interop
/// layouts' time columns).
pub(crate) fn django_time(t: DateTime<Utc>) -> String {
    let micros = t.timestamp_subsec_micros();
    let base = t.format("%Y-%m-%d %H:%M:%S");
    if micros == 0 {
        base.to_string()
    } else {
        format!("{base}.{micros:06}")
    }
}

pub(crate) fn parse_django_time(s: &str) -> StoreResult<DateTime<Utc>> {
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
    ] {
        if let Ok(naive) = session_core::chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(naive.and_utc());
        }
    }
    Err(corrupt(format!(
        "time column is not a datetime: {} bytes",
        s.len()
    )))
}

/// Binds a layout's value (times as Django's text).
fn bind(query: group::Statement, arg: &Arg) -> group::Statement {
    match arg {
        Arg::Text(s) => query.bind(s.clone()),
        Arg::Time(t) => query.bind(django_time(*t)),
        Arg::Int(n) => query.bind(*n),
    }
}

fn time(row: &SqliteRow, index: usize, name: &str) -> StoreResult<DateTime<Utc>> {
    parse_django_time(&column::<_, String>(row, index, name)?)
}

/// The interop layouts on SQLite: reads on the readers, writes through the group-commit
/// queue of the single writer, compare-and-swap transactions on the writer itself.
impl crate::engine::Engine for SqliteBackend {
    type Tx<'a> = SqliteTx<'a>;

    async fn read(
        &self,
        stmt: &crate::engine::Stmt,
        args: Vec<Arg>,
        want: Want,
    ) -> StoreResult<Out> {
        let mut conn = self.read_conn().await?;
        let result = run_on!(conn.get()?, stmt, &args, want, bind);
        decode_out(conn.check(result)?, want, time)
    }

    async fn write(
        &self,
        stmt: &crate::engine::Stmt,
        args: Vec<Arg>,
        want: Want,
    ) -> StoreResult<Out> {
        let sql = stmt.sql.clone();
        // SQLite placeholders are numbered: the arguments bind in their own order.
        let build: group::Build = Box::new(move || {
            args.iter()
                .fold(sqlx::query(sql.clone()), |query, arg| bind(query, arg))
        });
        let flag = want == Want::Flag;
        let shape = if flag {
            group::Shape::ReturningBool
        } else {
            group::Shape::Execute
        };
        let outcome = self.submit(build, shape).await?;
        if outcome.rows() > 0 {
            self.wrote();
        }
        Ok(if flag {
            Out::Flag(outcome.returned())
        } else {
            Out::Rows(outcome.rows())
        })
    }

    async fn begin(&self) -> StoreResult<SqliteTx<'_>> {
        let mut conn = self.write_conn().await?;
        let result = sqlx::raw_sql("BEGIN IMMEDIATE").execute(conn.get()?).await;
        conn.check(result)?;
        Ok(SqliteTx {
            backend: self,
            conn,
            open: true,
        })
    }
}

/// A `BEGIN IMMEDIATE` transaction on the writer. Dropped while open (cancelled, or a
/// failed commit), it drops the connection, which rolls back.
pub(crate) struct SqliteTx<'a> {
    backend: &'a SqliteBackend,
    conn: Conn<'a>,
    open: bool,
}

impl SqliteTx<'_> {
    async fn end(&mut self, statement: &'static str) -> StoreResult<()> {
        let result = sqlx::raw_sql(statement).execute(self.conn.get()?).await;
        self.conn.check(result)?;
        self.open = false;
        Ok(())
    }
}

impl crate::engine::Tx for SqliteTx<'_> {
    async fn run(
        &mut self,
        stmt: &crate::engine::Stmt,
        args: Vec<Arg>,
        want: Want,
    ) -> StoreResult<Out> {
        let result = run_on!(self.conn.get()?, stmt, &args, want, bind);
        decode_out(self.conn.check(result)?, want, time)
    }

    async fn commit(mut self) -> StoreResult<()> {
        self.end("COMMIT").await?;
        self.backend.wrote();
        Ok(())
    }

    async fn rollback(mut self) {
        if let Err(e) = self.end("ROLLBACK").await {
            tracing::debug!(error = %e, "rollback failed; the connection is dropped");
        }
    }
}

impl Drop for SqliteTx<'_> {
    fn drop(&mut self) {
        if self.open {
            self.conn.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interop_times_are_djangos_text() {
        let t = DateTime::parse_from_rfc3339("2026-12-10T23:49:05.606100Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(django_time(t), "2026-12-10 23:49:05.606100");
        assert_eq!(
            parse_django_time("2026-12-10 23:49:05.606100").ok(),
            Some(t)
        );
        let whole = DateTime::parse_from_rfc3339("2026-12-10T23:49:05Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(django_time(whole), "2026-12-10 23:49:05");
        assert_eq!(parse_django_time("2026-12-10 23:49:05").ok(), Some(whole));
        assert!(parse_django_time("soon").is_err());
    }
}
