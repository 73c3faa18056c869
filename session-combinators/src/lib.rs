//! # session-combinators
//!
//! **Most users add `session-kit` with feature `cache` (for [`CachedStore`]) or
//! `hashed-keys` (for [`HashedKeys`])** (`session-kit = { version = "0.1", features =
//! ["cache"] }`) **and reach these items as `session_kit::...`**: [`CachedStore`] is
//! `session_kit::CachedStore`, [`HashedKeys`] `session_kit::HashedKeys`, and so on for
//! [`Arrangement`], [`FrontStore`], [`LocalFront`] and the constants. The examples on these
//! pages use those paths and are compiled against `session-kit`, so they can be pasted into
//! such an application.
//!
//! Stores built from other stores:
//!
//! - [`CachedStore`]: a fast front store (the memory store, or a Redis store shared by
//!   every app process) before a durable one (SQL), Django's `cached_db`. Reads come from
//!   the front and fall back to the durable store; writes go to the durable store first.
//!   See its documentation for the two arrangements ([`Arrangement::Shared`] and
//!   [`Arrangement::PerProcess`]) and what each guarantees.
//! - [`HashedKeys`]: stores an HMAC-SHA256 of the session key instead of the key, so a
//!   leaked table or Redis dump cannot be replayed as cookies.
//!
//! Both are [`SessionStore`](session_core::SessionStore)s, so they nest and go behind an
//! `Arc<dyn SessionStore>` like any store:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use session_kit::{CachedStore, HashedKeys, MemoryStore, SessionStore};
//!
//! // In production: a MemoryStore (or RedisStore) before an SqlStore.
//! let cached = CachedStore::per_process(MemoryStore::new(), MemoryStore::new());
//! let store: Arc<dyn SessionStore> =
//!     Arc::new(HashedKeys::new(cached, b"a secret of at least 32 bytes, from config")?);
//! # let _ = store;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cached;
mod entry;
mod front;
mod hashed;

pub use cached::{Arrangement, CachedStore, DEFAULT_PER_PROCESS_TTL, DEFAULT_SHARED_TTL};
#[doc(hidden)]
pub use front::Read;
pub use front::{FrontStore, LocalFront};
pub use hashed::{HashedKeys, MIN_SECRET_LEN};
