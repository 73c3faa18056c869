//! Regression (found by the 10-minute soak): the demo's RSS grew 14-16 MiB in 10 minutes on
//! every backend because the Prometheus recorder keeps each histogram sample until an
//! upkeep drains it, and the demo drained only when `/metrics` was scraped. The demo now
//! runs `spawn_metrics_upkeep`. This test records as many samples as a million store
//! operations would and checks the process's RSS: flat with the upkeep task, and (the
//! control, so the measurement can fail) grown without it.

use std::time::Duration;

use session_web_example::{metrics_handle, spawn_metrics_upkeep};

/// This process's resident set, KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

/// Records `n` samples of the store's latency histogram, yielding now and then so the
/// upkeep task gets its turns.
async fn record(n: usize) {
    for i in 0..n {
        metrics::histogram!(
            "session_store_operation_duration_seconds",
            "operation" => "load",
            "backend" => "memory"
        )
        .record(0.000_123);
        if i % 50_000 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histogram_samples_are_drained_without_a_scrape() {
    let handle = metrics_handle().expect("the recorder");
    const SAMPLES: usize = 1_000_000; // about 16 bytes each when kept (measured): 15 MiB
    const MIB: u64 = 1024;

    // Warm-up: the first blocks and the allocator's arenas.
    record(100_000).await;
    handle.run_upkeep();

    let upkeep = spawn_metrics_upkeep(handle.clone(), Duration::from_millis(20));
    let before = rss_kib();
    record(SAMPLES).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let with_upkeep = rss_kib().saturating_sub(before);
    upkeep.abort();

    let before = rss_kib();
    record(SAMPLES).await;
    let without_upkeep = rss_kib().saturating_sub(before);
    handle.run_upkeep();

    println!(
        "RSS growth over {SAMPLES} samples: {} KiB with the upkeep task, {} KiB without",
        with_upkeep, without_upkeep
    );
    assert!(
        without_upkeep >= 8 * MIB,
        "the control: undrained samples must show ({without_upkeep} KiB)"
    );
    assert!(
        with_upkeep <= 4 * MIB,
        "with the upkeep task the RSS stays flat ({with_upkeep} KiB)"
    );
}
