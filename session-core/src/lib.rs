//! # session-core
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
//!
//! Most applications use the facade crate, which re-exports this crate and the
//! stores behind feature flags.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), session_core::Error> {
//! use std::sync::Arc;
//! use session_core::{CookieAction, Session, SessionConfig, SessionStore};
//! use session_memory::MemoryStore;
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
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod cleanup;
mod codec;
mod config;
mod error;
mod key;
mod manager;
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
pub use session::{CookieAction, Session};
pub use store::{Capabilities, ExpiredCleanup, SessionStore, UserIndex};

// Re-exported so store authors and users name the same versions.
pub use async_trait::async_trait;
pub use chrono;
pub use serde_json;
