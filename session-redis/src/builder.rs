//! [`RedisStoreBuilder`]: where the store connects, its key prefix, pool size and timeouts.

use std::sync::Arc;
use std::time::Duration;

use session_core::{StoreError, StoreResult};

use crate::conn::{Connections, ReplicaAcks, Source};
use crate::{Inner, RedisStore};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "session:";
/// The default number of multiplexed connections a store holds.
pub const DEFAULT_POOL_SIZE: usize = 1;
/// The default connect, pool-wait and response timeouts.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// A configuration mistake found while building a store, before anything is sent to a
/// server. The builder reports it as [`StoreError::Config`]; this detailed error is the
/// source of the [`session_core::ConfigError`] inside (downcast it to inspect it), as
/// `session_kit::sql::ConfigError` is for the SQL store.
///
/// # Examples
///
/// ```
/// use session_kit::StoreError;
/// use session_kit::redis::{ConfigError, RedisStore};
///
/// let err = RedisStore::builder().build().unwrap_err();
/// let StoreError::Config(config) = &err else { panic!("expected a configuration error: {err:?}") };
/// let source = std::error::Error::source(config).unwrap();
/// assert!(matches!(source.downcast_ref::<ConfigError>(), Some(ConfigError::NoServer)));
///
/// let err = RedisStore::builder().url("http://not-redis").build().unwrap_err();
/// let StoreError::Config(config) = &err else { panic!("{err:?}") };
/// let source = std::error::Error::source(config).unwrap();
/// assert!(matches!(source.downcast_ref::<ConfigError>(), Some(ConfigError::InvalidUrl(_))));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Neither a URL nor a pool was given.
    #[error("no redis server configured: call url(), pool(), sentinel(), cluster_urls() or cluster_pool()")]
    NoServer,
    /// The URL (or one of the cluster or sentinel URLs) is not a valid Redis URL.
    #[error("invalid redis url: {0}")]
    InvalidUrl(#[source] redis::RedisError),
    /// The connection pool could not be built.
    #[error("could not build the redis connection pool: {0}")]
    Pool(#[source] deadpool_redis::BuildError),
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Invalid(&'static str),
}

#[cfg(feature = "cluster")]
fn cluster_acks() -> ConfigError {
    ConfigError::Invalid("wait_for_replicas is not available for a cluster")
}

/// Reports a configuration mistake as [`StoreError::Config`], keeping the detailed
/// [`ConfigError`] as its source.
pub(crate) fn config(err: ConfigError) -> StoreError {
    StoreError::Config(session_core::ConfigError::invalid_with_source(
        "session-redis configuration",
        err,
    ))
}

enum Target {
    None,
    Url(String),
    Pool(deadpool_redis::Pool),
    #[cfg(feature = "sentinel")]
    Sentinel {
        urls: Vec<String>,
        service: String,
    },
    #[cfg(feature = "cluster")]
    ClusterUrls(Vec<String>),
    #[cfg(feature = "cluster")]
    ClusterPool(deadpool_redis::cluster::Pool),
}

/// Configures a [`RedisStore`]; start with [`RedisStore::builder`].
///
/// | setting | default | meaning |
/// | --- | --- | --- |
/// | [`url`](Self::url) / [`pool`](Self::pool) | none | the server, as a URL or your own deadpool-redis pool |
/// | [`cluster_urls`](Self::cluster_urls) / [`cluster_pool`](Self::cluster_pool) | none | a Redis Cluster (feature `cluster`) |
/// | `sentinel` | none | the master Redis Sentinel names (feature `sentinel`) |
/// | [`key_prefix`](Self::key_prefix) | `"session:"` | prepended to every key the store writes |
/// | [`pool_size`](Self::pool_size) | 1 | multiplexed connections held (and the pool's size when built from a URL) |
/// | [`connect_timeout`](Self::connect_timeout) | 2 s | opening one connection |
/// | [`wait_timeout`](Self::wait_timeout) | 2 s | waiting for the pool to hand out a connection |
/// | [`response_timeout`](Self::response_timeout) | 2 s | one operation's commands, from send to answer |
/// | [`operation_timeout`](Self::operation_timeout) | the response timeout (plus the replica wait, when on) | one whole store call: getting a connection, every command, the replica acknowledgement |
/// | [`wait_for_replicas`](Self::wait_for_replicas) | Sentinel: 1 replica, 200 ms; otherwise off | a write is acknowledged once that many replicas have it |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use session_kit::RedisStore;
///
/// // Nothing connects here: the first operation does (and every later one reconnects
/// // by itself after an outage).
/// let store = RedisStore::builder()
///     .url("redis://127.0.0.1:6379/0")
///     .key_prefix("myapp:session:")
///     .pool_size(4)
///     .connect_timeout(Duration::from_millis(500))
///     .wait_timeout(Duration::from_millis(500))
///     .response_timeout(Duration::from_millis(250))
///     .build()?;
/// assert_eq!(store.key_prefix(), "myapp:session:");
/// # Ok::<(), session_kit::StoreError>(())
/// ```
#[must_use]
pub struct RedisStoreBuilder {
    target: Target,
    prefix: String,
    pool_size: usize,
    connect_timeout: Duration,
    wait_timeout: Duration,
    response_timeout: Duration,
    /// `operation_timeout`; `None`: the response timeout (plus the replica wait).
    operation_timeout: Option<Duration>,
    /// A CA certificate (PEM) to check a TLS server against, instead of the platform's.
    tls_root: Option<Vec<u8>>,
    /// `wait_for_replicas`; `None`: the default (on for Sentinel, off otherwise).
    replica_acks: Option<(usize, Duration)>,
}

/// The default for [`RedisStoreBuilder::wait_for_replicas`] with Sentinel: one replica,
/// within this time (or half the response timeout, if that is less).
pub const DEFAULT_REPLICA_WAIT: Duration = Duration::from_millis(200);

impl std::fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // URLs may carry passwords: never print them.
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("wait_timeout", &self.wait_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("tls_root_certificate", &self.tls_root.is_some())
            .field("replica_acks", &self.replica_acks)
            .finish_non_exhaustive()
    }
}

impl Default for RedisStoreBuilder {
    fn default() -> Self {
        Self {
            target: Target::None,
            prefix: DEFAULT_PREFIX.to_owned(),
            pool_size: DEFAULT_POOL_SIZE,
            connect_timeout: DEFAULT_TIMEOUT,
            wait_timeout: DEFAULT_TIMEOUT,
            response_timeout: DEFAULT_TIMEOUT,
            operation_timeout: None,
            tls_root: None,
            replica_acks: None,
        }
    }
}

impl RedisStoreBuilder {
    /// A builder with the defaults (see the table on [`RedisStoreBuilder`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = session_kit::RedisStoreBuilder::new().url("redis://127.0.0.1/");
    /// assert!(builder.build().is_ok());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Connect to a standalone Redis at `url` (`redis://[user:password@]host[:port][/db]`,
    /// or `rediss://` with the `tls-rustls` or `tls-native-tls` feature of this crate). The store builds its own
    /// deadpool-redis pool with the configured size and timeouts.
    ///
    /// # Examples
    ///
    /// ```
    /// let store = session_kit::RedisStore::builder().url("redis://127.0.0.1:6379/2").build();
    /// assert!(store.is_ok());
    /// ```
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.target = Target::Url(url.into());
        self
    }

    /// Connect to the master that Redis Sentinel names for `service`, asking the
    /// sentinels at `sentinel_urls` (`redis://host:port`). Every new connection asks
    /// again, so after a failover the store reaches the new master by itself: a
    /// connection to the old master fails (a write its replica no longer acknowledges,
    /// see [`wait_for_replicas`](Self::wait_for_replicas), on by default here; `READONLY`
    /// once it is demoted; or an I/O error) with
    /// [`StoreError::Unavailable`](session_core::StoreError::Unavailable) and is
    /// replaced. Needs the `sentinel` feature.
    ///
    /// # Examples
    ///
    /// ```
    /// let store = session_kit::RedisStore::builder()
    ///     .sentinel(["redis://10.0.0.1:26379", "redis://10.0.0.2:26379"], "sessions")
    ///     .build();
    /// assert!(store.is_ok());
    /// ```
    #[cfg(feature = "sentinel")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sentinel")))]
    pub fn sentinel<I, S>(mut self, sentinel_urls: I, service: impl Into<String>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.target = Target::Sentinel {
            urls: sentinel_urls.into_iter().map(Into::into).collect(),
            service: service.into(),
        };
        self
    }

    /// Check the certificate of a `rediss://` [`url`](Self::url) against this CA
    /// certificate (PEM) instead of the platform's root certificates: for a private CA.
    /// Needs the `tls-rustls` or `tls-native-tls` feature; applies to a URL given to
    /// [`url`](Self::url) (a pool of your own carries its own TLS settings).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let ca = std::fs::read("/etc/redis/ca.crt")?;
    /// let store = session_kit::RedisStore::builder()
    ///     .url("rediss://redis.internal:6380")
    ///     .tls_root_certificate(ca)
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(any(feature = "tls-rustls", feature = "tls-native-tls"))]
    #[cfg_attr(
        docsrs,
        doc(cfg(any(feature = "tls-rustls", feature = "tls-native-tls")))
    )]
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root = Some(pem.into());
        self
    }

    /// Use your own deadpool-redis pool (its connection settings and timeouts apply when
    /// connecting; the builder's timeouts bound every operation on top). The store takes
    /// `pool_size` connections out of it and keeps them (see the crate docs, "Connections").
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::redis::deadpool_redis;
    ///
    /// let pool = deadpool_redis::Config::from_url("redis://127.0.0.1/")
    ///     .create_pool(Some(deadpool_redis::Runtime::Tokio1))
    ///     .unwrap();
    /// let store = session_kit::RedisStore::builder().pool(pool).build();
    /// assert!(store.is_ok());
    /// ```
    pub fn pool(mut self, pool: deadpool_redis::Pool) -> Self {
        self.target = Target::Pool(pool);
        self
    }

    /// Connect to a Redis Cluster through any of its nodes (`redis://host:port` each).
    ///
    /// # Examples
    ///
    /// ```
    /// let store = session_kit::RedisStore::builder()
    ///     .cluster_urls(["redis://127.0.0.1:7001", "redis://127.0.0.1:7002"])
    ///     .build();
    /// assert!(store.is_ok());
    /// ```
    #[cfg(feature = "cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
    pub fn cluster_urls<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.target = Target::ClusterUrls(urls.into_iter().map(Into::into).collect());
        self
    }

    /// Use your own deadpool-redis cluster pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::redis::deadpool_redis;
    ///
    /// let pool = deadpool_redis::cluster::Config::from_urls(vec!["redis://127.0.0.1:7001".into()])
    ///     .create_pool(Some(deadpool_redis::cluster::Runtime::Tokio1))
    ///     .unwrap();
    /// let store = session_kit::RedisStore::builder().cluster_pool(pool).build();
    /// assert!(store.is_ok());
    /// ```
    #[cfg(feature = "cluster")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
    pub fn cluster_pool(mut self, pool: deadpool_redis::cluster::Pool) -> Self {
        self.target = Target::ClusterPool(pool);
        self
    }

    /// The prefix of every key the store writes: `<prefix>s:<session key>` for a session
    /// and `<prefix>u:<user id>` for a user's index. In a cluster, a prefix containing a
    /// hash tag (`{...}`) puts every key in one slot: don't, unless that is what you want.
    ///
    /// # Examples
    ///
    /// ```
    /// let store = session_kit::RedisStore::builder().url("redis://127.0.0.1/").key_prefix("app1:").build()?;
    /// assert_eq!(store.key_prefix(), "app1:");
    /// # Ok::<(), session_kit::StoreError>(())
    /// ```
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How many multiplexed connections the store holds (at least 1; each carries any
    /// number of concurrent operations, pipelined). One connection batches concurrent
    /// commands best and is the default; more can help when a single connection's I/O
    /// task saturates a core. When the store builds the pool from a URL this is also the
    /// pool's maximum size.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = session_kit::RedisStore::builder().url("redis://127.0.0.1/").pool_size(0).build();
    /// assert!(err.is_err());
    /// ```
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// Time allowed for opening one connection.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let b = session_kit::RedisStore::builder().connect_timeout(Duration::from_millis(300));
    /// # let _ = b;
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for waiting on the pool for a connection.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let b = session_kit::RedisStore::builder().wait_timeout(Duration::from_millis(300));
    /// # let _ = b;
    /// ```
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = timeout;
        self
    }

    /// Time allowed for the commands of one step of an operation, from send to answer.
    /// When it passes, the operation fails with `StoreError::Unavailable` and the connection
    /// is replaced.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let b = session_kit::RedisStore::builder().response_timeout(Duration::from_millis(100));
    /// # let _ = b;
    /// ```
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Time allowed for one whole store call from the moment it starts: waiting for or
    /// opening a connection, every command it sends (a script reloaded after a restart
    /// included) and the replica acknowledgement of
    /// [`wait_for_replicas`](Self::wait_for_replicas). When it passes, the call fails with
    /// `StoreError::Unavailable`, so a request never waits longer than this on a server
    /// that has frozen, whatever step it was at (the other timeouts bound each step
    /// within it). Default: the [`response_timeout`](Self::response_timeout), plus the
    /// replica wait when writes wait for replicas. `delete_expired`, a background sweep
    /// over every indexed user, is bounded per command only.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let b = session_kit::RedisStore::builder().operation_timeout(Duration::from_millis(300));
    /// # let _ = b;
    /// ```
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = Some(timeout);
        self
    }

    /// Acknowledge a write (`create`, `update`, `touch`, the deletes, index writes) only
    /// once `replicas` replicas have it: `WAIT replicas timeout` is sent after each write
    /// command, in the same round trip. `0` turns it off. Default: with
    /// [`sentinel`](Self::sentinel), 1 replica within [`DEFAULT_REPLICA_WAIT`] (or half the
    /// response timeout if that is less); otherwise off.
    ///
    /// Why: after a Sentinel failover the old master keeps accepting writes from the
    /// connections it has until Sentinel reconfigures it (about ten seconds), and then
    /// discards them. Its replica, promoted, no longer acknowledges them, so with this
    /// setting those writes answer [`StoreError::Unavailable`] instead of being lost
    /// silently, and the connection is replaced by one to the new master.
    ///
    /// When fewer replicas answer in time: with Sentinel the store asks the sentinels
    /// (`SENTINEL GET-MASTER-ADDR-BY-NAME` and `SENTINEL MASTER`; every sentinel must
    /// answer, agree, and not be running a failover). If they name this server (compared with the address the server gives in `CLIENT INFO`, so
    /// sentinels announcing other addresses than the server sees make every shortfall
    /// `Unavailable`), the write is acknowledged with a warning: a master whose replica is
    /// down stays writable, each write paying `timeout` plus the check. Otherwise the
    /// write answers `Unavailable` (it may have run on a server about to discard it).
    /// Without Sentinel a shortfall is always `Unavailable`. `timeout` must be less than
    /// the [`response_timeout`](Self::response_timeout). Not available for a cluster
    /// (whose `CLUSTER FAILOVER` waits for the replica to catch up by itself).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let store = session_kit::RedisStore::builder()
    ///     .url("redis://127.0.0.1/")
    ///     .wait_for_replicas(1, Duration::from_millis(50))
    ///     .build();
    /// assert!(store.is_ok());
    /// ```
    pub fn wait_for_replicas(mut self, replicas: usize, timeout: Duration) -> Self {
        self.replica_acks = Some((replicas, timeout));
        self
    }

    /// Builds the store without connecting: the first operation opens the connections
    /// (and every later one reconnects by itself after an outage). Works for every kind
    /// of server ([`url`](Self::url), [`pool`](Self::pool), `sentinel`, `cluster_urls`,
    /// `cluster_pool`); see [`connect`](Self::connect) for a store that has reached its
    /// server before it is returned.
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] (with a [`ConfigError`] source) for a missing or invalid
    /// URL, a zero pool size or zero timeouts.
    ///
    /// # Examples
    ///
    /// ```
    /// let store = session_kit::RedisStore::builder().url("redis://127.0.0.1/").build()?;
    /// # let _ = store;
    /// # Ok::<(), session_kit::StoreError>(())
    /// ```
    pub fn build(self) -> StoreResult<RedisStore> {
        self.build_store().map_err(config)
    }

    /// Connects to the standalone Redis at `url` (as [`url`](Self::url) takes it) with
    /// this builder's settings, and checks that it answers (`PING`) before returning the
    /// store, as `SqlStoreBuilder::connect` does for a database. For Sentinel, a cluster
    /// or your own pool, [`build`](Self::build) then [`RedisStore::ping`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] (with a [`ConfigError`] source) for an invalid URL or
    /// setting, or a `rediss://` URL without a TLS feature;
    /// [`StoreError::Unavailable`] when the server cannot be reached within
    /// `wait_timeout + connect_timeout` or does not answer within `response_timeout`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::StoreError> {
    /// let store = session_kit::RedisStore::builder()
    ///     .key_prefix("myapp:session:")
    ///     .connect("redis://127.0.0.1:6379")
    ///     .await?;
    /// assert_eq!(store.key_prefix(), "myapp:session:");
    /// # Ok(()) }
    /// ```
    pub async fn connect(self, url: &str) -> StoreResult<RedisStore> {
        let store = self.url(url).build()?;
        store.ping().await?;
        Ok(store)
    }

    fn build_store(self) -> Result<RedisStore, ConfigError> {
        if self.pool_size == 0 {
            return Err(ConfigError::Invalid("pool_size must be at least 1"));
        }
        if self.connect_timeout.is_zero()
            || self.wait_timeout.is_zero()
            || self.response_timeout.is_zero()
            || self.operation_timeout.is_some_and(|t| t.is_zero())
        {
            return Err(ConfigError::Invalid("timeouts must be above zero"));
        }
        #[cfg_attr(not(feature = "sentinel"), allow(unused_mut))]
        let mut acks = match self.replica_acks {
            Some((0, _)) => None,
            Some((n, timeout)) => {
                if timeout.is_zero() || timeout >= self.response_timeout {
                    return Err(ConfigError::Invalid(
                        "wait_for_replicas: the timeout must be above zero and below response_timeout",
                    ));
                }
                Some(ReplicaAcks::new(n, timeout, None))
            }
            None => None,
        };
        let source = match self.target {
            Target::None => return Err(ConfigError::NoServer),
            Target::Url(url) => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.connect_timeout))
                    .set_response_timeout(Some(self.response_timeout));
                let info = match self.tls_root {
                    #[cfg(any(feature = "tls-rustls", feature = "tls-native-tls"))]
                    Some(pem) => redis::Client::build_with_tls(
                        url.as_str(),
                        redis::TlsCertificates {
                            client_tls: None,
                            root_cert: Some(pem),
                        },
                    )
                    .map_err(ConfigError::InvalidUrl)?
                    .get_connection_info()
                    .clone(),
                    _ => redis::IntoConnectionInfo::into_connection_info(url.as_str())
                        .map_err(ConfigError::InvalidUrl)?,
                };
                let manager = deadpool_redis::Manager::new_with_config(info, config)
                    .map_err(ConfigError::InvalidUrl)?;
                let pool = deadpool_redis::Pool::builder(manager)
                    .max_size(self.pool_size)
                    .wait_timeout(Some(self.wait_timeout))
                    .create_timeout(Some(self.connect_timeout))
                    .recycle_timeout(Some(self.response_timeout))
                    .runtime(deadpool_redis::Runtime::Tokio1)
                    .build()
                    .map_err(ConfigError::Pool)?;
                Source::Single(pool)
            }
            Target::Pool(pool) => Source::Single(pool),
            #[cfg(feature = "sentinel")]
            Target::Sentinel { urls, service } => {
                if urls.is_empty() {
                    return Err(ConfigError::NoServer);
                }
                let mut sentinel_acks = match (self.replica_acks, acks) {
                    (Some(_), acks) => acks,
                    (None, _) => Some(ReplicaAcks::new(
                        1,
                        DEFAULT_REPLICA_WAIT.min(self.response_timeout / 2),
                        None,
                    )),
                };
                if let Some(a) = &mut sentinel_acks {
                    a.sentinels = Some((urls.clone(), service.clone()));
                }
                acks = sentinel_acks;
                let manager = deadpool_redis::sentinel::Manager::new(
                    urls,
                    service,
                    None,
                    deadpool_redis::sentinel::SentinelServerType::Master,
                )
                .map_err(ConfigError::InvalidUrl)?;
                let pool = deadpool_redis::sentinel::Pool::builder(manager)
                    .max_size(self.pool_size)
                    .wait_timeout(Some(self.wait_timeout))
                    .create_timeout(Some(self.connect_timeout))
                    .recycle_timeout(Some(self.response_timeout))
                    .runtime(deadpool_redis::Runtime::Tokio1)
                    .build()
                    .map_err(ConfigError::Pool)?;
                Source::Sentinel(pool)
            }
            #[cfg(feature = "cluster")]
            Target::ClusterUrls(urls) => {
                if acks.is_some() {
                    return Err(cluster_acks());
                }
                if urls.is_empty() {
                    return Err(ConfigError::NoServer);
                }
                let manager = deadpool_redis::cluster::Manager::new(urls, false)
                    .map_err(ConfigError::InvalidUrl)?;
                let pool = deadpool_redis::cluster::Pool::builder(manager)
                    .max_size(self.pool_size)
                    .wait_timeout(Some(self.wait_timeout))
                    .create_timeout(Some(self.connect_timeout))
                    .recycle_timeout(Some(self.response_timeout))
                    .runtime(deadpool_redis::Runtime::Tokio1)
                    .build()
                    .map_err(ConfigError::Pool)?;
                Source::Cluster(pool)
            }
            #[cfg(feature = "cluster")]
            Target::ClusterPool(pool) => {
                if acks.is_some() {
                    return Err(cluster_acks());
                }
                Source::Cluster(pool)
            }
        };
        let operation_timeout = self.operation_timeout.unwrap_or_else(|| {
            self.response_timeout + acks.as_ref().map_or(Duration::ZERO, |a| a.timeout)
        });
        let conns = Connections::new(
            source,
            acks,
            self.pool_size,
            self.wait_timeout + self.connect_timeout,
            self.response_timeout,
            operation_timeout,
        );
        Ok(RedisStore {
            inner: Arc::new(Inner {
                conns,
                prefix: self.prefix,
            }),
        })
    }
}
