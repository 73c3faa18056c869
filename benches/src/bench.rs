//! The main table: every backend, every operation, ours / raw / peer interleaved.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::ours::OursState;
use crate::peer::PeerClient;
use crate::raw::{raw_pg_pool, RawMemory, RawPool, RawRedis, RawSql};
use crate::runner::{run_phase, Op, PhaseResult};

/// Settings of one harness run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub phase: Duration,
    pub rounds: u32,
    pub backends: Vec<String>,
    pub ops: Vec<Op>,
    pub tasks: Vec<usize>,
    pub prefill: usize,
    pub peer_bin: Option<PathBuf>,
    pub out: PathBuf,
    pub scale_sizes: Vec<usize>,
    pub scale_backends: Vec<String>,
    pub cleanup_rows: usize,
    /// Backends of the `hot` scenario (see [`crate::hot`]).
    pub hot_backends: Vec<String>,
    /// Length of the measured `hot` phase on each backend.
    pub hot_phase: Duration,
    /// Concurrent tasks on the one hot session.
    pub hot_tasks: usize,
    pub command: String,
    pub work_dir: PathBuf,
}

/// Who is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Who {
    Ours,
    Raw,
    Peer,
}

impl Who {
    pub fn name(self) -> &'static str {
        match self {
            Who::Ours => "ours",
            Who::Raw => "raw",
            Who::Peer => "peer",
        }
    }
}

enum Kind {
    Ours(OursState),
    RawMemory(RawMemory),
    RawRedis(RawRedis),
    RawSql(RawSql),
    Peer(Box<PeerClient>),
}

/// One subject with the per-task create counts its delete phases need.
pub struct Subject {
    kind: Kind,
    created: HashMap<(u32, usize), Vec<u64>>,
}

impl Subject {
    fn new(kind: Kind) -> Subject {
        Subject {
            kind,
            created: HashMap::new(),
        }
    }

    async fn run(
        &mut self,
        op: Op,
        tasks: usize,
        round: u32,
        duration: Duration,
    ) -> Result<PhaseResult, String> {
        let limits = match op {
            Op::Delete => Some(
                self.created
                    .get(&(round, tasks))
                    .cloned()
                    .unwrap_or_default(),
            ),
            _ => None,
        };
        let r = match &mut self.kind {
            Kind::Ours(s) => run_phase(s.workers(op, tasks, round), duration, limits).await,
            Kind::RawMemory(s) => run_phase(s.workers(op, tasks, round), duration, limits).await,
            Kind::RawRedis(s) => run_phase(s.workers(op, tasks, round), duration, limits).await,
            Kind::RawSql(s) => run_phase(s.workers(op, tasks, round), duration, limits).await,
            Kind::Peer(p) => p.run(op, tasks, round, duration).await?,
        };
        if op == Op::Create {
            self.created.insert((round, tasks), r.per_task.clone());
        }
        Ok(r)
    }

    async fn teardown(self) {
        if let Kind::Peer(mut p) = self.kind {
            if let Err(e) = p.teardown().await {
                eprintln!("[bench] peer teardown failed: {e}");
            }
            p.quit().await;
        }
    }
}

/// Every measured phase: (backend, op, tasks, who) -> one result per round.
pub type Results = HashMap<(String, Op, usize, Who), Vec<PhaseResult>>;

fn env(var: &str) -> Result<String, String> {
    std::env::var(var).map_err(|_| {
        format!("{var} is not set: run scripts/bench.sh, or `source /tmp/svc/env` first")
    })
}

