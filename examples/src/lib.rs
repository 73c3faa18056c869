//! Support code for the runnable examples of the `session` crates.
//!
//! - [`FileStore`]: a custom [`SessionStore`](session_kit::SessionStore) that keeps one JSON file
//!   per session in a directory. It exists to show how a custom backend is written (the
//!   five required methods, plus the optional [`UserIndex`](session_kit::UserIndex) and
//!   [`ExpiredCleanup`](session_kit::ExpiredCleanup)) and proven with the
//!   `session-conformance` suite (see `tests/file_store.rs`).
#![forbid(unsafe_code)]

mod file_store;

pub use file_store::FileStore;
