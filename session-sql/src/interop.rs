//! [`InteropStore`]: sessions in tables shared with Django and with Plain.
//!
//! Django's `django_session` (`session_key varchar(40)` primary key, `session_data text`,
//! `expire_date`), Plain ≤ 0.22's signed `plainsessions_session` (the same with
//! `expires_at`) and current Plain's `plainsessions_session` (bigint `id`, unique
//! `session_key`, unsigned `jsonb` `session_data`, `created_at`, nullable `expires_at`)
//! have no version, user or device columns. This store therefore:
//!
//! - derives a record's version from its data (a 64-bit fingerprint of `session_data`), and
//!   runs `update` as a compare-and-swap inside a transaction that locks the row
//!   (`SELECT … FOR UPDATE` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite): the write succeeds
//!   only if the row is still live and still holds the data this request loaded, so a
//!   concurrent change (from Rust or from Django) is a [`StoreError::Conflict`] that the
//!   handle resolves by reloading and re-applying, and a row deleted meanwhile (a logout,
//!   Django's `flush`) is [`StoreError::NotFound`], never re-created. This is stronger than Django itself,
//!   whose `save()` overwrites concurrent changes. Writing back identical data is not seen as
//!   a change (harmless: the data is the same). `delete_at_version` (key rotation) is the
//!   same compare on the locked row, then a `DELETE`;
//! - has no user index ([`user_index`](SessionStore::user_index) is `None`, so
//!   `list_for_user` and `delete_for_user` on a `dyn SessionStore` answer
//!   [`StoreError::Unsupported`]) and keeps no device metadata; `created_at` is not stored, so an
//!   absolute timeout cannot be enforced on these tables;
//! - stores the data as the configured codec wrote it: use
//!   `session_signed::SignedCodec` with the Django (or Plain) salt and the Django
//!   `SECRET_KEY`, so both applications read each other's sessions; for current Plain's
//!   JSON column, `session_signed::PlainJsonCodec` (untagged JSON objects).
//!
//! Current Plain saves with an upsert and re-creates a row that a concurrent logout deleted;
//! this store does not (an update of a deleted row is [`StoreError::NotFound`]). A row whose
//! `expires_at` is NULL is never live here, as in Plain, and `delete_expired` leaves it.
//!
//! Expiry columns are written exactly as Django writes them: `timestamp with time zone` on
//! PostgreSQL, `datetime(6)` in UTC on MySQL/MariaDB, and on SQLite the text
//! `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC (Django with `USE_TZ = True`, the default since
//! Django 5.0). All three are tested against the real Django sharing the table.

#[cfg(feature = "sqlite")]
use std::str::FromStr;
use std::time::Duration;

#[cfg(feature = "sqlite")]
use session_core::chrono::NaiveDateTime;
#[cfg(any(feature = "postgres", feature = "mysql"))]
use session_core::chrono::Timelike;
use session_core::chrono::{DateTime, Utc};
use session_core::{
    async_trait, Capabilities, ExpiredCleanup, Record, SessionKey, SessionStore, StoreError,
    StoreResult,
};
use sqlx::SqlStr;

use crate::common::{now, sql};
#[cfg(feature = "sqlite")]
use crate::error::corrupt;
use crate::error::{column, map_err};
use crate::table::TableName;

/// Which foreign table shape an [`InteropStore`] works on.
///
/// # Examples
///
/// ```
/// use session_sql::InteropLayout;
/// assert_eq!(InteropLayout::Django.default_table(), "django_session");
/// assert_eq!(InteropLayout::PlainSigned.expiry_column(), "expires_at");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InteropLayout {
    /// Django's `django_session`: `session_key`, `session_data`, `expire_date`.
    Django,
    /// Plain ≤ 0.22's `plainsessions_session`: `session_key`, `session_data`, `expires_at`
    /// (signed data, salt `plain.sessions.SessionStore`).
    PlainSigned,
    /// Current Plain's (≥ 0.23) `plainsessions_session`: `id`, unique `session_key`,
    /// unsigned JSON `session_data` (`jsonb` on PostgreSQL, JSON text on SQLite),
    /// `created_at`, nullable `expires_at`. Use an untagged JSON codec
    /// (`session_signed::PlainJsonCodec`). `created_at` is stored, so an absolute timeout
    /// works on this layout.
    PlainJson,
}

impl InteropLayout {
    /// The table the Python framework uses by default.
    pub fn default_table(self) -> &'static str {
        match self {
            Self::Django => "django_session",
            Self::PlainSigned | Self::PlainJson => "plainsessions_session",
        }
    }

    /// The name of the expiry column.
    pub fn expiry_column(self) -> &'static str {
        match self {
            Self::Django => "expire_date",
            Self::PlainSigned | Self::PlainJson => "expires_at",
        }
    }

    /// The name of the expiry index the Python framework's migration creates.
    fn index_name(self, table: &TableName) -> String {
        match (self, table.as_str()) {
            (Self::Django, "django_session") => "django_session_expire_date_a5c62663".to_owned(),
            (Self::PlainJson, "plainsessions_session") => {
                "plainsessions_session_expires_at_idx".to_owned()
            }
            _ => format!("{}_{}_idx", table.as_str(), self.expiry_column()),
        }
    }
}

