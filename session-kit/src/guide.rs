//! Guides, with this crate's paths: every example here is compiled (and run) as a doc test of
//! `session-kit`, so it can be pasted into an application that depends on `session-kit`
//! alone.
//!
//! - [`stores`]: opening a store with [`connect`](crate::connect) or a store's builder, migration,
//!   the cleanup task.
//! - [`axum`]: the tower layer and the axum extractor (feature `axum`).
//! - [`actix`]: the actix-web middleware and extractors (feature `actix`).
//! - [`login`]: login required (`AuthUser`), and the auth hash: a password change logs
//!   the user's other sessions out (Django's `update_session_auth_hash`).
//! - [`errors`]: what can fail and how the HTTP layers answer.
//!
//! The member crates' own pages (`SessionLayer`, `SqlStore`, `Session`, ...) use this crate's
//! paths in their examples, compiled against it, including the pages `session-tower` and
//! `session-actix` take from their internal `session-http` crate (`DeviceMetadata`,
//! `IpSource`, `DefaultSession`, `CookieConfigError`, and the constants
//! `SESSION_INTERRUPTED`, `LOGIN_REQUIRED`, `MAX_USER_AGENT_LEN`, whose only home here is
//! `session_kit::actix`) and the method examples it writes for them (on `HttpSession`,
//! `ActixSession`, `SessionError`, `LoginRejection`). Some prose and links there name member
//! crates; in an application on `session-kit` read them with this crate's paths:
//!
//! | on a member crate's page | with `session-kit` | feature |
//! | --- | --- | --- |
//! | `session_core::X` | `session_kit::X` | (always) |
//! | `session_memory::MemoryStore` | `session_kit::MemoryStore` | `memory` |
//! | `session_tower::X` | `session_kit::X` | `axum` |
//! | `session_actix::X` | `session_kit::actix::X` (`SessionMiddleware`, `ActixSession` also `session_kit::X`) | `actix` |
//! | `session_sql::X` | `session_kit::sql::X` (`SqlStore`, `SqlStoreBuilder`, `TableLayout`, `TableName` also `session_kit::X`) | `sqlite`, `postgres`, `mysql` |
//! | `session_redis::X` | `session_kit::redis::X` (`RedisStore`, `RedisStoreBuilder` also `session_kit::X`) | `redis` |
//! | `session_signed::X` | `session_kit::django::X` (`SignedCodec`, `Salt` also `session_kit::X`) | `django` |
//! | `session_combinators::X` | `session_kit::X` | `cache`, `hashed-keys` |

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
/// from the proxy's header instead
/// (`DeviceMetadata::all().with_ip(IpSource::header("x-real-ip"))`, see
/// [`IpSource`](crate::IpSource)).
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
/// [`SessionLayer`](crate::SessionLayer)'s, in the `session-tower` crate; their examples use
/// this crate's paths too.
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum {}

/// The actix-web 4 middleware and extractors (feature `actix`).
///
/// [`SessionMiddleware`](crate::SessionMiddleware) follows the same rules as the tower
/// layer (they live once, in `session-http`): lazy loading, Django's cookie rules,
/// 400/413/503, `Cache-Control` and `Vary`. Build it once and clone it into the
/// `HttpServer` factory, so that every worker shares one store. actix-web always knows the
/// peer address, so [`DeviceMetadata::all`](crate::actix::DeviceMetadata::all) needs no
/// other setup.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # actix_web::rt::System::new().block_on(async {
/// use std::time::Duration;
/// use actix_web::{test, web, App, HttpResponse};
/// use session_kit::actix::{AuthUser, DeviceMetadata, SessionError};
/// use session_kit::{ActixSession, SessionConfig, SessionMiddleware};
///
/// async fn visits(session: ActixSession) -> Result<String, SessionError> {
///     let n = session.update("visits", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
///     Ok(format!("visit {n}"))
/// }
///
/// async fn login(session: ActixSession) -> Result<HttpResponse, SessionError> {
///     session.login("alice").await?; // check the password first
///     Ok(HttpResponse::SeeOther().insert_header(("Location", "/")).finish())
/// }
///
/// async fn account(user: AuthUser) -> String {
///     format!("hello {}", user.user_id())
/// }
///
/// async fn logout(session: ActixSession) -> Result<HttpResponse, SessionError> {
///     session.logout().await?;
///     Ok(HttpResponse::SeeOther().insert_header(("Location", "/")).finish())
/// }
///
/// let store = session_kit::connect("memory:").await?;
/// let cleanup = session_kit::spawn_cleanup(store.clone(), Duration::from_secs(600));
/// let sessions = SessionMiddleware::builder_from_shared_store(store)
///     .with_config(SessionConfig::default().with_login_url("/login"))
///     .with_cookie_name("sid")
///     .with_device_metadata(DeviceMetadata::all())
///     .build()?;
/// let app = test::init_service(
///     App::new()
///         .wrap(sessions.clone())
///         .route("/", web::get().to(visits))
///         .route("/login", web::post().to(login))
///         .route("/account", web::get().to(account))
///         .route("/logout", web::post().to(logout)),
/// )
/// .await;
/// // Served for real with `HttpServer::new(move || App::new().wrap(sessions.clone())...)`.
/// let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
/// let cookie = res.headers().get("set-cookie").ok_or("no Set-Cookie")?.to_str()?;
/// assert!(cookie.starts_with("sid="));
/// let res = test::call_service(&app, test::TestRequest::get().uri("/account").to_request()).await;
/// assert_eq!(res.status().as_u16(), 303, "not logged in: to the login URL");
/// assert_eq!(res.headers().get("location").ok_or("no Location")?, "/login?next=/account");
/// cleanup.shutdown().await;
/// # Ok::<(), Box<dyn std::error::Error>>(()) })
/// # }
/// ```
///
/// Everything else of `session-actix` (its builder's settings, `OptionalAuthUser`,
/// `LoginRejection`) is in [`session_kit::actix`](crate::actix); the examples on its pages
/// use this crate's paths too.
#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix {}

