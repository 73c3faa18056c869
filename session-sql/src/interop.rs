//! [`InteropStore`]: the earlier name of a [`SqlStore`] on a Django or Plain table, kept so
//! existing code keeps working. It is a [`SqlStore`] with an interop [`TableLayout`] and
//! nothing more: the same pools, settings, bounded waits and SQLite writer.

use session_core::chrono::{DateTime, Utc};
use session_core::{
    async_trait, Capabilities, ExpiredCleanup, Record, SessionKey, SessionStore, StoreResult,
    UserIndex,
};

use crate::table::{TableLayout, TableName};
use crate::{Dialect, SqlStore};

/// Which foreign table shape an [`InteropStore`] works on: the interop variants of
/// [`TableLayout`] (`TableLayout::from` converts).
///
/// # Examples
///
/// ```
/// use session_kit::sql::{InteropLayout, TableLayout};
/// assert_eq!(InteropLayout::Django.default_table(), "django_session");
/// assert_eq!(InteropLayout::PlainSigned.expiry_column(), "expires_at");
/// assert_eq!(TableLayout::from(InteropLayout::PlainJson), TableLayout::PlainJson);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InteropLayout {
    /// [`TableLayout::Django`].
    Django,
    /// [`TableLayout::PlainSigned`].
    PlainSigned,
    /// [`TableLayout::PlainJson`].
    PlainJson,
}

impl From<InteropLayout> for TableLayout {
    fn from(layout: InteropLayout) -> Self {
        match layout {
            InteropLayout::Django => TableLayout::Django,
            InteropLayout::PlainSigned => TableLayout::PlainSigned,
            InteropLayout::PlainJson => TableLayout::PlainJson,
        }
    }
}

impl InteropLayout {
    /// The table the Python framework uses by default.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(session_kit::sql::InteropLayout::PlainJson.default_table(), "plainsessions_session");
    /// ```
    pub fn default_table(self) -> &'static str {
        TableLayout::from(self).default_table()
    }

    /// The name of the expiry column.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(session_kit::sql::InteropLayout::Django.expiry_column(), "expire_date");
    /// ```
    pub fn expiry_column(self) -> &'static str {
        TableLayout::from(self).expiry_column()
    }
}

/// A [`SessionStore`] over a session table shared with Django or Plain: a [`SqlStore`]
/// with an interop layout, under its earlier name. New code can write
/// `SqlStore::builder().layout(TableLayout::Django).connect(url)` instead; both are the
/// same store (see [`TableLayout`] for what these layouts keep, and
/// [`into_inner`](Self::into_inner)).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_kit::StoreError> {
/// use session_kit::{Record, SessionKey, SessionStore};
/// use session_kit::sql::{InteropLayout, InteropStore};
///
/// let store = InteropStore::connect("sqlite::memory:", InteropLayout::Django).await?;
/// store.migrate().await?; // only when no Django project manages the table
/// assert!(store.user_index().is_none());
///
/// let key = SessionKey::generate();
/// let expires = session_kit::chrono::Utc::now() + session_kit::chrono::TimeDelta::hours(1);
/// store.create(&Record::new(key.clone(), "e30:1vb66i:sig".into(), expires)).await?;
/// let loaded = store.load(&key).await?.expect("live");
/// assert_eq!(loaded.data, "e30:1vb66i:sig");
///
/// // The version is a fingerprint of the data; rotation deletes at it.
/// store.delete_at_version(&key, loaded.version).await?;
/// assert!(!store.exists(&key).await?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct InteropStore {
    store: SqlStore,
    layout: InteropLayout,
}

