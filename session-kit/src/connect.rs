//! One front door: open any store from a URL ([`connect`], [`ConnectOptions`]).

use std::sync::Arc;

use session_core::{ConfigError, SessionStore, StoreError};

/// What [`connect`] can answer besides a store.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use session_kit::ConnectError;
///
/// let err = session_kit::connect("ftp://example.com").await.err();
/// assert!(matches!(err, Some(ConnectError::UnknownScheme { .. })));
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL names a backend whose `session-kit` feature is not enabled: add it to the
    /// dependency (`features = ["postgres"]`).
    #[error("a {scheme}: URL needs the session-kit feature `{feature}`, which is not enabled")]
    FeatureDisabled {
        /// The URL's scheme (never the whole URL: it may hold a password).
        scheme: String,
        /// The `session-kit` feature to enable.
        feature: &'static str,
    },
    /// The URL's scheme names no backend.
    #[error(
        "unknown session store URL scheme {scheme:?} (expected memory:, sqlite:, postgres://, \
         mysql://, mariadb://, redis://, rediss://, redis+cluster:// or redis+sentinel://)"
    )]
    UnknownScheme {
        /// The scheme as written (up to the first `:`).
        scheme: String,
    },
    /// The store refused the URL or its settings, could not be reached, or its migration
    /// failed: what the store's own constructor answers.
    #[error("could not open the session store")]
    Store(#[from] StoreError),
}

impl ConnectError {
    /// Whether the store could not be reached (worth a retry), as opposed to a wrong URL or
    /// a missing feature.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let err = session_kit::connect("nope:").await.err().unwrap();
    /// assert!(!err.is_unavailable());
    /// # }
    /// ```
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_unavailable())
    }
}

impl From<ConnectError> for StoreError {
    /// Folds a [`ConnectError`] into a [`StoreError`] (a missing feature or an unknown scheme
    /// becomes [`StoreError::Config`]), so `?` works in code that answers
    /// [`StoreError`] or [`Error`](crate::Error).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// async fn open() -> Result<(), session_kit::Error> {
    ///     let _store = session_kit::connect("nope:").await.map_err(session_kit::StoreError::from)?;
    ///     Ok(())
    /// }
    /// assert!(matches!(
    ///     open().await,
    ///     Err(session_kit::Error::Store(session_kit::StoreError::Config(_)))
    /// ));
    /// # }
    /// ```
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::FeatureDisabled { scheme, feature } => StoreError::Config(
                ConfigError::feature_disabled(&format!("{scheme}:"), feature),
            ),
            ConnectError::UnknownScheme { scheme } => StoreError::Config(ConfigError::invalid(
                "session store URL",
                format!("unknown scheme {scheme:?}"),
            )),
            ConnectError::Store(e) => e,
        }
    }
}

/// How [`connect`] opens a store. [`ConnectOptions::new`] (what [`connect`] uses) migrates
/// SQL tables: the table and its indexes are created when missing (idempotent, safe on every
/// start, safe to run from several processes at once).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_kit::ConnectError> {
/// // Tables managed elsewhere (a migration tool): do not create them at start.
/// let store = session_kit::ConnectOptions::new()
///     .migrate(false)
///     .connect("memory:")
///     .await?;
/// # let _ = store;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ConnectOptions {
    migrate: bool,
    #[cfg_attr(
        not(any(feature = "redis-tls-rustls", feature = "redis-tls-native-tls")),
        allow(dead_code)
    )]
    tls_root: Option<Vec<u8>>,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("migrate", &self.migrate)
            .field("tls_root_certificate", &self.tls_root.is_some())
            .finish()
    }
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ConnectOptions {
    /// The defaults: migrate SQL tables.
    ///
    /// # Examples
    ///
    /// ```
    /// let options = session_kit::ConnectOptions::new();
    /// # let _ = options;
    /// ```
    pub fn new() -> Self {
        Self {
            migrate: true,
            tls_root: None,
        }
    }

    /// Whether to create the SQL table and its indexes when missing (default `true`). Redis
    /// and memory stores have nothing to migrate.
    ///
    /// # Examples
    ///
    /// ```
    /// let options = session_kit::ConnectOptions::new().migrate(false);
    /// # let _ = options;
    /// ```
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Check the certificate of a `rediss://` server against this CA certificate (PEM)
    /// instead of the platform's root certificates: for a private CA. Needs the
    /// `redis-tls-rustls` or `redis-tls-native-tls` feature. (With both features on, the
    /// `redis` crate uses rustls with no platform roots at all, so a CA must be given here.)
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let ca = std::fs::read("/etc/redis/ca.crt")?;
    /// let store = session_kit::ConnectOptions::new()
    ///     .tls_root_certificate(ca)
    ///     .connect("rediss://redis.internal:6380")
    ///     .await?;
    /// # let _ = store;
    /// # Ok(()) }
    /// ```
    #[cfg(any(feature = "redis-tls-rustls", feature = "redis-tls-native-tls"))]
    #[cfg_attr(
        docsrs,
        doc(cfg(any(feature = "redis-tls-rustls", feature = "redis-tls-native-tls")))
    )]
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root = Some(pem.into());
        self
    }

    /// Opens the store `url` names (see [`connect`] for the URL forms), shared behind an
    /// [`Arc`].
    ///
    /// # Errors
    ///
    /// See [`connect`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::ConnectError> {
    /// let store = session_kit::ConnectOptions::new().connect("memory:").await?;
    /// # let _ = store;
    /// # Ok(()) }
    /// ```
    pub async fn connect(&self, url: &str) -> Result<Arc<dyn SessionStore>, ConnectError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme.to_ascii_lowercase().as_str() {
            "memory" => memory(scheme),
            "sqlite" => sql(url, scheme, "sqlite", self.migrate).await,
            "postgres" | "postgresql" => sql(url, scheme, "postgres", self.migrate).await,
            "mysql" | "mariadb" => sql(url, scheme, "mysql", self.migrate).await,
            "redis" | "rediss" => redis(url, scheme, self).await,
            "redis+cluster" | "rediss+cluster" => redis_cluster(url, scheme).await,
            "redis+sentinel" | "rediss+sentinel" => redis_sentinel(url, scheme).await,
            _ => Err(ConnectError::UnknownScheme {
                scheme: scheme.chars().take(40).collect(),
            }),
        }
    }
}

