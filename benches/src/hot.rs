//! The `hot` scenario (issue 10): many concurrent requests on ONE session.
//!
//! `tasks` tokio tasks (32 by default) share one session cookie. Each task loops until the
//! phase deadline; one iteration is a whole request through the handle: a fresh
//! [`Session`] for the cookie, `update("counter", |n| n + 1)`, `save()`. A request counts
//! as acknowledged when both calls answer `Ok`. At the end the counter is read back:
//! `lost = acknowledged - (final - initial)` must be 0 (an acknowledged increment that is
//! not in the counter was lost; a negative value would mean a failed request's write was
//! applied anyway). The goal stated by the issue: 0 errors, 0 lost, p99 < 50 ms.
//!
//! The store is wrapped in a [`CountingStore`], so the report also shows the store calls
//! one request costs (a load and a write when saves of one session take turns; more when
//! saves conflict and reload).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_conformance::{CountingStore, StoreCalls};
use session_core::{CookieAction, Session, SessionConfig, SessionKey, SessionStore};

use crate::runner::{run_phase, session_map, PhaseResult, Worker};

/// The session value the scenario increments.
pub const COUNTER: &str = "counter";

/// What one hot phase measured on one backend.
#[derive(Debug, Clone)]
pub struct HotResult {
    /// The backend's name.
    pub backend: String,
    /// Concurrent tasks on the one session.
    pub tasks: usize,
    /// Requests answered `Ok` (`ops`), failed requests (`errors`), latency per request.
    pub phase: PhaseResult,
    /// The counter before the measured phase.
    pub initial: u64,
    /// The counter after it.
    pub final_value: u64,
    /// Store calls during the measured phase.
    pub loads: u64,
    /// `update` calls (compare-and-swap writes, including retried ones).
    pub updates: u64,
    /// Every other store call (create, touch, delete, ...).
    pub other_calls: u64,
}

impl HotResult {
    /// Acknowledged increments missing from the counter (negative: applied increments that
    /// were not acknowledged).
    pub fn lost(&self) -> i64 {
        let applied = self.final_value as i128 - self.initial as i128;
        (self.phase.ops as i128 - applied) as i64
    }

    /// Whether the goal is met: no error, nothing lost, p99 under 50 ms, and the
    /// phase did something.
    pub fn meets_goal(&self) -> bool {
        self.phase.errors == 0
            && self.lost() == 0
            && self.phase.ops > 0
            && self.phase.p99_ns < 50_000_000
    }

    fn per_request(&self, calls: u64) -> f64 {
        let requests = self.phase.ops + self.phase.errors;
        if requests == 0 {
            return 0.0;
        }
        calls as f64 / requests as f64
    }

    /// Store loads per request.
    pub fn loads_per_request(&self) -> f64 {
        self.per_request(self.loads)
    }

    /// Store writes (`update` calls) per request.
    pub fn updates_per_request(&self) -> f64 {
        self.per_request(self.updates)
    }
}

/// One task of the hot phase: a whole request per operation.
pub struct HotWorker {
    store: Arc<dyn SessionStore>,
    config: Arc<SessionConfig>,
    key: SessionKey,
}

impl Worker for HotWorker {
    async fn op(&mut self, _seq: u64) -> Result<(), String> {
        let session = Session::with_key(
            self.store.clone(),
            self.config.clone(),
            Some(self.key.clone()),
            true,
        );
        session
            .update(COUNTER, |n: Option<u64>| n.unwrap_or(0) + 1)
            .await
            .map_err(|e| format!("update: {e}"))?;
        session.save().await.map_err(|e| format!("save: {e}"))?;
        Ok(())
    }
}

async fn read_counter(
    store: &Arc<dyn SessionStore>,
    config: &Arc<SessionConfig>,
    key: &SessionKey,
) -> Result<u64, String> {
    let session = Session::with_key(store.clone(), config.clone(), Some(key.clone()), true);
    session
        .get::<u64>(COUNTER)
        .await
        .map_err(|e| format!("read the counter: {e}"))?
        .ok_or_else(|| "the hot session or its counter is gone".to_owned())
}

fn snapshot(c: &StoreCalls) -> (u64, u64, u64) {
    let loads = c.load.load(Ordering::SeqCst);
    let updates = c.update.load(Ordering::SeqCst);
    (loads, updates, c.total() - loads - updates)
}

