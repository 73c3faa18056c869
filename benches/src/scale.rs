//! Scale: load latency with many stored sessions, and `delete_expired` under load.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::chrono::{Duration as TimeDelta, Utc};
use session_core::{Record, SessionConfig, SessionKey, SessionStore};
use sqlx::{AssertSqlSafe, PgPool};

use crate::bench::Settings;
use crate::ours::{encoded, OursState};
use crate::runner::{key, run_phase, Op, PhaseResult, TTL_SECS};

/// Load latency of our store at one size.
#[derive(Debug, Clone)]
pub struct ScaleRow {
    pub backend: String,
    pub size: usize,
    pub tasks: usize,
    pub fill_secs: f64,
    pub result: PhaseResult,
    /// Whether the 20% target applies (our store), or the row is a reference (raw map).
    pub target: bool,
}

/// `delete_expired` of many expired rows while loads run.
#[derive(Debug, Clone)]
pub struct CleanupResult {
    pub live: usize,
    pub expired: usize,
    pub removed: u64,
    pub secs: f64,
    pub baseline: PhaseResult,
    pub windows: Vec<PhaseResult>,
    pub error: Option<String>,
}

fn parse(k: String) -> SessionKey {
    SessionKey::try_from(k).expect("benchmark keys are valid")
}

fn state(store: Arc<dyn SessionStore>, size: usize) -> OursState {
    OursState {
        store,
        config: Arc::new(SessionConfig::default()),
        keys: Arc::new((0..size as u64).map(|n| parse(key(b'p', n))).collect()),
        versions: Arc::new(Vec::<AtomicU64>::new()),
        request_keys: Arc::new(Vec::new()),
        miss_keys: Arc::new(Vec::new()),
        data: encoded(0),
    }
}