impl InteropStore {
    /// Connects by URL to the layout's default table, as
    /// [`SqlStoreBuilder::connect`](crate::SqlStoreBuilder::connect) does (the same URL
    /// forms, pool settings and defaults).
    ///
    /// # Errors
    ///
    /// As [`SqlStoreBuilder::connect`](crate::SqlStoreBuilder::connect).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::StoreError> {
    /// let store = session_kit::sql::InteropStore::connect("sqlite::memory:", session_kit::sql::InteropLayout::PlainSigned).await?;
    /// assert_eq!(store.table().as_str(), "plainsessions_session");
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str, layout: InteropLayout) -> StoreResult<Self> {
        let store = SqlStore::builder()
            .layout(layout.into())
            .connect(url)
            .await?;
        Ok(Self { store, layout })
    }

    /// A store over an existing SQLite pool, on the layout's default table.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = session_kit::sql::sqlx::SqlitePool::connect("sqlite::memory:").await?;
    /// let store = session_kit::sql::InteropStore::sqlite(pool, session_kit::sql::InteropLayout::Django);
    /// # let _ = store;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub fn sqlite(pool: sqlx::SqlitePool, layout: InteropLayout) -> Self {
        Self::on_pool(pool, layout)
    }

    /// A store over an existing PostgreSQL pool, on the layout's default table.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = session_kit::sql::sqlx::PgPool::connect("postgres://localhost/app").await?;
    /// let store = session_kit::sql::InteropStore::postgres(pool, session_kit::sql::InteropLayout::Django);
    /// # let _ = store;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub fn postgres(pool: sqlx::PgPool, layout: InteropLayout) -> Self {
        Self::on_pool(pool, layout)
    }

    /// A store over an existing MySQL / MariaDB pool, on the layout's default table.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = session_kit::sql::sqlx::MySqlPool::connect("mysql://localhost/app").await?;
    /// let store = session_kit::sql::InteropStore::mysql(pool, session_kit::sql::InteropLayout::Django);
    /// # let _ = store;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "mysql")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
    pub fn mysql(pool: sqlx::MySqlPool, layout: InteropLayout) -> Self {
        Self::on_pool(pool, layout)
    }

    #[cfg_attr(
        not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
        allow(dead_code)
    )]
    fn on_pool(pool: impl crate::SqlPool, layout: InteropLayout) -> Self {
        let store = SqlStore::from_pool_with_layout(pool, layout.into());
        Self { store, layout }
    }

    /// Uses another table name (for example a Django project with a custom `db_table`).
    /// The new store shares this one's connections.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use session_kit::sql::{InteropLayout, InteropStore, TableName};
    /// let store = InteropStore::connect("sqlite::memory:", InteropLayout::Django)
    ///     .await?
    ///     .with_table(TableName::new("legacy_sessions")?);
    /// assert_eq!(store.table().as_str(), "legacy_sessions");
    /// # Ok(()) }
    /// ```
    pub fn with_table(self, table: TableName) -> Self {
        Self {
            store: self.store.with_interop_table(table),
            layout: self.layout,
        }
    }

    /// The DDL [`migrate`](Self::migrate) runs, as text: [`TableLayout::schema_sql`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`](session_core::StoreError::Config) when the dialect's cargo
    /// feature is not enabled.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::sql::{Dialect, InteropLayout, InteropStore, TableName};
    /// let table = TableName::new("django_session")?;
    /// let ddl = InteropStore::schema_sql(Dialect::Sqlite, InteropLayout::Django, &table)?;
    /// assert!(ddl.starts_with("CREATE TABLE IF NOT EXISTS"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn schema_sql(
        dialect: Dialect,
        layout: InteropLayout,
        table: &TableName,
    ) -> StoreResult<String> {
        TableLayout::from(layout).schema_sql(dialect, table)
    }

    /// The layout.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::StoreError> {
    /// use session_kit::sql::{InteropLayout, InteropStore};
    /// let store = InteropStore::connect("sqlite::memory:", InteropLayout::Django).await?;
    /// assert_eq!(store.layout(), InteropLayout::Django);
    /// # Ok(()) }
    /// ```
    pub fn layout(&self) -> InteropLayout {
        self.layout
    }

    /// The table.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::StoreError> {
    /// use session_kit::sql::{InteropLayout, InteropStore};
    /// let store = InteropStore::connect("sqlite::memory:", InteropLayout::Django).await?;
    /// assert_eq!(store.table().as_str(), "django_session");
    /// # Ok(()) }
    /// ```
    pub fn table(&self) -> &TableName {
        self.store.table()
    }

    /// Creates the table and its expiry index with the Python framework's own DDL, if they
    /// do not exist ([`SqlStore::migrate`]). When a Django (or Plain) project manages the
    /// table, let its migrations do this instead.
    ///
    /// # Errors
    ///
    /// Database errors.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::StoreError> {
    /// let store = session_kit::sql::InteropStore::connect("sqlite::memory:", session_kit::sql::InteropLayout::Django).await?;
    /// store.migrate().await?;
    /// store.migrate().await?; // idempotent
    /// # Ok(()) }
    /// ```
    pub async fn migrate(&self) -> StoreResult<()> {
        self.store.migrate().await
    }

    /// The [`SqlStore`] this is.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::StoreError> {
    /// use session_kit::sql::{InteropLayout, InteropStore, TableLayout};
    /// let store = InteropStore::connect("sqlite::memory:", InteropLayout::Django).await?;
    /// assert_eq!(store.into_inner().layout(), TableLayout::Django);
    /// # Ok(()) }
    /// ```
    pub fn into_inner(self) -> SqlStore {
        self.store
    }
}

impl From<InteropStore> for SqlStore {
    fn from(store: InteropStore) -> Self {
        store.store
    }
}

#[async_trait]
impl SessionStore for InteropStore {
    async fn create(&self, r: &Record) -> StoreResult<()> {
        self.store.create(r).await
    }

    async fn load(&self, key: &SessionKey) -> StoreResult<Option<Record>> {
        self.store.load(key).await
    }

    async fn update(&self, r: &Record) -> StoreResult<u64> {
        self.store.update(r).await
    }

    async fn touch(&self, key: &SessionKey, expires_at: DateTime<Utc>) -> StoreResult<bool> {
        self.store.touch(key, expires_at).await
    }

    async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        self.store.delete(key).await
    }

    async fn delete_at_version(&self, key: &SessionKey, version: u64) -> StoreResult<()> {
        self.store.delete_at_version(key, version).await
    }

    async fn exists(&self, key: &SessionKey) -> StoreResult<bool> {
        self.store.exists(key).await
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        None
    }

    fn expired_cleanup(&self) -> Option<&dyn ExpiredCleanup> {
        self.store.expired_cleanup()
    }

    fn capabilities(&self) -> Capabilities {
        self.store.capabilities()
    }
}
