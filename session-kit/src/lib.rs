//! # session-kit
//!
//! Server-side web sessions for Rust with pluggable storage. The cookie holds only a
//! random key; the data (a login, a cart, a CSRF token) stays on the server in the store you
//! pick with a feature flag:
//!
//! | feature | store | crate |
//! | --- | --- | --- |
//! | `memory` (default) | [`MemoryStore`] | `session-memory` |
//! | `sqlite`, `postgres`, `mysql` | `SqlStore` | `session-sql` |
//! | `redis`, `redis-cluster`, `redis-sentinel` | `RedisStore` (standalone, Cluster, Sentinel) | `session-redis` |
//! | `redis-tls-rustls`, `redis-tls-native-tls` | `rediss://` URLs for `RedisStore` | `session-redis` |
//! | `django` | `SignedCodec`: the Django/Plain session *data* codec (with `sql::InteropStore` for their tables); not signed cookies | `session-signed` |
//! | `axum` | `SessionLayer`, `HttpSession`: the tower layer and the axum extractor | `session-tower` |
//! | `actix` | `SessionMiddleware`, `ActixSession` (and the `actix` module): actix-web 4 | `session-actix` |
//! | `metrics` | store operations by outcome, latencies, conflicts, retries through the `metrics` facade | `session-core` |
//! | `serde` | `Serialize`/`Deserialize` for [`Record`] and [`SessionKey`], for custom stores | `session-core` |
//! | `cache` | `CachedStore`: a memory or Redis front before a durable store (Django's `cached_db`) | `session-combinators` |
//! | `hashed-keys` | `HashedKeys`: session keys stored as an HMAC, not replayable from a dump | `session-combinators` |
//!
//! Open a store with [`connect`] (one URL for every backend, SQL tables migrated), put it
//! behind the HTTP layer of your framework, and use the session in handlers: the
//! [`guide`] module walks through each step with code you can paste, and the README has a
//! complete axum app.
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
//! The handle without a web framework (the HTTP layers do the cookie part for you):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), session_kit::Error> {
//! use std::sync::Arc;
//! use session_kit::{CookieAction, MemoryStore, Session, SessionConfig, SessionStore};
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
//! # The main types, and where their guide is
//!
//! | what | type or function | guide |
//! | --- | --- | --- |
//! | open a store from a URL (SQL tables migrated) | [`connect`], [`ConnectOptions`] | [`guide::stores`] |
//! | a store's own builder | `SqlStore::builder()`, `RedisStore::builder()`, [`MemoryStore`] | [`guide::stores`] |
//! | delete expired records | [`spawn_cleanup`] | [`guide::stores`] |
//! | the axum / tower layer and extractor | `SessionLayer`, `HttpSession` (feature `axum`) | [`guide::axum`] |
//! | the actix-web middleware and extractor | `SessionMiddleware`, `ActixSession` (feature `actix`) | [`guide::actix`] |
//! | log in, log out | [`Session::login`], [`Session::logout`] | [`guide::axum`], [`guide::actix`] |
//! | login required, password change | `AuthUser`, [`Session::login_with_auth_hash`], [`Session::update_auth_hash`] | [`guide::login`] |
//! | errors and their statuses | [`Error`], `SessionError` | [`guide::errors`] |
//!
//! The whole of it on axum (features `axum` and a store's):
//!
//! ```
//! # #[cfg(feature = "axum")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use axum::{response::Redirect, routing::{get, post}, Router};
//! use session_kit::{AuthUser, DeviceMetadata, HttpSession, SessionConfig, SessionError, SessionLayer};
//!
//! async fn login(session: HttpSession) -> Result<Redirect, SessionError> {
//!     session.login("alice").await?; // check the password first
//!     Ok(Redirect::to("/account"))
//! }
//! async fn account(user: AuthUser) -> String {
//!     format!("hello {}", user.user_id())
//! }
//! async fn logout(session: HttpSession) -> Result<Redirect, SessionError> {
//!     session.logout().await?;
//!     Ok(Redirect::to("/"))
//! }
//!
//! // `sqlite:sessions.db`, `postgres://...`, `redis://...` with their features.
//! let store = session_kit::connect("memory:").await?;
//! let cleanup = session_kit::spawn_cleanup(store.clone(), Duration::from_secs(600));
//! let layer = SessionLayer::from_shared_store(store)
//!     .with_config(SessionConfig::default().with_login_url("/login"))
//!     .with_device_metadata(DeviceMetadata::all());
//! let app: Router = Router::new()
//!     .route("/login", post(login))
//!     .route("/account", get(account))
//!     .route("/logout", post(logout))
//!     .layer(layer);
//! // axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
//! # let _ = app;
//! cleanup.shutdown().await;
//! # Ok(()) }
//! # #[cfg(not(feature = "axum"))]
//! # fn main() {}
//! ```
//!
//! # Where the docs of each item live
//!
//! The items of this crate are re-exported from the member crates (`session-core`,
//! `session-tower`, `session-sql`, ...) and their pages are those crates' pages. Their
//! examples use this crate's paths and are compiled against it, including the pages
//! `session-tower` and `session-actix` take from their internal `session-http` crate
//! (`DeviceMetadata`, `IpSource`, ...). Some prose and links there name the member crates:
//! each such item is `session_kit::<Name>` here (`session_kit::SessionLayer`,
//! `session_kit::SqlStore`), and the member crate's modules are `session_kit::sql`,
//! `session_kit::redis`, `session_kit::actix` and `session_kit::django`; the [`guide`]'s
//! first page has the whole mapping. The [`guide`] and the examples on this page use this
//! crate's paths and are compiled against it.
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
//! use session_kit::{ConfigError, Error, StoreError, StoreResult};
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
//! use session_kit::{ExpiredCleanup, MemoryStore, SessionStore, UserIndex};
//!
//! let store = MemoryStore::new();
//! let index: Option<&dyn UserIndex> = store.user_index();
//! let cleanup: Option<&dyn ExpiredCleanup> = store.expired_cleanup();
//! assert!(index.is_some() && cleanup.is_some());
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod connect;
pub mod guide;

