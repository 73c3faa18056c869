//! Medians, targets and the `BENCHMARKS.md` writer.

use std::fmt::Write as _;

use crate::bench::{Results, Settings, Who};
use crate::calls::CallCount;
use crate::hot::HotResult;
use crate::runner::{Op, PhaseResult};
use crate::scale::{CleanupResult, ScaleRow};

fn median_u64(mut v: Vec<u64>) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[v.len() / 2]
}

/// The median of several rounds: ops/s, p50 and p99 each by their own median; errors
/// summed. The result's `ops` is the median ops/s (over an `elapsed_ns` of one second).
pub fn median(runs: &[PhaseResult]) -> PhaseResult {
    let mut rates: Vec<f64> = runs.iter().map(PhaseResult::ops_per_sec).collect();
    rates.sort_by(|a, b| a.total_cmp(b));
    let rate = rates.get(rates.len() / 2).copied().unwrap_or(0.0);
    PhaseResult {
        ops: rate.round() as u64,
        errors: runs.iter().map(|r| r.errors).sum(),
        elapsed_ns: 1_000_000_000,
        p50_ns: median_u64(runs.iter().map(|r| r.p50_ns).collect()),
        p99_ns: median_u64(runs.iter().map(|r| r.p99_ns).collect()),
        per_task: Vec::new(),
        first_error: runs.iter().find_map(|r| r.first_error.clone()),
    }
}

/// The throughput target for `ours / raw`, if there is one for this cell.
pub fn ratio_target(backend: &str, op: Op, tasks: usize) -> Option<f64> {
    match backend {
        "memory" => Some(0.5),
        "redis" => matches!(op, Op::LoadHit | Op::Update | Op::LoadUpdate)
            .then_some(if tasks <= 1 { 0.9 } else { 0.8 }),
        "postgres" => Some(0.95),
        "sqlite" => Some(0.9),
        _ => None,
    }
}

fn is_write(op: Op) -> bool {
    !matches!(op, Op::LoadHit | Op::LoadMiss)
}

fn us(ns: u64) -> String {
    let us = ns as f64 / 1e3;
    if us >= 100.0 {
        format!("{us:.0}")
    } else if us >= 10.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.2}")
    }
}

fn rate(r: &PhaseResult) -> String {
    let v = r.ops_per_sec();
    if v >= 100_000.0 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Target verdicts collected while writing the tables.
#[derive(Default)]
pub struct Verdicts {
    pub pass: Vec<String>,
    pub miss: Vec<String>,
}

fn table(backend: &str, s: &Settings, results: &Results, v: &mut Verdicts, out: &mut String) {
    let get = |op: Op, tasks: usize, who: Who| {
        results
            .get(&(backend.to_owned(), op, tasks, who))
            .map(|runs| median(runs))
    };
    let _ = writeln!(out, "### {backend}\n");
    let _ = writeln!(
        out,
        "| op | tasks | ours ops/s | raw ops/s | peer ops/s | ours p50 / p99 µs | raw p50 / p99 µs | peer p50 / p99 µs | ours/raw | ours/peer | target |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for &op in &s.ops {
        for &tasks in &s.tasks {
            let (ours, raw, peer) = (
                get(op, tasks, Who::Ours),
                get(op, tasks, Who::Raw),
                get(op, tasks, Who::Peer),
            );
            if ours.is_none() && raw.is_none() && peer.is_none() {
                continue;
            }
            let cell = |r: &Option<PhaseResult>| r.as_ref().map(rate).unwrap_or("—".into());
            let lat = |r: &Option<PhaseResult>| {
                r.as_ref()
                    .map(|r| format!("{} / {}", us(r.p50_ns), us(r.p99_ns)))
                    .unwrap_or("—".into())
            };
            let ratio = |a: &Option<PhaseResult>, b: &Option<PhaseResult>| match (a, b) {
                (Some(a), Some(b)) if b.ops_per_sec() > 0.0 => {
                    Some(a.ops_per_sec() / b.ops_per_sec())
                }
                _ => None,
            };
            let or = ratio(&ours, &raw);
            let op_ = ratio(&ours, &peer);
            let mut verdict = Vec::new();
            if let Some(t) = ratio_target(backend, op, tasks) {
                let label = format!("{backend} {} c{tasks}: ours/raw >= {t}", op.name());
                match or {
                    Some(r) if r >= t => {
                        verdict.push(format!("PASS ≥{t}"));
                        v.pass.push(format!("{label} ({r:.2})"));
                    }
                    Some(r) => {
                        verdict.push(format!("**MISS** ≥{t}"));
                        v.miss.push(format!("{label} ({r:.2})"));
                    }
                    None => {
                        verdict.push("not measured".into());
                        v.miss.push(format!("{label} (not measured)"));
                    }
                }
            }
            if backend == "sqlite" && tasks >= 32 && is_write(op) {
                let label = format!("sqlite {} c{tasks}: ours p99 < 5 ms", op.name());
                match &ours {
                    Some(r) if r.p99_ns < 5_000_000 => {
                        verdict.push("p99 PASS <5ms".into());
                        v.pass.push(format!("{label} ({} µs)", us(r.p99_ns)));
                    }
                    Some(r) => {
                        verdict.push("p99 **MISS** <5ms".into());
                        v.miss.push(format!("{label} ({} µs)", us(r.p99_ns)));
                    }
                    None => v.miss.push(format!("{label} (not measured)")),
                }
            }
            let errors: u64 = [&ours, &raw, &peer]
                .iter()
                .filter_map(|r| r.as_ref().map(|r| r.errors))
                .sum();
            if errors > 0 {
                verdict.push(format!("{errors} errors"));
            }
            let _ = writeln!(
                out,
                "| {} | {tasks} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                op.name(),
                cell(&ours),
                cell(&raw),
                cell(&peer),
                lat(&ours),
                lat(&raw),
                lat(&peer),
                or.map(|r| format!("{r:.2}")).unwrap_or("—".into()),
                op_.map(|r| format!("{r:.2}")).unwrap_or("—".into()),
                verdict.join(", ")
            );
        }
    }
    // Errors, with their first message, so a wrong number is never silent.
    for &op in &s.ops {
        for &tasks in &s.tasks {
            for who in [Who::Ours, Who::Raw, Who::Peer] {
                if let Some(r) = get(op, tasks, who) {
                    if r.errors > 0 {
                        let _ = writeln!(
                            out,
                            "\n- {} c{tasks} {}: {} failed operations, first: `{}`",
                            op.name(),
                            who.name(),
                            r.errors,
                            r.first_error.unwrap_or_default()
                        );
                    }
                }
            }
        }
    }
    let _ = writeln!(out);
}

fn ms(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1e6)
}

