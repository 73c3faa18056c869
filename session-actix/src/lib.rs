//! # session-actix
//!
//! **Most users add `session-kit` with feature `actix`**
//! (`session-kit = { version = "0.1", features = ["actix"] }`) **and reach this crate as
//! `session_kit::actix`**: [`SessionMiddleware`] is `session_kit::actix::SessionMiddleware`
//! (also `session_kit::SessionMiddleware`), [`ActixSession`] `session_kit::actix::ActixSession`
//! (also `session_kit::ActixSession`), [`AuthUser`] `session_kit::actix::AuthUser`, and so on.
//! The examples on these pages use those paths and are compiled against `session-kit`, so
//! they can be pasted into such an application; `session_kit::guide::actix` has more.
//!
//! actix-web 4 integration for the `session` crates: a [`SessionMiddleware`] that gives
//! every request a lazy [`Session`](session_core::Session) and writes the session cookie
//! by Django's rules, and the [`ActixSession`] extractor. The rules are the same as
//! `session-tower`'s (axum) — both are thin adapters over `session-http`.
//!
//! ## Guide
//!
//! ```
//! use actix_web::{web, App, HttpServer};
//! use session_kit::actix::{ActixSession, SessionError, SessionMiddleware};
//! use session_kit::MemoryStore;
//!
//! async fn counter(session: ActixSession) -> Result<String, SessionError> {
//!     // Atomic read-modify-write: concurrent requests never lose an increment.
//!     let n = session.update("n", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
//!     Ok(format!("{n}"))
//! }
//!
//! async fn login(session: ActixSession) -> Result<&'static str, SessionError> {
//!     // (check the password first) Django's rules: a new key; flushed if another user
//!     // was logged in on this cookie.
//!     session.login("alice").await?;
//!     Ok("welcome")
//! }
//!
//! async fn logout(session: ActixSession) -> Result<&'static str, SessionError> {
//!     session.logout().await?;
//!     Ok("bye")
//! }
//!
//! # actix_web::rt::System::new().block_on(async {
//! // One store for every worker: build the middleware once, clone it into the factory.
//! let sessions = SessionMiddleware::builder(MemoryStore::new())
//!     .with_secure(false) // plain-HTTP development only
//!     .build()?;
//! let server = HttpServer::new(move || {
//!     App::new()
//!         .wrap(sessions.clone())
//!         .route("/", web::get().to(counter))
//!         .route("/login", web::post().to(login))
//!         .route("/logout", web::post().to(logout))
//! })
//! .workers(1)
//! .bind(("127.0.0.1", 0))?;
//! # let addr = server.addrs()[0];
//! # let handle = server.run();
//! # let server_handle = handle.handle();
//! # actix_web::rt::spawn(handle);
//! # let _ = addr;
//! # server_handle.stop(true).await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! What the middleware does, per request:
//!
//! 1. Reads the session cookie (default name `id`) and builds a lazy session: **no store
//!    round trip** unless the handler touches the session.
//! 2. Records device metadata when configured ([`DeviceMetadata`]): User-Agent and client
//!    IP (the connection's peer address, or a trusted proxy header you name); they are
//!    stored with the next write.
//! 3. After the handler:
//!    - **5xx**: nothing is saved and no cookie is sent (`Vary: Cookie` still is, if the
//!      session was used);
//!    - otherwise the session is saved if modified (or always, with
//!      [`SessionConfig::with_save_every_request`](session_core::SessionConfig::with_save_every_request)),
//!      and `Set-Cookie` gets the key with `Max-Age` = the stored expiry, `Path`,
//!      `Domain`, `Secure` (on by default), `HttpOnly` (on), `SameSite=Lax`, and
//!      optionally `Partitioned`;
//!    - a request that sent a cookie and leaves with an empty session (after `logout`, or
//!      a cookie naming no session) gets a **removal cookie** with the same path, domain
//!      and flags;
//!    - a response that sets or removes the cookie gets **`Cache-Control: private,
//!      no-store`** unless the handler set a `Cache-Control` itself;
//!    - `Vary: Cookie` is merged into the response whenever the session was used;
//!    - session errors (on save, or a [`SessionError`] returned by the handler) answer
//!      **400** for a session deleted or revoked meanwhile ([`SESSION_INTERRUPTED`]),
//!      **413** for a session over the size limit, **503** + `Retry-After` for a store
//!      outage, 500 otherwise; nothing is saved and no cookie is sent.
//!
//! ## Cookie settings are checked once
//!
//! [`SessionMiddlewareBuilder::build`] checks the cookie settings together and returns a
//! [`CookieConfigError`] for a name, path or domain that would make a malformed
//! `Set-Cookie`, and for a `__Host-` name without `Secure`, with a path other than `/` or
//! with a `Domain`, or a `__Secure-` name without `Secure` — cookies browsers silently
//! drop.
//!
//! ```
//! use session_kit::actix::{CookieConfigError, SessionMiddleware};
//! let err = SessionMiddleware::builder(session_kit::MemoryStore::new())
//!     .with_cookie_name("__Host-id")
//!     .with_secure(false)
//!     .build()
//!     .unwrap_err();
//! assert!(matches!(err, CookieConfigError::HostPrefix { .. }));
//! ```
//!
//! ## Login required and the auth hash
//!
//! [`AuthUser`] is Django's `login_required`: the handler runs only for a logged-in user;
//! anyone else gets 401, or a `303 See Other` to the login URL set with
//! [`SessionConfig::with_login_url`](session_core::SessionConfig::with_login_url) (with
//! `?next=` the requested path and query). Log in with
//! [`Session::login_with_auth_hash`](session_core::Session::login_with_auth_hash) and give
//! the config an [`AuthHashSource`](session_core::AuthHashSource) (the user's current
//! credential stamp): a session whose stored hash no longer matches (the password was
//! changed elsewhere) is logged out when it is loaded, answered like an anonymous visitor,
//! and its cookie removed. After a password change, call
//! [`Session::update_auth_hash`](session_core::Session::update_auth_hash) so the current
//! device stays logged in (Django's `update_session_auth_hash`).
//!
//! ```
//! use actix_web::{web, App};
//! use session_kit::actix::{ActixSession, AuthUser, SessionError, SessionMiddleware};
//! use session_kit::{auth_hash_fn, SessionConfig};
//!
//! async fn login(session: ActixSession) -> Result<&'static str, SessionError> {
//!     // (check the password, then) the user's credential stamp goes into the session.
//!     session.login_with_auth_hash("alice", "stamp-1").await?;
//!     Ok("welcome")
//! }
//! async fn account(user: AuthUser) -> String {
//!     format!("hello {}", user.user_id())
//! }
//!
//! // Where the current stamp comes from (your user table).
//! let stamps = auth_hash_fn(|_user: String| async { Ok(Some("stamp-1".to_owned())) });
//! let config = SessionConfig::default().with_login_url("/login").with_auth_hash_source(stamps);
//! let sessions = SessionMiddleware::builder(session_kit::MemoryStore::new()).with_config(config).build()?;
//! let app = App::new()
//!     .wrap(sessions)
//!     .route("/login", web::post().to(login))
//!     .route("/account", web::get().to(account));
//! # let _ = app;
//! # Ok::<(), session_kit::actix::CookieConfigError>(())
//! ```
//!
//! ## Device pages
//!
//! The store behind the middleware is reachable from the session handle
//! ([`Session::store`](session_core::Session::store)), so a "your devices" page is
//! `session.store().list_for_user(&user)` and "log out other devices" is
//! `session.store().delete_for_user(&user, Some(&current_key))`. Their
//! [`StoreError`](session_core::StoreError)s convert into [`SessionError`] too.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod error;
mod extract;
mod login;
mod middleware;

pub use error::{SessionError, SESSION_INTERRUPTED};
pub use extract::{ActixSession, DefaultSession, MissingSessionMiddleware};
pub use login::{AuthUser, LoginRejection, OptionalAuthUser, LOGIN_REQUIRED};
pub use middleware::{SessionMiddleware, SessionMiddlewareBuilder, SessionService};
pub use session_http::{CookieConfigError, DeviceMetadata, IpSource, SameSite, MAX_USER_AGENT_LEN};
