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
//!
//! The session model is Django's and Plain's: lazy loading, a fresh key on every create,
//! `cycle_key` at login, `flush` at logout, idle and absolute expiry; plus what the other
//! Rust libraries lack: compare-and-swap saves that never lose a concurrent request's
//! changes, a user index ("log out everywhere else"), and a public conformance suite for
//! custom stores.
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
//! let next = Session::new(store, config, Some(key.as_str()));
//! assert_eq!(next.get::<Vec<String>>("cart").await?.unwrap().len(), 2);
//! # Ok(()) }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

pub use session_core::*;

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
