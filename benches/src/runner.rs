//! The phase runner and the workload, shared by the harness and the peer process.
//!
//! This file depends only on `tokio`, `hdrhistogram` and `serde_json`, so that the
//! tower-sessions process (`benches/peer`, a workspace of its own) can include it with
//! `#[path]` and drive its stores through exactly the same loop.

use std::future::Future;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

/// One benchmarked operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Insert a new session under a fresh key.
    Create,
    /// Load an existing session.
    LoadHit,
    /// Load a key that was never stored.
    LoadMiss,
    /// Overwrite an existing session (compare-and-swap for our stores).
    Update,
    /// Move the expiry of an existing session.
    Touch,
    /// Load then update the same session: one simulated request at store level.
    LoadUpdate,
    /// Through the session handle: read two keys, write one, save.
    Request,
    /// Delete a session created by the create phase.
    Delete,
}

impl Op {
    /// Every operation, in the order the harness runs them (create first, delete last).
    pub const ALL: [Op; 8] = [
        Op::Create,
        Op::LoadHit,
        Op::LoadMiss,
        Op::Update,
        Op::Touch,
        Op::LoadUpdate,
        Op::Request,
        Op::Delete,
    ];

    /// Short name used on the command line, in the peer protocol and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::LoadHit => "load_hit",
            Op::LoadMiss => "load_miss",
            Op::Update => "update",
            Op::Touch => "touch",
            Op::LoadUpdate => "load_update",
            Op::Request => "request",
            Op::Delete => "delete",
        }
    }

    /// Inverse of [`Op::name`].
    pub fn parse(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == s)
    }
}

/// What one phase measured.
#[derive(Debug, Clone, Default)]
pub struct PhaseResult {
    /// Successful operations.
    pub ops: u64,
    /// Failed operations (an error, or a wrong answer such as a miss on a load hit).
    pub errors: u64,
    /// Wall time from the start to the end of the last task.
    pub elapsed_ns: u64,
    /// Median latency of one operation.
    pub p50_ns: u64,
    /// 99th percentile latency.
    pub p99_ns: u64,
    /// Operations done by each task (used to bound the delete phase).
    pub per_task: Vec<u64>,
    /// The first error message, if any.
    pub first_error: Option<String>,
}

