//! # session-core
//!
//! **Most users add `session-kit`** (`session-kit = "0.1"`, with the features of their store
//! and web framework) **and reach everything here as `session_kit::X`**: [`Session`] is
//! `session_kit::Session`, [`SessionStore`] `session_kit::SessionStore`, [`Error`]
//! `session_kit::Error`, and so on (`session-kit` re-exports this whole crate). The examples
//! on these pages use those paths and are compiled against `session-kit` (with its default
//! `memory` feature, for `session_kit::MemoryStore`), so they can be pasted into such an
//! application. **Writing a custom store?** Then you may depend on `session-core` (and the
//! `session-conformance` test suite) alone: read `session_kit::X` in these examples as
//! `session_core::X` (and `session_kit::MemoryStore` as `session_memory::MemoryStore`).
//!
//! The core of a server-side session library with pluggable storage, carrying the session
//! model of Django and Plain into Rust: the cookie holds only a random [`SessionKey`]; the
//! data lives in a [`SessionStore`] (SQL, Redis, memory, or your own).
//!
//! - [`Session`]: the per-request handle (lazy load, typed `get`/`insert`, atomic
//!   read-modify-write with `update`, `login`/`logout` with Django's rules, key rotation
//!   that cannot resurrect a logged-out session, expiry, no lost updates on concurrent
//!   requests).
//! - [`SessionStore`]: the storage contract (five required methods), with [`Record`],
//!   [`Capabilities`] and [`StoreError`]; the optional capabilities [`UserIndex`] and
//!   [`ExpiredCleanup`].
//! - [`Error`]: what the handle answers ([`Error::Interrupted`] when a session was deleted
//!   or revoked meanwhile, [`Error::TooLarge`], [`Error::Store`]).
//! - [`Codec`] / [`JsonCodec`]: how the session map is stored.
//! - [`SessionManager`]: a direct API for scripts and admin tools.
//! - [`spawn_cleanup`]: periodic removal of expired sessions.
//! - Login helpers with Django's rules: [`Session::login_with_auth_hash`] and
//!   [`Session::update_auth_hash`] (a password change logs out the user's other sessions,
//!   checked against an [`AuthHashSource`] on every load), and [`Session::require_user`]
//!   (401, or a redirect to [`SessionConfig::with_login_url`]).
//!
//! # Example
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
//! // Login request: the client sent no cookie.
//! let session = Session::new(store.clone(), config.clone(), None);
//! session.login("alice").await?; // sets the user, rotates the key (Django's rules)
//! session.insert("csrf_token", "k3y").await?;
//! session.update("visits", |n: Option<u64>| n.unwrap_or(0) + 1).await?; // read-modify-write
//! let CookieAction::Set { key, max_age } = session.save().await? else { unreachable!() };
//! assert_eq!(max_age.map(|d| d.as_secs()), Some(14 * 24 * 3600));
//!
//! // A later request with the cookie.
//! let session = Session::new(store.clone(), config, Some(key.as_str()));
//! assert_eq!(session.user_id().await?.as_deref(), Some("alice"));
//!
//! // "Log out everywhere".
//! assert_eq!(store.delete_for_user("alice", None).await?, 1);
//! # Ok(()) }
//! ```
//!
//! # Observability
//!
//! Every store operation made by a [`Session`], the [`SessionManager`] and the
//! [`spawn_cleanup`] task runs inside a **tracing span** named `session.store`, at DEBUG
//! level, target `session_core::store`, with the fields
//!
//! | field | value |
//! | --- | --- |
//! | `operation` | `create`, `load`, `update`, `touch`, `delete`, `delete_at_version`, `delete_expired` |
//! | `backend` | [`SessionStore::backend_name`]: `memory`, `postgres`, `sqlite`, `mysql`, `redis`, `redis_cluster`, `cached`, or `custom` |
//! | `outcome` | `ok`, `miss` (no live record), `key_exists`, `not_found`, `conflict`, `unavailable`, `unsupported`, `corrupt`, `error` |
//! | `duration_us` | the operation's duration in microseconds |
//!
//! Spans and events never contain a session key (at most the first characters of one, in
//! DEBUG events) or session data. With no subscriber listening (or one that filters DEBUG
//! out for this target) a span costs one disabled-callsite check: no allocation, and no
//! clock read unless the `metrics` feature is on (it times every operation).
//!
//! With the **`metrics`** feature, the same operations are recorded through the
//! [`metrics`](https://docs.rs/metrics) facade (install any recorder, e.g.
//! `metrics-exporter-prometheus`); labels are the fixed strings above, never a key:
//!
//! | metric | type | labels | what |
//! | --- | --- | --- | --- |
//! | `session_store_operations_total` | counter | `operation`, `backend`, `outcome` | store operations |
//! | `session_store_operation_duration_seconds` | histogram | `operation`, `backend` | their latency |
//! | `session_save_conflicts_total` | counter | `backend` | saves that found the record written by another process (compare-and-swap conflict) |
//! | `session_save_retries_total` | counter | `backend` | replays of a save's changes on fresh data after a conflict |
//! | `session_create_collisions_total` | counter | `backend` | fresh keys already taken at create (retried with another key) |
//! | `session_auth_hash_logouts_total` | counter | none | sessions logged out by an auth hash mismatch |
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod cleanup;
mod codec;
mod config;
mod error;
mod key;
mod manager;
mod observe;
mod record;
mod session;
mod store;

pub use cleanup::{spawn_cleanup, CleanupTask};
pub use codec::{Codec, CodecError, JsonCodec, SessionMap};
pub use config::{Expiry, SessionConfig, DEFAULT_IDLE_TIMEOUT, EXPIRY_KEY};
pub use error::{BoxError, ConfigError, Error, Result, StoreError, StoreResult};
pub use key::{InvalidKey, SessionKey, KEY_ALPHABET, KEY_LEN};
pub use manager::SessionManager;
pub use record::Record;
pub use session::{
    auth_hash_fn, login_redirect_url, AuthHashFn, AuthHashSource, CookieAction, NotLoggedIn,
    RequireUserError, Session, AUTH_HASH_KEY, AUTH_USER_KEY,
};
pub use store::{Capabilities, ExpiredCleanup, SessionStore, UserIndex};

// Re-exported so store authors and users name the same versions.
pub use async_trait::async_trait;
pub use chrono;
pub use serde_json;
