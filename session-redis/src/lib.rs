//! # session-redis
//!
//! **Most users add `session-kit` with feature `redis`**
//! (`session-kit = { version = "0.1", features = ["redis"] }`) **and reach this crate as
//! `session_kit::redis`**: [`RedisStore`] is `session_kit::RedisStore` and
//! [`RedisStoreBuilder`] `session_kit::RedisStoreBuilder`; the rest ([`ConfigError`],
//! [`DEFAULT_PREFIX`], [`deadpool_redis`], ...) is `session_kit::redis::X`. This crate's
//! features `cluster`, `sentinel`, `tls-rustls` and `tls-native-tls` are `session-kit`'s
//! `redis-cluster`, `redis-sentinel`, `redis-tls-rustls` and `redis-tls-native-tls`. The
//! examples on these pages use those paths and are compiled against `session-kit`, so they
//! can be pasted into such an application; `session_kit::guide::stores` has more.
//!
//! [`RedisStore`]: a [`SessionStore`] on Redis, over [`redis`] and [`deadpool_redis`],
//! for a single node or (feature `cluster`) a Redis Cluster. It passes the same
//! conformance suite as the SQL and memory stores, and has both optional capabilities:
//! [`UserIndex`] (`list_for_user`, `delete_for_user`) and [`ExpiredCleanup`]
//! (`delete_expired`, which prunes the user index), reached through
//! [`SessionStore::user_index`] and [`SessionStore::expired_cleanup`] (both `Some`).
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use session_kit::{RedisStore, Session, SessionConfig, SessionStore};
//!
//! // `RedisStore::connect(url)` with the defaults; the builder for settings. Both check
//! // that the server answers; `.url(url).build()` instead connects at the first operation.
//! let store = RedisStore::builder()
//!     .key_prefix("myapp:session:")
//!     .response_timeout(Duration::from_millis(500))
//!     .connect("redis://127.0.0.1:6379")
//!     .await?;
//! let store: Arc<dyn SessionStore> = Arc::new(store);
//! let session = Session::new(store, Arc::new(SessionConfig::default()), None);
//! session.insert("cart", vec!["apple"]).await?;
//! session.save().await?;
//! # Ok(()) }
//! ```
//!
//! ## How a session is stored
//!
//! One Redis string per session at `<prefix>s:<key>`, holding a small fixed header
//! (expiry, last activity, version, creation time, lengths) followed by the user id, the
//! device metadata and the codec's data. Its Redis expiry is set with `PXAT` to the
//! record's `expires_at` (milliseconds), so Redis frees it by itself; every read and
//! compare-and-swap also compares the stored expiry with the client's clock, so "expired counts as absent"
//! holds to the millisecond even before Redis has evicted the key. A record created or
//! updated with an expiry in the past is simply not stored. A value at a session key that
//! is not in this format (another program's data, another Redis type) gives
//! [`StoreError::CorruptRecord`], never a panic.
//!
//! ## Commands per operation (happy path)
//!
//! | operation | standalone | cluster |
//! | --- | --- | --- |
//! | `load` | 1 `GET` | 1 `GET` |
//! | `exists` | 1 `GETRANGE` | 1 `GETRANGE` |
//! | `create` | 1 `SET NX PXAT` without a user; with one, 1 `EVALSHA` (writes the index entry in the same script) | 1 `SET NX PXAT`; with a user, `ZADD` on the index first (2 round trips) |
//! | `update` | 1 `EVALSHA` (compare-and-swap: `GETRANGE` of the fixed header, `SET` of the value the client built; index entry in the same script when the user changed) | 1 `EVALSHA`; when the user changes, `ZADD` then `EVALSHA` again (3 round trips) |
//! | `touch` | 1 `EVALSHA` (`PEXPIREAT` + `SETRANGE` of the expiry and last-active fields; data and version untouched) | same |
//! | `delete` | 1 `DEL` | same |
//! | `delete_at_version` | 1 `EVALSHA` (compare-and-delete: `GETRANGE` of the header, version check, `DEL`; the data is never read) | same (the index is not touched, as for `delete`) |
//! | `list_for_user` | `ZRANGE`, `MGET`, and a pruning `EVALSHA` when stale entries were seen | same (`MGET` split per slot) |
//! | `delete_for_user` | `ZRANGE`, one `EVALSHA` per session (sent concurrently, pipelined on the connection), pruning `EVALSHA` | same |
//! | `delete_expired` | `SCAN` over `<prefix>u:*`, then as `list_for_user` per index | `SCAN` on every master |
//!
//! With [`wait_for_replicas`](RedisStoreBuilder::wait_for_replicas) (the default with
//! Sentinel) each write command is followed by a `WAIT` on its connection, shared by the
//! writes answered before it was sent.
//!
//! `delete_at_version` is the compare-and-delete that key rotation (`cycle_key`, `login`)
//! runs on the old record: one round trip, where the trait's default (a compare-and-swap
//! `update` to an expired tombstone, then a `delete`) takes two. It deletes only a record
//! that is live by the caller's clock and stored at the expected version, atomically
//! (one script); otherwise it answers [`StoreError::NotFound`] or
//! [`StoreError::Conflict`] and leaves the key as it was.
//!
//! A `create` whose `SET NX` is refused runs a script that tells a live record
//! ([`StoreError::KeyExists`]) from an expired one (replaced) or a foreign value
//! ([`StoreError::CorruptRecord`]). `delete` relies on Redis's own expiry: every record
//! carries a Redis expiry at its `expires_at`, so a key Redis still holds is a live record.
//!
//! Values carry a format tag (`s2`, with a fixed-width header); values of the previous
//! format (`s1`) are read by every operation, so sessions survive an upgrade, and are
//! rewritten in the current format by their next `update`.
//!
//! Scripts run with `EVALSHA`; when a server's script cache is empty (after a restart or
//! `SCRIPT FLUSH`) the first call answers `NOSCRIPT`, and [`redis::Script`] loads the script
//! and retries once.
//!
//! ## The user index and what consistency it keeps
//!
//! Each user with sessions has a sorted set `<prefix>u:<user id>`: member = session key,
//! score = when the entry was written (milliseconds). The guarantees, in both modes:
//!
//! 1. **A session is never listed after it is gone**, nor listed for a user it no longer
//!    belongs to: `list_for_user` loads every indexed session and keeps only live records
//!    whose stored `user_id` is that user. `delete_for_user` deletes a session only when
//!    its stored `user_id` is that user (checked inside the per-session script).
//! 2. **Every live session of a user is in that user's index** once the `create` or
//!    `update` that gave it that user has returned: the index entry is written before
//!    (cluster) or atomically with (standalone, same script) the session itself. So
//!    "log out everywhere" never misses a session that was logged in before it started.
//! 3. **The index may hold stale entries**: sessions deleted (`delete`,
//!    `delete_at_version` and `touch` never touch the index), expired, or moved to
//!    another user; in cluster mode also an entry written for a `create` or `update` that
//!    then failed. Reads filter them (rule 1) and prune them; `delete_expired` prunes them in every index and returns how many it
//!    removed. Entries of expired sessions are pruned at once. In cluster mode an entry
//!    pointing at a missing session or at another user's session is pruned only once it
//!    is older than a grace period (at least a minute; more with long timeouts), because
//!    its session write may still be on its way (rule 2 writes the entry first); without
//!    this a concurrent read could drop the entry of a session being created. Pruning is
//!    also conditional: an entry is removed only if its score is still the one the reader
//!    saw, so an entry written again meanwhile stays.
//!
//! Index keys have no Redis expiry (a `touch` would have to keep it in step), so run the
//! periodic cleanup ([`session_core::spawn_cleanup`], which calls `delete_expired`): it
//! removes the entries of sessions that Redis has expired, and with them the index keys of
//! users who do not come back. `delete_expired` walks every index (`SCAN`), so schedule
//! it every few minutes to hours, not per request.
//!
//! In standalone mode each script touches only keys it is given (a session key, and the
//! index key of the record's own user), so the same scripts are valid in a cluster, where
//! the session key and the index key are in different hash slots and so are written by
//! separate commands, in the order above.
//!
//! ## Connections
//!
//! deadpool-redis recycles a connection on every checkout with `UNWATCH` + `PING`, an
//! extra network round trip per operation that it offers no setting to skip. Redis
//! connections are multiplexed (any number of tasks share one socket, their commands
//! pipelined), so the store does not check out a connection per operation: it takes
//! [`pool_size`](RedisStoreBuilder::pool_size) connections out of the pool
//! (`Connection::take`) and uses them round-robin. The pool remains the single place where
//! connections are made (your own pool, with its settings, or the one built from a URL),
//! with its wait and create timeouts. A connection that fails with a connection-level
//! error or a timeout is dropped and replaced from the pool by the next operation, so
//! the store recovers by itself when the server returns.
//!
//! ## Sentinel, failover and acknowledged writes
//!
//! With [`RedisStoreBuilder::sentinel`] every new connection asks the sentinels for the
//! master. A failover alone does not move the existing connections: Sentinel promotes a
//! replica at once but reconfigures the old master only seconds later (about ten, as
//! measured), and until then the old master keeps accepting writes from the connections
//! it has, then discards them when it resynchronises. So a Sentinel store waits for a
//! replica by default ([`RedisStoreBuilder::wait_for_replicas`]: `WAIT 1 200` after each
//! write, one `WAIT` shared by every write answered on the connection before it was
//! sent). A write the promoted replica never got is then answered
//! [`StoreError::Unavailable`], the sentinels are asked, and a connection to a server that
//! is no longer the master is replaced. When the master simply has no replica answering
//! (it is down, or a failover just finished and the old master has not rejoined), the
//! write is acknowledged once every sentinel names this server as the master and none is
//! running a failover; each such write pays the wait (200 ms) and the check.
//!
//! Measured (`tests/sentinel_failover.rs`, 4 tasks of create + update + load, one replica,
//! three sentinels): no acknowledged write lost (0 of 1,403; 22,362 of 25,775 were lost
//! before this wait), the last `Unavailable` 1.6 s after `SENTINEL FAILOVER`, writes at
//! 200 ms each on the new master until the old master rejoins it as a replica (11 s).
//! In a cluster, `CLUSTER FAILOVER` makes the replica catch up before it takes over, and
//! the test (`tests/cluster_failover.rs`) measures no acknowledged write lost without
//! waiting.
//!
//! ## TLS
//!
//! With the feature `tls-rustls` (rustls with ring) or `tls-native-tls` (the platform's
//! TLS library, OpenSSL on Linux), `rediss://` URLs connect over TLS, for standalone and
//! cluster URLs alike:
//!
//! ```no_run
//! let store = session_kit::RedisStore::builder()
//!     .url("rediss://redis.internal:6380")
//!     .build()?;
//! # Ok::<(), session_kit::StoreError>(())
//! ```
//!
//! The server's certificate is checked against the platform's root certificates, or
//! against a private CA given to [`RedisStoreBuilder::tls_root_certificate`]. (With both
//! features on, the `redis` crate uses rustls and, without a CA given here, no root
//! certificates at all: turn on one.) Without either feature a `rediss://` URL fails at the first operation with
//! [`StoreError::Config`].
//!
//! ## Cost
//!
//! `load` is one `GET` plus decoding, close to a raw `GET`. `update` must compare the
//! version and write in one atomic step, and Redis (7.x) has no compare-and-set command,
//! so it runs a Lua script: one round trip, but several microseconds of server CPU per
//! call (the scripting engine's fixed cost and two `redis.call`s) where a plain `SET`
//! takes about one. At low concurrency this adds a little latency; when the Redis server's
//! CPU is the bottleneck, updates per second are a fraction of raw `SET`s per second. That
//! is the price of never losing a concurrent request's changes and never resurrecting a
//! logged-out session. `touch` (a script that rewrites two header fields in place) is
//! cheaper than `update` for extending idle sessions.
//!
//! ## Errors
//!
//! Every operation answers a [`StoreResult`]:
//!
//! | cause | error |
//! | --- | --- |
//! | connection refused or lost, I/O error, cluster down, no connection within `wait_timeout + connect_timeout`, no answer within `response_timeout` | [`StoreError::Unavailable`] (with the source) |
//! | a client setting the `redis` crate rejects only when connecting (such as `rediss://` without the `tls-rustls` or `tls-native-tls` feature), a caller's pool built without a runtime | [`StoreError::Config`] (with the source) |
//! | a value of another format or Redis type at a session key | [`StoreError::CorruptRecord`] |
//! | anything else (a script error, a permission error) | [`StoreError::Backend`] (with the source) |
//!
//! Mistakes the builder can see (no server, a malformed URL, a zero pool size) fail
//! [`RedisStoreBuilder::build`] and [`RedisStore::connect`] with [`StoreError::Config`],
//! whose source is this crate's [`ConfigError`] (as with `session_kit::sql`).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod builder;
mod conn;
mod format;
mod scripts;
mod store;