/// The 64-bit FNV-1a fingerprint of the stored data: the version of a row in a table that
/// has no version column.
fn fingerprint(data: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data.as_bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Every statement, built once for a table and layout; `$n` placeholders (rewritten to
/// `?n` for SQLite).
#[derive(Debug, Clone)]
struct Queries {
    create: SqlStr,
    load: SqlStr,
    lock: SqlStr,
    update: SqlStr,
    touch: SqlStr,
    delete: SqlStr,
    exists: SqlStr,
    delete_expired: SqlStr,
    migrate: Vec<SqlStr>,
    /// The layout has a `created_at` column (loaded as the third column, bound as `$5` of
    /// `create`).
    created_at: bool,
    /// MySQL only: the stored data after an update (no `RETURNING`).
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    reselect: SqlStr,
    /// Removes the row for the key: after `delete_at_version` found it live at the
    /// version (inside the locking transaction), and on MySQL after `delete` removed a
    /// live one.
    delete_any: SqlStr,
    /// MySQL only: removes an expired row before `create` inserts.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    delete_dead: SqlStr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    #[cfg(feature = "sqlite")]
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
    #[cfg(feature = "mysql")]
    MySql,
}

impl Queries {
    fn new(table: &TableName, layout: InteropLayout, flavor: Flavor) -> Self {
        #[cfg(feature = "mysql")]
        if flavor == Flavor::MySql {
            return Self::mysql(table, layout);
        }
        let t = format!("\"{}\"", table.as_str());
        let e = format!("\"{}\"", layout.expiry_column());
        let idx = format!("\"{}\"", layout.index_name(table));
        let (lock_suffix, time_type) = match flavor {
            #[cfg(feature = "sqlite")]
            Flavor::Sqlite => ("", "datetime"),
            #[cfg(feature = "postgres")]
            Flavor::Postgres => (" FOR UPDATE", "timestamp with time zone"),
            #[cfg(feature = "mysql")]
            Flavor::MySql => (" FOR UPDATE", "datetime(6)"),
        };
        let json_pg = layout == InteropLayout::PlainJson && Some(flavor) != Self::sqlite_flavor();
        // How the data goes in and comes out: jsonb needs casts, text columns do not.
        let (data_in, data_out) = if json_pg {
            ("$2::jsonb", "\"session_data\"::text")
        } else {
            ("$2", "\"session_data\"")
        };
        let update_in = data_in.replace("$2", "$1");
        if layout == InteropLayout::PlainJson {
            let ddl = if json_pg {
                format!(
                    "CREATE TABLE IF NOT EXISTS {t} (\
                     \"id\" bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, \
                     \"session_key\" text NOT NULL CONSTRAINT \"{name}_unique_session_key\" UNIQUE, \
                     \"session_data\" jsonb NOT NULL DEFAULT '{{}}', \
                     \"created_at\" timestamp with time zone NOT NULL DEFAULT STATEMENT_TIMESTAMP(), \
                     {e} timestamp with time zone NULL)",
                    name = table.as_str()
                )
            } else {
                format!(
                    "CREATE TABLE IF NOT EXISTS {t} (\
                     \"id\" integer NOT NULL PRIMARY KEY AUTOINCREMENT, \
                     \"session_key\" varchar(40) NOT NULL UNIQUE, \
                     \"session_data\" text NOT NULL CHECK (JSON_VALID(\"session_data\")), \
                     \"created_at\" datetime NOT NULL, \
                     {e} datetime NULL)"
                )
            };
            let q = |text: String| Self::finish(flavor, text);
            return Self {
                create: q(format!(
                    "INSERT INTO {t} (\"session_key\", \"session_data\", {e}, \"created_at\") \
                     VALUES ($1, {data_in}, $3, $5) \
                     ON CONFLICT (\"session_key\") DO UPDATE SET \
                     \"session_data\" = excluded.\"session_data\", {e} = excluded.{e}, \
                     \"created_at\" = excluded.\"created_at\" \
                     WHERE {t}.{e} IS NULL OR {t}.{e} <= $4"
                )),
                load: q(format!(
                    "SELECT {data_out}, {e}, \"created_at\" FROM {t} \
                     WHERE \"session_key\" = $1 AND {e} > $2"
                )),
                lock: q(format!(
                    "SELECT {data_out} FROM {t} WHERE \"session_key\" = $1 AND {e} > $2{lock_suffix}"
                )),
                update: q(format!(
                    "UPDATE {t} SET \"session_data\" = {update_in}, {e} = $2 \
                     WHERE \"session_key\" = $3 RETURNING {data_out}"
                )),
                touch: q(format!(
                    "UPDATE {t} SET {e} = $1 WHERE \"session_key\" = $2 AND {e} > $3"
                )),
                delete: q(format!(
                    "DELETE FROM {t} WHERE \"session_key\" = $1 RETURNING COALESCE({e} > $2, false)"
                )),
                exists: q(format!(
                    "SELECT 1 FROM {t} WHERE \"session_key\" = $1 AND {e} > $2"
                )),
                delete_expired: q(format!("DELETE FROM {t} WHERE {e} <= $1")),
                migrate: vec![
                    q(ddl),
                    q(format!("CREATE INDEX IF NOT EXISTS {idx} ON {t} ({e})")),
                ],
                created_at: true,
                reselect: sql(String::new()),
                delete_any: q(format!("DELETE FROM {t} WHERE \"session_key\" = $1")),
                delete_dead: sql(String::new()),
            };
        }
        let q = |text: String| Self::finish(flavor, text);
        Self {
            // Insert, or replace a row that has expired; a live row is left alone (0 rows).
            create: q(format!(
                "INSERT INTO {t} (\"session_key\", \"session_data\", {e}) VALUES ($1, $2, $3) \
                 ON CONFLICT (\"session_key\") DO UPDATE SET \
                 \"session_data\" = excluded.\"session_data\", {e} = excluded.{e} \
                 WHERE {t}.{e} <= $4"
            )),
            load: q(format!(
                "SELECT \"session_data\", {e} FROM {t} WHERE \"session_key\" = $1 AND {e} > $2"
            )),
            lock: q(format!(
                "SELECT \"session_data\" FROM {t} WHERE \"session_key\" = $1 AND {e} > $2{lock_suffix}"
            )),
            update: q(format!(
                "UPDATE {t} SET \"session_data\" = $1, {e} = $2 WHERE \"session_key\" = $3 \
                 RETURNING \"session_data\""
            )),
            touch: q(format!(
                "UPDATE {t} SET {e} = $1 WHERE \"session_key\" = $2 AND {e} > $3"
            )),
            delete: q(format!(
                "DELETE FROM {t} WHERE \"session_key\" = $1 RETURNING COALESCE({e} > $2, false)"
            )),
            exists: q(format!(
                "SELECT 1 FROM {t} WHERE \"session_key\" = $1 AND {e} > $2"
            )),
            delete_expired: q(format!("DELETE FROM {t} WHERE {e} <= $1")),
            // The DDL of the Python framework's own migration (see the reference tables).
            migrate: vec![
                q(format!(
                    "CREATE TABLE IF NOT EXISTS {t} (\
                     \"session_key\" varchar(40) NOT NULL PRIMARY KEY, \
                     \"session_data\" text NOT NULL, \
                     {e} {time_type} NOT NULL)"
                )),
                q(format!("CREATE INDEX IF NOT EXISTS {idx} ON {t} ({e})")),
            ],
            created_at: false,
            reselect: sql(String::new()),
            delete_any: q(format!("DELETE FROM {t} WHERE \"session_key\" = $1")),
            delete_dead: sql(String::new()),
        }
    }

    /// `$n` placeholders stay for PostgreSQL and become `?n` for SQLite.
    fn finish(flavor: Flavor, text: String) -> SqlStr {
        match flavor {
            #[cfg(feature = "sqlite")]
            Flavor::Sqlite => sql(text.replace('$', "?")),
            #[cfg(feature = "postgres")]
            Flavor::Postgres => sql(text),
            #[cfg(feature = "mysql")]
            Flavor::MySql => sql(text),
        }
    }

    /// MySQL / MariaDB: backquoted names, `?` placeholders in bind order, no `RETURNING`
    /// and no conditional upsert, so `create`, `update` and `delete` take two statements
    /// (see the MySQL arms of the store). Types as Django's MySQL backend creates them
    /// (`longtext`, `datetime(6)` in UTC); current Plain's JSON column is `json`.
    #[cfg(feature = "mysql")]
    fn mysql(table: &TableName, layout: InteropLayout) -> Self {
        let t = format!("`{}`", table.as_str());
        let e = format!("`{}`", layout.expiry_column());
        let idx = format!("`{}`", layout.index_name(table));
        let json = layout == InteropLayout::PlainJson;
        let (extra_col, extra_val) = if json {
            (", `created_at`", ", ?")
        } else {
            ("", "")
        };
        let ddl = if json {
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 `id` bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, \
                 `session_key` varchar(40) NOT NULL UNIQUE, \
                 `session_data` json NOT NULL, \
                 `created_at` datetime(6) NOT NULL, \
                 {e} datetime(6) NULL, \
                 INDEX {idx} ({e}))"
            )
        } else {
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 `session_key` varchar(40) NOT NULL PRIMARY KEY, \
                 `session_data` longtext NOT NULL, \
                 {e} datetime(6) NOT NULL, \
                 INDEX {idx} ({e}))"
            )
        };
        let created = if json { ", `created_at`" } else { "" };
        Self {
            // Preceded by `delete_dead` (an expired or NULL-expiry row for the key).
            create: sql(format!(
                "INSERT INTO {t} (`session_key`, `session_data`, {e}{extra_col}) \
                 VALUES (?, ?, ?{extra_val})"
            )),
            load: sql(format!(
                "SELECT `session_data`, {e}{created} FROM {t} WHERE `session_key` = ? AND {e} > ?"
            )),
            lock: sql(format!(
                "SELECT `session_data` FROM {t} WHERE `session_key` = ? AND {e} > ? FOR UPDATE"
            )),
            update: sql(format!(
                "UPDATE {t} SET `session_data` = ?, {e} = ? WHERE `session_key` = ?"
            )),
            touch: sql(format!(
                "UPDATE {t} SET {e} = ? WHERE `session_key` = ? AND {e} > ?"
            )),
            // Deletes a live row; `delete_any` then removes an expired leftover.
            delete: sql(format!(
                "DELETE FROM {t} WHERE `session_key` = ? AND {e} > ?"
            )),
            exists: sql(format!(
                "SELECT 1 FROM {t} WHERE `session_key` = ? AND {e} > ?"
            )),
            delete_expired: sql(format!("DELETE FROM {t} WHERE {e} <= ?")),
            migrate: vec![sql(ddl)],
            created_at: json,
            reselect: sql(format!(
                "SELECT `session_data` FROM {t} WHERE `session_key` = ?"
            )),
            delete_any: sql(format!("DELETE FROM {t} WHERE `session_key` = ?")),
            delete_dead: sql(format!(
                "DELETE FROM {t} WHERE `session_key` = ? AND ({e} IS NULL OR {e} <= ?)"
            )),
        }
    }

    /// The SQLite flavor, or (in a PostgreSQL-only build) a value no flavor equals.
    fn sqlite_flavor() -> Option<Flavor> {
        #[cfg(feature = "sqlite")]
        return Some(Flavor::Sqlite);
        #[cfg(not(feature = "sqlite"))]
        return None;
    }
}