/// The `hot` section: one row per backend, with the goal as the verdict.
pub fn hot_section(s: &Settings, hot: &[HotResult], v: &mut Verdicts) -> String {
    let mut out = String::new();
    if hot.is_empty() {
        return out;
    }
    let tasks = hot.first().map_or(s.hot_tasks, |h| h.tasks);
    let _ = writeln!(
        out,
        "## Hot session: {tasks} concurrent requests on one session\n"
    );
    let _ = writeln!(
        out,
        "{tasks} tokio tasks share ONE session cookie for {} ms per backend (after a warm-up \
         of {} ms); each iteration is a whole request through the `Session` handle: \
         `update(\"counter\", |n: Option<u64>| n.unwrap_or(0) + 1)` then `save()`. \
         acknowledged = requests whose `update` and `save` answered `Ok`; errors = any `Err`; \
         lost = acknowledged − (final counter − initial counter). Latency is per request. \
         Store calls are counted with `session_conformance::CountingStore` around the store \
         (writes = `update` calls, retries included). Goal (issue 10): 0 errors, 0 lost, \
         p99 < 50 ms.\n",
        s.hot_phase.as_millis(),
        crate::hot::warmup_for(s.hot_phase).as_millis(),
    );
    let _ = writeln!(
        out,
        "| backend | tasks | requests/s | p50 ms | p99 ms | acknowledged | errors | lost | loads / request | writes / request | goal |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for h in hot {
        let label = format!(
            "hot {} c{}: 0 errors, 0 lost, p99 < 50 ms",
            h.backend, h.tasks
        );
        let detail = format!(
            "{} errors, lost {}, p99 {} ms",
            h.phase.errors,
            h.lost(),
            ms(h.phase.p99_ns)
        );
        let verdict = if h.meets_goal() {
            v.pass.push(format!("{label} ({detail})"));
            "PASS"
        } else {
            v.miss.push(format!("{label} ({detail})"));
            "**MISS**"
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {verdict} |",
            h.backend,
            h.tasks,
            rate(&h.phase),
            ms(h.phase.p50_ns),
            ms(h.phase.p99_ns),
            h.phase.ops,
            h.phase.errors,
            h.lost(),
            h.loads_per_request(),
            h.updates_per_request(),
        );
    }
    for h in hot {
        if let Some(e) = &h.phase.first_error {
            let _ = writeln!(
                out,
                "\n- {}: {} failed requests, first: `{e}`",
                h.backend, h.phase.errors
            );
        }
        if h.other_calls > 0 {
            let _ = writeln!(
                out,
                "\n- {}: {} other store calls (create, touch, delete) during the phase",
                h.backend, h.other_calls
            );
        }
    }
    let _ = writeln!(out);
    out
}

