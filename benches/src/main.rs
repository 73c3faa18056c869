//! `session-bench`: the benchmark harness. Run it through `scripts/bench.sh`, which starts
//! the servers and builds the peer process; `--help` lists the options.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use session_benches::bench::{self, Results, Settings};
use session_benches::report::{self, Report};
use session_benches::runner::Op;
use session_benches::{calls, hot, scale};

const HELP: &str = "session-bench: ours / raw / peer session store benchmarks

Options (defaults in brackets):
  --backends LIST       memory,sqlite,postgres,redis [all four]
  --ops LIST            create,load_hit,load_miss,update,touch,load_update,request,delete [all]
  --tasks LIST          concurrency levels [1,32]
  --phase-ms N          length of one time-boxed phase [1000]
  --rounds N            rounds per cell; the median is reported [3]
  --prefill N           sessions stored per subject before the phases [5000]
  --scale-sizes LIST    stored sessions for the scale scenario [10000,1000000]
  --scale-backends LIST memory,postgres,redis [all three]; `none` to skip
  --cleanup-rows N      expired rows for the PostgreSQL delete_expired scenario [1000000]; 0 skips
  --hot-backends LIST   backends of the hot scenario (tasks incrementing one session's
                        counter through the handle) [memory,sqlite,postgres,redis]; `none` skips
  --hot-ms N            measured hot phase per backend [5000]
  --hot-tasks N         concurrent requests on the hot session [32]
  --hot-only            run only the hot scenario and write only its section (markdown) to
                        --out, to paste into BENCHMARKS.md
  --no-calls            skip the handle call counts
  --peer-bin PATH       the tower-sessions process [target/release/session-benches-peer]
  --no-peer             do not measure tower-sessions
  --out PATH            report file [BENCHMARKS.md]
  --findings PATH       analysis copied into the report [benches/FINDINGS.md]
  --work-dir PATH       where SQLite files go [/tmp]
  --quick               development run: --phase-ms 200 --rounds 1 --prefill 1000
                        --scale-sizes 10000,100000 --cleanup-rows 100000 --hot-ms 1000
Servers come from SESSION_TEST_POSTGRES_URL and SESSION_TEST_REDIS_URL.
SESSION_BENCH_REDIS_POOL sets the number of connections of our Redis store (default: the
store's default, 2).";

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s != "none")
        .collect()
}

fn nums(v: &str) -> Result<Vec<usize>, String> {
    list(v)
        .iter()
        .map(|s| {
            s.replace('_', "")
                .parse()
                .map_err(|_| format!("not a number: {s}"))
        })
        .collect()
}

struct Parsed {
    settings: Settings,
    findings: PathBuf,
    calls: bool,
    hot_only: bool,
}

fn parse_args() -> Result<Parsed, String> {
    let args: Vec<String> = std::env::args().collect();
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from));
    let default_peer = exe_dir
        .map(|d| d.join("session-benches-peer"))
        .filter(|p| p.exists());
    let mut s = Settings {
        phase: Duration::from_millis(1000),
        rounds: 3,
        backends: list("memory,sqlite,postgres,redis"),
        ops: Op::ALL.to_vec(),
        tasks: vec![1, 32],
        prefill: 5000,
        peer_bin: default_peer,
        out: PathBuf::from("BENCHMARKS.md"),
        scale_sizes: vec![10_000, 1_000_000],
        scale_backends: list("memory,postgres,redis"),
        cleanup_rows: 1_000_000,
        hot_backends: list("memory,sqlite,postgres,redis"),
        hot_phase: Duration::from_millis(5000),
        hot_tasks: 32,
        command: std::env::var("SESSION_BENCH_COMMAND").unwrap_or_else(|_| args.join(" ")),
        work_dir: std::env::temp_dir(),
    };
    let mut findings = PathBuf::from("benches/FINDINGS.md");
    let mut calls = true;
    let mut hot_only = false;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            "--backends" => s.backends = list(&val()?),
            "--ops" => {
                s.ops = list(&val()?)
                    .iter()
                    .map(|o| Op::parse(o).ok_or(format!("unknown op {o}")))
                    .collect::<Result<_, _>>()?
            }
            "--tasks" => s.tasks = nums(&val()?)?,
            "--phase-ms" => {
                s.phase =
                    Duration::from_millis(nums(&val()?)?.first().copied().unwrap_or(600) as u64)
            }
            "--rounds" => s.rounds = nums(&val()?)?.first().copied().unwrap_or(3).max(1) as u32,
            "--prefill" => s.prefill = nums(&val()?)?.first().copied().unwrap_or(5000).max(64),
            "--scale-sizes" => s.scale_sizes = nums(&val()?)?,
            "--scale-backends" => s.scale_backends = list(&val()?),
            "--cleanup-rows" => s.cleanup_rows = nums(&val()?)?.first().copied().unwrap_or(0),
            "--no-calls" => calls = false,
            "--hot-backends" => s.hot_backends = list(&val()?),
            "--hot-ms" => {
                s.hot_phase =
                    Duration::from_millis(nums(&val()?)?.first().copied().unwrap_or(5000) as u64)
            }
            "--hot-tasks" => s.hot_tasks = nums(&val()?)?.first().copied().unwrap_or(32).max(1),
            "--hot-only" => hot_only = true,
            "--peer-bin" => s.peer_bin = Some(PathBuf::from(val()?)),
            "--no-peer" => s.peer_bin = None,
            "--out" => s.out = PathBuf::from(val()?),
            "--findings" => findings = PathBuf::from(val()?),
            "--work-dir" => s.work_dir = PathBuf::from(val()?),
            "--quick" => {
                s.phase = Duration::from_millis(200);
                s.rounds = 1;
                s.prefill = 1000;
                s.scale_sizes = vec![10_000, 100_000];
                s.cleanup_rows = 100_000;
                s.hot_phase = Duration::from_millis(1000);
            }
            other => return Err(format!("unknown option {other} (see --help)")),
        }
    }
    Ok(Parsed {
        settings: s,
        findings,
        calls,
        hot_only,
    })
}

