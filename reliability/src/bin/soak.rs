//! `soak --urls http://127.0.0.1:P1,http://127.0.0.1:P2 --pids PID1,PID2 --seconds 60
//! [--groups 8] [--devices 2] [--session-age-secs 4] [--label sqlite] [--json out.json]
//! [--seed N]`
//!
//! Mixed traffic against running demo-app processes that share one store, checked by the
//! model in `session_reliability::model`; samples RSS and file descriptors of the app
//! processes. Prints a JSON summary (and writes it to `--json`); exits 1 on any violation,
//! any failed request, or growth of RSS/descriptors after warm-up.
//!
//! `--session-age-secs N` (1 to 60) says the apps run with `SESSION_AGE_SECONDS=N`: the
//! model then checks expiry, every client of a user but the first goes idle around and past
//! the age, and the run also fails if no session expired (the figures must show expiry
//! happened). Without it (or 0) the apps must run with the default age (two weeks) and
//! nothing expires.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use session_reliability::model::{run_group_with, Global, GroupOptions, Traffic, MAX_MODELLED_AGE};
use session_reliability::proc_stats::{sample, trend};
use session_reliability::{http, Args};

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool, String> {
    let args = Args::parse(std::env::args().skip(1))?;
    let urls = args.list("urls");
    if urls.is_empty() {
        return Err("--urls is required".into());
    }
    let pids: Vec<u32> = args
        .list("pids")
        .iter()
        .map(|p| p.parse().map_err(|e| format!("--pids {p:?}: {e}")))
        .collect::<Result<_, _>>()?;
    let seconds = args.get_u64("seconds", 60)?;
    let groups = args.get_u64("groups", 8)?;
    let devices = args.get_u64("devices", 2)?.max(1) as usize;
    let seed = args.get_u64("seed", 1)?;
    let label = args.get("label").unwrap_or("?").to_owned();
    let session_age = match args.get_u64("session-age-secs", 0)? {
        0 => None,
        n if n > MAX_MODELLED_AGE.as_secs() => {
            return Err(format!(
                "--session-age-secs {n}: the model handles ages up to {} s (beyond, a read may extend a session)",
                MAX_MODELLED_AGE.as_secs()
            ));
        }
        n => Some(Duration::from_secs(n)),
    };
    let warmup = args
        .get_u64("warmup", (seconds / 4).clamp(5, 120))?
        .min(seconds.saturating_sub(1));

    let global = Global::new(false);
    let started = Instant::now();
    let traffic = Traffic {
        http: http::client(Duration::from_secs(10)),
        urls: Arc::new(urls),
        global: global.clone(),
        deadline: started + Duration::from_secs(seconds),
        think: Duration::from_millis(args.get_u64("think-ms", 0)?),
    };
    // Samples every second, until the traffic ends.
    let sampler = {
        let pids = pids.clone();
        let deadline = traffic.deadline;
        tokio::spawn(async move {
            let mut samples = vec![Vec::new(); pids.len()];
            while Instant::now() < deadline {
                let at = started.elapsed().as_secs();
                for (i, pid) in pids.iter().enumerate() {
                    if let Some(s) = sample(*pid, at) {
                        samples[i].push(s);
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            samples
        })
    };
    let mut tasks = Vec::new();
    for g in 0..groups {
        tasks.push(tokio::spawn(run_group_with(
            traffic.clone(),
            GroupOptions { session_age },
            format!("user{g}"),
            devices,
            seed.wrapping_mul(1000).wrapping_add(g),
        )));
    }
    for t in tasks {
        t.await.map_err(|e| format!("a traffic task failed: {e}"))?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let samples = sampler
        .await
        .map_err(|e| format!("the sampler failed: {e}"))?;

    let g = global
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut processes = Vec::new();
    let mut flat = true;
    for (i, s) in samples.iter().enumerate() {
        let Some(t) = trend(s, warmup) else {
            return Err(format!("no samples of pid {}", pids[i]));
        };
        flat &= t.flat;
        processes.push(json!({
            "pid": pids[i],
            "rss_kib_warm": t.warm.rss_kib,
            "rss_kib_last": t.last.rss_kib,
            "rss_kib_max": t.max_rss_kib,
            "fds_warm": t.warm.fds,
            "fds_last": t.last.fds,
            "fds_max": t.max_fds,
            "flat": t.flat,
        }));
    }
    let failures = g.failures();
    // With an age, expiries must have happened (and been checked).
    let expired_ok = session_age.is_none() || g.expired > 0;
    if !expired_ok {
        eprintln!("soak: no session expired although the apps run with a session age");
    }
    let ok = g.violation_count == 0 && failures == 0 && flat && expired_ok;
    let summary = json!({
        "label": label,
        "seconds": elapsed,
        "groups": groups,
        "devices": devices,
        "requests": g.requests,
        "requests_per_sec": g.requests as f64 / elapsed,
        "ops": g.ops,
        "statuses": g.statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "failures": failures,
        "acked_writes": g.acked_writes,
        "lost_writes": g.lost_writes,
        "keys_issued": g.keys_issued,
        "keys_dead": g.keys_dead,
        "session_age_secs": session_age.map(|a| a.as_secs()),
        "expired": g.expired,
        "kept_alive": g.kept_alive,
        "dead_probes": g.dead_probes,
        "resyncs": g.resyncs,
        "violations": g.violation_count,
        "violation_samples": g.violations,
        "warmup_secs": warmup,
        "processes": processes,
        "flat": flat,
        "ok": ok,
    });
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    println!("{text}");
    if let Some(path) = args.get("json") {
        std::fs::write(path, &text).map_err(|e| format!("writing {path}: {e}"))?;
    }
    Ok(ok)
}
