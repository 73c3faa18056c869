//! Client work per PostgreSQL `load`, ours against the raw sqlx floor, for an instruction
//! counter (valgrind's callgrind): runs `N` loads of one prefilled session through the
//! benchmark's own workers (`session_benches::ours` through `session-sql`, and
//! `session_benches::raw`'s select of the same 8 columns), after a warm-up.
//!
//! ```text
//! pg-load-calls <ours|raw> <N> [current|multi]
//! ```
//!
//! The setup is the same whatever `N`, so two runs give the instructions of one load:
//!
//! ```text
//! for n in 1000 3000; do
//!   valgrind --tool=callgrind --callgrind-out-file=cg.ours.$n target/release/pg-load-calls ours $n
//! done
//! # (Ir(3000) - Ir(1000)) / 2000, and the same for raw
//! ```
//!
//! `current` (the default) runs on a current-thread runtime, whose counts repeat to a few
//! instructions per load; `multi` on the benchmark's multi-threaded runtime. Needs
//! `SESSION_TEST_POSTGRES_URL`; its tables are dropped at the end.

use std::process::ExitCode;

use session_benches::ours::OursState;
use session_benches::raw::{exec, raw_pg_pool, RawPool, RawSql};
use session_benches::runner::{Op, Worker};

/// Loads run before the counted ones (connections opened, statements prepared).
const WARM_UP: u64 = 100;

async fn loads(worker: &mut impl Worker, n: u64) -> Result<(), String> {
    for seq in 0..WARM_UP + n {
        worker.op(seq).await?;
    }
    Ok(())
}

async fn run(who: &str, n: u64) -> Result<(), String> {
    let url = std::env::var("SESSION_TEST_POSTGRES_URL")
        .map_err(|_| "SESSION_TEST_POSTGRES_URL is not set".to_owned())?;
    let pid = std::process::id();
    match who {
        "ours" => {
            let table = format!("calls_ours_{pid}");
            let store = session_benches::stores::postgres(&url, &table).await?;
            let state = OursState::prefill(store, 1, 1).await?;
            let mut worker = state.workers(Op::LoadHit, 1, 0).remove(0);
            let result = loads(&mut worker, n).await;
            drop_table(&url, &table).await?;
            result
        }
        "raw" => {
            let table = format!("calls_raw_{pid}");
            // The benchmark's raw floor.
            let pool = raw_pg_pool(&url).await?;
            let raw = RawSql::new(RawPool::Pg(pool.clone()), &table, 1).await?;
            let mut worker = raw.workers(Op::LoadHit, 1, 0).remove(0);
            let result = loads(&mut worker, n).await;
            exec(&RawPool::Pg(pool), &format!("DROP TABLE {table}")).await?;
            result
        }
        other => Err(format!("unknown subject {other:?}: ours or raw")),
    }
}

async fn drop_table(url: &str, table: &str) -> Result<(), String> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .map_err(|e| format!("postgres: {e}"))?;
    exec(&RawPool::Pg(pool), &format!("DROP TABLE \"{table}\"")).await
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(who), Some(n)) = (args.first(), args.get(1).and_then(|n| n.parse().ok())) else {
        eprintln!("usage: pg-load-calls <ours|raw> <N> [current|multi]");
        return ExitCode::from(2);
    };
    let runtime = match args.get(2).map(String::as_str) {
        None | Some("current") => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some("multi") => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        Some(other) => {
            eprintln!("unknown runtime {other:?}: current or multi");
            return ExitCode::from(2);
        }
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pg-load-calls: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // On a spawned task, as the benchmark's workers run.
    let who = who.clone();
    match runtime.block_on(async move { tokio::spawn(async move { run(&who, n).await }).await }) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("pg-load-calls: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("pg-load-calls: task failed: {e}");
            ExitCode::FAILURE
        }
    }
}