fn sh(cmd: &str) -> String {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// `name version` pairs from a Cargo.lock.
fn lock_versions(path: &str, names: &[&str]) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    let mut name = None;
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_owned());
        } else if let Some(v) = line.strip_prefix("version = ") {
            if let Some(n) = name.take() {
                if names.contains(&n.as_str()) {
                    out.push(format!("{n} {}", v.trim_matches('"')));
                }
            }
        }
    }
    out
}

async fn server_versions() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(url) = std::env::var("SESSION_TEST_POSTGRES_URL") {
        if let Ok(pool) = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
        {
            if let Ok(v) = sqlx::query_scalar::<_, String>("SHOW server_version")
                .fetch_one(&pool)
                .await
            {
                out.push(format!("PostgreSQL {v}"));
            }
        }
    }
    if let Ok(url) = std::env::var("SESSION_TEST_REDIS_URL") {
        if let Ok(client) = redis::Client::open(url.as_str()) {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await {
                let info: Result<String, _> =
                    redis::cmd("INFO").arg("server").query_async(&mut c).await;
                if let Some(v) = info.ok().and_then(|i| {
                    i.lines()
                        .find_map(|l| l.strip_prefix("redis_version:").map(str::to_owned))
                }) {
                    out.push(format!("Redis {}", v.trim()));
                }
            }
        }
    }
    if let Ok(pool) = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await
    {
        if let Ok(v) = sqlx::query_scalar::<_, String>("select sqlite_version()")
            .fetch_one(&pool)
            .await
        {
            out.push(format!("SQLite {v} (bundled)"));
        }
    }
    out
}

fn header(s: &Settings, servers: &[String]) -> String {
    let ours = lock_versions(
        "Cargo.lock",
        &[
            "sqlx",
            "redis",
            "deadpool-redis",
            "tokio",
            "serde_json",
            "hdrhistogram",
        ],
    );
    let peer = lock_versions(
        "benches/peer/Cargo.lock",
        &[
            "tower-sessions-core",
            "tower-sessions-memory-store",
            "tower-sessions-sqlx-store",
            "tower-sessions-redis-store",
            "fred",
            "sqlx",
        ],
    );
    format!(
        "- Command: `{}`\n- Date: {}\n- Machine: {} cores (`nproc`), {}, load average at start {}\n\
         - Toolchain: {}\n- Ours and raw: {}\n- Peer (tower-sessions, separate process): {}\n- Servers: {}\n",
        s.command,
        sh("date -u '+%Y-%m-%d %H:%M UTC'"),
        sh("nproc"),
        sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-"),
        sh("cut -d' ' -f1-3 /proc/loadavg"),
        sh("rustc --version"),
        ours.join(", "),
        peer.join(", "),
        servers.join(", "),
    )
}

fn main() {
    let parsed = match parse_args() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("session-bench: {e}");
            std::process::exit(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("session-bench: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    rt.block_on(async move {
        let s = &parsed.settings;
        let started = Instant::now();
        let servers = server_versions().await;
        if parsed.hot_only {
            let load_before = sh("uptime");
            let mut notes = Vec::new();
            let hot = hot::run_all(
                &s.hot_backends,
                s.hot_tasks,
                s.hot_phase,
                &s.work_dir,
                &mut notes,
            )
            .await;
            let head = report::HotHeader {
                command: s.command.clone(),
                date: sh("date -u '+%Y-%m-%d %H:%M UTC'"),
                machine: format!(
                    "{} cores (`nproc`), {}",
                    sh("nproc"),
                    sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-")
                ),
                load_before,
                load_after: sh("uptime"),
                servers: servers.join(", "),
                total_secs: started.elapsed().as_secs_f64(),
            };
            let text = report::hot_only(&head, s, &hot, &notes);
            write_or_exit(&s.out, &text, started);
            return;
        }
        let head = header(s, &servers);
        let mut notes = Vec::new();
        if s.peer_bin.is_none() {
            notes.push("peer process not found: build benches/peer (scripts/bench.sh does)".into());
        }
        let mut results = Results::new();
        bench::run(s, &mut results, &mut notes).await;
        let mut scale_rows = Vec::new();
        let mut cleanup = None;
        scale::run(s, &mut scale_rows, &mut cleanup, &mut notes).await;
        let calls = if parsed.calls {
            match calls::run().await {
                Ok(c) => c,
                Err(e) => {
                    notes.push(format!("handle call counts failed: {e}"));
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        let hot = hot::run_all(
            &s.hot_backends,
            s.hot_tasks,
            s.hot_phase,
            &s.work_dir,
            &mut notes,
        )
        .await;
        let findings = std::fs::read_to_string(&parsed.findings).unwrap_or_default();
        let text = report::render(&Report {
            settings: s,
            results: &results,
            calls: &calls,
            scale: &scale_rows,
            cleanup: &cleanup,
            hot: &hot,
            notes: &notes,
            header: head,
            findings,
            total_secs: started.elapsed().as_secs_f64(),
        });
        write_or_exit(&s.out, &text, started);
    });
}

fn write_or_exit(out: &std::path::Path, text: &str, started: Instant) {
    match std::fs::write(out, text) {
        Ok(()) => eprintln!(
            "[bench] wrote {} in {:.0} s",
            out.display(),
            started.elapsed().as_secs_f64()
        ),
        Err(e) => {
            eprintln!("session-bench: cannot write {}: {e}", out.display());
            std::process::exit(1);
        }
    }
}