#[derive(Debug, Clone)]
enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
}

/// A [`SessionStore`] over a session table shared with Django or Plain, on SQLite,
/// PostgreSQL and MySQL/MariaDB: the layouts are [`InteropLayout`]'s. Versions are
/// fingerprints of the stored data and `update` is a compare-and-swap on it inside a
/// row-locking transaction, and so is `delete_at_version`; there is no user index
/// ([`user_index`](SessionStore::user_index) is `None`) and no device metadata (see
/// [`capabilities`](SessionStore::capabilities)).
///
/// Its waits are bounded as [`SqlStore`](crate::SqlStore)'s are: every operation but
/// `migrate` and `delete_expired` by [`DEFAULT_OPERATION_TIMEOUT`](crate::DEFAULT_OPERATION_TIMEOUT)
/// (5 s), and on PostgreSQL and MySQL a server that is down makes operations fail fast
/// with [`StoreError::Unavailable`] until a background probe connects again.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_core::StoreError> {
/// use session_core::{Record, SessionKey, SessionStore};
/// use session_sql::{InteropLayout, InteropStore};
///
/// let store = InteropStore::connect("sqlite::memory:", InteropLayout::Django).await?;
/// store.migrate().await?; // only when no Django project manages the table
/// assert!(store.user_index().is_none());
///
/// let key = SessionKey::generate();
/// let expires = session_core::chrono::Utc::now() + session_core::chrono::TimeDelta::hours(1);
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
    pool: Pool,
    layout: InteropLayout,
    table: TableName,
    q: Queries,
    guard: std::sync::Arc<crate::health::Guard>,
}