/// Opens the store `url` names, shared behind an [`Arc`], with SQL tables migrated (see
/// [`ConnectOptions`] to turn that off). The store's own constructor does the work, with its
/// defaults (pool sizes, timeouts, table `sessions`, key prefix `session:`); use the store's
/// builder for other settings.
///
/// | URL | store | feature |
/// | --- | --- | --- |
/// | `memory:` | `MemoryStore` | `memory` (default) |
/// | `sqlite:sessions.db`, `sqlite://path/to/file.db`, `sqlite::memory:` | `SqlStore` | `sqlite` |
/// | `postgres://user:pw@host/db` (or `postgresql://`) | `SqlStore` | `postgres` |
/// | `mysql://user:pw@host/db`, `mariadb://...` | `SqlStore` | `mysql` |
/// | `redis://[user:pw@]host[:port][/db]` | `RedisStore` | `redis` |
/// | `rediss://...` (TLS; a private CA: [`ConnectOptions::tls_root_certificate`]) | `RedisStore` | `redis-tls-rustls` or `redis-tls-native-tls` |
/// | `redis+cluster://[user:pw@]h1:p1,h2:p2` (`rediss+cluster://` for TLS) | `RedisStore` on Redis Cluster | `redis-cluster` |
/// | `redis+sentinel://[user:pw@]s1:p1,s2:p2/service` | `RedisStore` behind Sentinel | `redis-sentinel` |
///
/// A cluster URL lists the seed nodes, separated by commas; the credentials, if any, apply to
/// every node. A sentinel URL lists the sentinels and names the master's service as its path.
/// A SQLite file is created when missing (readable by its owner only).
///
/// A server-backed store is reached once before `connect` returns (SQL opens its pool and
/// migrates, Redis answers a `PING`), so a wrong password or a closed port is an error here,
/// not at the first request.
///
/// # Errors
///
/// [`ConnectError::UnknownScheme`], [`ConnectError::FeatureDisabled`] (nothing was
/// contacted), or [`ConnectError::Store`] with the store's [`StoreError`]:
/// [`StoreError::Config`] for a malformed URL, [`StoreError::Unavailable`] when the server
/// cannot be reached in time.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_kit::ConnectError> {
/// let store = session_kit::connect("memory:").await?;
/// assert!(store.user_index().is_some());
/// # Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<Arc<dyn SessionStore>, ConnectError> {
    ConnectOptions::new().connect(url).await
}

fn disabled(scheme: &str, feature: &'static str) -> ConnectError {
    ConnectError::FeatureDisabled {
        scheme: scheme.to_owned(),
        feature,
    }
}

#[cfg(feature = "memory")]
fn memory(_: &str) -> Result<Arc<dyn SessionStore>, ConnectError> {
    Ok(Arc::new(session_memory::MemoryStore::new()))
}

#[cfg(not(feature = "memory"))]
fn memory(scheme: &str) -> Result<Arc<dyn SessionStore>, ConnectError> {
    Err(disabled(scheme, "memory"))
}

async fn sql(
    url: &str,
    scheme: &str,
    feature: &'static str,
    migrate: bool,
) -> Result<Arc<dyn SessionStore>, ConnectError> {
    let enabled = match feature {
        "sqlite" => cfg!(feature = "sqlite"),
        "postgres" => cfg!(feature = "postgres"),
        _ => cfg!(feature = "mysql"),
    };
    if !enabled {
        return Err(disabled(scheme, feature));
    }
    open_sql(url, migrate).await
}

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
async fn open_sql(url: &str, migrate: bool) -> Result<Arc<dyn SessionStore>, ConnectError> {
    let store = session_sql::SqlStore::connect(url).await?;
    if migrate {
        store.migrate().await?;
    }
    Ok(Arc::new(store))
}

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
async fn open_sql(_: &str, _: bool) -> Result<Arc<dyn SessionStore>, ConnectError> {
    // `sql` checked the feature first; no SQL feature at all lands here.
    Err(disabled("sql", "sqlite"))
}