use std::sync::Arc;

pub use builder::{
    ConfigError, RedisStoreBuilder, DEFAULT_POOL_SIZE, DEFAULT_PREFIX, DEFAULT_REPLICA_WAIT,
    DEFAULT_TIMEOUT,
};
pub use conn::TimedOut;
/// The deadpool-redis version this crate is built on, for building your own pool.
pub use deadpool_redis;
/// The redis version this crate is built on.
pub use redis;
#[doc(no_inline)]
pub use session_core::{ExpiredCleanup, SessionStore, StoreError, StoreResult, UserIndex};

/// A [`SessionStore`] on Redis or (feature `cluster`) Redis Cluster. Cheap to clone (the
/// clones share connections).
///
/// Built with [`RedisStore::connect`] or [`RedisStore::builder`]; see the crate docs for the
/// storage layout, the user index's consistency and the commands per operation.
///
/// # Examples
///
/// ```
/// use session_kit::RedisStore;
///
/// let store = RedisStore::builder().url("redis://127.0.0.1:6379").build()?;
/// assert_eq!(store.key_prefix(), "session:");
/// assert!(!store.is_cluster());
/// # Ok::<(), session_kit::StoreError>(())
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    conns: conn::Connections,
    prefix: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .field("connections", &self.inner.conns)
            .finish()
    }
}