impl InteropStore {
    /// Connects by URL (`sqlite:…`, `postgres://…` or `mysql://…`) to the layout's default
    /// table.
    /// SQLite files are created if missing and wait up to 5 s for the write lock.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] / [`StoreError::Backend`] if the database cannot be
    /// opened; [`StoreError::Config`] for a URL that does not parse, an unknown scheme, or
    /// a scheme this build has no feature for
    /// ([`feature`](session_core::ConfigError::feature) names it).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::StoreError> {
    /// let store = session_sql::InteropStore::connect("sqlite::memory:", session_sql::InteropLayout::PlainSigned).await?;
    /// assert_eq!(store.table().as_str(), "plainsessions_session");
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str, layout: InteropLayout) -> StoreResult<Self> {
        use crate::builder::{bad_url, config, scheme_of, Scheme};
        match scheme_of(url).map_err(config)? {
            #[cfg(feature = "sqlite")]
            Scheme::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                    .map_err(bad_url)?
                    .create_if_missing(true)
                    .busy_timeout(Duration::from_secs(5));
                let pool = sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(if url.contains(":memory:") { 1 } else { 4 })
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await
                    .map_err(map_err)?;
                Ok(Self::sqlite(pool, layout))
            }
            #[cfg(feature = "postgres")]
            Scheme::Postgres => {
                let options: sqlx::postgres::PgConnectOptions = url.parse().map_err(bad_url)?;
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await
                    .map_err(map_err)?;
                Ok(Self::postgres(pool, layout))
            }
            #[cfg(feature = "mysql")]
            Scheme::MySql => {
                let options: sqlx::mysql::MySqlConnectOptions = url.parse().map_err(bad_url)?;
                let pool = sqlx::mysql::MySqlPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await
                    .map_err(map_err)?;
                Ok(Self::mysql(pool, layout))
            }
            #[cfg(not(feature = "sqlite"))]
            Scheme::Sqlite => Err(crate::builder::feature_disabled("sqlite:", "sqlite")),
            #[cfg(not(feature = "postgres"))]
            Scheme::Postgres => Err(crate::builder::feature_disabled("postgres://", "postgres")),
            #[cfg(not(feature = "mysql"))]
            Scheme::MySql => Err(crate::builder::feature_disabled("mysql://", "mysql")),
        }
    }

    /// A store over an existing SQLite pool, on the layout's default table.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = session_sql::sqlx::SqlitePool::connect("sqlite::memory:").await?;
    /// let store = session_sql::InteropStore::sqlite(pool, session_sql::InteropLayout::Django);
    /// # let _ = store;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub fn sqlite(pool: sqlx::SqlitePool, layout: InteropLayout) -> Self {
        Self::build(Pool::Sqlite(pool), layout, None)
    }

    /// A store over an existing PostgreSQL pool, on the layout's default table.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = session_sql::sqlx::PgPool::connect("postgres://localhost/app").await?;
    /// let store = session_sql::InteropStore::postgres(pool, session_sql::InteropLayout::Django);
    /// # let _ = store;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub fn postgres(pool: sqlx::PgPool, layout: InteropLayout) -> Self {
        Self::build(Pool::Postgres(pool), layout, None)
    }

    /// A store over an existing MySQL / MariaDB pool, on the layout's default table.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = session_sql::sqlx::MySqlPool::connect("mysql://localhost/app").await?;
    /// let store = session_sql::InteropStore::mysql(pool, session_sql::InteropLayout::Django);
    /// # let _ = store;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "mysql")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
    pub fn mysql(pool: sqlx::MySqlPool, layout: InteropLayout) -> Self {
        Self::build(Pool::MySql(pool), layout, None)
    }

    fn build(pool: Pool, layout: InteropLayout, table: Option<TableName>) -> Self {
        let table =
            table.unwrap_or_else(|| TableName::new(layout.default_table()).unwrap_or_default());
        let flavor = match &pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => Flavor::Sqlite,
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => Flavor::Postgres,
            #[cfg(feature = "mysql")]
            Pool::MySql(_) => Flavor::MySql,
        };
        let q = Queries::new(&table, layout, flavor);
        let probe = match &pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => None,
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => Some(crate::health::probe_for(p)),
            #[cfg(feature = "mysql")]
            Pool::MySql(p) => Some(crate::health::probe_for(p)),
        };
        let guard = std::sync::Arc::new(crate::health::Guard::new(
            Some(crate::DEFAULT_OPERATION_TIMEOUT),
            probe,
        ));
        Self {
            pool,
            layout,
            table,
            q,
            guard,
        }
    }

    /// Uses another table name (for example a Django project with a custom `db_table`).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use session_sql::{InteropLayout, InteropStore, TableName};
    /// let store = InteropStore::connect("sqlite::memory:", InteropLayout::Django)
    ///     .await?
    ///     .with_table(TableName::new("legacy_sessions")?);
    /// assert_eq!(store.table().as_str(), "legacy_sessions");
    /// # Ok(()) }
    /// ```
    pub fn with_table(self, table: TableName) -> Self {
        Self::build(self.pool, self.layout, Some(table))
    }

    /// The DDL [`migrate`](Self::migrate) runs for `layout` on `dialect` with the table
    /// `table`, as text: for projects whose own migrations (Django's, sqlx-cli's) create
    /// the table. Statements end with `;` and are idempotent (`IF NOT EXISTS`). The
    /// crate's `sql/` directory holds the same text for the default tables (kept in sync
    /// by a test).
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] when the dialect's cargo feature is not enabled.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_sql::{Dialect, InteropLayout, InteropStore, TableName};
    /// let table = TableName::new("django_session")?;
    /// let ddl = InteropStore::schema_sql(Dialect::Sqlite, InteropLayout::Django, &table)?;
    /// assert!(ddl.starts_with("CREATE TABLE IF NOT EXISTS"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn schema_sql(
        dialect: crate::Dialect,
        layout: InteropLayout,
        table: &TableName,
    ) -> StoreResult<String> {
        let flavor = match dialect {
            #[cfg(feature = "sqlite")]
            crate::Dialect::Sqlite => Flavor::Sqlite,
            #[cfg(feature = "postgres")]
            crate::Dialect::Postgres => Flavor::Postgres,
            #[cfg(feature = "mysql")]
            crate::Dialect::MySql => Flavor::MySql,
            #[allow(unreachable_patterns)]
            other => return Err(crate::dialect_disabled(other)),
        };
        let q = Queries::new(table, layout, flavor);
        Ok(crate::join_statements(
            q.migrate.iter().map(|s| s.as_str().to_owned()),
        ))
    }

    /// The layout.
    pub fn layout(&self) -> InteropLayout {
        self.layout
    }

    /// The table.
    pub fn table(&self) -> &TableName {
        &self.table
    }

    /// Creates the table and its expiry index with the Python framework's own DDL, if they
    /// do not exist. When a Django (or Plain) project manages the table, let its migrations
    /// do this instead: Django does not know about tables it did not create.
    ///
    /// # Errors
    ///
    /// Database errors.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_core::StoreError> {
    /// let store = session_sql::InteropStore::connect("sqlite::memory:", session_sql::InteropLayout::Django).await?;
    /// store.migrate().await?;
    /// store.migrate().await?; // idempotent
    /// # Ok(()) }
    /// ```
    pub async fn migrate(&self) -> StoreResult<()> {
        for statement in &self.q.migrate {
            match &self.pool {
                #[cfg(feature = "sqlite")]
                Pool::Sqlite(p) => {
                    sqlx::query(statement.clone())
                        .execute(p)
                        .await
                        .map_err(map_err)?;
                }
                #[cfg(feature = "postgres")]
                Pool::Postgres(p) => {
                    sqlx::query(statement.clone())
                        .execute(p)
                        .await
                        .map_err(map_err)?;
                }
                #[cfg(feature = "mysql")]
                Pool::MySql(p) => {
                    sqlx::query(statement.clone())
                        .execute(p)
                        .await
                        .map_err(map_err)?;
                }
            }
        }
        Ok(())
    }

    fn record(
        &self,
        key: SessionKey,
        data: String,
        expires_at: DateTime<Utc>,
        created_at: Option<DateTime<Utc>>,
    ) -> Record {
        let version = fingerprint(&data);
        let mut record = Record::new(key, data, expires_at);
        record.version = version;
        // Without a created_at column the creation time is unknown: "now" keeps the
        // handle's absolute-timeout arithmetic neutral.
        record.created_at = created_at.unwrap_or_else(now);
        record
    }
}

