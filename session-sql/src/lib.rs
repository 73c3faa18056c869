//! # session-sql
//!
//! **Most users add `session-kit` with feature `sqlite`, `postgres` or `mysql`**
//! (`session-kit = { version = "0.1", features = ["postgres"] }`) **and reach this crate as
//! `session_kit::sql`**: [`SqlStore`] is `session_kit::SqlStore`, [`SqlStoreBuilder`]
//! `session_kit::SqlStoreBuilder`, [`TableLayout`] and [`TableName`] `session_kit::TableLayout`
//! and `session_kit::TableName`, and the rest ([`Dialect`], [`InteropStore`], [`sqlx`], ...)
//! `session_kit::sql::X`. This crate's own [`ConfigError`] is `session_kit::sql::ConfigError`
//! (`session_kit::ConfigError` is the [`StoreError::Config`] payload). The examples on these
//! pages use those paths and are compiled against `session-kit`, so they can be pasted into
//! such an application; `session_kit::guide::stores` has more.
//!
//! [`SqlStore`]: the canonical [`SessionStore`] on PostgreSQL, SQLite and MySQL/MariaDB,
//! over [sqlx](https://docs.rs/sqlx). One API for the three databases, chosen by cargo
//! feature: `sqlite` (default), `postgres`, `mysql`.
//!
//! # Quick start
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), session_kit::Error> {
//! use std::sync::Arc;
//! use session_kit::{CookieAction, Session, SessionConfig, SessionStore, SqlStore};
//!
//! // "sqlite://sessions.db" for a file, "postgres://..." or "mysql://..." for a server.
//! let store = SqlStore::connect("sqlite::memory:").await?;
//! store.migrate().await?; // idempotent; safe when several processes start at once
//!
//! let store: Arc<dyn SessionStore> = Arc::new(store);
//! let config = Arc::new(SessionConfig::default());
//! let session = Session::new(store.clone(), config.clone(), None);
//! session.insert("cart", vec!["apple"]).await?;
//! let CookieAction::Set { key, .. } = session.save().await? else { unreachable!() };
//! assert!(store.exists(&key).await?);
//! # Ok(()) }
//! ```
//!
//! Use [`SqlStore::builder`] to choose the table name, timeouts and pool size, or to run
//! on a sqlx pool you already have ([`SqlStoreBuilder::build`]).
//!
//! # The table
//!
//! [`SqlStore::migrate`] creates the native table (default name `sessions`) and its
//! indexes if they do not exist. Concurrent callers are serialised (a PostgreSQL advisory
//! lock, a MySQL `GET_LOCK`, SQLite's `BEGIN IMMEDIATE`), so every process may call it at
//! start-up.
//!
//! | column | PostgreSQL | SQLite | MySQL / MariaDB |
//! | --- | --- | --- | --- |
//! | `session_key` (primary key) | `VARCHAR(64)` | `TEXT` | `VARCHAR(64)` |
//! | `data` | `TEXT` | `TEXT` | `LONGTEXT` |
//! | `expires_at` (indexed on SQLite and MySQL) | `TIMESTAMPTZ` | `INTEGER` (µs since epoch, UTC) | `DATETIME(6)` (UTC) |
//! | `expires_bucket` (PostgreSQL only, indexed) | `BIGINT` (hours since epoch of `expires_at`) | | |
//! | `version` | `BIGINT` | `INTEGER` | `BIGINT` |
//! | `user_id` (indexed) | `TEXT` | `TEXT` | `VARCHAR(255)` |
//! | `created_at` | `TIMESTAMPTZ` | `INTEGER` | `DATETIME(6)` |
//! | `last_active_at` | `TIMESTAMPTZ` | `INTEGER` | `DATETIME(6)` |
//! | `user_agent`, `ip` | `TEXT` | `TEXT` | `TEXT`, `VARCHAR(255)` |
//!
//! Times have microsecond precision everywhere. On MySQL, a `user_id` or `ip` longer than
//! 255 characters, or a user agent over 64 KiB, is refused with [`StoreError::Backend`] rather
//! than truncated. PostgreSQL `TEXT` cannot hold NUL characters (the JSON codec never
//! produces them). The table name is validated as a plain
//! identifier ([`TableName`]), on PostgreSQL optionally schema-qualified (`app.sessions`),
//! and never escaped into SQL; anything else is rejected.
//! The MySQL table is `utf8mb4` with a binary collation.
//!
//! On PostgreSQL the index for the cleanup is on `expires_bucket`, not on `expires_at`:
//! an update that changes an indexed value cannot be HOT (heap-only, no index entry
//! written), and every `update` and `touch` moves the exact expiry, while the hour it falls
//! in changes rarely. With the table's `fillfactor = 70` leaving room in each page, 6,000
//! updates and touches from 4 tasks over 1,000 sessions of 1 KB measured 99.97-100% HOT in
//! `pg_stat_user_tables` (`tests/postgres_hot.rs`; 0% with an index on `expires_at`, 97%
//! at fillfactor 100). On a million rows, 10% expired, the cleanup runs on the bucket
//! index (no sequential scan) and removes the 100,000 in about 2 s. `migrate` brings a table
//! created by an earlier version along: it adds the column (rows already there are in
//! bucket 0, which the cleanup always scans, until their next write), sets the fillfactor,
//! creates the bucket index and drops the `expires_at` index. HOT updates need old row
//! versions to be prunable: a long transaction elsewhere in the cluster holds that back
//! (measured: 41% HOT while a 300,000-row `INSERT` ran).
//!
//! # How each operation runs
//!
//! Every statement is built once, when the store is constructed, and runs as a prepared
//! statement (cached per connection by sqlx), except PostgreSQL's cleanup batch, which is
//! planned for its values on every run: kept prepared, it would get PostgreSQL's generic
//! plan after five runs, a sequential scan of the whole table. Expiry is always judged by the
//! application's clock, passed as a bind parameter, never by the database server's.
//!
//! | operation | statement |
//! | --- | --- |
//! | `create` | PostgreSQL / SQLite: `INSERT .. ON CONFLICT (session_key) DO UPDATE .. WHERE expires_at <= $now`; no row affected means a live row holds the key (`KeyExists`). MySQL: a plain `INSERT`; only on a duplicate key, delete the row if expired and insert again |
//! | `load`, `exists` | one `SELECT .. WHERE session_key = $1 AND expires_at > $now` |
//! | `update` | `UPDATE .. SET version = version + 1 .. WHERE session_key AND version AND expires_at > $now`; only after a miss, one `SELECT` tells `NotFound` from `Conflict` |
//! | `touch` | one `UPDATE .. WHERE expires_at > $now` |
//! | `delete` | PostgreSQL / SQLite: `DELETE .. RETURNING expires_at > $now`; MySQL: delete the live row, and only on a miss an expired leftover |
//! | `delete_at_version` (key rotation) | `DELETE .. WHERE session_key AND version AND expires_at > $now`; only after a miss, one `SELECT` tells `NotFound` from `Conflict` |
//! | `delete_expired` ([`ExpiredCleanup`]) | `DELETE` in batches of [`SqlStoreBuilder::delete_batch_size`] rows until none is left, returning the total; PostgreSQL finds them through the bucket index and skips rows locked by other transactions |
//! | `list_for_user`, `delete_for_user` ([`UserIndex`]) | one statement on the `user_id` index |
//!
//! No operation opens a transaction of its own (SQLite's group commit wraps concurrent
//! writes in one; see below).
//!
//! The DDL of `migrate` is available as text for users' own migration tools
//! ([`SqlStore::schema_sql`], [`TableLayout::schema_sql`], and `.sql` files in the
//! crate's `sql/` directory).
//!
//! # SQLite
//!
//! A SQLite file (`sqlite://path.db`, created if missing) runs in WAL mode with
//! `synchronous = NORMAL` and a busy timeout equal to the acquire timeout. Writes go
//! through one writer connection that the store owns, so concurrent requests never fight
//! over SQLite's write lock (with its busy retries and sleeps), and they are committed in
//! groups: each write queues its statement, and whichever write gets the writer runs every
//! statement queued at that moment in one transaction, so N concurrent writes pay one
//! commit. Each statement keeps its own outcome (`KeyExists`, `NotFound`, `Conflict`, a
//! failure of its own) exactly as if it ran alone; answers are sent after the commit, and
//! a batch that cannot commit is replayed statement by statement. A lone write runs
//! without a transaction. Reads use a separate pool of readers (10 by default), which WAL
//! never blocks. New database files (and their `-wal` and `-shm` files) are created with
//! permissions 0600. The writer does not checkpoint the WAL after its commits:
//! every 1,000 writes a reader runs a passive checkpoint alongside it, so writes rarely
//! wait for the copy and its fsync. Only when the WAL has grown past 16 MiB does the
//! checkpoint take one turn on the writer to finish the copy, so that the WAL restarts
//! instead of growing without bound (its file is truncated to 64 MiB at most then).
//! Several processes may share one file; they coordinate through
//! SQLite's own locking and the busy timeout.
//!
//! `sqlite::memory:` works too: the database lives on a single connection that the store
//! keeps open and uses for reads and writes, so every operation sees the same data (and it
//! is gone when the store is dropped). With a pool of your own
//! ([`SqlStoreBuilder::build`]), reads and writes share it and writes are serialised by
//! the store.
//!
//! # Errors and outages
//!
//! Store operations answer [`StoreError`]. Contract outcomes are
//! [`StoreError::KeyExists`], [`StoreError::NotFound`] and [`StoreError::Conflict`]. A
//! database that cannot be reached (connection refused or lost, pool timeout, server
//! shutting down, SQLite busy past its timeout) gives [`StoreError::Unavailable`]; any
//! other failure gives [`StoreError::Backend`]. Both keep the [`sqlx::Error`] as their
//! source. Configuration mistakes found before anything is sent (an invalid table name, a
//! URL that does not parse, an unknown scheme, a database whose feature is not enabled)
//! give [`StoreError::Config`]; its source is this crate's [`ConfigError`] (or the sqlx
//! parse error), and for a disabled feature
//! [`feature`](session_core::ConfigError::feature) names it.
//!
//! No operation waits unbounded by default:
//!
//! - every operation but `migrate` and `delete_expired` is bounded by the operation
//!   timeout ([`DEFAULT_OPERATION_TIMEOUT`], 5 s; [`SqlStoreBuilder::operation_timeout`]),
//!   for a server that accepts connections but stops answering;
//! - on PostgreSQL and MySQL, a server that is down is noticed by a background probe (a
//!   fresh connection, opened when an operation has waited 100 ms or hit a connection
//!   error, allowed half the operation timeout: 2.5 s by default, so a slow network is
//!   not taken for an outage). While it cannot connect, operations fail at once with
//!   [`StoreError::Unavailable`] instead of each waiting the acquire timeout, and it
//!   retries every 100 ms;
//! - broken connections are dropped by the pool, and connections that sat idle for more
//!   than a second are checked before use (busy ones are not: no extra round trip on the
//!   hot path), so the same store works again as soon as the database is back; no
//!   restart is needed.
//!
//! A statement the server rolls back as a deadlock victim (SQLSTATE 40001: InnoDB error
//! 1213 when a write on an expired row or "log out other devices" crosses the cleanup's
//! batch) changed nothing and runs again, up to 8 times with a pause growing from 0.4 ms;
//! callers see the error only if it keeps losing.

//! # Dialect × layout
//!
//! One [`SqlStore`] serves every table shape ([`TableLayout`]) on every dialect, with the
//! same settings (pool size, acquire and operation timeouts, batch size, the SQLite single
//! writer with group commit, the health probe). Tables shared with Django
//! (`django_session`) and Plain are chosen with [`SqlStoreBuilder::layout`]:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), session_kit::StoreError> {
//! use session_kit::{SqlStore, TableLayout};
//! let store = SqlStore::builder().layout(TableLayout::Django).connect("sqlite::memory:").await?;
//! store.migrate().await?; // Django's own DDL; skip it when Django's migrations made the table
//! # Ok(()) }
//! ```
//!
//! Those tables have no version, user or device columns, so `update` and
//! `delete_at_version` are a fingerprint compare-and-swap in a short row-locking
//! transaction rather than one statement, and there is no [`UserIndex`].
//! [`InteropStore`] is the earlier name of such a store and stays as a thin wrapper.
//!
//! Inside, the native layout's statements live in each dialect module (`postgres`,
//! `sqlite`, `mysql`: a `Queries` struct built once, and a `decode`). The interop layouts
//! are written once (module `layout`: one statement text per operation, with `$n`
//! placeholders, and one implementation of each operation) over a private dialect
//! abstraction (module `engine`: how a value binds and a time decodes, placeholders, the
//! transaction), which each dialect implements in a few lines. A new layout of that kind
//! is a `TableLayout` variant and its statement texts.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
compile_error!("session-sql needs at least one of the features `sqlite`, `postgres`, `mysql`");

mod builder;
mod common;
mod engine;
mod error;
mod health;
mod interop;
mod layout;
#[cfg(feature = "mysql")]
mod mysql;
mod native;
mod ops;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod table;

pub use builder::{
    ConfigError, SqlStoreBuilder, DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_DELETE_BATCH_SIZE,
    DEFAULT_OPERATION_TIMEOUT,
};
pub use interop::{InteropLayout, InteropStore};
pub use table::{InvalidTableName, TableLayout, TableName, DEFAULT_TABLE_NAME, MAX_TABLE_NAME_LEN};

/// The sqlx version this crate is built on, for naming pool types.
pub use sqlx;

use session_core::chrono::{DateTime, Utc};
#[cfg(doc)]
use session_core::StoreError;
use session_core::{
    async_trait, Capabilities, ExpiredCleanup, Record, SessionKey, SessionStore, StoreResult,
    UserIndex,
};

/// The database engine a [`SqlStore`] runs on.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_kit::StoreError> {
/// use session_kit::sql::{Dialect, SqlStore};
/// let store = SqlStore::connect("sqlite::memory:").await?;
/// assert_eq!(store.dialect(), Dialect::Sqlite);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
    /// MySQL or MariaDB.
    MySql,
}