/// Builds the three subjects of one backend. A subject that cannot be built is reported
/// (its column stays empty) instead of stopping the run.
async fn subjects(
    backend: &str,
    s: &Settings,
    notes: &mut Vec<String>,
) -> Result<Vec<(Who, Subject)>, String> {
    let mut out = Vec::new();
    let prefill = s.prefill;
    let pid = std::process::id();
    let peer_url;
    match backend {
        "memory" => {
            let store: Arc<dyn session_core::SessionStore> =
                Arc::new(session_memory::MemoryStore::new());
            out.push((
                Who::Ours,
                Subject::new(Kind::Ours(OursState::prefill(store, prefill, 16).await?)),
            ));
            out.push((
                Who::Raw,
                Subject::new(Kind::RawMemory(RawMemory::new(prefill))),
            ));
            peer_url = String::new();
        }
        "redis" => {
            let url = env("SESSION_TEST_REDIS_URL")?;
            match crate::stores::redis(&url, &format!("bench:{pid}:ours:")).await {
                Ok(store) => out.push((
                    Who::Ours,
                    Subject::new(Kind::Ours(OursState::prefill(store, prefill, 16).await?)),
                )),
                Err(e) => notes.push(format!("redis: our store not measured: {e}")),
            }
            out.push((
                Who::Raw,
                Subject::new(Kind::RawRedis(
                    RawRedis::new(&url, &format!("bench:{pid}:raw:"), prefill).await?,
                )),
            ));
            peer_url = url;
        }
        "postgres" => {
            let url = env("SESSION_TEST_POSTGRES_URL")?;
            match crate::stores::postgres(&url, &format!("bench_ours_{pid}")).await {
                Ok(store) => out.push((
                    Who::Ours,
                    Subject::new(Kind::Ours(OursState::prefill(store, prefill, 16).await?)),
                )),
                Err(e) => notes.push(format!("postgres: our store not measured: {e}")),
            }
            let pool = raw_pg_pool(&url).await?;
            out.push((
                Who::Raw,
                Subject::new(Kind::RawSql(
                    RawSql::new(RawPool::Pg(pool), &format!("bench_raw_{pid}"), prefill).await?,
                )),
            ));
            peer_url = url;
        }
        "sqlite" => {
            let dir = s.work_dir.join(format!("sqlite-{pid}"));
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let ours_url = format!("sqlite://{}", dir.join("ours.db").display());
            match crate::stores::sqlite(&ours_url).await {
                Ok(store) => out.push((
                    Who::Ours,
                    Subject::new(Kind::Ours(OursState::prefill(store, prefill, 16).await?)),
                )),
                Err(e) => notes.push(format!("sqlite: our store not measured: {e}")),
            }
            let options: sqlx::sqlite::SqliteConnectOptions =
                format!("sqlite://{}", dir.join("raw.db").display())
                    .parse()
                    .map_err(|e| format!("sqlite: {e}"))?;
            let options = options
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5));
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(16)
                .test_before_acquire(false)
                .connect_with(options)
                .await
                .map_err(|e| format!("sqlite: {e}"))?;
            out.push((
                Who::Raw,
                Subject::new(Kind::RawSql(
                    RawSql::new(RawPool::Sqlite(pool), "bench_raw", prefill).await?,
                )),
            ));
            peer_url = format!("sqlite://{}", dir.join("peer.db").display());
        }
        other => return Err(format!("unknown backend {other:?}")),
    }
    match &s.peer_bin {
        Some(bin) => match PeerClient::spawn(bin) {
            Err(e) => notes.push(format!("{backend}: peer not measured: {e}")),
            Ok(mut peer) => match peer
                .setup(backend, &peer_url, prefill, &format!("bench_peer_{pid}"))
                .await
            {
                Ok(()) => out.push((Who::Peer, Subject::new(Kind::Peer(Box::new(peer))))),
                Err(e) => {
                    notes.push(format!("{backend}: peer not measured: {e}"));
                    peer.quit().await;
                }
            },
        },
        None => notes.push(format!("{backend}: peer not measured (no --peer-bin)")),
    }
    Ok(out)
}

/// Runs the main table for every backend in `s.backends`.
pub async fn run(s: &Settings, results: &mut Results, notes: &mut Vec<String>) {
    for backend in &s.backends {
        eprintln!("[bench] {backend}: setting up (prefill {})", s.prefill);
        let mut subs = match subjects(backend, s, notes).await {
            Ok(subs) => subs,
            Err(e) => {
                notes.push(format!("{backend}: not measured: {e}"));
                eprintln!("[bench] {backend}: {e}");
                continue;
            }
        };
        // Warm-up: connections, prepared statements, caches.
        for (_, sub) in subs.iter_mut() {
            let _ = sub.run(Op::LoadHit, 16, 9999, s.phase / 2).await;
        }
        for round in 0..s.rounds {
            for op in &s.ops {
                for &tasks in &s.tasks {
                    let n = subs.len();
                    for k in 0..n {
                        let idx = (k + round as usize) % n;
                        let (who, sub) = &mut subs[idx];
                        match sub.run(*op, tasks, round, s.phase).await {
                            Ok(r) => {
                                eprintln!(
                                    "[bench] {backend} r{round} {:<11} c{tasks:<2} {:<4} {:>10.0} ops/s p50 {:>8.1}us p99 {:>8.1}us{}",
                                    op.name(),
                                    who.name(),
                                    r.ops_per_sec(),
                                    r.p50_ns as f64 / 1e3,
                                    r.p99_ns as f64 / 1e3,
                                    match (&r.first_error, r.errors) {
                                        (Some(e), n) if n > 0 => format!("  errors {n}: {e}"),
                                        _ => String::new(),
                                    }
                                );
                                results
                                    .entry((backend.clone(), *op, tasks, *who))
                                    .or_default()
                                    .push(r);
                            }
                            Err(e) => {
                                eprintln!("[bench] {backend} {} {}: {e}", op.name(), who.name());
                                notes.push(format!("{backend} {} {}: {e}", op.name(), who.name()));
                            }
                        }
                    }
                }
            }
        }
        for (_, sub) in subs {
            sub.teardown().await;
        }
    }
}