impl RedisStore {
    /// A builder (see [`RedisStoreBuilder`] for every setting and its default).
    ///
    /// # Examples
    ///
    /// ```
    /// let store = session_kit::RedisStore::builder().url("redis://127.0.0.1/").build()?;
    /// # let _ = store;
    /// # Ok::<(), session_kit::StoreError>(())
    /// ```
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder::new()
    }

    /// Connects to the standalone Redis at `url` with the default settings and checks
    /// that it answers (`PING`); see [`RedisStoreBuilder::connect`] for the URL forms and
    /// [`RedisStoreBuilder::build`] for a store that connects at its first operation.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the server cannot be reached in time;
    /// [`StoreError::Config`] for a bad URL (see [`RedisStoreBuilder::connect`]).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), session_kit::StoreError> {
    /// let store = session_kit::RedisStore::connect("redis://127.0.0.1:6379").await?;
    /// assert_eq!(store.key_prefix(), session_kit::redis::DEFAULT_PREFIX);
    /// # Ok(()) }
    /// ```
    ///
    /// A URL that is not a Redis URL fails before anything is sent:
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let err = session_kit::RedisStore::connect("not a url").await.unwrap_err();
    /// assert!(matches!(err, session_kit::StoreError::Config(_)));
    /// # }
    /// ```
    pub async fn connect(url: &str) -> StoreResult<Self> {
        RedisStoreBuilder::new().connect(url).await
    }

    /// The key prefix.
    ///
    /// # Examples
    ///
    /// ```
    /// let store = session_kit::RedisStore::builder().url("redis://127.0.0.1/").build()?;
    /// assert_eq!(store.key_prefix(), session_kit::redis::DEFAULT_PREFIX);
    /// # Ok::<(), session_kit::StoreError>(())
    /// ```
    pub fn key_prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// Whether the store talks to a Redis Cluster.
    ///
    /// # Examples
    ///
    /// ```
    /// let store = session_kit::RedisStore::builder().url("redis://127.0.0.1/").build()?;
    /// assert!(!store.is_cluster());
    /// # Ok::<(), session_kit::StoreError>(())
    /// ```
    pub fn is_cluster(&self) -> bool {
        self.inner.conns.is_cluster()
    }

    /// The Redis key of a session (`<prefix>s:<key>`), for inspection and tooling.
    ///
    /// # Examples
    ///
    /// ```
    /// let store = session_kit::RedisStore::builder().url("redis://127.0.0.1/").key_prefix("p:").build()?;
    /// let key: session_kit::SessionKey = "abcdefghijklmnopqrstuvwxyz012345".parse().unwrap();
    /// assert_eq!(store.session_key(&key), "p:s:abcdefghijklmnopqrstuvwxyz012345");
    /// # Ok::<(), session_kit::StoreError>(())
    /// ```
    pub fn session_key(&self, key: &session_core::SessionKey) -> String {
        let mut out = String::with_capacity(self.inner.prefix.len() + 2 + key.as_str().len());
        out.push_str(&self.inner.prefix);
        out.push_str("s:");
        out.push_str(key.as_str());
        out
    }

    /// The Redis key of a user's index (`<prefix>u:<user id>`).
    ///
    /// # Examples
    ///
    /// ```
    /// let store = session_kit::RedisStore::builder().url("redis://127.0.0.1/").key_prefix("p:").build()?;
    /// assert_eq!(store.user_index_key("alice"), "p:u:alice");
    /// # Ok::<(), session_kit::StoreError>(())
    /// ```
    pub fn user_index_key(&self, user_id: &str) -> String {
        format!("{}u:{user_id}", self.inner.prefix)
    }

    /// Checks that the server answers (`PING`), for readiness probes.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the server cannot be reached in time.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = session_kit::RedisStore::builder().url("redis://127.0.0.1/").build()?;
    /// store.ping().await?;
    /// # Ok(()) }
    /// ```
    pub async fn ping(&self) -> StoreResult<()> {
        let conns = &self.inner.conns;
        let lease = conns.lease().await?;
        let pong: String = conns.query(&lease, &redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(StoreError::backend(std::io::Error::other(
                "unexpected answer to PING",
            )))
        }
    }
}
