//! `faults --urls URL[,URL] --start-cmd 'kill -STOP 123' --end-cmd 'kill -CONT 123'
//! [--before 5] [--fault 5] [--after 10] [--timeout-ms 5000] [--groups 4] [--label L]
//! [--json out.json]`
//!
//! Runs the soak traffic (checked by the same model) against the demo app, runs
//! `--start-cmd` after `--before` seconds, `--end-cmd` `--fault` seconds later, and keeps
//! the traffic going `--after` seconds more. Reports: the share of the requests sent during
//! the fault answered within the store's timeout + 10%, their status codes (and how many
//! 503s carried `Retry-After`), the time from the end of the fault until requests succeed
//! again, and the acknowledged writes lost. Exits 1 when a write was lost, a model check
//! failed, or requests still failed at the end. With `MODEL_TRACE` set in the
//! environment, each of the first 50 violations is followed on stderr by every group's
//! last operations and model states.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use session_reliability::model::{run_group, Global, Traffic};
use session_reliability::{http, Args};

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("faults: {e}");
            ExitCode::from(2)
        }
    }
}

async fn shell(cmd: &str) -> Result<(), String> {
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .await
        .map_err(|e| format!("running {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} exited with {status}"))
    }
}

async fn run() -> Result<bool, String> {
    let args = Args::parse(std::env::args().skip(1))?;
    let urls = args.list("urls");
    if urls.is_empty() {
        return Err("--urls is required".into());
    }
    let start_cmd = args.get("start-cmd").ok_or("--start-cmd is required")?;
    let end_cmd = args.get("end-cmd").ok_or("--end-cmd is required")?;
    let before = args.get_u64("before", 5)?;
    let fault = args.get_u64("fault", 5)?;
    let after = args.get_u64("after", 10)?;
    let timeout_ms = args.get_u64("timeout-ms", 5000)?;
    let groups = args.get_u64("groups", 4)?;
    let label = args.get("label").unwrap_or("?").to_owned();

    let global = Global::new(true);
    let started = Instant::now();
    let traffic = Traffic {
        // Far above the store's timeout: the app must answer by itself.
        http: http::client(Duration::from_millis(timeout_ms * 4 + 5000)),
        urls: Arc::new(urls),
        global: global.clone(),
        deadline: started + Duration::from_secs(before + fault + after),
        think: Duration::from_millis(args.get_u64("think-ms", 5)?),
    };
    // User names of this run only: the store server outlives one fault's run (pg-stop and
    // pg-kill share one PostgreSQL, redis-stop and redis-kill one Redis), and the sessions
    // an earlier run left there belong to its users, not to this run's model.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut tasks = Vec::new();
    for g in 0..groups {
        tasks.push(tokio::spawn(run_group(
            traffic.clone(),
            format!("{label}-{run}-user{g}"),
            2,
            7_000 + g,
        )));
    }
    tokio::time::sleep(Duration::from_secs(before)).await;
    let t0 = started.elapsed().as_millis() as u64;
    shell(start_cmd).await?;
    tokio::time::sleep(Duration::from_secs(fault)).await;
    let t1 = started.elapsed().as_millis() as u64;
    shell(end_cmd).await?;
    let t1_done = started.elapsed().as_millis() as u64;
    for t in tasks {
        t.await.map_err(|e| format!("a traffic task failed: {e}"))?;
    }

    let g = global
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let failed = |s: u16| s == 0 || s >= 500;
    let during: Vec<_> = g
        .events
        .iter()
        .filter(|e| e.at_ms >= t0 && e.at_ms < t1)
        .collect();
    let limit = timeout_ms + timeout_ms / 10;
    let in_time = during
        .iter()
        .filter(|e| e.status != 0 && e.took_ms <= limit)
        .count();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for e in &during {
        *statuses.entry(e.status.to_string()).or_default() += 1;
    }
    let s503 = during.iter().filter(|e| e.status == 503).count();
    let s503_retry = during
        .iter()
        .filter(|e| e.status == 503 && e.retry_after)
        .count();
    let max_ms = during.iter().map(|e| e.took_ms).max().unwrap_or(0);
    // Recovery: from the end of the fault (the restart command returned) until the end of the
    // last failed request sent after it.
    let last_failure_end = g
        .events
        .iter()
        .filter(|e| e.at_ms >= t1_done && failed(e.status))
        .map(|e| e.at_ms + e.took_ms)
        .max()
        .unwrap_or(0);
    let recovery_ms = last_failure_end.saturating_sub(t1_done);
    let end_ms = started.elapsed().as_millis() as u64;
    let failing_at_end = g
        .events
        .iter()
        .filter(|e| e.at_ms + 2000 >= end_ms && failed(e.status))
        .count();
    let share = if during.is_empty() {
        1.0
    } else {
        in_time as f64 / during.len() as f64
    };
    let ok = g.violation_count == 0 && g.lost_writes == 0 && failing_at_end == 0;
    let summary = json!({
        "label": label,
        "fault_ms": t1 - t0,
        "restart_ms": t1_done - t1,
        "requests": g.requests,
        "requests_during": during.len(),
        "answered_in_time": in_time,
        "share_in_time": share,
        "limit_ms": limit,
        "max_ms_during": max_ms,
        "statuses_during": statuses,
        "s503": s503,
        "s503_retry_after": s503_retry,
        "recovery_ms": recovery_ms,
        "failures": g.failures(),
        "acked_writes": g.acked_writes,
        "lost_writes": g.lost_writes,
        "violations": g.violation_count,
        "violation_samples": g.violations,
        "failing_at_end": failing_at_end,
        "ok": ok,
    });
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    println!("{text}");
    if let Some(path) = args.get("json") {
        std::fs::write(path, &text).map_err(|e| format!("writing {path}: {e}"))?;
    }
    Ok(ok)
}
