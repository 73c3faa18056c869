//! SQLite: what the dialect contributes to [`crate::engine`] (how values bind and times
//! decode; the native layout stores times as `INTEGER` microseconds since the Unix epoch,
//! the interop layouts as Django's text), and where statements run.
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
use session_core::StoreResult;
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

use crate::engine::{decode as decode_out, run_on, Arg, Clock, Out, Want};
use crate::error::{column, corrupt, map_err};

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
}

fn from_micros(v: i64, what: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| corrupt(format!("{what} out of range: {v}")))
}

impl SqliteBackend {
    /// A file database: the store's own writer connection (opened now; it creates the
    /// file and switches it to WAL) plus a reader pool. The writer leaves checkpoints
    /// to the readers.
    pub(crate) async fn open_file(
        writer_options: SqliteConnectOptions,
        read: SqlitePool,
        timeout: Duration,
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
        ))
    }

    /// An in-memory database: one connection for everything, kept for the store's life.
    pub(crate) async fn open_memory(
        options: SqliteConnectOptions,
        timeout: Duration,
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
        ))
    }

    /// A caller's pool for reads and writes; writes pass a one-permit gate.
    pub(crate) fn from_pool(pool: SqlitePool) -> Self {
        Self::with(
            Writer::Pool {
                pool: pool.clone(),
                gate: Semaphore::new(1),
            },
            Reader::Pool(pool),
            false,
        )
    }

    fn with(writer: Writer, reader: Reader, checkpoints: bool) -> Self {
        Self {
            writer,
            reader,
            writes: checkpoints.then(|| AtomicU32::new(0)),
            checkpointing: Arc::new(AtomicBool::new(false)),
            closed: AtomicBool::new(false),
            queue: group::Queue::default(),
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

/// Opens a connection, bounded by `timeout`. Opening a file that another connection is
/// creating or switching to WAL at the same moment can answer "database is locked" without
/// waiting on the busy timeout (the journal-mode switch does not call the busy handler), so
/// a busy or locked answer is retried until `timeout` has passed.
async fn connect(
    options: &SqliteConnectOptions,
    timeout: Duration,
) -> StoreResult<SqliteConnection> {
    let attempts = async {
        let mut pause = Duration::from_millis(2);
        loop {
            match options.connect().await {
                Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("5" | "6")) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    };
    match tokio::time::timeout(timeout, attempts).await {
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

/// Binds a layout's value: times as integer microseconds (native layout) or as Django's
/// text (interop layouts).
fn bind(query: group::Statement, arg: Arg, clock: Clock) -> group::Statement {
    match (arg, clock) {
        (Arg::Text(s), _) => query.bind(s),
        (Arg::OptText(s), _) => query.bind(s),
        (Arg::Time(t), Clock::Native) => query.bind(t.timestamp_micros()),
        (Arg::Time(t), Clock::Interop) => query.bind(django_time(t)),
        (Arg::OptTime(t), Clock::Native) => query.bind(t.map(|t| t.timestamp_micros())),
        (Arg::OptTime(t), Clock::Interop) => query.bind(t.map(django_time)),
        (Arg::Int(n), _) => query.bind(n),
    }
}

fn time(
    row: &SqliteRow,
    index: usize,
    name: &str,
    clock: Clock,
) -> StoreResult<Option<DateTime<Utc>>> {
    match clock {
        Clock::Native => column::<_, Option<i64>>(row, index, name)?
            .map(|v| from_micros(v, name))
            .transpose(),
        Clock::Interop => column::<_, Option<String>>(row, index, name)?
            .map(|s| parse_django_time(&s))
            .transpose(),
    }
}

/// Every layout on SQLite: reads on the readers, writes through the group-commit queue of
/// the single writer, compare-and-swap transactions on the writer itself.
impl crate::engine::Engine for SqliteBackend {
    type Tx<'a> = SqliteTx<'a>;

    async fn read(
        &self,
        stmt: &crate::engine::Stmt,
        args: Vec<Arg>,
        want: Want,
    ) -> StoreResult<Out> {
        let mut conn = self.read_conn().await?;
        let result = run_on!(conn.get()?, stmt, args, want, bind);
        decode_out(conn.check(result)?, want, stmt.clock, time)
    }

    async fn write(
        &self,
        stmt: &crate::engine::Stmt,
        args: Vec<Arg>,
        want: Want,
    ) -> StoreResult<Out> {
        let stmt = stmt.clone();
        // Built again if the batch has to be replayed one statement at a time.
        let build: group::Build = Box::new(move || {
            let query = sqlx::query(stmt.sql.clone()).persistent(stmt.persistent);
            stmt.bind_all(query, args.clone(), bind)
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
        let result = run_on!(self.conn.get()?, stmt, args, want, bind);
        decode_out(self.conn.check(result)?, want, stmt.clock, time)
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