mod backend {
    /// The dialect a store runs on, with its pools and prepared statement texts.
    /// (Nominally `pub` in a private module: reachable only inside the crate.)
    // One per store, never moved on a hot path: the size difference does not matter.
    #[allow(clippy::large_enum_variant)]
    pub enum Backend {
        #[cfg(feature = "postgres")]
        Postgres(crate::postgres::PgBackend),
        #[cfg(feature = "sqlite")]
        Sqlite(crate::sqlite::SqliteBackend),
        #[cfg(feature = "mysql")]
        MySql(crate::mysql::MySqlBackend),
    }
}
pub(crate) use backend::Backend;

impl Backend {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => Dialect::Postgres,
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(_) => Dialect::Sqlite,
            #[cfg(feature = "mysql")]
            Backend::MySql(_) => Dialect::MySql,
        }
    }
}

/// Runs `$body` with `$b` bound to the active dialect backend.
macro_rules! dispatch {
    ($self:expr, $b:ident => $body:expr) => {
        match &*$self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres($b) => $body,
            #[cfg(feature = "sqlite")]
            Backend::Sqlite($b) => $body,
            #[cfg(feature = "mysql")]
            Backend::MySql($b) => $body,
        }
    };
}

mod sealed {
    /// Keeps [`SqlPool`](super::SqlPool) implementable only here.
    pub trait Sealed {
        fn into_backend(self) -> super::Backend;
    }
}

