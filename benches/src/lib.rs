//! # session-benches
//!
//! Benchmarks of the session stores side by side with the raw client of each backend and
//! with tower-sessions, in one run. Not published.
//!
//! - `session-bench` (this crate's binary, `src/main.rs`): the throughput/latency harness.
//!   For each backend it drives three subjects through the same workload: **ours** (our
//!   store through the `SessionStore` trait, and the `Session` handle for `request`),
//!   **raw** (the least work the backend's client can do) and **peer** (tower-sessions
//!   0.14 stores through their `SessionStore` trait, in a child process: see
//!   `benches/peer`). Phases are time-boxed with one shared deadline for all tasks, the
//!   three subjects alternate phase by phase (the order rotates each round), and each
//!   figure is the median of the rounds. Then the `hot` scenario ([`hot`]): 32 tasks
//!   incrementing one session's counter through the handle, checking that no acknowledged
//!   increment is lost. It writes `BENCHMARKS.md`.
//! - `cargo bench -p session-benches`: a criterion bench of single-operation latency
//!   (memory store against the raw map, and the JSON codec).
//! - `scripts/bench.sh`: starts the servers, builds both binaries and runs everything.
//!
//! ## Workload
//!
//! A session map `{user_id, csrf_token, cart: 20 x {sku, qty, price_cents}}`, about 1 KB
//! of JSON ([`runner::session_map`]). Operations: create, load (hit), load (miss), update,
//! touch, load+update (one request at store level), request (through the handle: read
//! two keys, write one, save) and delete. Concurrency 1 and 32 tokio tasks on the
//! multi-threaded runtime; pools of 16 connections.
//!
//! ## Example
//!
//! ```
//! use session_benches::runner::{key, session_map, Op};
//!
//! let json = serde_json::to_string(&session_map(0)).unwrap();
//! assert!(json.len() > 900 && json.len() < 1300);
//! assert_eq!(key(b'p', 42).len(), 32);
//! assert_eq!(Op::parse("load_hit"), Some(Op::LoadHit));
//! ```
#![forbid(unsafe_code)]
#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

pub mod bench;
pub mod calls;
pub mod hot;
pub mod ours;
pub mod peer;
pub mod raw;
pub mod report;
pub mod runner;
pub mod scale;
pub mod stores;