impl PhaseResult {
    /// Operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        if self.elapsed_ns == 0 {
            return 0.0;
        }
        self.ops as f64 * 1e9 / self.elapsed_ns as f64
    }

    /// As one JSON object (the peer protocol).
    pub fn to_json(&self) -> Value {
        json!({
            "ops": self.ops,
            "errors": self.errors,
            "elapsed_ns": self.elapsed_ns,
            "p50_ns": self.p50_ns,
            "p99_ns": self.p99_ns,
            "per_task": self.per_task,
            "first_error": self.first_error,
        })
    }

    /// Inverse of [`PhaseResult::to_json`].
    pub fn from_json(v: &Value) -> Option<PhaseResult> {
        Some(PhaseResult {
            ops: v.get("ops")?.as_u64()?,
            errors: v.get("errors")?.as_u64()?,
            elapsed_ns: v.get("elapsed_ns")?.as_u64()?,
            p50_ns: v.get("p50_ns")?.as_u64()?,
            p99_ns: v.get("p99_ns")?.as_u64()?,
            per_task: v
                .get("per_task")?
                .as_array()?
                .iter()
                .filter_map(Value::as_u64)
                .collect(),
            first_error: v
                .get("first_error")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

/// One task's state in a phase. `op` runs operation number `seq` of this task.
pub trait Worker: Send + 'static {
    /// Runs one operation; `Err` counts as a failed operation.
    fn op(&mut self, seq: u64) -> impl Future<Output = Result<(), String>> + Send;
}

/// A latency histogram in nanoseconds (1 ns to 60 s, 2 significant digits).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 2).expect("constant histogram bounds are valid")
}

/// After how many operations a task yields to the scheduler. Stores that never wait (the
/// memory stores) would otherwise run one task per worker thread to the deadline, which is
/// concurrency 2, not 32.
pub const YIELD_EVERY: u64 = 8;

/// Runs one phase: one task per worker, all stopping at one shared deadline (or, with
/// `limits`, after `limits[i]` operations for task `i`, whichever comes first).
pub async fn run_phase<W: Worker>(
    workers: Vec<W>,
    duration: Duration,
    limits: Option<Vec<u64>>,
) -> PhaseResult {
    let start = Instant::now();
    let deadline = start + duration;
    let mut handles = Vec::with_capacity(workers.len());
    for (i, mut worker) in workers.into_iter().enumerate() {
        let limit = limits
            .as_ref()
            .map(|l| l.get(i).copied().unwrap_or(0))
            .unwrap_or(u64::MAX);
        handles.push(tokio::spawn(async move {
            let mut hist = histogram();
            let mut ops = 0u64;
            let mut errors = 0u64;
            let mut first_error = None;
            let mut seq = 0u64;
            let mut now = Instant::now();
            while now < deadline && seq < limit {
                let t0 = now;
                let res = worker.op(seq).await;
                now = Instant::now();
                seq += 1;
                match res {
                    Ok(()) => {
                        ops += 1;
                        let _ = hist.record((now - t0).as_nanos().max(1) as u64);
                    }
                    Err(e) => {
                        errors += 1;
                        if first_error.is_none() {
                            first_error = Some(e);
                        }
                    }
                }
                if seq.is_multiple_of(YIELD_EVERY) {
                    tokio::task::yield_now().await;
                    now = Instant::now();
                }
            }
            (hist, ops, errors, first_error, now)
        }));
    }
    let mut total = histogram();
    let mut result = PhaseResult::default();
    let mut end = start;
    for h in handles {
        match h.await {
            Ok((hist, ops, errors, first_error, task_end)) => {
                let _ = total.add(&hist);
                result.ops += ops;
                result.errors += errors;
                result.per_task.push(ops + errors);
                if result.first_error.is_none() {
                    result.first_error = first_error;
                }
                end = end.max(task_end);
            }
            Err(e) => {
                result.errors += 1;
                result.per_task.push(0);
                result
                    .first_error
                    .get_or_insert_with(|| format!("task panicked: {e}"));
            }
        }
    }
    result.elapsed_ns = (end - start).as_nanos() as u64;
    result.p50_ns = total.value_at_quantile(0.50);
    result.p99_ns = total.value_at_quantile(0.99);
    result
}

/// Which prefilled session a task uses for its `seq`-th operation. Tasks get disjoint
/// slices (task `t` uses indices `t, t + tasks, t + 2 tasks, ...`), so no two tasks write
/// one session at the same time and versions tracked per index stay exact.
pub fn slot(task: usize, tasks: usize, prefill: usize, seq: u64) -> usize {
    let per_task = (prefill / tasks.max(1)).max(1) as u64;
    task + tasks * (seq % per_task) as usize
}

/// A 32-character key in the `[a-z0-9]` alphabet: `kind` then `n` in decimal, zero-padded.
/// `kind` is `b'p'` (prefilled), `b'q'` (prefilled, for handle requests), `b'm'` (never
/// stored) or `b'c'` (created by the create phase).
pub fn key(kind: u8, n: u64) -> String {
    let mut buf = [b'0'; 32];
    buf[0] = kind;
    let mut n = n;
    let mut i = 31;
    while n > 0 && i > 0 {
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        i -= 1;
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// The number behind a created key: unique per (round, concurrency, task, seq).
pub fn created_n(round: u32, conc: usize, task: usize, seq: u64) -> u64 {
    ((u64::from(round) * 100 + conc as u64) * 1000 + task as u64) * 1_000_000_000 + seq
}

/// The benchmark's session map: `{user_id, csrf_token, cart: 20 x {sku, qty, price_cents}}`,
/// about 1 KB as JSON. `variant` changes the CSRF token (same length).
pub fn session_map(variant: u32) -> Map<String, Value> {
    let cart: Vec<Value> = (0..20)
        .map(|i| {
            json!({
                "sku": format!("SKU-{:06}", 100_000 + i * 37),
                "qty": 1 + i % 4,
                "price_cents": 499 + i * 125,
            })
        })
        .collect();
    let mut map = Map::new();
    map.insert("user_id".into(), json!("user-0001234567"));
    map.insert("csrf_token".into(), json!(format!("csrf{variant:028}")));
    map.insert("cart".into(), Value::Array(cart));
    map
}

/// The session time to live used everywhere: 14 days, in seconds.
pub const TTL_SECS: u64 = 14 * 24 * 3600;