/// MySQL `datetime(6)` value: naive UTC, microsecond precision.
#[cfg(feature = "mysql")]
fn my_time(t: DateTime<Utc>) -> session_core::chrono::NaiveDateTime {
    truncate(t).naive_utc()
}

#[cfg(feature = "mysql")]
impl InteropStore {
    /// Insert; on a duplicate key, remove the row if it is expired (or has no expiry) and
    /// insert once more. Two autocommit statements instead of a transaction, so concurrent
    /// creates of one key cannot deadlock on gap locks. Returns the rows inserted.
    async fn mysql_create(
        &self,
        p: &sqlx::MySqlPool,
        r: &Record,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        for attempt in 0..2 {
            let mut query = sqlx::query(self.q.create.clone())
                .bind(r.key.as_str())
                .bind(r.data.as_str())
                .bind(my_time(r.expires_at));
            if self.q.created_at {
                query = query.bind(my_time(r.created_at));
            }
            match query.execute(p).await {
                Ok(done) => return Ok(done.rows_affected()),
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    if attempt > 0 {
                        return Ok(0);
                    }
                    let removed = sqlx::query(self.q.delete_dead.clone())
                        .bind(r.key.as_str())
                        .bind(my_time(now))
                        .execute(p)
                        .await
                        .map_err(map_err)?
                        .rows_affected();
                    if removed == 0 {
                        return Ok(0);
                    }
                }
                Err(e) => return Err(map_err(e)),
            }
        }
        Ok(0)
    }

    async fn mysql_load(
        &self,
        p: &sqlx::MySqlPool,
        key: &SessionKey,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Record>> {
        let row = sqlx::query(self.q.load.clone())
            .bind(key.as_str())
            .bind(my_time(now))
            .fetch_optional(p)
            .await
            .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let data: String = column(&row, 0, "session_data")?;
        let expires: session_core::chrono::NaiveDateTime =
            column(&row, 1, self.layout.expiry_column())?;
        let created = if self.q.created_at {
            let created: session_core::chrono::NaiveDateTime = column(&row, 2, "created_at")?;
            Some(created.and_utc())
        } else {
            None
        };
        Ok(Some(self.record(
            key.clone(),
            data,
            expires.and_utc(),
            created,
        )))
    }

    async fn mysql_update(
        &self,
        p: &sqlx::MySqlPool,
        r: &Record,
        now: DateTime<Utc>,
    ) -> StoreResult<String> {
        let mut tx = p.begin().await.map_err(map_err)?;
        let current: Option<String> = sqlx::query_scalar(self.q.lock.clone())
            .bind(r.key.as_str())
            .bind(my_time(now))
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if current.as_deref().map(fingerprint) != Some(r.version) {
            return Err(crate::error::stale(current.is_some()));
        }
        sqlx::query(self.q.update.clone())
            .bind(r.data.as_str())
            .bind(my_time(r.expires_at))
            .bind(r.key.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let stored: String = sqlx::query_scalar(self.q.reselect.clone())
            .bind(r.key.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(stored)
    }

    /// MySQL counts changed rows, not matched ones: an unchanged expiry reports 0, so a
    /// zero is checked against the row's liveness.
    async fn mysql_touch(
        &self,
        p: &sqlx::MySqlPool,
        key: &SessionKey,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let changed = sqlx::query(self.q.touch.clone())
            .bind(my_time(expires_at))
            .bind(key.as_str())
            .bind(my_time(now))
            .execute(p)
            .await
            .map_err(map_err)?
            .rows_affected();
        if changed > 0 {
            return Ok(changed);
        }
        let live = sqlx::query(self.q.exists.clone())
            .bind(key.as_str())
            .bind(my_time(now))
            .fetch_optional(p)
            .await
            .map_err(map_err)?
            .is_some();
        Ok(u64::from(live))
    }

    async fn mysql_delete(
        &self,
        p: &sqlx::MySqlPool,
        key: &SessionKey,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<bool>> {
        let live = sqlx::query(self.q.delete.clone())
            .bind(key.as_str())
            .bind(my_time(now))
            .execute(p)
            .await
            .map_err(map_err)?
            .rows_affected();
        sqlx::query(self.q.delete_any.clone())
            .bind(key.as_str())
            .execute(p)
            .await
            .map_err(map_err)?;
        Ok(Some(live > 0))
    }
}

/// Django's SQLite datetime text: `YYYY-MM-DD HH:MM:SS[.ffffff]`, naive UTC.
#[cfg(feature = "sqlite")]
fn sqlite_time(t: DateTime<Utc>) -> String {
    let micros = t.timestamp_subsec_micros();
    let base = t.format("%Y-%m-%d %H:%M:%S");
    if micros == 0 {
        base.to_string()
    } else {
        format!("{base}.{micros:06}")
    }
}

#[cfg(feature = "sqlite")]
fn parse_sqlite_time(s: &str) -> StoreResult<DateTime<Utc>> {
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(naive.and_utc());
        }
    }
    Err(corrupt(format!(
        "expiry column is not a datetime: {} bytes",
        s.len()
    )))
}

/// Microsecond precision, as PostgreSQL and MySQL store.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(t.timestamp_subsec_micros() * 1000)
        .unwrap_or(t)
}