/// A sqlx pool a [`SqlStore`] can run on: `sqlx::PgPool` (feature `postgres`),
/// `sqlx::SqlitePool` (feature `sqlite`), `sqlx::MySqlPool` (feature `mysql`).
/// Pass one to [`SqlStore::from_pool`] or [`SqlStoreBuilder::build`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use session_kit::sql::{sqlx::SqlitePool, SqlStore};
/// let pool = SqlitePool::connect("sqlite::memory:").await?;
/// let store = SqlStore::from_pool(pool);
/// # let _ = store;
/// # Ok(()) }
/// ```
pub trait SqlPool: sealed::Sealed {}

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
impl SqlPool for sqlx::PgPool {}
#[cfg(feature = "postgres")]
impl sealed::Sealed for sqlx::PgPool {
    fn into_backend(self) -> Backend {
        Backend::Postgres(postgres::PgBackend::new(self))
    }
}

#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
impl SqlPool for sqlx::SqlitePool {}
#[cfg(feature = "sqlite")]
impl sealed::Sealed for sqlx::SqlitePool {
    fn into_backend(self) -> Backend {
        // A caller's pool serves reads and writes; writes pass a one-permit gate.
        Backend::Sqlite(sqlite::SqliteBackend::from_pool(self))
    }
}

#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
impl SqlPool for sqlx::MySqlPool {}
#[cfg(feature = "mysql")]
impl sealed::Sealed for sqlx::MySqlPool {
    fn into_backend(self) -> Backend {
        Backend::MySql(mysql::MySqlBackend::new(self))
    }
}

