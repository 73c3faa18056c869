//! Guides, with this crate's paths: every example here is compiled (and run) as a doc test of
//! `session-kit`, so it can be pasted into an application that depends on `session-kit`
//! alone.
//!
//! - [`stores`]: opening a store with [`connect`](crate::connect) or a store's builder, migration,
//!   the cleanup task.
//! - [`axum`]: the tower layer and the axum extractor (feature `axum`).
//! - [`errors`]: what can fail and how the HTTP layers answer.

/// Opening a store: [`connect`](crate::connect) for the common case, the builders for
/// everything else.
///
/// # One URL
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_kit::ConnectError> {
/// // Feature `sqlite`: a file (created when missing, owner-only permissions) or memory.
/// # #[cfg(feature = "sqlite")] {
/// let store = session_kit::connect("sqlite::memory:").await?; // the table is created here
/// assert!(store.expired_cleanup().is_some());
/// # }
/// // Feature `memory` (default).
/// let store = session_kit::connect("memory:").await?;
/// # let _ = store;
/// # Ok(()) }
/// ```
///
/// [`connect`](crate::connect) lists the URL forms (Postgres, MySQL/MariaDB, Redis, TLS,
/// Cluster, Sentinel). It migrates SQL tables unless told not to:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_kit::ConnectError> {
/// let store = session_kit::ConnectOptions::new().migrate(false).connect("memory:").await?;
/// # let _ = store;
/// # Ok(()) }
/// ```
///
/// # Builders: pool sizes, table names, key prefixes
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_kit::StoreError> {
/// use std::sync::Arc;
/// use session_kit::{SessionStore, SqlStore};
///
/// let store = SqlStore::builder()
///     .table("app_sessions")
///     .connect("sqlite::memory:")
///     .await?;
/// store.migrate().await?;
/// let store: Arc<dyn SessionStore> = Arc::new(store);
/// # let _ = store;
/// # Ok(()) }
/// # #[cfg(not(feature = "sqlite"))]
/// # fn main() {}
/// ```
///
/// ```
/// # #[cfg(feature = "redis")]
/// # fn main() -> Result<(), session_kit::StoreError> {
/// use session_kit::RedisStore;
///
/// // Nothing is contacted until the first operation (`connect` would `PING` first).
/// let store = RedisStore::builder()
///     .url("redis://127.0.0.1:6379/0")
///     .key_prefix("myapp:session:")
///     .build()?;
/// assert_eq!(store.key_prefix(), "myapp:session:");
/// # Ok(()) }
/// # #[cfg(not(feature = "redis"))]
/// # fn main() {}
/// ```
///
/// # Expired records
///
/// SQL and memory stores keep expired records until they are deleted (they are never
/// served: expired counts as absent). Run the cleanup task next to the server; it does
/// nothing for stores that expire records by themselves (Redis).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session_kit::ConnectError> {
/// use std::time::Duration;
///
/// let store = session_kit::connect("memory:").await?;
/// let cleanup = session_kit::spawn_cleanup(store.clone(), Duration::from_secs(600));
/// // ... serve requests ...
/// cleanup.shutdown().await;
/// # Ok(()) }
/// ```
pub mod stores {}

/// The tower layer and the axum extractor (feature `axum`).
///
/// # The layer over a real store
///
/// [`SessionLayer`](crate::SessionLayer) reads the cookie, hands each request a lazy
/// session (no store call until a handler uses it), saves it after the handler and sets or
/// removes the cookie. [`DeviceMetadata::all`](crate::DeviceMetadata::all) records the
/// User-Agent and the client IP with each session, for a "your devices" page; the IP comes
/// from the connection, which axum hands over only when the app is served with
/// `into_make_service_with_connect_info::<SocketAddr>()`. Behind a reverse proxy, take it
/// from the proxy's header instead ([`IpSource::Header`](crate::IpSource::Header)).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use axum::{routing::get, Router};
/// use session_kit::{DeviceMetadata, HttpSession, SameSite, SessionConfig, SessionError, SessionLayer};
///
/// async fn visits(session: HttpSession) -> Result<String, SessionError> {
///     let n = session.update("visits", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
///     Ok(format!("visit {n}"))
/// }
///
/// let store = session_kit::connect("memory:").await?;
/// let layer = SessionLayer::from_shared_store(store)
///     .with_config(SessionConfig::default().with_idle_timeout(Duration::from_secs(3600)))
///     .with_cookie_name("sid")?
///     .with_same_site(Some(SameSite::Lax))
///     .with_device_metadata(DeviceMetadata::all());
/// let app: Router = Router::new().route("/", get(visits)).layer(layer);
///
/// // Served for real with:
/// // axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
/// use tower::ServiceExt;
/// let response = app
///     .oneshot(axum::http::Request::get("/").body(axum::body::Body::empty())?)
///     .await?;
/// let cookie = response.headers()["set-cookie"].to_str()?;
/// assert!(cookie.starts_with("sid="));
/// # Ok(()) }
/// ```
///
/// # Login and logout
///
/// [`Session::login`](crate::Session::login) gives the session a new key (against session
/// fixation) and records the user (listed by the store's user index); when another user was
/// logged in on the cookie, the session is flushed first, so nothing of theirs is kept.
/// [`Session::logout`](crate::Session::logout) deletes the record and removes the cookie.
///
/// ```
/// use axum::{extract::Form, response::Redirect};
/// use session_kit::{HttpSession, SessionError};
///
/// #[derive(serde::Deserialize)]
/// struct Login { user: String }
///
/// async fn login(session: HttpSession, Form(form): Form<Login>) -> Result<Redirect, SessionError> {
///     // ... check the password, then:
///     session.login(form.user).await?;
///     Ok(Redirect::to("/"))
/// }
///
/// async fn logout(session: HttpSession) -> Result<Redirect, SessionError> {
///     session.logout().await?;
///     Ok(Redirect::to("/"))
/// }
///
/// async fn log_out_other_devices(session: HttpSession) -> Result<String, SessionError> {
///     let Some(user) = session.user_id().await? else { return Ok("not logged in".into()) };
///     let keep = session.key().await;
///     let ended = session.store().delete_for_user(&user, keep.as_ref()).await?;
///     Ok(format!("logged out {ended} other session(s)"))
/// }
/// # let _ = (login, logout, log_out_other_devices);
/// ```
///
/// The layer's own pages (every setting, what each status means) are
/// [`SessionLayer`](crate::SessionLayer)'s, in the `session-tower` crate: there, read
/// `session_tower::X` as `session_kit::X`.
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum {}

/// What can fail, and how the HTTP layers answer.
///
/// | error | meaning | HTTP |
/// | --- | --- | --- |
/// | [`Error::Interrupted`](crate::Error::Interrupted) | the session was deleted or revoked while the request used it (a logout elsewhere) | 400 |
/// | [`Error::TooLarge`](crate::Error::TooLarge) | the session data is over the size limit | 413 |
/// | [`Error::Store`](crate::Error::Store) with an unavailable store | the store did not answer in time | 503 with `Retry-After` |
/// | any other | a bug or a misconfiguration | 500 |
///
/// ```
/// use session_kit::{ConfigError, Error, StoreError};
///
/// let err: Error = StoreError::Config(ConfigError::invalid("pool size", "must be at least 1")).into();
/// assert!(!err.is_unavailable());
/// assert!(matches!(err, Error::Store(StoreError::Config(_))));
/// ```
pub mod errors {}