/// How a `--hot-only` run was made (it writes only the hot section).
pub struct HotHeader {
    pub command: String,
    pub date: String,
    pub machine: String,
    /// `uptime` before the run.
    pub load_before: String,
    /// `uptime` after the run.
    pub load_after: String,
    pub servers: String,
    pub total_secs: f64,
}

/// The hot section on its own, with how it was measured, for a `--hot-only` run.
pub fn hot_only(head: &HotHeader, s: &Settings, hot: &[HotResult], notes: &[String]) -> String {
    let mut v = Verdicts::default();
    let section = hot_section(s, hot, &mut v);
    let mut out = String::new();
    match section.split_once('\n') {
        Some((title, rest)) => {
            let _ = writeln!(out, "{title}\n");
            let _ = writeln!(
                out,
                "- Command: `{}` (release build; `--hot-only` run, not part of the full run \
                 above)\n- Date: {}\n- Machine: {}\n- Load (`uptime`) before: `{}`; after: `{}`\n\
                 - Servers: {}\n- Whole run: {:.0} s\n- Goal met on {} of {} backends",
                head.command,
                head.date,
                head.machine,
                head.load_before,
                head.load_after,
                head.servers,
                head.total_secs,
                v.pass.len(),
                v.pass.len() + v.miss.len(),
            );
            out.push_str(rest);
        }
        None => {
            let _ = writeln!(out, "## Hot session\n\nNo backend was measured.\n");
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "Notes from this run:\n");
        for n in notes {
            let _ = writeln!(out, "- {n}");
        }
        let _ = writeln!(out);
    }
    out
}

/// Everything the report shows.
pub struct Report<'a> {
    pub settings: &'a Settings,
    pub results: &'a Results,
    pub calls: &'a [CallCount],
    pub scale: &'a [ScaleRow],
    pub cleanup: &'a Option<CleanupResult>,
    pub hot: &'a [HotResult],
    pub notes: &'a [String],
    pub header: String,
    pub findings: String,
    pub total_secs: f64,
}