/// One statement per line group, each ending with `;`.
pub(crate) fn join_statements(statements: impl IntoIterator<Item = String>) -> String {
    let mut out = String::new();
    for statement in statements {
        out.push_str(statement.trim_end());
        out.push_str(";\n");
    }
    out
}

/// A dialect whose cargo feature this build lacks.
#[allow(dead_code)]
pub(crate) fn dialect_disabled(dialect: Dialect) -> session_core::StoreError {
    let (scheme, feature) = match dialect {
        Dialect::Postgres => ("postgres://", "postgres"),
        Dialect::Sqlite => ("sqlite:", "sqlite"),
        Dialect::MySql => ("mysql://", "mysql"),
    };
    builder::feature_disabled(scheme, feature)
}

/// A [`SessionStore`] on a SQL database (PostgreSQL, SQLite, MySQL/MariaDB).
///
/// Cheap operations, one prepared statement each on the happy path; see the
/// [crate documentation](crate) for the table, the statements, SQLite's writer
/// connection and error handling.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_kit::StoreError> {
/// use session_kit::chrono::{Duration, Utc};
/// use session_kit::{Record, SessionKey, SessionStore, SqlStore, StoreError, UserIndex};
///
/// let store = SqlStore::connect("sqlite::memory:").await?;
/// store.migrate().await?;
///
/// let record = Record::new(SessionKey::generate(), "j1:{}".into(), Utc::now() + Duration::hours(1))
///     .with_user(Some("alice"));
/// store.create(&record).await?;
/// assert!(matches!(store.create(&record).await, Err(StoreError::KeyExists)));
///
/// let loaded = store.load(&record.key).await?.expect("live");
/// assert_eq!(store.update(&loaded).await?, 2);
/// assert!(matches!(store.update(&loaded).await, Err(StoreError::Conflict)));
/// assert_eq!(store.list_for_user("alice").await?.len(), 1);
///
/// // Compare-and-delete (key rotation): only at the current version.
/// assert!(matches!(store.delete_at_version(&record.key, 1).await, Err(StoreError::Conflict)));
/// store.delete_at_version(&record.key, 2).await?;
/// assert!(matches!(store.delete_at_version(&record.key, 2).await, Err(StoreError::NotFound)));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqlStore {
    backend: std::sync::Arc<Backend>,
    table: TableName,
    layout: TableLayout,
    guard: std::sync::Arc<health::Guard>,
    /// The layout's statements on this dialect.
    statements: std::sync::Arc<Statements>,
    delete_batch_size: u32,
}

