//! The harness measures what it claims: phases stop at the deadline or the limit, keys are
//! valid and disjoint per task, every operation succeeds against the memory store and the
//! raw map, the handle call counts meet their targets, and the hot scenario loses nothing.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_benches::ours::OursState;
use session_benches::raw::{raw_request, RawMemory};
use session_benches::report::median;
use session_benches::runner::{key, run_phase, session_map, slot, Op, PhaseResult, Worker};
use session_core::{SessionKey, SessionStore};

struct Sleepy;

impl Worker for Sleepy {
    async fn op(&mut self, seq: u64) -> Result<(), String> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        if seq == 3 {
            Err("the fourth op fails".into())
        } else {
            Ok(())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phases_stop_at_the_deadline_and_at_limits() {
    let t = Instant::now();
    let r = run_phase(vec![Sleepy, Sleepy], Duration::from_millis(100), None).await;
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(r.ops > 20, "{r:?}");
    assert_eq!(r.errors, 2, "one failure per task");
    assert_eq!(r.first_error.as_deref(), Some("the fourth op fails"));
    assert!(r.p50_ns >= 1_000_000 && r.p99_ns >= r.p50_ns, "{r:?}");

    let r = run_phase(
        vec![Sleepy, Sleepy],
        Duration::from_secs(10),
        Some(vec![5, 2]),
    )
    .await;
    assert_eq!(r.per_task, vec![5, 2]);
    assert_eq!(r.ops + r.errors, 7);
}

#[test]
fn keys_are_valid_session_keys_and_slots_are_disjoint() {
    for kind in [b'p', b'q', b'm', b'c'] {
        for n in [0, 7, 123_456_789, u64::MAX / 10] {
            let k = key(kind, n);
            assert!(SessionKey::parse(&k).is_ok(), "{k}");
        }
    }
    let tasks = 32;
    let prefill = 1000;
    let mut owner = vec![None; prefill];
    for t in 0..tasks {
        for seq in 0..200 {
            let i = slot(t, tasks, prefill, seq);
            assert!(i < prefill);
            assert!(owner[i].is_none() || owner[i] == Some(t), "slot {i} shared");
            owner[i] = Some(t);
        }
    }
}

#[test]
fn the_workload_is_about_one_kilobyte_and_raw_requests_rewrite_one_key() {
    let map = session_map(0);
    let json = serde_json::to_string(&map).expect("json");
    assert!((900..1300).contains(&json.len()), "{}", json.len());
    assert_eq!(map["cart"].as_array().map(Vec::len), Some(20));
    let data = format!("j1:{json}");
    let out = raw_request(&data, 42).expect("request");
    let back: serde_json::Value = serde_json::from_str(&out[3..]).expect("json");
    assert_eq!(back["csrf_token"], format!("csrf{:028}", 42));
    assert_eq!(back["user_id"], map["user_id"]);
    assert!(raw_request("garbage", 1).is_err());
}

#[test]
fn median_takes_each_figure_separately() {
    let r = |ops, p50, p99| PhaseResult {
        ops,
        elapsed_ns: 1_000_000_000,
        p50_ns: p50,
        p99_ns: p99,
        ..PhaseResult::default()
    };
    let m = median(&[r(10, 5, 900), r(30, 1, 100), r(20, 9, 500)]);
    assert_eq!((m.ops, m.p50_ns, m.p99_ns), (20, 5, 500));
}

/// Every operation, in harness order, against our memory store and the raw map: no
/// failed operation (a failure would mean the figures measure an error path).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_succeeds_on_memory() {
    let store: Arc<dyn SessionStore> = Arc::new(session_memory::MemoryStore::new());
    let ours = OursState::prefill(store, 256, 4).await.expect("prefill");
    let raw = RawMemory::new(256);
    let phase = Duration::from_millis(30);
    for tasks in [1, 32] {
        let mut ours_created = Vec::new();
        let mut raw_created = Vec::new();
        for op in Op::ALL {
            let limits = |c: &Vec<u64>| (op == Op::Delete).then(|| c.clone());
            // The delete phase is bounded by its limits (every created key once); its
            // deadline is only a safety net, long enough for a loaded machine (other tests
            // of this binary run at the same time).
            let deadline = if op == Op::Delete {
                Duration::from_secs(20)
            } else {
                phase
            };
            let o = run_phase(ours.workers(op, tasks, 0), deadline, limits(&ours_created)).await;
            let r = run_phase(raw.workers(op, tasks, 0), deadline, limits(&raw_created)).await;
            for (who, res) in [("ours", &o), ("raw", &r)] {
                assert_eq!(
                    res.errors,
                    0,
                    "{who} {} c{tasks}: {:?}",
                    op.name(),
                    res.first_error
                );
                assert!(res.ops > 0, "{who} {} c{tasks} did nothing", op.name());
            }
            if op == Op::Create {
                ours_created = o.per_task.clone();
                raw_created = r.per_task.clone();
            }
            if op == Op::Delete {
                assert_eq!(
                    o.ops,
                    ours_created.iter().sum::<u64>(),
                    "every created session deleted"
                );
            }
        }
    }
    // Only the prefilled sessions are left (p and q keys).
    let distinct: HashSet<_> = ours.keys.iter().chain(ours.request_keys.iter()).collect();
    assert_eq!(distinct.len(), 512);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_call_counts_meet_their_targets() {
    let counts = session_benches::calls::run().await.expect("scenarios run");
    assert_eq!(counts.len(), 3);
    assert_eq!(counts[0].total, 0, "untouched sessions cost no store call");
    assert_eq!(counts[1].loads, counts[1].requests);
    assert!(counts.iter().all(|c| c.verdict), "{counts:?}");
}

/// The hot scenario (issue 10) on memory: 32 concurrent requests incrementing one
/// session's counter through the handle; every acknowledged increment is in the counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_session_loses_no_acknowledged_update_on_memory() {
    let store: Arc<dyn SessionStore> = Arc::new(session_memory::MemoryStore::new());
    let h = session_benches::hot::run(
        "memory",
        store,
        32,
        Duration::from_millis(50),
        Duration::from_millis(400),
    )
    .await
    .expect("hot scenario runs");
    assert_eq!(h.phase.errors, 0, "{:?}", h.phase.first_error);
    assert_eq!(h.lost(), 0, "{h:?}");
    assert!(h.phase.ops > 32, "too few requests: {h:?}");
    assert_eq!(h.final_value - h.initial, h.phase.ops);
    // One load and at most one write per request once saves take turns.
    assert!(h.updates_per_request() <= 1.0 + 1e-9, "{h:?}");

    // The report shows it, with the goal as a target.
    let settings = session_benches::bench::Settings {
        phase: Duration::from_millis(100),
        rounds: 1,
        backends: Vec::new(),
        ops: Vec::new(),
        tasks: Vec::new(),
        prefill: 64,
        peer_bin: None,
        out: "unused.md".into(),
        scale_sizes: Vec::new(),
        scale_backends: Vec::new(),
        cleanup_rows: 0,
        hot_backends: vec!["memory".into()],
        hot_phase: Duration::from_millis(400),
        hot_tasks: 32,
        command: "test".into(),
        work_dir: std::env::temp_dir(),
    };
    let mut v = session_benches::report::Verdicts::default();
    let section = session_benches::report::hot_section(&settings, &[h], &mut v);
    assert!(section.contains("| memory | 32 |"), "{section}");
    assert_eq!((v.pass.len(), v.miss.len()), (1, 0), "{section}");
}
