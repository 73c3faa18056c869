//! [`SqlStoreBuilder`]: table, layout, timeouts, pool size; connect by URL or wrap a pool.

use std::time::Duration;

use session_core::{StoreError, StoreResult};

use crate::table::{Table, TableLayout, TableName};
use crate::{Backend, SqlStore};

/// The default bound on acquiring a connection (which includes connecting): 5 seconds.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The default bound on each store operation (see
/// [`SqlStoreBuilder::operation_timeout`]): 5 seconds, the same as the acquire timeout, so
/// a database that accepts connections but stops answering costs a request at most that
/// long. Turn it off with [`SqlStoreBuilder::no_operation_timeout`].
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// The default number of rows [`delete_expired`](session_core::ExpiredCleanup::delete_expired)
/// removes per statement.
pub const DEFAULT_DELETE_BATCH_SIZE: u32 = 5_000;

/// Configures and builds a [`SqlStore`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_kit::StoreError> {
/// use std::time::Duration;
/// use session_kit::SqlStore;
///
/// let store = SqlStore::builder()
///     .table("app_sessions")
///     .acquire_timeout(Duration::from_secs(2))
///     .delete_batch_size(1_000)
///     .connect("sqlite::memory:")
///     .await?;
/// store.migrate().await?;
/// assert_eq!(store.table().as_str(), "app_sessions");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct SqlStoreBuilder {
    table: Option<String>,
    layout: TableLayout,
    acquire_timeout: Duration,
    max_connections: Option<u32>,
    delete_batch_size: u32,
    operation_timeout: Option<Duration>,
}

impl Default for SqlStoreBuilder {
    fn default() -> Self {
        Self {
            table: None,
            layout: TableLayout::Native,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            max_connections: None,
            delete_batch_size: DEFAULT_DELETE_BATCH_SIZE,
            operation_timeout: Some(DEFAULT_OPERATION_TIMEOUT),
        }
    }
}

/// A configuration problem found while building a store, before anything is sent to a
/// database. Stores report it as [`StoreError::Config`]; this detailed error is the
/// source of the [`session_core::ConfigError`] inside (downcast it to inspect it).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use session_kit::StoreError;
/// use session_kit::sql::{ConfigError, SqlStore};
///
/// let err = SqlStore::builder().table("x; DROP TABLE y").connect("sqlite::memory:").await.unwrap_err();
/// let StoreError::Config(config) = &err else { panic!("expected a configuration error: {err:?}") };
/// let source = std::error::Error::source(config).unwrap();
/// assert!(matches!(source.downcast_ref::<ConfigError>(), Some(ConfigError::TableName(_))));
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configured table name is not a plain identifier.
    #[error("invalid session table name: {0}")]
    TableName(#[from] crate::InvalidTableName),
    /// The URL's scheme names no database this build supports.
    #[error("unsupported database URL scheme {scheme:?} (expected postgres://, postgresql://, sqlite:, mysql:// or mariadb://)")]
    UnsupportedScheme {
        /// The scheme found (the text before the first ':').
        scheme: String,
    },
}

/// Reports a configuration mistake as [`StoreError::Config`], keeping the detailed
/// [`ConfigError`] as its source.
pub(crate) fn config(err: ConfigError) -> StoreError {
    StoreError::Config(session_core::ConfigError::invalid_with_source(
        "session-sql configuration",
        err,
    ))
}

/// A URL that does not parse as the database's connection options.
pub(crate) fn bad_url(err: sqlx::Error) -> StoreError {
    StoreError::Config(session_core::ConfigError::invalid_with_source(
        "database URL",
        err,
    ))
}

/// Refuses a schema-qualified table name outside PostgreSQL.
fn check_qualified(table: &Table, postgres: bool) -> StoreResult<()> {
    if table.name.schema().is_some() && !postgres {
        return Err(config(ConfigError::TableName(
            crate::InvalidTableName::Qualified,
        )));
    }
    Ok(())
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Postgres,
    Sqlite,
    MySql,
}

pub(crate) fn scheme_of(url: &str) -> Result<Scheme, ConfigError> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => Ok(Scheme::Postgres),
        "sqlite" => Ok(Scheme::Sqlite),
        "mysql" | "mariadb" => Ok(Scheme::MySql),
        _ => Err(ConfigError::UnsupportedScheme {
            scheme: scheme.chars().take(32).collect(),
        }),
    }
}