/// A layout's statement set.
#[derive(Debug)]
enum Statements {
    Native(native::Statements),
    Interop(layout::Statements),
}

impl Statements {
    fn new(dialect: Dialect, table: &table::Table, batch: u32) -> Self {
        match table.layout {
            TableLayout::Native => {
                Statements::Native(native::Statements::new(dialect, table, batch))
            }
            layout => {
                Statements::Interop(layout::Statements::new(dialect, layout, &table.name, batch))
            }
        }
    }

    /// The statements every layout shares.
    fn common(&self) -> &ops::Common {
        match self {
            Statements::Native(s) => &s.common,
            Statements::Interop(s) => &s.common,
        }
    }

    fn migrate(&self) -> &[sqlx::SqlStr] {
        match self {
            Statements::Native(s) => &s.migrate,
            Statements::Interop(s) => &s.migrate,
        }
    }
}

/// Runs one operation under the store's bounds: `$native` on the native layout, `$interop`
/// on the others, with `$s` the layout's statements and `$b` the dialect backend.
macro_rules! op {
    ($self:ident, $name:literal, $b:ident, $s:ident => $native:expr, $interop:expr) => {
        $self
            .guard
            .run(
                $name,
                true,
                error::retry_deadlock_victims($name, || async {
                    match &*$self.statements {
                        Statements::Native($s) => dispatch!($self, $b => $native),
                        Statements::Interop($s) => dispatch!($self, $b => $interop),
                    }
                }),
            )
            .await
    };
}