/// Creates `p` sessions `from..to` through the store itself, `tasks` at a time.
async fn fill_via_store(
    store: &Arc<dyn SessionStore>,
    from: usize,
    to: usize,
    tasks: usize,
) -> Result<(), String> {
    let data = encoded(0);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let store = store.clone();
        let data = data.clone();
        handles.push(tokio::spawn(async move {
            let mut n = from + t;
            let expires = Utc::now() + TimeDelta::seconds(TTL_SECS as i64);
            let mut rec = Record::new(parse(key(b'p', 0)), data, expires);
            while n < to {
                rec.key = parse(key(b'p', n as u64));
                store
                    .delete(&rec.key)
                    .await
                    .map_err(|e| format!("fill delete: {e}"))?;
                store.create(&rec).await.map_err(|e| format!("fill: {e}"))?;
                n += tasks;
            }
            Ok::<(), String>(())
        }));
    }
    for h in handles {
        h.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// Inserts rows `from..to` straight into our PostgreSQL table (same layout as the store).
async fn fill_postgres(
    pool: &PgPool,
    table: &str,
    kind: char,
    from: usize,
    to: usize,
    expired: bool,
) -> Result<(), String> {
    let data = encoded(0);
    let expiry = if expired {
        "now() - interval '1 hour'"
    } else {
        "now() + interval '14 days'"
    };
    let mut start = from;
    while start < to {
        let end = (start + 50_000).min(to);
        let sql = format!(
            "INSERT INTO {table} (session_key, data, expires_at, version, user_id, created_at, \
             last_active_at, user_agent, ip) \
             SELECT '{kind}' || lpad(g::text, 31, '0'), $1, {expiry}, 1, NULL, now(), NULL, NULL, NULL \
             FROM generate_series($2::bigint, $3::bigint) g \
             ON CONFLICT (session_key) DO NOTHING"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(&data)
            .bind(start as i64)
            .bind(end as i64 - 1)
            .execute(pool)
            .await
            .map_err(|e| format!("fill {table}: {e}"))?;
        start = end;
    }
    sqlx::query(AssertSqlSafe(format!("ANALYZE {table}")))
        .execute(pool)
        .await
        .map_err(|e| format!("analyze: {e}"))?;
    Ok(())
}

async fn measure(
    st: &OursState,
    s: &Settings,
    backend: &str,
    size: usize,
    fill_secs: f64,
    rows: &mut Vec<ScaleRow>,
) {
    for &tasks in &s.tasks {
        let mut runs = Vec::new();
        for round in 0..s.rounds {
            let r = run_phase(st.workers(Op::LoadHit, tasks, round), s.phase, None).await;
            runs.push(r);
        }
        let r = crate::report::median(&runs);
        eprintln!(
            "[scale] {backend} {size} c{tasks}: {:.0} ops/s p50 {:.1}us p99 {:.1}us{}",
            r.ops_per_sec(),
            r.p50_ns as f64 / 1e3,
            r.p99_ns as f64 / 1e3,
            r.first_error
                .as_deref()
                .map(|e| format!(" error: {e}"))
                .unwrap_or_default()
        );
        rows.push(ScaleRow {
            backend: backend.into(),
            size,
            tasks,
            fill_secs,
            result: r,
            target: true,
        });
    }
}

/// The raw map at the same size: how much of the growth is the hardware (caches, TLB).
async fn measure_raw_memory(s: &Settings, size: usize, rows: &mut Vec<ScaleRow>) {
    let t = Instant::now();
    let raw = crate::raw::RawMemory::new(size);
    let fill = t.elapsed().as_secs_f64();
    for &tasks in &s.tasks {
        let mut runs = Vec::new();
        for round in 0..s.rounds {
            runs.push(run_phase(raw.workers(Op::LoadHit, tasks, round), s.phase, None).await);
        }
        let r = crate::report::median(&runs);
        eprintln!(
            "[scale] raw map {size} c{tasks}: {:.0} ops/s p50 {:.1}us p99 {:.1}us",
            r.ops_per_sec(),
            r.p50_ns as f64 / 1e3,
            r.p99_ns as f64 / 1e3
        );
        rows.push(ScaleRow {
            backend: "memory (raw map, reference)".into(),
            size,
            tasks,
            fill_secs: fill,
            result: r,
            target: false,
        });
    }
}

/// Runs the scale scenario for the backends in `s.scale_backends`.
pub async fn run(
    s: &Settings,
    rows: &mut Vec<ScaleRow>,
    cleanup: &mut Option<CleanupResult>,
    notes: &mut Vec<String>,
) {
    let mut sizes = s.scale_sizes.clone();
    sizes.sort_unstable();
    let pid = std::process::id();
    for backend in &s.scale_backends {
        let r: Result<(), String> = async {
            match backend.as_str() {
                "memory" => {
                    for &size in &sizes {
                        let store: Arc<dyn SessionStore> =
                            Arc::new(session_memory::MemoryStore::new());
                        let t = Instant::now();
                        fill_via_store(&store, 0, size, 2).await?;
                        let fill = t.elapsed().as_secs_f64();
                        measure(&state(store, size), s, backend, size, fill, rows).await;
                        measure_raw_memory(s, size, rows).await;
                    }
                }
                "redis" => {
                    let url = std::env::var("SESSION_TEST_REDIS_URL")
                        .map_err(|_| "SESSION_TEST_REDIS_URL is not set")?;
                    let prefix = format!("bench:{pid}:scale:");
                    let store = crate::stores::redis(&url, &prefix).await?;
                    let mut have = 0;
                    for &size in &sizes {
                        let t = Instant::now();
                        fill_via_store(&store, have, size, 64).await?;
                        have = size;
                        let fill = t.elapsed().as_secs_f64();
                        measure(&state(store.clone(), size), s, backend, size, fill, rows).await;
                    }
                    crate::stores::redis_cleanup(&url, &prefix).await?;
                }
                "postgres" => {
                    let url = std::env::var("SESSION_TEST_POSTGRES_URL")
                        .map_err(|_| "SESSION_TEST_POSTGRES_URL is not set")?;
                    let table = format!("bench_scale_{pid}");
                    let store = crate::stores::postgres(&url, &table).await?;
                    let pool = sqlx::postgres::PgPoolOptions::new()
                        .max_connections(4)
                        .connect(&url)
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut have = 0;
                    for &size in &sizes {
                        let t = Instant::now();
                        fill_postgres(&pool, &table, 'p', have, size, false).await?;
                        have = size;
                        let fill = t.elapsed().as_secs_f64();
                        measure(&state(store.clone(), size), s, backend, size, fill, rows).await;
                    }
                    if s.cleanup_rows > 0 {
                        *cleanup = Some(cleanup_postgres(s, &store, &pool, &table, have).await);
                    }
                    sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
                        .execute(&pool)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                other => return Err(format!("no scale scenario for {other}")),
            }
            Ok(())
        }
        .await;
        if let Err(e) = r {
            eprintln!("[scale] {backend}: {e}");
            notes.push(format!("scale {backend}: {e}"));
        }
    }
}

async fn cleanup_postgres(
    s: &Settings,
    store: &Arc<dyn SessionStore>,
    pool: &PgPool,
    table: &str,
    live: usize,
) -> CleanupResult {
    let mut out = CleanupResult {
        live,
        expired: s.cleanup_rows,
        removed: 0,
        secs: 0.0,
        baseline: PhaseResult::default(),
        windows: Vec::new(),
        error: None,
    };
    eprintln!(
        "[scale] postgres: inserting {} expired rows",
        s.cleanup_rows
    );
    if let Err(e) = fill_postgres(pool, table, 'x', 0, s.cleanup_rows, true).await {
        out.error = Some(e);
        return out;
    }
    let st = state(store.clone(), live);
    let tasks = 32;
    out.baseline = run_phase(
        st.workers(Op::LoadHit, tasks, 0),
        Duration::from_secs(1),
        None,
    )
    .await;
    let cleaner = store.clone();
    let t = Instant::now();
    let job = tokio::spawn(async move {
        let r = cleaner.delete_expired().await;
        (r, Instant::now())
    });
    let mut round = 1;
    while !job.is_finished() {
        let w = run_phase(
            st.workers(Op::LoadHit, tasks, round),
            Duration::from_secs(1),
            None,
        )
        .await;
        eprintln!(
            "[scale] during cleanup: {:.0} ops/s p99 {:.1}us",
            w.ops_per_sec(),
            w.p99_ns as f64 / 1e3
        );
        out.windows.push(w);
        round += 1;
        if t.elapsed() > Duration::from_secs(600) {
            out.error = Some("cleanup still running after 600 s".into());
            break;
        }
    }
    match job.await {
        Ok((Ok(n), end)) => {
            out.removed = n;
            out.secs = (end - t).as_secs_f64();
        }
        Ok((Err(e), _)) => out.error = Some(e.to_string()),
        Err(e) => out.error = Some(e.to_string()),
    }
    eprintln!(
        "[scale] postgres delete_expired removed {} rows in {:.1} s",
        out.removed, out.secs
    );
    out
}