impl SqlStoreBuilder {
    /// A builder with the defaults: table `sessions`, [`TableLayout::Native`], a 5 s
    /// acquire timeout, batches of 5,000 rows in `delete_expired`.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = session_kit::SqlStoreBuilder::new();
    /// # let _ = builder;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The table to use. Validated when the store is built: it must be a plain identifier
    /// (see [`TableName`]), otherwise building fails with [`StoreError::Config`] (source:
    /// [`ConfigError::TableName`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = session_kit::SqlStore::builder().table("web_sessions");
    /// # let _ = builder;
    /// ```
    pub fn table(mut self, name: impl Into<String>) -> Self {
        self.table = Some(name.into());
        self
    }

    /// The table layout (see [`TableLayout`]): the native table, or a table shared with
    /// Django or Plain. Unless [`table`](Self::table) is set, the table is the layout's
    /// [`default_table`](TableLayout::default_table). Every other setting applies to every
    /// layout.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::{SqlStore, TableLayout};
    /// let builder = SqlStore::builder().layout(TableLayout::Native);
    /// # let _ = builder;
    /// ```
    pub fn layout(mut self, layout: TableLayout) -> Self {
        self.layout = layout;
        self
    }

    /// How long an operation may wait for a connection, including opening one (and, on
    /// SQLite, for a lock held by another process: the busy timeout). When the database
    /// is down, operations fail with [`StoreError::Unavailable`] within about this time
    /// at worst; on PostgreSQL and MySQL a server found down by the background probe
    /// (see [`operation_timeout`](Self::operation_timeout)) fails them much sooner.
    /// Applies to pools this builder creates; a pool passed to [`build`](Self::build)
    /// keeps its own settings.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = session_kit::SqlStore::builder().acquire_timeout(Duration::from_secs(1));
    /// # let _ = builder;
    /// ```
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The maximum number of connections of a pool this builder creates (at least 1).
    /// Default 10. For a SQLite file this is the number of reader connections; writes
    /// always use one dedicated connection.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = session_kit::SqlStore::builder().max_connections(20);
    /// # let _ = builder;
    /// ```
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = Some(max.max(1));
        self
    }

    /// How many expired rows one `DELETE` statement of
    /// [`delete_expired`](session_core::ExpiredCleanup::delete_expired) removes (at least
    /// 1). Small batches keep each statement's locks short; the call loops until no
    /// expired row is left and returns the total.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = session_kit::SqlStore::builder().delete_batch_size(10_000);
    /// # let _ = builder;
    /// ```
    pub fn delete_batch_size(mut self, rows: u32) -> Self {
        self.delete_batch_size = rows.max(1);
        self
    }

    /// An upper bound on each store operation (except `delete_expired` and `migrate`,
    /// which may legitimately run long), for a database that accepts connections but
    /// stops answering (a frozen server, a network partition). An operation past it fails
    /// with [`StoreError::Unavailable`] (source: an [`std::io::Error`] of kind
    /// `TimedOut`). Default [`DEFAULT_OPERATION_TIMEOUT`] (5 s).
    ///
    /// Independently of it, a server that refuses connections or stops answering is
    /// noticed by a background probe (a fresh connection, opened when an operation has
    /// waited 100 ms or failed with a connection error, allowed half this timeout and at
    /// least 1 s: a connect slower than that counts as no answer); while the
    /// probe cannot connect, operations fail at once with [`StoreError::Unavailable`]
    /// instead of waiting for the acquire timeout, and the probe retries every 100 ms, so
    /// the store works again within about 100 ms of the server coming back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = session_kit::SqlStore::builder().operation_timeout(Duration::from_secs(3));
    /// # let _ = builder;
    /// ```
    pub fn operation_timeout(mut self, limit: Duration) -> Self {
        self.operation_timeout = Some(limit);
        self
    }

    /// Lets operations wait as long as the database takes (no operation timeout; the
    /// acquire timeout and the "server down" probe still apply). Only for callers that
    /// bound the whole request themselves.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = session_kit::SqlStore::builder().no_operation_timeout();
    /// # let _ = builder;
    /// ```
    pub fn no_operation_timeout(mut self) -> Self {
        self.operation_timeout = None;
        self
    }

    fn resolved_table(&self) -> StoreResult<Table> {
        let name = self
            .table
            .clone()
            .unwrap_or_else(|| self.layout.default_table().to_owned());
        let name = TableName::new(name).map_err(|e| config(e.into()))?;
        Ok(Table {
            name,
            layout: self.layout,
        })
    }

    /// Wraps an existing sqlx pool (`sqlx::PgPool`, `sqlx::SqlitePool` or
    /// `sqlx::MySqlPool`). The pool's own size and timeouts apply. On SQLite, writes
    /// through a shared pool are serialised inside the store so they never contend for
    /// the database's write lock.
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] (with a [`ConfigError`] source) when the table name is invalid.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use session_kit::sql::{sqlx, SqlStore};
    ///
    /// let pool = sqlx::sqlite::SqlitePoolOptions::new()
    ///     .max_connections(1)
    ///     .connect("sqlite::memory:")
    ///     .await?;
    /// let store = SqlStore::builder().table("sessions").build(pool)?;
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub fn build(self, pool: impl crate::SqlPool) -> StoreResult<SqlStore> {
        let table = self.resolved_table()?;
        let backend = pool.into_backend();
        let postgres = matches!(backend.dialect(), crate::Dialect::Postgres);
        check_qualified(&table, postgres)?;
        Ok(SqlStore::from_backend(
            backend,
            table,
            self.operation_timeout,
            self.delete_batch_size,
        ))
    }

    /// Connects to the database a URL names: `postgres://` / `postgresql://`,
    /// `sqlite:` (a file such as `sqlite://sessions.db`, created if missing, or
    /// `sqlite::memory:`), `mysql://` / `mariadb://`.
    ///
    /// SQLite files are created with permissions 0600 (owner only; their `-wal` and
    /// `-shm` files get the same) and opened in WAL mode with `synchronous = NORMAL`, one writer
    /// connection and a pool of readers. An in-memory SQLite database lives on one
    /// connection that the pool never closes, so every operation sees the same data.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the database cannot be reached within the acquire
    /// timeout; [`StoreError::Config`] for a URL that does not parse, an unknown scheme,
    /// an invalid table name (both with a [`ConfigError`] source) or a database whose
    /// feature is not enabled ([`session_core::ConfigError::feature`] names it);
    /// [`StoreError::Backend`] for other failures to open the database (a SQLite file in
    /// a missing directory).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::StoreError> {
    /// let store = session_kit::SqlStore::builder().connect("sqlite::memory:").await?;
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(self, url: &str) -> StoreResult<SqlStore> {
        let table = self.resolved_table()?;
        let scheme = scheme_of(url).map_err(config)?;
        check_qualified(&table, scheme == Scheme::Postgres)?;
        let backend = match scheme {
            Scheme::Postgres => self.connect_postgres(url).await?,
            Scheme::Sqlite => self.connect_sqlite(url).await?,
            Scheme::MySql => self.connect_mysql(url).await?,
        };
        Ok(SqlStore::from_backend(
            backend,
            table,
            self.operation_timeout,
            self.delete_batch_size,
        ))
    }

    #[cfg(feature = "postgres")]
    async fn connect_postgres(&self, url: &str) -> StoreResult<Backend> {
        use sqlx::postgres::PgConnectOptions;
        let options: PgConnectOptions = url.parse().map_err(bad_url)?;
        let pool = crate::common::server_pool_options::<sqlx::Postgres>(
            self.max_connections.unwrap_or(10),
            self.acquire_timeout,
        )
        .connect_with(options)
        .await
        .map_err(crate::error::map_err)?;
        Ok(Backend::Postgres(crate::postgres::PgBackend::new(pool)))
    }

    #[cfg(not(feature = "postgres"))]
    async fn connect_postgres(&self, _: &str) -> StoreResult<Backend> {
        Err(feature_disabled("postgres://", "postgres"))
    }

    #[cfg(feature = "mysql")]
    async fn connect_mysql(&self, url: &str) -> StoreResult<Backend> {
        use sqlx::mysql::MySqlConnectOptions;
        let options: MySqlConnectOptions = url.parse().map_err(bad_url)?;
        let pool = crate::common::server_pool_options::<sqlx::MySql>(
            self.max_connections.unwrap_or(10),
            self.acquire_timeout,
        )
        .connect_with(options)
        .await
        .map_err(crate::error::map_err)?;
        Ok(Backend::MySql(crate::mysql::MySqlBackend::new(pool)))
    }

    #[cfg(not(feature = "mysql"))]
    async fn connect_mysql(&self, _: &str) -> StoreResult<Backend> {
        Err(feature_disabled("mysql://", "mysql"))
    }

    #[cfg(feature = "sqlite")]
    async fn connect_sqlite(&self, url: &str) -> StoreResult<Backend> {
        use sqlx::sqlite::{
            SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
        };

        let options: SqliteConnectOptions = url.parse().map_err(bad_url)?;
        let options = options
            .busy_timeout(self.acquire_timeout)
            .create_if_missing(true);
        if is_memory_url(url) {
            // An in-memory database dies with its last connection: the store keeps
            // exactly one and runs reads and writes on it.
            let backend =
                crate::sqlite::SqliteBackend::open_memory(options, self.acquire_timeout).await?;
            return Ok(Backend::Sqlite(backend));
        }
        create_private_file(options.get_filename()).map_err(StoreError::backend)?;
        // After the WAL restarts, its file is truncated back to 64 MiB at most.
        let options = options
            .synchronous(SqliteSynchronous::Normal)
            .pragma("journal_size_limit", "67108864");
        // The writer opens (and creates) the file first and switches it to WAL, which is
        // persistent, so readers need not.
        let writer_options = options.clone().journal_mode(SqliteJournalMode::Wal);
        let readers = self.max_connections.unwrap_or(10);
        let read = SqlitePoolOptions::new()
            .max_connections(readers)
            .acquire_timeout(self.acquire_timeout)
            .test_before_acquire(false)
            .connect_lazy_with(options);
        let backend =
            crate::sqlite::SqliteBackend::open_file(writer_options, read, self.acquire_timeout)
                .await?;
        Ok(Backend::Sqlite(backend))
    }

    #[cfg(not(feature = "sqlite"))]
    async fn connect_sqlite(&self, _: &str) -> StoreResult<Backend> {
        Err(feature_disabled("sqlite:", "sqlite"))
    }
}