/// Runs one operation every layout shares under the store's bounds, with `$c` the shared
/// statements and `$b` the dialect backend.
macro_rules! common_op {
    ($self:ident, $name:literal, $b:ident, $c:ident => $body:expr) => {
        $self
            .guard
            .run(
                $name,
                true,
                error::retry_deadlock_victims($name, || async {
                    let $c = $self.statements.common();
                    dispatch!($self, $b => $body)
                }),
            )
            .await
    };
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("dialect", &self.dialect())
            .field("table", &self.table)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// A builder for a store with a custom table, timeouts or pool size.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::StoreError> {
    /// let store = session_kit::SqlStore::builder().table("s").connect("sqlite::memory:").await?;
    /// assert_eq!(store.table().as_str(), "s");
    /// # Ok(()) }
    /// ```
    pub fn builder() -> SqlStoreBuilder {
        SqlStoreBuilder::new()
    }

    /// Connects with the defaults (table `sessions`); see [`SqlStoreBuilder::connect`]
    /// for the URL forms.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the database cannot be reached in time;
    /// [`StoreError::Config`] for a bad URL (see [`SqlStoreBuilder::connect`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::StoreError> {
    /// let store = session_kit::SqlStore::connect("sqlite::memory:").await?;
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> StoreResult<Self> {
        SqlStoreBuilder::new().connect(url).await
    }

    /// A store on an existing sqlx pool with the default table `sessions`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use session_kit::sql::{sqlx::SqlitePool, SqlStore};
    /// let store = SqlStore::from_pool(SqlitePool::connect("sqlite::memory:").await?);
    /// assert_eq!(store.table().as_str(), "sessions");
    /// # Ok(()) }
    /// ```
    pub fn from_pool(pool: impl SqlPool) -> Self {
        Self::from_pool_with_layout(pool, TableLayout::Native)
    }

    /// [`from_pool`](Self::from_pool) with `layout` on its default table.
    pub(crate) fn from_pool_with_layout(pool: impl SqlPool, layout: TableLayout) -> Self {
        let table = table::Table {
            name: TableName::new(layout.default_table()).unwrap_or_default(),
            layout,
        };
        Self::from_backend(
            pool.into_backend(),
            table,
            Some(DEFAULT_OPERATION_TIMEOUT),
            DEFAULT_DELETE_BATCH_SIZE,
        )
    }

    pub(crate) fn from_backend(
        backend: Backend,
        table: table::Table,
        operation_timeout: Option<std::time::Duration>,
        delete_batch_size: u32,
    ) -> Self {
        let probe = match &backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres(b) => Some(health::probe_for(b.pool())),
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(_) => None,
            #[cfg(feature = "mysql")]
            Backend::MySql(b) => Some(health::probe_for(b.pool())),
        };
        let statements = Statements::new(backend.dialect(), &table, delete_batch_size);
        Self {
            backend: std::sync::Arc::new(backend),
            table: table.name,
            layout: table.layout,
            guard: std::sync::Arc::new(health::Guard::new(operation_timeout, probe)),
            statements: std::sync::Arc::new(statements),
            delete_batch_size,
        }
    }

    /// The same store (sharing its connections) on another table of the same interop
    /// layout.
    pub(crate) fn with_interop_table(mut self, table: TableName) -> Self {
        if self.layout != TableLayout::Native {
            let table = table::Table {
                name: table,
                layout: self.layout,
            };
            self.statements = std::sync::Arc::new(Statements::new(
                self.dialect(),
                &table,
                self.delete_batch_size,
            ));
            self.table = table.name;
        }
        self
    }

    /// `Unsupported` on a layout without a `user_id` column.
    fn user_statements(&self, operation: &'static str) -> StoreResult<&native::Statements> {
        match &*self.statements {
            Statements::Native(s) => Ok(s),
            Statements::Interop(_) => Err(session_core::StoreError::Unsupported { operation }),
        }
    }

    /// Creates the table and its indexes if they do not exist. Idempotent, and safe when
    /// several processes (or tasks) call it at once: they are serialised by a database
    /// lock.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] or [`StoreError::Backend`] from the database (for
    /// example when the user may not create tables).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::StoreError> {
    /// let store = session_kit::SqlStore::connect("sqlite::memory:").await?;
    /// store.migrate().await?;
    /// store.migrate().await?; // nothing to do the second time
    /// # Ok(()) }
    /// ```
    pub async fn migrate(&self) -> StoreResult<()> {
        self.guard
            .run("migrate", false, async {
                let statements = self.statements.migrate();
                dispatch!(self, b => b.migrate_with(statements, &self.table).await)
            })
            .await?;
        tracing::info!(table = %self.table, dialect = ?self.dialect(), "session table ready");
        Ok(())
    }

    /// The DDL [`migrate`](Self::migrate) runs for the native layout on `dialect` with
    /// the table `table`, as text, for teams that manage their schema with their own
    /// migration tool. Statements end with `;` and are idempotent (`IF NOT EXISTS`). The
    /// crate's `sql/` directory holds the same text for the default table `sessions`
    /// (kept in sync by a test). With sqlx-cli:
    ///
    /// ```text
    /// sqlx migrate add create_sessions        # creates migrations/<version>_create_sessions.sql
    /// cp session-sql/sql/postgres/native.sql migrations/<version>_create_sessions.sql
    /// sqlx migrate run                        # then build the store without calling migrate()
    /// ```
    ///
    /// (or write the output of this function into the migration file, for another table
    /// name).
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] when the dialect's cargo feature is not enabled.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::sql::{Dialect, SqlStore, TableName};
    /// let ddl = SqlStore::schema_sql(Dialect::Sqlite, &TableName::new("sessions")?)?;
    /// assert!(ddl.starts_with("CREATE TABLE IF NOT EXISTS \"sessions\""));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn schema_sql(dialect: Dialect, table: &TableName) -> StoreResult<String> {
        TableLayout::Native.schema_sql(dialect, table)
    }

    /// The table this store works on.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::StoreError> {
    /// let store = session_kit::SqlStore::connect("sqlite::memory:").await?;
    /// assert_eq!(store.table().as_str(), session_kit::sql::DEFAULT_TABLE_NAME);
    /// # Ok(()) }
    /// ```
    pub fn table(&self) -> &TableName {
        &self.table
    }

    /// The table layout this store uses.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::StoreError> {
    /// let store = session_kit::SqlStore::connect("sqlite::memory:").await?;
    /// assert_eq!(store.layout(), session_kit::TableLayout::Native);
    /// # Ok(()) }
    /// ```
    pub fn layout(&self) -> TableLayout {
        self.layout
    }

    /// The database engine.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::StoreError> {
    /// let store = session_kit::SqlStore::connect("sqlite::memory:").await?;
    /// assert_eq!(store.dialect(), session_kit::sql::Dialect::Sqlite);
    /// # Ok(()) }
    /// ```
    pub fn dialect(&self) -> Dialect {
        self.backend.dialect()
    }

    /// Closes the store's connection pools, waiting for checked-out connections to come
    /// back. Later operations fail with [`StoreError::Unavailable`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::StoreError> {
    /// use session_kit::{SessionKey, SessionStore};
    /// let store = session_kit::SqlStore::connect("sqlite::memory:").await?;
    /// store.close().await;
    /// assert!(store.exists(&SessionKey::generate()).await.unwrap_err().is_unavailable());
    /// # Ok(()) }
    /// ```
    pub async fn close(&self) {
        match &*self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres(b) => b.pool().close().await,
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(b) => b.close().await,
            #[cfg(feature = "mysql")]
            Backend::MySql(b) => b.pool().close().await,
        }
    }
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn create(&self, record: &Record) -> StoreResult<()> {
        op!(self, "create", b, s => native::create(b, s, record).await,
            layout::create(b, s, record).await)
    }

    async fn load(&self, key: &SessionKey) -> StoreResult<Option<Record>> {
        op!(self, "load", b, s => native::load(b, s, key).await, layout::load(b, s, key).await)
    }

    async fn update(&self, record: &Record) -> StoreResult<u64> {
        op!(self, "update", b, s => native::update(b, s, record).await,
            layout::update(b, s, record).await)
    }

    async fn touch(&self, key: &SessionKey, expires_at: DateTime<Utc>) -> StoreResult<bool> {
        common_op!(self, "touch", b, c => ops::touch(b, c, key, expires_at).await)
    }

    async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        common_op!(self, "delete", b, c => ops::delete(b, c, key).await)
    }

    async fn delete_at_version(&self, key: &SessionKey, version: u64) -> StoreResult<()> {
        op!(self, "delete_at_version", b, s => native::delete_at_version(b, s, key, version).await,
            layout::delete_at_version(b, s, key, version).await)
    }

    async fn exists(&self, key: &SessionKey) -> StoreResult<bool> {
        common_op!(self, "exists", b, c => ops::exists(b, c, key).await)
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        if self.layout.has_user_index() {
            Some(self)
        } else {
            None
        }
    }

    fn expired_cleanup(&self) -> Option<&dyn ExpiredCleanup> {
        Some(self)
    }

    fn capabilities(&self) -> Capabilities {
        self.layout.capabilities()
    }

    fn backend_name(&self) -> &'static str {
        match self.dialect() {
            Dialect::Postgres => "postgres",
            Dialect::Sqlite => "sqlite",
            Dialect::MySql => "mysql",
        }
    }
}