/// Runs the hot scenario on `store`: creates the session (the benchmark's 1 KB map plus a
/// counter at 0), warms up for `warmup`, then measures `tasks` tasks for `duration`.
/// The session is deleted afterwards.
///
/// # Errors
///
/// A message if the session cannot be created or read back; failed requests during the
/// phase are counted, not returned.
pub async fn run(
    backend: &str,
    store: Arc<dyn SessionStore>,
    tasks: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<HotResult, String> {
    let counting = CountingStore::new(store);
    let calls = counting.calls();
    let store: Arc<dyn SessionStore> = Arc::new(counting);
    let config = Arc::new(SessionConfig::default());

    let session = Session::new(store.clone(), config.clone(), None);
    for (k, v) in session_map(0) {
        session
            .insert_value(&k, v)
            .await
            .map_err(|e| format!("hot setup: {e}"))?;
    }
    session
        .insert(COUNTER, 0u64)
        .await
        .map_err(|e| format!("hot setup: {e}"))?;
    let CookieAction::Set { key, .. } = session
        .save()
        .await
        .map_err(|e| format!("hot setup: {e}"))?
    else {
        return Err("hot setup: the new session set no cookie".into());
    };
    let workers = |n: usize| -> Vec<HotWorker> {
        (0..n)
            .map(|_| HotWorker {
                store: store.clone(),
                config: config.clone(),
                key: key.clone(),
            })
            .collect()
    };
    if !warmup.is_zero() {
        let w = run_phase(workers(tasks), warmup, None).await;
        if let Some(e) = &w.first_error {
            eprintln!("[hot] {backend} warm-up: {} errors, first: {e}", w.errors);
        }
    }
    let initial = read_counter(&store, &config, &key).await?;
    let before = snapshot(&calls);
    let phase = run_phase(workers(tasks), duration, None).await;
    let after = snapshot(&calls);
    let final_value = read_counter(&store, &config, &key).await?;
    if let Err(e) = store.delete(&key).await {
        eprintln!("[hot] {backend}: could not delete the hot session: {e}");
    }
    Ok(HotResult {
        backend: backend.to_owned(),
        tasks,
        phase,
        initial,
        final_value,
        loads: after.0 - before.0,
        updates: after.1 - before.1,
        other_calls: after.2 - before.2,
    })
}

/// The warm-up before a measured phase of `duration`: a tenth of it, at most 500 ms.
pub fn warmup_for(duration: Duration) -> Duration {
    (duration / 10).min(Duration::from_millis(500))
}

/// Runs the hot scenario on every backend of `backends` that is configured, building
/// each store as the main table does. A backend that cannot be set up is reported in
/// `notes` and skipped.
pub async fn run_all(
    backends: &[String],
    tasks: usize,
    duration: Duration,
    work_dir: &std::path::Path,
    notes: &mut Vec<String>,
) -> Vec<HotResult> {
    let pid = std::process::id();
    let warmup = warmup_for(duration);
    let mut out = Vec::new();
    for backend in backends {
        let started = Instant::now();
        let r: Result<HotResult, String> = async {
            match backend.as_str() {
                "memory" => {
                    let store: Arc<dyn SessionStore> = Arc::new(session_memory::MemoryStore::new());
                    run(backend, store, tasks, warmup, duration).await
                }
                "sqlite" => {
                    let dir = work_dir.join(format!("sqlite-hot-{pid}"));
                    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                    let url = format!("sqlite://{}", dir.join("hot.db").display());
                    let store = crate::stores::sqlite(&url).await?;
                    let r = run(backend, store, tasks, warmup, duration).await;
                    if let Err(e) = std::fs::remove_dir_all(&dir) {
                        eprintln!("[hot] could not remove {}: {e}", dir.display());
                    }
                    r
                }
                "postgres" => {
                    let url = std::env::var("SESSION_TEST_POSTGRES_URL")
                        .map_err(|_| "SESSION_TEST_POSTGRES_URL is not set")?;
                    let table = format!("bench_hot_{pid}");
                    let store = crate::stores::postgres(&url, &table).await?;
                    let r = run(backend, store, tasks, warmup, duration).await;
                    drop_table(&url, &table).await;
                    r
                }
                "redis" => {
                    let url = std::env::var("SESSION_TEST_REDIS_URL")
                        .map_err(|_| "SESSION_TEST_REDIS_URL is not set")?;
                    let prefix = format!("bench:{pid}:hot:");
                    let store = crate::stores::redis(&url, &prefix).await?;
                    let r = run(backend, store, tasks, warmup, duration).await;
                    if let Err(e) = crate::stores::redis_cleanup(&url, &prefix).await {
                        eprintln!("[hot] redis cleanup failed: {e}");
                    }
                    r
                }
                other => Err(format!("no hot scenario for {other:?}")),
            }
        }
        .await;
        match r {
            Ok(h) => {
                eprintln!(
                    "[hot] {backend} c{}: {:.0} req/s p50 {:.2} ms p99 {:.2} ms, {} acknowledged, {} errors, lost {}, {:.2} loads + {:.2} updates per request ({:.1} s){}",
                    h.tasks,
                    h.phase.ops_per_sec(),
                    h.phase.p50_ns as f64 / 1e6,
                    h.phase.p99_ns as f64 / 1e6,
                    h.phase.ops,
                    h.phase.errors,
                    h.lost(),
                    h.loads_per_request(),
                    h.updates_per_request(),
                    started.elapsed().as_secs_f64(),
                    h.phase
                        .first_error
                        .as_deref()
                        .map(|e| format!(", first error: {e}"))
                        .unwrap_or_default()
                );
                out.push(h);
            }
            Err(e) => {
                eprintln!("[hot] {backend}: not measured: {e}");
                notes.push(format!("hot {backend}: not measured: {e}"));
            }
        }
    }
    out
}

async fn drop_table(url: &str, table: &str) {
    let pool = match sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
    {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("[hot] could not drop {table}: {e}");
            return;
        }
    };
    if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
        .execute(&pool)
        .await
    {
        eprintln!("[hot] could not drop {table}: {e}");
    }
}