pub use connect::{connect, ConnectError, ConnectOptions};

// The re-exports are not inlined: their docs are the member crates' own, whose examples use
// this crate's paths too; what is shown under this crate uses this crate's paths (this page,
// `guide`, `connect`).
#[doc(no_inline)]
pub use session_core::*;
// Named explicitly as well, so the contract types stay visible in this crate's docs.
#[doc(no_inline)]
pub use session_core::{
    ConfigError, ExpiredCleanup, Record, SessionStore, StoreError, StoreResult, UserIndex,
};

#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
#[doc(no_inline)]
pub use session_memory::MemoryStore;

/// The Django/Plain session *data* codec (feature `django`): see [`SignedCodec`]. Not
/// signed cookies: the cookie holds only a random key either way.
#[cfg(feature = "django")]
#[cfg_attr(docsrs, doc(cfg(feature = "django")))]
#[doc(no_inline)]
pub use session_signed::{self as django, Salt, SignedCodec};

/// HTTP integration: the tower [`SessionLayer`] with Django's cookie rules and the axum
/// [`HttpSession`] extractor. See [`guide::axum`].
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
#[doc(no_inline)]
pub use session_tower::{
    AuthUser, CookieConfigError, DefaultSession, DeviceMetadata, HttpSession, IpSource,
    LoginRejection, MissingSessionLayer, SameSite, SessionError, SessionLayer, SessionService,
};

/// actix-web 4 integration (feature `actix`): the [`SessionMiddleware`] and the
/// [`ActixSession`] extractor; the rest of `session-actix` (its own `SessionError`,
/// `DeviceMetadata`, login extractors) is the [`actix`] module, since the names match the
/// tower layer's.
#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
#[doc(no_inline)]
pub use session_actix::{self as actix, ActixSession, SessionMiddleware};

/// SQL stores on PostgreSQL, SQLite and MySQL/MariaDB: see [`SqlStore`] and the [`sql`]
/// module for its builder and options, and [`guide::stores`].
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql")))
)]
#[doc(no_inline)]
pub use session_sql::{self as sql, SqlStore, SqlStoreBuilder, TableLayout, TableName};

/// The Redis store (standalone; Cluster with `redis-cluster`, Sentinel with
/// `redis-sentinel`): see [`RedisStore`] and the [`redis`] module for its builder, key
/// layout and consistency notes, and [`guide::stores`].
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[doc(no_inline)]
pub use session_redis::{self as redis, RedisStore, RedisStoreBuilder};

/// A fast front store before a durable one: see [`CachedStore`] (shared and per-process
/// arrangements, what each guarantees).
#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
#[doc(no_inline)]
pub use session_combinators::{
    Arrangement, CachedStore, FrontStore, LocalFront, DEFAULT_PER_PROCESS_TTL, DEFAULT_SHARED_TTL,
};

/// Session keys hashed at rest: see [`HashedKeys`] (device identifiers, not for the
/// Django/Plain layouts).
#[cfg(feature = "hashed-keys")]
#[cfg_attr(docsrs, doc(cfg(feature = "hashed-keys")))]
#[doc(no_inline)]
pub use session_combinators::{HashedKeys, MIN_SECRET_LEN};

/// The code blocks of the workspace README, compiled (and, unless marked `no_run`, run) as
/// doc tests of this crate, so that what the README promises stays true. Only built by
/// `cargo test --doc` with the features the README uses.
#[cfg(all(doctest, feature = "axum", feature = "actix", feature = "sqlite"))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
