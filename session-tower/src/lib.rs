//! # session-tower
//!
//! **Most users add `session-kit` with feature `axum`**
//! (`session-kit = { version = "0.1", features = ["axum"] }`) **and reach these items as
//! `session_kit::...`**: [`SessionLayer`] is `session_kit::SessionLayer`, [`HttpSession`]
//! `session_kit::HttpSession`, [`AuthUser`] `session_kit::AuthUser`, [`SessionError`]
//! `session_kit::SessionError`, and so on (only the constants [`SESSION_INTERRUPTED`],
//! [`LOGIN_REQUIRED`] and [`MAX_USER_AGENT_LEN`] are not re-exported). The examples on these
//! pages use those paths and are compiled against `session-kit`, so they can be pasted into
//! such an application; `session_kit::guide::axum` has more.
//!
//! HTTP integration for the `session` crates: a tower [`SessionLayer`] that gives every
//! request a lazy [`Session`](session_core::Session) and writes the session cookie by
//! Django's rules, and (feature `axum`) an [`HttpSession`] extractor.
//!
//! ## Guide
//!
//! ```
//! # #[cfg(feature = "axum")] {
//! use axum::{routing::{get, post}, Router};
//! use session_kit::{HttpSession, MemoryStore, SessionError, SessionLayer};
//!
//! async fn counter(session: HttpSession) -> Result<String, SessionError> {
//!     // Atomic read-modify-write: concurrent requests never lose an increment.
//!     let n = session.update("n", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
//!     Ok(format!("{n}"))
//! }
//!
//! async fn login(session: HttpSession) -> Result<&'static str, SessionError> {
//!     // (check the password first) Django's rules: a new key; flushed if another user
//!     // was logged in on this cookie.
//!     session.login("alice").await?;
//!     Ok("welcome")
//! }
//!
//! async fn logout(session: HttpSession) -> Result<&'static str, SessionError> {
//!     session.logout().await?;
//!     Ok("bye")
//! }
//!
//! let app: Router = Router::new()
//!     .route("/", get(counter))
//!     .route("/login", post(login))
//!     .route("/logout", post(logout))
//!     .layer(SessionLayer::new(MemoryStore::new()));
//! # let _ = app; }
//! ```
//!
//! What the layer does, per request:
//!
//! 1. Reads the session cookie (default name `id`) and builds a lazy session: **no store
//!    round trip** unless the handler touches the session.
//! 2. Records device metadata when configured ([`DeviceMetadata`]): User-Agent and client IP
//!    (from the connection, or from a trusted proxy header you name); they are stored with
//!    the next write, and the store keeps the last-active time.
//! 3. After the handler:
//!    - **5xx**: nothing is saved and no cookie is sent (`Vary: Cookie` still is, if the
//!      session was used);
//!    - otherwise the session is saved if modified (or always, with
//!      [`SessionConfig::with_save_every_request`](session_core::SessionConfig::with_save_every_request),
//!      which only touches the expiry), and `Set-Cookie` gets the key with
//!      `Max-Age` = the stored expiry (no Max-Age for a browser-close session),
//!      `Path`, `Domain`, `Secure` (on by default), `HttpOnly` (on), `SameSite=Lax`, and
//!      optionally `Partitioned`;
//!    - a request that sent a cookie and leaves with an empty session (after `logout`, or a
//!      cookie naming no session) gets a **removal cookie** with the same path, domain and
//!      flags;
//!    - a response that sets or removes the cookie gets **`Cache-Control: private,
//!      no-store`** so no shared cache keeps it, unless the handler set a `Cache-Control`
//!      itself: the handler's header is never overridden and nothing is appended to it
//!      (a value without `private`, `no-store` or `no-cache` is logged as a warning);
//!      responses that set no cookie get no `Cache-Control` from the layer;
//!    - `Vary: Cookie` is merged into the response whenever the session was used;
//!    - the session errors get clear statuses, on save and when a handler returns
//!      [`SessionError`] (rendered once, by the layer):
//!      - a session **deleted or revoked meanwhile**
//!        ([`Error::Interrupted`](session_core::Error::Interrupted): logged out or "logged
//!        out everywhere" by a parallel request, also during a login's key rotation)
//!        answers **400** ([`SESSION_INTERRUPTED`]) instead of resurrecting it;
//!      - a session **over the size limit**
//!        ([`Error::TooLarge`](session_core::Error::TooLarge), see
//!        [`SessionConfig::with_max_data_len`](session_core::SessionConfig::with_max_data_len))
//!        answers **413** with a short body ([`SessionLayer::with_too_large_status`]);
//!      - a **store outage** answers **503** with `Retry-After`
//!        ([`SessionLayer::with_unavailable_status`]);
//!      - anything else 500; [`SessionLayer::with_error_handler`] replaces the responses;
//!      - in all these cases nothing is saved and no cookie is sent;
//!    - a handler that called `save()` itself still gets its cookie: the layer sees the
//!      write and sends the key with the expiry that was stored.
//!
//! ## Concurrent requests
//!
//! Requests on one session may run at once (tabs, retries, a logout in one tab while
//! another logs in). The handle takes care of them: `update` closures are re-run on fresh
//! data, so no increment is lost; a plain `insert` of one key is last-writer-wins; a
//! logout or revocation during a login's key rotation makes the login answer 400 and
//! leaves no session behind; a write on the old key during a login is either carried into
//! the new session or answered with 400, never acknowledged and lost.
//!
//! ## Several layers
//!
//! Two layers with different cookie names or paths coexist; give the second one its own
//! tag type ([`SessionLayer::with_tag`]) and extract `HttpSession<Tag>`. Layers work at any
//! level of nested axum routers.
//!
//! ## Device pages
//!
//! The store behind the layer is reachable from the session handle
//! ([`Session::store`](session_core::Session::store)), so a "your devices" page is
//! `session.store().list_for_user(&user)` and "log out other devices" is
//! `session.store().delete_for_user(&user, Some(&current_key))`. Their
//! [`StoreError`](session_core::StoreError)s convert into [`SessionError`] too, so `?`
//! works in the handler (an outage there is a 503 like any other).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod device;
mod error;
mod extract;
mod layer;
mod login;

pub use device::{DeviceMetadata, IpSource, MAX_USER_AGENT_LEN};
pub use error::{SessionError, SESSION_INTERRUPTED};
pub use extract::{DefaultSession, HttpSession, MissingSessionLayer};
pub use layer::{CookieConfigError, SessionLayer, SessionService};
pub use login::{AuthUser, LoginRejection, LOGIN_REQUIRED};
pub use session_http::SameSite;