/// The user index: one statement on the `user_id` column per call (run again if the server
/// rolls it back as a deadlock victim).
#[async_trait]
impl UserIndex for SqlStore {
    async fn list_for_user(&self, user_id: &str) -> StoreResult<Vec<Record>> {
        let s = self.user_statements("list_for_user")?;
        self.guard
            .run(
                "list_for_user",
                true,
                error::retry_deadlock_victims("list_for_user", || async {
                    dispatch!(self, b => native::list_for_user(b, s, user_id).await)
                }),
            )
            .await
    }

    async fn delete_for_user(
        &self,
        user_id: &str,
        except: Option<&SessionKey>,
    ) -> StoreResult<u64> {
        let s = self.user_statements("delete_for_user")?;
        self.guard
            .run(
                "delete_for_user",
                true,
                // On MySQL it locks rows through the user index, the cleanup through the
                // expiry index: either can be the deadlock victim (a 10-minute MariaDB soak
                // answered one "log out other devices" 500 before this retry).
                error::retry_deadlock_victims("delete_for_user", || async {
                    dispatch!(self, b => native::delete_for_user(b, s, user_id, except).await)
                }),
            )
            .await
    }
}

/// Removes expired rows in batches. Not bounded by the operation timeout: a large
/// backlog may legitimately take long.
#[async_trait]
impl ExpiredCleanup for SqlStore {
    async fn delete_expired(&self) -> StoreResult<u64> {
        let removed = self
            .guard
            .run("delete_expired", false, async {
                let c = self.statements.common();
                dispatch!(self, b => ops::delete_expired(b, c).await)
            })
            .await?;
        if removed > 0 {
            tracing::info!(table = %self.table, removed, "deleted expired sessions");
        }
        Ok(removed)
    }
}