#[cfg(feature = "redis")]
async fn redis(
    url: &str,
    scheme: &str,
    options: &ConnectOptions,
) -> Result<Arc<dyn SessionStore>, ConnectError> {
    let tls = scheme.eq_ignore_ascii_case("rediss");
    if tls
        && !cfg!(any(
            feature = "redis-tls-rustls",
            feature = "redis-tls-native-tls"
        ))
    {
        return Err(disabled(scheme, "redis-tls-rustls"));
    }
    #[allow(unused_mut)]
    let mut builder = session_redis::RedisStore::builder();
    #[cfg(any(feature = "redis-tls-rustls", feature = "redis-tls-native-tls"))]
    if let (true, Some(pem)) = (tls, &options.tls_root) {
        builder = builder.tls_root_certificate(pem.clone());
    }
    let _ = options;
    Ok(Arc::new(builder.connect(url).await?))
}

#[cfg(not(feature = "redis"))]
async fn redis(
    _: &str,
    scheme: &str,
    _: &ConnectOptions,
) -> Result<Arc<dyn SessionStore>, ConnectError> {
    Err(disabled(scheme, "redis"))
}

/// Splits `redis+cluster://user:pw@h1:p1,h2:p2/rest` into one URL per node
/// (`redis://user:pw@h1:p1/rest`, ...), and returns the path (`/rest`, or empty).
#[cfg_attr(
    not(any(feature = "redis-cluster", feature = "redis-sentinel")),
    allow(dead_code)
)]
fn node_urls(url: &str) -> Result<(Vec<String>, String), StoreError> {
    let bad = |reason: &str| StoreError::Config(ConfigError::invalid("Redis URL", reason));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("expected <scheme>://host:port,host:port"))?;
    let base = if scheme.to_ascii_lowercase().starts_with("rediss") {
        "rediss"
    } else {
        "redis"
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((user, hosts)) => (format!("{user}@"), hosts),
        None => (String::new(), authority),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| format!("{base}://{userinfo}{h}"))
        .collect();
    if nodes.is_empty() {
        return Err(bad("no host:port listed"));
    }
    Ok((nodes, path.to_owned()))
}

#[cfg(feature = "redis-cluster")]
async fn redis_cluster(url: &str, _: &str) -> Result<Arc<dyn SessionStore>, ConnectError> {
    let (nodes, path) = node_urls(url)?;
    let nodes: Vec<String> = nodes.into_iter().map(|n| format!("{n}{path}")).collect();
    let store = session_redis::RedisStore::builder()
        .cluster_urls(nodes)
        .build()?;
    store.ping().await?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "redis-cluster"))]
async fn redis_cluster(_: &str, scheme: &str) -> Result<Arc<dyn SessionStore>, ConnectError> {
    Err(disabled(scheme, "redis-cluster"))
}

#[cfg(feature = "redis-sentinel")]
async fn redis_sentinel(url: &str, _: &str) -> Result<Arc<dyn SessionStore>, ConnectError> {
    let (sentinels, path) = node_urls(url)?;
    let service = path.trim_start_matches('/');
    if service.is_empty() || service.contains(['/', '?']) {
        return Err(StoreError::Config(ConfigError::invalid(
            "Redis Sentinel URL",
            "expected redis+sentinel://host:port,host:port/<service name>",
        ))
        .into());
    }
    let store = session_redis::RedisStore::builder()
        .sentinel(sentinels, service)
        .build()?;
    store.ping().await?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "redis-sentinel"))]
async fn redis_sentinel(_: &str, scheme: &str) -> Result<Arc<dyn SessionStore>, ConnectError> {
    Err(disabled(scheme, "redis-sentinel"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::node_urls;

    #[test]
    fn cluster_urls_split_per_node_with_credentials() {
        let (nodes, path) = node_urls("redis+cluster://u:p%40w@h1:7000,h2:7001").unwrap();
        assert_eq!(
            nodes,
            ["redis://u:p%40w@h1:7000", "redis://u:p%40w@h2:7001"]
        );
        assert_eq!(path, "");
        let (nodes, path) = node_urls("rediss+cluster://h1:7000/?insecure").unwrap();
        assert_eq!(nodes, ["rediss://h1:7000"]);
        assert_eq!(path, "/?insecure");
        let (nodes, path) = node_urls("redis+sentinel://s1:26379,s2:26379/mymaster").unwrap();
        assert_eq!(nodes, ["redis://s1:26379", "redis://s2:26379"]);
        assert_eq!(path, "/mymaster");
        assert!(node_urls("redis+cluster://").is_err());
        assert!(node_urls("redis+cluster:h1").is_err());
    }
}
