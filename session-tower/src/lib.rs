//! # session-tower
//!
//! HTTP integration for the `session` crates: a tower [`SessionLayer`] that gives every
//! request a lazy [`Session`](session_core::Session) and writes the session cookie by
//! Django's rules, and (feature `axum`) an [`HttpSession`] extractor.
//!
//! ## Guide
//!
//! ```
//! # #[cfg(feature = "axum")] {
//! use axum::{routing::get, Router};
//! use session_memory::MemoryStore;
//! use session_tower::{HttpSession, SessionError, SessionLayer};
//!
//! async fn counter(session: HttpSession) -> Result<String, SessionError> {
//!     let n: u64 = session.get("n").await?.unwrap_or(0) + 1;
//!     session.insert("n", n).await?;
//!     Ok(format!("{n}"))
//! }
//!
//! let app: Router = Router::new()
//!     .route("/", get(counter))
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
//!    - a request that sent a cookie and leaves with an empty session (after `flush`, or a
//!      cookie naming no session) gets a **removal cookie** with the same path, domain and
//!      flags;
//!    - `Vary: Cookie` is merged into the response whenever the session was used;
//!    - a session **deleted meanwhile** (`NotFound` on save, e.g. logged out by a parallel
//!      request) answers **400** instead of resurrecting it; a **store outage** answers
//!      **503** by default ([`SessionLayer::with_unavailable_status`],
//!      [`SessionLayer::with_error_handler`]); handlers returning [`SessionError`] get the
//!      same mapping;
//!    - a handler that called `save()` itself still gets its cookie: the layer sees the
//!      write and sends the key with the expiry that was stored.
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
//! `session.store().delete_for_user(&user, Some(&current_key))`.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod device;
mod error;
mod extract;
mod layer;

pub use cookie::SameSite;
pub use device::{DeviceMetadata, IpSource, MAX_USER_AGENT_LEN};
pub use error::{SessionError, SESSION_INTERRUPTED};
pub use extract::{DefaultSession, HttpSession, MissingSessionLayer};
pub use layer::{CookieConfigError, SessionLayer, SessionService};