impl TableLayout {
    /// The DDL [`SqlStore::migrate`] runs for this layout on `dialect` with the table
    /// `table`, as text, for teams that manage their schema with their own migration tool
    /// (for the interop layouts: the Python framework's own DDL). Statements end with `;`
    /// and are idempotent (`IF NOT EXISTS`). The crate's `sql/` directory holds the same
    /// text for the default tables (kept in sync by a test).
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] when the dialect's cargo feature is not enabled.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::sql::{Dialect, TableLayout, TableName};
    /// let table = TableName::new("django_session")?;
    /// let ddl = TableLayout::Django.schema_sql(Dialect::Sqlite, &table)?;
    /// assert!(ddl.starts_with("CREATE TABLE IF NOT EXISTS \"django_session\""));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn schema_sql(self, dialect: Dialect, table: &TableName) -> StoreResult<String> {
        let enabled = match dialect {
            Dialect::Sqlite => cfg!(feature = "sqlite"),
            Dialect::Postgres => cfg!(feature = "postgres"),
            Dialect::MySql => cfg!(feature = "mysql"),
        };
        if !enabled {
            return Err(dialect_disabled(dialect));
        }
        let table = table::Table {
            name: table.clone(),
            layout: self,
        };
        let statements = Statements::new(dialect, &table, 1);
        Ok(join_statements(
            statements.migrate().iter().map(|s| s.as_str().to_owned()),
        ))
    }
}