/// The operations themselves; [`SessionStore`] runs them under the store's bounds.
impl InteropStore {
    async fn raw_create(&self, r: &Record) -> StoreResult<()> {
        let now = now();
        let affected = match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => {
                let mut query = sqlx::query(self.q.create.clone())
                    .bind(r.key.as_str())
                    .bind(r.data.as_str())
                    .bind(sqlite_time(r.expires_at))
                    .bind(sqlite_time(now));
                if self.q.created_at {
                    query = query.bind(sqlite_time(r.created_at));
                }
                query.execute(p).await.map_err(map_err)?.rows_affected()
            }
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => {
                let mut query = sqlx::query(self.q.create.clone())
                    .bind(r.key.as_str())
                    .bind(r.data.as_str())
                    .bind(truncate(r.expires_at))
                    .bind(now);
                if self.q.created_at {
                    query = query.bind(truncate(r.created_at));
                }
                query.execute(p).await.map_err(map_err)?.rows_affected()
            }
            #[cfg(feature = "mysql")]
            Pool::MySql(p) => self.mysql_create(p, r, now).await?,
        };
        if affected == 0 {
            return Err(StoreError::KeyExists);
        }
        Ok(())
    }

    async fn raw_load(&self, key: &SessionKey) -> StoreResult<Option<Record>> {
        let now = now();
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => {
                let row = sqlx::query(self.q.load.clone())
                    .bind(key.as_str())
                    .bind(sqlite_time(now))
                    .fetch_optional(p)
                    .await
                    .map_err(map_err)?;
                let Some(row) = row else { return Ok(None) };
                let data: String = column(&row, 0, "session_data")?;
                let expires: String = column(&row, 1, self.layout.expiry_column())?;
                let created = if self.q.created_at {
                    let created: String = column(&row, 2, "created_at")?;
                    Some(parse_sqlite_time(&created)?)
                } else {
                    None
                };
                Ok(Some(self.record(
                    key.clone(),
                    data,
                    parse_sqlite_time(&expires)?,
                    created,
                )))
            }
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => {
                let row = sqlx::query(self.q.load.clone())
                    .bind(key.as_str())
                    .bind(now)
                    .fetch_optional(p)
                    .await
                    .map_err(map_err)?;
                let Some(row) = row else { return Ok(None) };
                let data: String = column(&row, 0, "session_data")?;
                let expires: DateTime<Utc> = column(&row, 1, self.layout.expiry_column())?;
                let created: Option<DateTime<Utc>> = if self.q.created_at {
                    Some(column(&row, 2, "created_at")?)
                } else {
                    None
                };
                Ok(Some(self.record(key.clone(), data, expires, created)))
            }
            #[cfg(feature = "mysql")]
            Pool::MySql(p) => self.mysql_load(p, key, now).await,
        }
    }

    async fn raw_update(&self, r: &Record) -> StoreResult<u64> {
        let now = now();
        // Lock the live row, compare its data's fingerprint with the version the caller
        // loaded, then write: a compare-and-swap on the data itself. Dropping the
        // transaction without commit rolls it back.
        let stored: String = match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => {
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
                let current: Option<String> = sqlx::query_scalar(self.q.lock.clone())
                    .bind(r.key.as_str())
                    .bind(sqlite_time(now))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if current.as_deref().map(fingerprint) != Some(r.version) {
                    return Err(crate::error::stale(current.is_some()));
                }
                let stored: String = sqlx::query_scalar(self.q.update.clone())
                    .bind(r.data.as_str())
                    .bind(sqlite_time(r.expires_at))
                    .bind(r.key.as_str())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                stored
            }
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => {
                let mut tx = p.begin().await.map_err(map_err)?;
                let current: Option<String> = sqlx::query_scalar(self.q.lock.clone())
                    .bind(r.key.as_str())
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if current.as_deref().map(fingerprint) != Some(r.version) {
                    return Err(crate::error::stale(current.is_some()));
                }
                let stored: String = sqlx::query_scalar(self.q.update.clone())
                    .bind(r.data.as_str())
                    .bind(truncate(r.expires_at))
                    .bind(r.key.as_str())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                stored
            }
            #[cfg(feature = "mysql")]
            Pool::MySql(p) => self.mysql_update(p, r, now).await?,
        };
        // The version `load` will report: the fingerprint of the data as the database
        // stores it (a jsonb column normalises it).
        Ok(fingerprint(&stored))
    }

    async fn raw_touch(&self, key: &SessionKey, expires_at: DateTime<Utc>) -> StoreResult<bool> {
        let now = now();
        let affected = match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => sqlx::query(self.q.touch.clone())
                .bind(sqlite_time(expires_at))
                .bind(key.as_str())
                .bind(sqlite_time(now))
                .execute(p)
                .await
                .map_err(map_err)?
                .rows_affected(),
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => sqlx::query(self.q.touch.clone())
                .bind(truncate(expires_at))
                .bind(key.as_str())
                .bind(now)
                .execute(p)
                .await
                .map_err(map_err)?
                .rows_affected(),
            #[cfg(feature = "mysql")]
            Pool::MySql(p) => self.mysql_touch(p, key, expires_at, now).await?,
        };
        Ok(affected > 0)
    }

    async fn raw_delete(&self, key: &SessionKey) -> StoreResult<bool> {
        let now = now();
        let was_live: Option<bool> = match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => sqlx::query_scalar(self.q.delete.clone())
                .bind(key.as_str())
                .bind(sqlite_time(now))
                .fetch_optional(p)
                .await
                .map_err(map_err)?,
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => sqlx::query_scalar(self.q.delete.clone())
                .bind(key.as_str())
                .bind(now)
                .fetch_optional(p)
                .await
                .map_err(map_err)?,
            #[cfg(feature = "mysql")]
            Pool::MySql(p) => self.mysql_delete(p, key, now).await?,
        };
        Ok(was_live.unwrap_or(false))
    }

    async fn raw_delete_at_version(&self, key: &SessionKey, version: u64) -> StoreResult<()> {
        let now = now();
        // As `update`: lock the live row, compare its data's fingerprint with `version`,
        // and only then delete it. Dropping the transaction without commit rolls it back.
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => {
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
                let current: Option<String> = sqlx::query_scalar(self.q.lock.clone())
                    .bind(key.as_str())
                    .bind(sqlite_time(now))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if current.as_deref().map(fingerprint) != Some(version) {
                    return Err(crate::error::stale(current.is_some()));
                }
                sqlx::query(self.q.delete_any.clone())
                    .bind(key.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => {
                let mut tx = p.begin().await.map_err(map_err)?;
                let current: Option<String> = sqlx::query_scalar(self.q.lock.clone())
                    .bind(key.as_str())
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if current.as_deref().map(fingerprint) != Some(version) {
                    return Err(crate::error::stale(current.is_some()));
                }
                sqlx::query(self.q.delete_any.clone())
                    .bind(key.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }
            #[cfg(feature = "mysql")]
            Pool::MySql(p) => {
                let mut tx = p.begin().await.map_err(map_err)?;
                let current: Option<String> = sqlx::query_scalar(self.q.lock.clone())
                    .bind(key.as_str())
                    .bind(my_time(now))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if current.as_deref().map(fingerprint) != Some(version) {
                    return Err(crate::error::stale(current.is_some()));
                }
                sqlx::query(self.q.delete_any.clone())
                    .bind(key.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }
        }
    }

    async fn raw_exists(&self, key: &SessionKey) -> StoreResult<bool> {
        let now = now();
        let row = match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => sqlx::query(self.q.exists.clone())
                .bind(key.as_str())
                .bind(sqlite_time(now))
                .fetch_optional(p)
                .await
                .map_err(map_err)?
                .is_some(),
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => sqlx::query(self.q.exists.clone())
                .bind(key.as_str())
                .bind(now)
                .fetch_optional(p)
                .await
                .map_err(map_err)?
                .is_some(),
            #[cfg(feature = "mysql")]
            Pool::MySql(p) => sqlx::query(self.q.exists.clone())
                .bind(key.as_str())
                .bind(my_time(now))
                .fetch_optional(p)
                .await
                .map_err(map_err)?
                .is_some(),
        };
        Ok(row)
    }
}

impl InteropStore {
    async fn raw_delete_expired(&self) -> StoreResult<u64> {
        let now = now();
        let removed = match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => sqlx::query(self.q.delete_expired.clone())
                .bind(sqlite_time(now))
                .execute(p)
                .await
                .map_err(map_err)?
                .rows_affected(),
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => sqlx::query(self.q.delete_expired.clone())
                .bind(now)
                .execute(p)
                .await
                .map_err(map_err)?
                .rows_affected(),
            #[cfg(feature = "mysql")]
            Pool::MySql(p) => sqlx::query(self.q.delete_expired.clone())
                .bind(my_time(now))
                .execute(p)
                .await
                .map_err(map_err)?
                .rows_affected(),
        };
        if removed > 0 {
            tracing::info!(table = %self.table, removed, "deleted expired sessions");
        }
        Ok(removed)
    }
}