/// Renders `BENCHMARKS.md`.
pub fn render(r: &Report<'_>) -> String {
    let s = r.settings;
    let mut out = String::new();
    let mut v = Verdicts::default();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Generated by `session-bench` (crate `benches/`); do not edit by hand: the analysis \
         lives in `benches/FINDINGS.md` and is copied in below.\n"
    );
    out.push_str(&r.header);
    let _ =
        writeln!(
        out,
        "\nSettings: phases of {} ms, {} rounds (median shown), ops {}, concurrency {:?} tokio \
         tasks, {} prefilled sessions per subject (plus as many for `request`), pools of 16. \
         Whole run: {:.0} s.\n",
        s.phase.as_millis(),
        s.rounds,
        s.ops.iter().map(|o| o.name()).collect::<Vec<_>>().join(", "),
        s.tasks,
        s.prefill,
        r.total_secs
    );
    let mut tables = String::new();
    for backend in &s.backends {
        table(backend, s, r.results, &mut v, &mut tables);
    }
    // Scale.
    let mut scale = String::new();
    if !r.scale.is_empty() {
        let _ = writeln!(
            scale,
            "## Scale: load latency by number of stored sessions\n"
        );
        let _ = writeln!(
            scale,
            "`load` (hit) of our store, keys spread over the whole table. Target: latency with \
             the largest size within 20% of that with the smallest.\n"
        );
        let _ = writeln!(
            scale,
            "| backend | stored sessions | tasks | fill s | ops/s | p50 µs | p99 µs | p50 vs smallest | target |"
        );
        let _ = writeln!(scale, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
        for row in r.scale {
            let base = r
                .scale
                .iter()
                .filter(|b| b.backend == row.backend && b.tasks == row.tasks)
                .min_by_key(|b| b.size);
            let (rel, verdict) = match base {
                Some(b) if !row.target && b.size != row.size && b.result.p50_ns > 0 => {
                    let rel = row.result.p50_ns as f64 / b.result.p50_ns as f64;
                    (format!("{rel:.2}x"), "reference".to_string())
                }
                Some(b) if b.size != row.size && b.result.p50_ns > 0 => {
                    let rel = row.result.p50_ns as f64 / b.result.p50_ns as f64;
                    let label = format!(
                        "{} load c{} at {} vs {} stored: p50 within 20%",
                        row.backend, row.tasks, row.size, b.size
                    );
                    if rel <= 1.2 {
                        v.pass.push(format!("{label} ({rel:.2}x)"));
                        (format!("{rel:.2}x"), "PASS ≤1.2x".to_string())
                    } else {
                        v.miss.push(format!("{label} ({rel:.2}x)"));
                        (format!("{rel:.2}x"), "**MISS** ≤1.2x".to_string())
                    }
                }
                _ => ("—".into(), String::new()),
            };
            let _ = writeln!(
                scale,
                "| {} | {} | {} | {:.1} | {} | {} | {} | {} | {} |",
                row.backend,
                row.size,
                row.tasks,
                row.fill_secs,
                rate(&row.result),
                us(row.result.p50_ns),
                us(row.result.p99_ns),
                rel,
                verdict
            );
        }
        let _ = writeln!(scale);
    }
    if let Some(c) = r.cleanup {
        let _ = writeln!(scale, "## `delete_expired` on PostgreSQL while loads run\n");
        let worst = c.windows.iter().map(|w| w.p99_ns).max().unwrap_or(0);
        let med = median(&c.windows);
        let _ = writeln!(
            scale,
            "{} expired rows next to {} live ones; 32 tasks load live sessions in one-second \
             windows while one `delete_expired` call runs.\n",
            c.expired, c.live
        );
        let _ = writeln!(scale, "| measure | value |\n|---|---:|");
        let _ = writeln!(scale, "| rows removed | {} |", c.removed);
        let _ = writeln!(scale, "| cleanup time | {:.1} s |", c.secs);
        let _ = writeln!(
            scale,
            "| load p50 / p99 before cleanup | {} / {} µs ({} ops/s) |",
            us(c.baseline.p50_ns),
            us(c.baseline.p99_ns),
            rate(&c.baseline)
        );
        let _ = writeln!(
            scale,
            "| load p50 / p99 during cleanup (median of {} windows) | {} / {} µs ({} ops/s) |",
            c.windows.len(),
            us(med.p50_ns),
            us(med.p99_ns),
            rate(&med)
        );
        let _ = writeln!(scale, "| worst one-second window p99 | {} µs |", us(worst));
        if let Some(e) = &c.error {
            let _ = writeln!(scale, "| error | `{e}` |");
        }
        let _ = writeln!(scale);
    }
    // Handle calls.
    let mut calls = String::new();
    if !r.calls.is_empty() {
        let _ = writeln!(calls, "## Store calls made by the `Session` handle\n");
        let _ = writeln!(
            calls,
            "Counted with `session_conformance::CountingStore` around a `MemoryStore` (the \
             handle's logic does not depend on the store).\n"
        );
        let _ = writeln!(
            calls,
            "| scenario | requests | loads | touches | writes | total calls | target | verdict |"
        );
        let _ = writeln!(calls, "|---|---:|---:|---:|---:|---:|---|---|");
        for c in r.calls {
            let verdict = if c.verdict { "PASS" } else { "**MISS**" };
            if c.verdict {
                v.pass.push(format!("handle: {}", c.scenario));
            } else {
                v.miss.push(format!("handle: {}", c.scenario));
            }
            let _ = writeln!(
                calls,
                "| {} | {} | {} | {} | {} | {} | {} | {verdict} |",
                c.scenario, c.requests, c.loads, c.touches, c.writes, c.total, c.target
            );
        }
        let _ = writeln!(calls);
    }
    let hot = hot_section(s, r.hot, &mut v);
    let _ = writeln!(out, "## Targets\n");
    let _ = writeln!(out, "{} met, {} missed.\n", v.pass.len(), v.miss.len());
    if !v.miss.is_empty() {
        let _ = writeln!(out, "Missed:\n");
        for m in &v.miss {
            let _ = writeln!(out, "- {m}");
        }
        let _ = writeln!(out);
    }
    if !r.notes.is_empty() {
        let _ = writeln!(out, "Notes from this run:\n");
        for n in r.notes {
            let _ = writeln!(out, "- {n}");
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "## Throughput and latency\n");
    let _ = writeln!(
        out,
        "ops/s: median over rounds of operations per second of wall time (all tasks). p50/p99: \
         per-operation latency. Ratios are of ops/s. `request` is a whole request through the \
         session handle (ours: `Session`; peer: tower-sessions' `Session`; raw: get, decode \
         JSON, read two keys, write one, encode, set).\n"
    );
    out.push_str(&tables);
    out.push_str(&scale);
    out.push_str(&calls);
    out.push_str(&hot);
    if !r.findings.is_empty() {
        out.push_str(&r.findings);
        if !r.findings.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}