/// Login required, and logging out the other sessions after a password change.
///
/// [`AuthUser`](crate::AuthUser) (axum; `session_kit::actix::AuthUser` for actix-web) is an
/// extractor that yields the logged-in user's id: a handler that takes it runs only for a
/// logged-in user, and anyone else gets 401, or a `303 See Other` to the login URL
/// configured with [`SessionConfig::with_login_url`](crate::SessionConfig::with_login_url)
/// (with `next=` the original path and query). `Option<AuthUser>` never rejects an
/// anonymous visitor.
///
/// The **auth hash** is Django's `get_session_auth_hash`: a value that changes whenever
/// the user's credentials do (a hash of the stored password hash, a security stamp). Log
/// in with [`Session::login_with_auth_hash`](crate::Session::login_with_auth_hash) and tell
/// the config where the current hash is
/// ([`SessionConfig::with_auth_hash_source`](crate::SessionConfig::with_auth_hash_source));
/// every session load then compares the two, and a session whose hash is stale is logged
/// out (its record deleted, its cookie removed). After a password change, the session that
/// changed it keeps up with
/// [`Session::update_auth_hash`](crate::Session::update_auth_hash) (Django's
/// `update_session_auth_hash`); the user's other sessions are logged out on their next
/// request.
///
/// ```
/// # #[cfg(feature = "axum")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::collections::HashMap;
/// use std::sync::{Arc, Mutex};
/// use axum::{extract::{Path, State}, http::Request, routing::get, Router};
/// use session_kit::{auth_hash_fn, AuthUser, HttpSession, SessionConfig, SessionError, SessionLayer};
/// use tower::ServiceExt;
///
/// /// The user table: the auth hash of each user (here a stamp set with the password).
/// type Users = Arc<Mutex<HashMap<String, String>>>;
///
/// async fn login(State(users): State<Users>, session: HttpSession) -> Result<&'static str, SessionError> {
///     // ... check alice's password, then:
///     let hash = users.lock().unwrap()["alice"].clone();
///     session.login_with_auth_hash("alice", hash).await?;
///     Ok("welcome")
/// }
///
/// async fn change_password(
///     State(users): State<Users>,
///     Path(new): Path<String>,
///     user: AuthUser, // loads the session (and checks its hash) before the change
/// ) -> Result<&'static str, SessionError> {
///     // ... store the new password; its hash changes:
///     users.lock().unwrap().insert(user.user_id().to_owned(), new.clone());
///     user.session().update_auth_hash(new).await?; // this session stays logged in
///     Ok("password changed")
/// }
///
/// async fn account(user: AuthUser) -> String {
///     format!("hello {}", user.user_id())
/// }
///
/// let users: Users = Arc::new(Mutex::new(HashMap::from([("alice".into(), "v1".into())])));
/// let source = users.clone();
/// let config = SessionConfig::default()
///     .with_login_url("/login")
///     .with_auth_hash_source(auth_hash_fn(move |user_id: String| {
///         let hash = source.lock().unwrap().get(&user_id).cloned();
///         async move { Ok(hash) } // `None`: the user is gone, the session is logged out
///     }));
/// let store = session_kit::connect("memory:").await?;
/// let app = Router::new()
///     .route("/login", get(login))
///     .route("/password/{new}", get(change_password))
///     .route("/account", get(account))
///     .with_state(users)
///     .layer(SessionLayer::from_shared_store(store).with_config(config));
///
/// let get = |uri: &str, cookie: Option<&str>| {
///     let mut req = Request::get(uri);
///     if let Some(c) = cookie { req = req.header("cookie", c); }
///     req.body(axum::body::Body::empty()).unwrap()
/// };
/// let cookie_of = |res: &axum::response::Response| -> String {
///     res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned()
/// };
/// // Two devices log in; the first changes the password.
/// let laptop = cookie_of(&app.clone().oneshot(get("/login", None)).await?);
/// let phone = cookie_of(&app.clone().oneshot(get("/login", None)).await?);
/// let res = app.clone().oneshot(get("/password/v2", Some(&laptop))).await?;
/// let laptop = cookie_of(&res); // a new key, still logged in
/// assert_eq!(app.clone().oneshot(get("/account", Some(&laptop))).await?.status(), 200);
/// // The phone's next request: logged out, sent to the login page.
/// let res = app.clone().oneshot(get("/account", Some(&phone))).await?;
/// assert_eq!(res.status(), 303);
/// assert_eq!(res.headers()["location"], "/login?next=/account");
/// # Ok(()) }
/// # #[cfg(not(feature = "axum"))]
/// # fn main() {}
/// ```
///
/// `examples/web` in the repository does the same with real passwords and a form.
pub mod login {}

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