/// A URL for a database whose feature this build lacks, as
/// [`session_core::ConfigError::feature_disabled`] (whose
/// [`feature`](session_core::ConfigError::feature) names it). Only the scheme is shown: a
/// URL may hold a password.
#[cfg_attr(
    all(feature = "postgres", feature = "sqlite", feature = "mysql"),
    allow(dead_code)
)]
pub(crate) fn feature_disabled(scheme: &str, feature: &'static str) -> StoreError {
    StoreError::Config(session_core::ConfigError::feature_disabled(scheme, feature))
}

/// Creates a missing SQLite database file readable and writable by its owner only (0600
/// on Unix). SQLite gives the `-wal` and `-shm` files it creates the database file's
/// permissions, so session data never lands in a world-readable file. An existing file
/// is left as it is.
#[cfg(feature = "sqlite")]
fn create_private_file(path: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether a SQLite URL names an in-memory database.
#[cfg(feature = "sqlite")]
fn is_memory_url(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert_eq!(scheme_of("postgres://u@h/db").ok(), Some(Scheme::Postgres));
        assert_eq!(
            scheme_of("postgresql://u@h/db").ok(),
            Some(Scheme::Postgres)
        );
        assert_eq!(scheme_of("sqlite::memory:").ok(), Some(Scheme::Sqlite));
        assert_eq!(scheme_of("sqlite://x.db").ok(), Some(Scheme::Sqlite));
        assert_eq!(scheme_of("mariadb://h/db").ok(), Some(Scheme::MySql));
        assert!(matches!(
            scheme_of("redis://h"),
            Err(ConfigError::UnsupportedScheme { scheme }) if scheme == "redis"
        ));
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn memory_urls() {
        assert!(is_memory_url("sqlite::memory:"));
        assert!(is_memory_url("sqlite://file:x?mode=memory&cache=shared"));
        assert!(!is_memory_url("sqlite://sessions.db"));
    }
}
