//! # session
//!
//! Server-side web sessions for Rust with pluggable storage. The cookie holds only a
//! random key; the data (a login, a cart, a CSRF token) stays on the server in the store you
//! pick with a feature flag:
//!
//! | feature | store | crate |
//! | --- | --- | --- |
//! | `memory` (default) | [`MemoryStore`] | `session-memory` |
//! | `sqlite`, `postgres`, `mysql` | `SqlStore` | `session-sql` |
//! | `redis`, `redis-cluster` | `RedisStore` | `session-redis` |
//! | `signed` | `SignedCodec`: Django/Plain session data (with `sql::InteropStore` for their tables) | `session-signed` |
//! | `axum` | `SessionLayer`, `HttpSession`: the tower layer and the axum extractor | `session-tower` |
//! | `serde` | `Serialize`/`Deserialize` for [`Record`] and [`SessionKey`], for custom stores | `session-core` |
//! | `cache` | `CachedStore`: a memory or Redis front before a durable store (Django's `cached_db`) | `session-combinators` |
//! | `hashed-keys` | `HashedKeys`: session keys stored as an HMAC, not replayable from a dump | `session-combinators` |
//!
//! The session model is Django's and Plain's: lazy loading, a fresh key on every create,
//! [`Session::login`] (a new key against session fixation; a flush when another user was
//! logged in) and [`Session::logout`], idle and absolute expiry; plus what the other Rust
//! libraries lack: compare-and-swap saves that never lose a concurrent request's changes,
//! an atomic read-modify-write ([`Session::update`]), key rotation that cannot resurrect a
//! logged-out session, a user index ("log out everywhere else"), and a public conformance
//! suite for custom stores.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), session::Error> {
//! use std::sync::Arc;
//! use session::{CookieAction, MemoryStore, Session, SessionConfig, SessionStore};
//!
//! let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
//! let config = Arc::new(SessionConfig::default());
//!
//! let session = Session::new(store.clone(), config.clone(), None);
//! session.insert("cart", vec!["apple", "pear"]).await?;
//! let CookieAction::Set { key, .. } = session.save().await? else { unreachable!() };
//!
//! // A later request: log in (the key changes at save), count a visit atomically.
//! let next = Session::new(store.clone(), config.clone(), Some(key.as_str()));
//! next.login("alice").await?;
//! // Read-modify-write with `update`, not get + insert: concurrent requests compose (a plain
//! // `insert` of the same key is last-writer-wins).
//! next.update("visits", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
//! let CookieAction::Set { key: logged_in, .. } = next.save().await? else { unreachable!() };
//! assert_ne!(logged_in, key);
//!
//! let later = Session::new(store.clone(), config, Some(logged_in.as_str()));
//! assert_eq!(later.get::<Vec<String>>("cart").await?.map(|c| c.len()), Some(2));
//! assert_eq!(later.get::<u64>("visits").await?, Some(1));
//! assert_eq!(later.user_id().await?.as_deref(), Some("alice"));
//!
//! // "Log out everywhere", through the store's optional user index.
//! assert_eq!(store.delete_for_user("alice", None).await?, 1);
//! # Ok(()) }
//! ```
//!
//! # Errors
//!
//! The handle answers [`Error`]: [`Error::Store`] wraps a [`StoreError`] (what a
//! [`SessionStore`] answers, as a [`StoreResult`]), whose [`StoreError::Config`] holds a
//! [`ConfigError`] (a bad URL, a disabled feature) found before anything reached a server;
//! [`Error::Interrupted`] means the session was deleted or revoked while the request used it
//! (the HTTP layer answers 400) and [`Error::TooLarge`] that it went over the size limit
//! (413).
//!
//! ```
//! use session::{ConfigError, Error, StoreError, StoreResult};
//!
//! fn connect(url: &str) -> StoreResult<()> {
//!     Err(ConfigError::feature_disabled(url, "postgres").into())
//! }
//! let err: Error = connect("postgres://db/app").unwrap_err().into();
//! assert!(matches!(err, Error::Store(StoreError::Config(_))));
//! assert!(!err.is_unavailable());
//! ```
//!
//! # Custom stores
//!
//! Implement the five required methods of [`SessionStore`]; add the optional capabilities
//! [`UserIndex`] and [`ExpiredCleanup`] only if the store can do them, and return them from
//! [`SessionStore::user_index`] / [`SessionStore::expired_cleanup`]. Prove it with the
//! `session-conformance` crate.
//!
//! ```
//! use session::{ExpiredCleanup, MemoryStore, SessionStore, UserIndex};
//!
//! let store = MemoryStore::new();
//! let index: Option<&dyn UserIndex> = store.user_index();
//! let cleanup: Option<&dyn ExpiredCleanup> = store.expired_cleanup();
//! assert!(index.is_some() && cleanup.is_some());
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

pub use session_core::*;
// Named explicitly as well, so the contract types stay visible in this crate's docs.
pub use session_core::{
    ConfigError, ExpiredCleanup, Record, SessionStore, StoreError, StoreResult, UserIndex,
};

#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
pub use session_memory::MemoryStore;

/// Django/Plain-compatible signed session data: see [`SignedCodec`].
#[cfg(feature = "signed")]
#[cfg_attr(docsrs, doc(cfg(feature = "signed")))]
pub use session_signed::{self as signed, Salt, SignedCodec};

/// HTTP integration: the tower [`SessionLayer`] with Django's cookie rules and the axum
/// [`HttpSession`] extractor.
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use session_tower::{
    CookieConfigError, DefaultSession, DeviceMetadata, HttpSession, IpSource, MissingSessionLayer,
    SameSite, SessionError, SessionLayer, SessionService,
};

/// SQL stores on PostgreSQL, SQLite and MySQL/MariaDB: see [`SqlStore`] and the [`sql`]
/// module for its builder and options.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql")))
)]
pub use session_sql::{self as sql, SqlStore, SqlStoreBuilder, TableLayout, TableName};

/// The Redis store (standalone; Redis Cluster with `redis-cluster`): see [`RedisStore`]
/// and the [`redis`] module for its builder, key layout and consistency notes.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use session_redis::{self as redis, RedisStore, RedisStoreBuilder};

/// A fast front store before a durable one: see [`CachedStore`] (shared and per-process
/// arrangements, what each guarantees).
#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
pub use session_combinators::{
    Arrangement, CachedStore, DEFAULT_PER_PROCESS_TTL, DEFAULT_SHARED_TTL,
};

/// Session keys hashed at rest: see [`HashedKeys`] (device identifiers, not for the
/// Django/Plain layouts).
#[cfg(feature = "hashed-keys")]
#[cfg_attr(docsrs, doc(cfg(feature = "hashed-keys")))]
pub use session_combinators::{HashedKeys, MIN_SECRET_LEN};