#[async_trait]
impl SessionStore for InteropStore {
    async fn create(&self, r: &Record) -> StoreResult<()> {
        self.guard.run("create", true, self.raw_create(r)).await
    }

    async fn load(&self, key: &SessionKey) -> StoreResult<Option<Record>> {
        self.guard.run("load", true, self.raw_load(key)).await
    }

    async fn update(&self, r: &Record) -> StoreResult<u64> {
        self.guard.run("update", true, self.raw_update(r)).await
    }

    async fn touch(&self, key: &SessionKey, expires_at: DateTime<Utc>) -> StoreResult<bool> {
        self.guard
            .run("touch", true, self.raw_touch(key, expires_at))
            .await
    }

    async fn delete(&self, key: &SessionKey) -> StoreResult<bool> {
        self.guard.run("delete", true, self.raw_delete(key)).await
    }

    async fn delete_at_version(&self, key: &SessionKey, version: u64) -> StoreResult<()> {
        self.guard
            .run(
                "delete_at_version",
                true,
                self.raw_delete_at_version(key, version),
            )
            .await
    }

    async fn exists(&self, key: &SessionKey) -> StoreResult<bool> {
        self.guard.run("exists", true, self.raw_exists(key)).await
    }

    fn expired_cleanup(&self) -> Option<&dyn ExpiredCleanup> {
        Some(self)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::all()
            .with_device_metadata(false)
            .with_exact_versions(false)
    }
}

/// Removes expired rows (one `DELETE`; a row whose expiry is NULL stays, as in Plain).
/// Not bounded by the operation timeout (a backlog may take long), but it fails fast
/// while the server is down.
#[async_trait]
impl ExpiredCleanup for InteropStore {
    async fn delete_expired(&self) -> StoreResult<u64> {
        self.guard
            .run("delete_expired", false, self.raw_delete_expired())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_differ_and_are_stable() {
        assert_eq!(fingerprint("e30"), fingerprint("e30"));
        assert_ne!(fingerprint("e30"), fingerprint("e31"));
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_times_are_djangos_text() {
        let t = DateTime::parse_from_rfc3339("2026-12-10T23:49:05.606100Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(sqlite_time(t), "2026-12-10 23:49:05.606100");
        assert_eq!(
            parse_sqlite_time("2026-12-10 23:49:05.606100").ok(),
            Some(t)
        );
        let whole = DateTime::parse_from_rfc3339("2026-12-10T23:49:05Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(sqlite_time(whole), "2026-12-10 23:49:05");
        assert_eq!(parse_sqlite_time("2026-12-10 23:49:05").ok(), Some(whole));
        assert!(parse_sqlite_time("soon").is_err());
    }
}
